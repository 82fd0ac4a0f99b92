"""TCP option parsing (RFC 9293 section 3.2, RFC 7323, RFC 2018)."""

from __future__ import annotations

import struct
from typing import Any

__all__ = ["parse_options", "TcpOptions"]

TcpOptions = dict[str, Any]

# The options of nearly every SYN and SYN-ACK from Linux, in its order: MSS, SACK permitted,
# timestamps, NOP, window scale (20 bytes). Read with one unpack; the general loop below gives the
# same dict for them, keys in the same order.
_LINUX_SYN = struct.Struct("!HHHHIIHBB").unpack


def parse_options(raw: bytes | None) -> TcpOptions:
    """Parse raw TCP options into ``{mss, wscale, sack_ok, sack, ts_val, ts_ecr, tfo, malformed}``.

    Keys are present only for options that occur. Parsing stops at EOL or at a malformed option
    (length 0/1, or running past the header), which is reported as ``malformed: True``, the same
    place Zeek's and Wireshark's parsers stop.
    """
    out: TcpOptions = {}
    if not raw:
        return out
    if len(raw) == 20:
        mss_kind, mss, sack_kind, ts_kind, ts_val, ts_ecr, nop_ws, ws_len, ws = _LINUX_SYN(raw)
        if mss_kind == 0x0204 and sack_kind == 0x0402 and ts_kind == 0x080A and nop_ws == 0x0103 and ws_len == 3:
            return {"mss": mss, "sack_ok": True, "ts_val": ts_val, "ts_ecr": ts_ecr, "wscale": ws}
    i, n = 0, len(raw)
    while i < n:
        kind = raw[i]
        if kind == 0:  # EOL
            break
        if kind == 1:  # NOP
            i += 1
            continue
        if i + 1 >= n:
            out["malformed"] = True
            break
        length = raw[i + 1]
        if length < 2 or i + length > n:
            out["malformed"] = True
            break
        body = raw[i + 2:i + length]
        if kind == 2 and length == 4:
            out["mss"] = struct.unpack("!H", body)[0]
        elif kind == 3 and length == 3:
            out["wscale"] = body[0]
        elif kind == 4 and length == 2:
            out["sack_ok"] = True
        elif kind == 5 and length >= 10 and (length - 2) % 8 == 0:
            out["sack"] = [struct.unpack_from("!II", body, j) for j in range(0, length - 2, 8)]
        elif kind == 8 and length == 10:
            out["ts_val"], out["ts_ecr"] = struct.unpack("!II", body)
        elif kind == 34:
            out["tfo"] = body.hex()
        else:
            out.setdefault("other", []).append(kind)
        i += length
    return out
