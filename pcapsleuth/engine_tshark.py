"""The tshark engine: Wireshark's dissectors, through pyshark, for link types the fast decoder lacks.

:class:`TsharkCapture` has the interface of :class:`pcapsleuth.capture.Capture`: a context manager
that yields :class:`~pcapsleuth.packet.Packet` tuples with the same field semantics, and ends with a
:class:`~pcapsleuth.capture.CaptureInfo` whose ``engine`` is ``"tshark"``.

How it works
------------
* The file layer (format, compression, interfaces, comments, damage) is read by our own
  :mod:`.reader`, which knows nothing about protocols, so both engines describe the *file* alike.
  Compressed or in-memory input is spooled to a temporary file first (tshark 4.0 reads only gzip).
* Every frame is dissected by tshark (``-T ek`` through ``pyshark.FileCapture(use_ek=True)``). The
  EK output keeps every occurrence of a layer (tunnels) as a list, in order, and
  ``frame.protocols`` gives the stack; from them we pick the innermost IP header that is not
  quoted inside an ICMP error, and the transport header that follows it - what the fast engine does.
* pyshark drives tshark with asyncio and breaks inside a running event loop (Jupyter, an
  ``asyncio.run`` coroutine). So pyshark always runs in a worker thread with its own event loop,
  handing packets over through a bounded queue: memory stays flat and callers need no loop.

Errors: tshark missing or failing raises :class:`~pcapsleuth.errors.EngineError` with one line;
unreadable input raises the same errors as the fast engine (the reader opens it first).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from typing import Any

from .capture import CaptureInfo
from .errors import EngineError
from .packet import Cksum, Direction, Frag, Packet
from .reader import MAX_EXPANSION, CaptureSource, DamageLog, RecordReader, Source, open_capture

__all__ = ["TsharkCapture"]

_new = tuple.__new__

#: tshark protocol names of the tunnels and shims the fast decoder names in ``Packet.encap``.
_ENCAP_NAMES = {
    "mpls": "mpls",
    "pppoes": "pppoe",
    "ieee8021ah": "pbb",
    "cfp": "fabricpath",
    "gre": "gre",
    "vxlan": "vxlan",
    "geneve": "geneve",
    "gtp": "gtp",
    "teredo": "teredo",
}
_LINK_LAYERS = frozenset(
    (
        "eth",
        "sll",
        "null",
        "loop",
        "fddi",
        "ppp",
        "chdlc",
        "nflog",
        "vlan",
        "mpls",
        "pppoes",
        "ieee8021ah",
        "vntag",
        "cfp",
        "llc",
        "ethertype",
        "pwethheuristic",
        "pwethcw",
        "pweth",
    )
)
_QUEUE_DEPTH = 2048
_DONE = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _find_tshark(tshark_path: str | None) -> str:
    found = shutil.which(tshark_path or "tshark")
    if found is None:
        raise EngineError(
            None, f"tshark not found ({tshark_path or 'not on PATH'}); install Wireshark's tshark or use --engine fast"
        )
    try:
        run = subprocess.run([found, "-v"], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise EngineError(None, f"tshark ({found}) cannot run: {exc}") from None
    if run.returncode != 0 or "TShark" not in run.stdout:
        first = (run.stderr or run.stdout).strip().splitlines()
        raise EngineError(None, f"tshark ({found}) failed: {first[0] if first else f'exit code {run.returncode}'}")
    return found


_mapping_lock = threading.Lock()


def _preload_ek_mapping(tshark: str) -> None:
    """Load pyshark's EK field-type mapping ourselves, once per process.

    pyshark 0.6 reads and writes its cache file with a bare ``open()`` it never closes; under
    ``-W error`` that ResourceWarning surfaces at garbage collection. Loading it here, with the file
    closed properly, makes pyshark skip its own loader (it returns early when already loaded).
    """
    import json

    from pyshark import cache, ek_field_mapping
    from pyshark.tshark import tshark as pyshark_tshark

    with _mapping_lock:
        mapping = ek_field_mapping.MAPPING
        if mapping._protocol_to_mapping:
            return
        version = str(pyshark_tshark.get_tshark_version(tshark))
        cached = cache.get_cache_dir(version).joinpath("ek_field_mapping.json")
        if cached.exists():
            with cached.open() as fh:
                mapping._protocol_to_mapping = json.load(fh)
            return
        mapping._protocol_to_mapping = pyshark_tshark.get_ek_field_mapping(tshark_path=tshark)
        with cached.open("w") as fh:
            json.dump(mapping._protocol_to_mapping, fh)


class TsharkCapture:
    """An open capture decoded by tshark; yields :class:`Packet` tuples once, streaming.

    >>> with TsharkCapture("samples/basic/any-sll2.pcap") as cap:   # doctest: +SKIP
    ...     for pkt in cap:
    ...         print(pkt.no, pkt.src, pkt.flags)
    """

    def __init__(
        self,
        source: Source,
        *,
        verify_checksums: bool = True,
        max_decompressed: int = 64 * 1024**3,
        tshark_path: str | None = None,
        max_expansion: float = MAX_EXPANSION,
    ) -> None:
        self.tshark = _find_tshark(tshark_path)
        self.verify_checksums = verify_checksums
        self.src: CaptureSource = open_capture(source, max_decompressed=max_decompressed, max_expansion=max_expansion)
        self.damage = DamageLog()
        self.info = CaptureInfo(
            path=self.src.path,
            size=self.src.size,
            format=self.src.format,
            compression=self.src.compression,
            damage=self.damage,
            engine="tshark",
        )
        self._tmp: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # The file layer, read by our reader: interfaces (link types), per-frame interface/direction,
        # comments, damage. tshark dissects; the reader only frames records.
        self.records = RecordReader(self.src, self.damage)
        self._frame_meta: dict[int, tuple[int, int]] = {}
        try:
            for no, _ts, _cap, _wire, iface, _data, direction in self.records:
                self._frame_meta[no] = (iface, direction)
        finally:
            self.src.close()
        #: Frames in the file, counted before tshark starts: the total of a progress display.
        self.frames_total = self.records.frames
        if isinstance(source, (str, os.PathLike)) and self.src.compression is None:
            self._path = os.fspath(source)
        else:
            self._path = self._spool(source, max_decompressed, max_expansion)

    def _spool(self, source: Source, max_decompressed: int, max_expansion: float) -> str:
        """Write the (decompressed) capture to a temporary file tshark can read; returns its path."""
        if hasattr(source, "read"):
            try:
                source.seek(0)  # type: ignore[union-attr]
            except (AttributeError, OSError, ValueError):
                raise EngineError(self.info.path, "the tshark engine needs a file path or a seekable stream") from None
        fd, self._tmp = tempfile.mkstemp(prefix="pcapsleuth-", suffix=f".{self.src.format}")
        src = open_capture(source, max_decompressed=max_decompressed, max_expansion=max_expansion)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(src._magic)
                shutil.copyfileobj(src._stream, out, 1 << 20)
        finally:
            src.close()
        return self._tmp

    # -- context manager ----------------------------------------------------------------------
    def __enter__(self) -> TsharkCapture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._tmp)
            self._tmp = None

    # -- iteration ----------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Packet]:
        q: queue.Queue[object] = queue.Queue(maxsize=_QUEUE_DEPTH)
        self._thread = threading.Thread(target=self._produce, args=(q,), name="pcapsleuth-tshark", daemon=True)
        self._thread.start()
        frames = 0
        first: int | None = None
        last: int | None = None
        try:
            while True:
                item = q.get()
                if item is _DONE:
                    break
                if isinstance(item, _Failure):
                    # tshark stops with an error on a cut-short file; the reader has already
                    # recorded that damage with its frame number. Anything else is an engine failure.
                    if (
                        self.damage.count("truncated_record")
                        or self.damage.count("bad_block")
                        or self.damage.count("caplen_insane")
                        or self.damage.count("truncated_file")
                    ):
                        break
                    raise EngineError(self.info.path, f"tshark failed: {_one_line(item.exc)}")
                assert isinstance(item, Packet)
                frames += 1
                ts = item.ts
                if first is None or ts < first:
                    first = ts
                if last is None or ts > last:
                    last = ts
                yield item
        finally:
            self._stop.set()
            self._finish(frames, first, last)

    def _finish(self, frames: int, first: int | None, last: int | None) -> None:
        info, rec = self.info, self.records
        info.frames = frames
        info.first_ts = first
        info.last_ts = last
        info.interfaces = rec.interfaces
        info.comments = rec.comments
        info.section_comments = rec.section_comments
        info.sections = rec.sections
        info.bytes_unread = rec.bytes_unread

    def _produce(self, q: queue.Queue[object]) -> None:
        """Worker thread: run pyshark on a private event loop and queue converted packets."""
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        cap: Any = None
        packets: Any = None

        def put(item: object) -> bool:
            while not self._stop.is_set():
                try:
                    q.put(item, timeout=0.2)
                    return True
                except queue.Full:
                    continue
            return False

        try:
            import pyshark

            _preload_ek_mapping(self.tshark)
            prefs = {
                "tcp.check_checksum": "TRUE" if self.verify_checksums else "FALSE",
                "udp.check_checksum": "TRUE" if self.verify_checksums else "FALSE",
                "ip.check_checksum": "TRUE" if self.verify_checksums else "FALSE",
            }
            cap = pyshark.FileCapture(
                self._path,
                keep_packets=False,
                use_ek=True,
                eventloop=loop,
                tshark_path=self.tshark,
                override_prefs=prefs,
                # Mirror the fast decoder: VXLAN also on 8472 (Linux's pre-IANA default).
                decode_as={"udp.port==8472": "vxlan"},
                # Teredo between client and relay runs on arbitrary ports (the fast decoder's heuristic).
                custom_parameters=["-n", "--enable-heuristic", "teredo_udp"],
            )
            packets = iter(cap)
            for pkt in packets:
                if self._stop.is_set():
                    break
                if not put(self._convert(pkt)):
                    break
            put(_DONE)
        except Exception as exc:  # noqa: BLE001 - handed to the consumer thread, which raises EngineError
            put(_Failure(exc))
        finally:
            if packets is not None:
                packets.close()  # pyshark's generator: stops reading tshark's output
            if cap is not None:
                try:
                    cap.close()
                except Exception:  # noqa: BLE001,S110 - closing a dead tshark must not mask the real error
                    pass
                # pyshark's __del__ would close again through this loop after we closed it, leaving an
                # un-awaited coroutine warning; it is closed already.
                cap.close = lambda: None
            loop.close()

    # -- one frame ----------------------------------------------------------------------------
    def _convert(self, pkt: Any) -> Packet:
        layers: dict[str, list[dict[str, Any]]] = {}
        for layer in pkt.layers:
            fields = layer._fields_dict  # pyshark's EK layer: a dict, or a list of dicts per occurrence
            layers[layer.layer_name] = fields if isinstance(fields, list) else [fields]
        frame: dict[str, Any] = pkt.frame_info._fields_dict
        no = int(frame["frame_frame_number"])
        sec, _, frac = str(frame["frame_frame_time_epoch"]).partition(".")
        ts = int(sec) * 1_000_000_000 + (-1 if sec.startswith("-") else 1) * int((frac + "000000000")[:9])
        caplen = int(frame["frame_frame_cap_len"])
        wirelen = int(frame["frame_frame_len"])
        iface, direction = self._frame_meta.get(no, (0, 0))
        linktype = -1
        if 0 <= iface < len(self.records.interfaces):
            linktype = self.records.interfaces[iface].linktype
        stack = str(frame.get("frame_frame_protocols", "")).split(":")
        return self._fields(no, ts, caplen, wirelen, iface, direction, linktype, stack, layers)

    def _fields(
        self,
        no: int,
        ts: int,
        caplen: int,
        wirelen: int,
        iface: int,
        direction: int,
        linktype: int,
        stack: list[str],
        layers: dict[str, list[dict[str, Any]]],
    ) -> Packet:
        def occ(name: str, k: int) -> dict[str, Any]:
            got = layers.get(name)
            return got[k] if got is not None and k < len(got) else {}

        seen: dict[str, int] = {}
        ip_at: tuple[str, int] | None = None
        tr_at: tuple[str, int] | None = None
        encap: list[str] = []
        vlan: list[int] = []
        mac: str | None = None
        pkttype: int | None = None
        ifindex: int | None = None
        outer_frag = False
        bad_ip_header = zero_ip_header = False
        for name in stack:
            k = seen.get(name, 0)
            seen[name] = k + 1
            if (
                name == "ip"
                and self.verify_checksums
                and str(occ("ip", k).get("ip_ip_checksum_status")) in ("0", "Bad")
            ):
                # A field of 0x0000 is a header left for the NIC (Cksum.ZERO_IP), as the fast engine says.
                zero = str(occ("ip", k).get("ip_ip_checksum")).lower() in ("0x0000", "0", "0x00000000")
                bad_ip_header = bad_ip_header or not zero
                zero_ip_header = not bad_ip_header
            if name in ("icmp", "icmpv6"):
                if ip_at is not None and tr_at is None:
                    tr_at = (name, k)
                break  # anything after is the quoted packet of an ICMP error
            if name in ("ip", "ipv6"):
                if ip_at is not None:
                    prev = occ(*ip_at)
                    outer_frag = outer_frag or _is_fragment(ip_at[0], prev)
                    if ip_at[0] == "ip" and tr_at is None and "gre" not in encap:
                        encap.append("ipip" if name == "ip" else "6in4")
                ip_at, tr_at = (name, k), None
            elif name in ("tcp", "udp") and ip_at is not None and tr_at is None:
                tr_at = (name, k)
            elif name in _ENCAP_NAMES and (not encap or encap[-1] != _ENCAP_NAMES[name]):
                encap.append(_ENCAP_NAMES[name])
            if ip_at is None:
                if name == "eth":
                    mac = occ("eth", k).get("eth_eth_src")
                elif name == "fddi":
                    fsrc = occ("fddi", k).get("fddi_fddi_src")
                    mac = fsrc[0] if isinstance(fsrc, list) else fsrc
                elif name == "ieee8021ah":  # 802.1ah: the customer's source address
                    mac = occ("ieee8021ah", k).get("ieee8021ah_ieee8021ah_csrc", mac)
                elif name == "vlan":
                    vlan.append(int(occ("vlan", k).get("vlan_vlan_id", 0)))
                elif name == "sll":
                    sll = occ("sll", k)
                    pkttype = _int(sll.get("sll_sll_pkttype"))
                    ifindex = _int(sll.get("sll_sll_ifindex"))
                    if sll.get("sll_sll_hatype") == "1" and sll.get("sll_sll_halen") == "6":
                        mac = sll.get("sll_sll_src_eth")
        if pkttype is not None and direction == 0:
            direction = Direction.OUTBOUND if pkttype == 4 else Direction.INBOUND if pkttype <= 3 else 0
        if linktype != 276:
            ifindex = None  # only Linux cooked v2 carries an interface index
        version = 0
        src = dst = None
        ttl = ip_id = proto = None
        df: bool | None = None
        frag = Frag.NONE
        srcb = dstb = b""
        if ip_at is not None:
            ipf = occ(*ip_at)
            if ip_at[0] == "ip":
                version = 4
                src, dst = ipf.get("ip_ip_src"), ipf.get("ip_ip_dst")
                ttl = _int(ipf.get("ip_ip_ttl"))
                ip_id = _int(ipf.get("ip_ip_id"))
                df = bool(ipf.get("ip_ip_flags_df")) if "ip_ip_flags_df" in ipf else None
                proto = _int(ipf.get("ip_ip_proto"))
            else:
                version = 6
                src, dst = ipf.get("ipv6_ipv6_src"), ipf.get("ipv6_ipv6_dst")
                ttl = _int(ipf.get("ipv6_ipv6_hlim"))
                ip_id = _int(ipf.get("ipv6_ipv6_fragment_id"))
                proto = _last_nxt(ipf)
            if _is_fragment(ip_at[0], ipf):
                frag = Frag.REASSEMBLED if tr_at is not None or _reassembled_here(ipf) else Frag.FRAGMENT
            elif outer_frag:
                frag = Frag.REASSEMBLED
            if src is not None and dst is not None:
                srcb, dstb = _addr_bytes(src, version), _addr_bytes(dst, version)
        sport = dport = seq = ack = flags = window = payload_len = None
        options: bytes | None = None
        cksum: int = Cksum.UNCHECKED
        if tr_at is not None:
            t = occ(*tr_at)
            kind = tr_at[0]
            if kind == "tcp":
                proto = 6
                sport, dport = _int(t.get("tcp_tcp_srcport")), _int(t.get("tcp_tcp_dstport"))
                seq, ack = _int(t.get("tcp_tcp_seq_raw")), _int(t.get("tcp_tcp_ack_raw"))
                flags = _int(t.get("tcp_tcp_flags"))
                window = _int(t.get("tcp_tcp_window_size_value"))
                payload_len = _int(t.get("tcp_tcp_len"))
                hdr = _int(t.get("tcp_tcp_hdr_len"))
                if payload_len is not None:
                    options = _hexbytes(t.get("tcp_tcp_options")) if hdr and hdr > 20 else b""
                cksum = self._cksum(
                    t.get("tcp_tcp_checksum_status"),
                    t.get("tcp_tcp_checksum"),
                    srcb,
                    dstb,
                    6,
                    payload_len + (hdr or 0) if payload_len is not None else None,
                )
            elif kind == "udp":
                proto = 17
                sport, dport = _int(t.get("udp_udp_srcport")), _int(t.get("udp_udp_dstport"))
                ulen = _int(t.get("udp_udp_length"))
                payload_len = ulen - 8 if ulen is not None and ulen >= 8 else None
                if "vxlan" not in encap[-1:] and encap[-1:] not in (["gtp"], ["teredo"], ["geneve"]):
                    cksum = self._cksum(
                        t.get("udp_udp_checksum_status"), t.get("udp_udp_checksum"), srcb, dstb, 17, ulen
                    )
            else:  # ICMP: type and code stand in for ports, as in the fast engine (and Zeek)
                pre = kind
                sport, dport = _int(t.get(f"{pre}_{pre}_type")), _int(t.get(f"{pre}_{pre}_code"))
                proto = 1 if kind == "icmp" else 58
                ip_payload = _ip_payload(version, occ(*ip_at) if ip_at is not None else {})
                payload_len = None if ip_payload is None else ip_payload - 8
        elif ip_at is not None and frag != Frag.FRAGMENT:
            # Another protocol (OSPF, ESP, no next header ...): the IP payload, as the fast engine.
            payload_len = _ip_payload(version, occ(*ip_at))
        if bad_ip_header:
            cksum = Cksum.BAD_IP  # the fast engine's verdict: the receiver drops it at the IP layer
        elif zero_ip_header:
            cksum = Cksum.ZERO_IP
        return _new(
            Packet,
            (
                no,
                ts,
                caplen,
                wirelen,
                iface,
                direction,
                linktype,
                mac,
                tuple(vlan),
                "/".join(encap) or None,
                version,
                src,
                dst,
                ttl,
                ip_id,
                df,
                frag,
                proto,
                sport,
                dport,
                seq,
                ack,
                flags,
                window,
                options,
                payload_len,
                cksum,
                pkttype,
                ifindex,
                None,
            ),
        )

    def _cksum(self, status: Any, field: Any, srcb: bytes, dstb: bytes, proto: int, length: int | None) -> int:
        """tshark's checksum status, with the fast engine's OFFLOADED told apart from BAD."""
        if not self.verify_checksums or status is None:
            return Cksum.UNCHECKED
        if str(status) == "1":
            return Cksum.GOOD
        if str(status) != "0":
            return Cksum.UNCHECKED
        value = _int(field)
        if value == 0 or (
            value is not None
            and length is not None
            and srcb
            and value % 0xFFFF == _pseudo(srcb, dstb, proto, length) % 0xFFFF
        ):
            return Cksum.OFFLOADED
        return Cksum.BAD


def _pseudo(srcb: bytes, dstb: bytes, proto: int, length: int) -> int:
    return int.from_bytes(srcb, "big") % 0xFFFF + int.from_bytes(dstb, "big") % 0xFFFF + proto + length


def _addr_bytes(text: str, version: int) -> bytes:
    import socket

    try:
        return socket.inet_pton(socket.AF_INET if version == 4 else socket.AF_INET6, text)
    except OSError:
        return b""


def _ip_payload(version: int, f: dict[str, Any]) -> int | None:
    if version == 4:
        iplen, hlen = _int(f.get("ip_ip_len")), _int(f.get("ip_ip_hdr_len"))
        return None if iplen is None or hlen is None else iplen - hlen
    plen = _int(f.get("ipv6_ipv6_plen"))
    if plen is None:
        return None
    for key, value in f.items():  # extension headers: hop-by-hop, routing, destination options ...
        if key.endswith("_len_oct"):
            plen -= _int(value) or 0
        elif key == "ipv6_ipv6_fragment_id":
            plen -= 8
    return plen


def _is_fragment(kind: str, f: dict[str, Any]) -> bool:
    if kind == "ip":
        return bool(f.get("ip_ip_flags_mf")) or _int(f.get("ip_ip_frag_offset")) not in (None, 0)
    return "ipv6_ipv6_fragment_id" in f


def _reassembled_here(f: dict[str, Any]) -> bool:
    return any(key.endswith("reassembled_length") or key.endswith("reassembled_data") for key in f)


def _last_nxt(f: dict[str, Any]) -> int | None:
    """The next-header value at the end of an IPv6 extension-header chain."""
    nxt = None
    for key, value in f.items():
        if key.endswith("_nxt") and isinstance(value, str):
            nxt = _int(value)
    return nxt


def _int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, list):
        value = value[-1] if value else None
        if value is None:
            return None
    text = str(value)
    try:
        return int(text, 16) if text.startswith("0x") else int(text)
    except ValueError:
        return None


def _hexbytes(value: Any) -> bytes:
    if not isinstance(value, str):
        return b""
    try:
        return bytes.fromhex(value.replace(":", ""))
    except ValueError:
        return b""


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
