"""Type stub of ``pcapsleuth._core``, the Rust extension (crates/py): private, imported only by
pcapsleuth's own modules. Errors are the classes of :mod:`pcapsleuth.errors`; a bug in the Rust
core (a panic) is :class:`InternalError`, never an abort."""

from os import PathLike
from typing import Final, TypedDict

DEFAULT_MAX_DECOMPRESSED: Final[int]
MAX_EXPANSION: Final[float]
MAX_CAPLEN: Final[int]

#: (number, ts_ns, link_type, interface, caplen, orig_len, direction, data); link_type and
#: interface are -1 for a frame naming an interface its section never described.
FrameTuple = tuple[int, int, int, int, int, int, int, bytes]

class InternalError(RuntimeError):
    """A panic in the Rust core, caught at the binding."""

class InterfaceDict(TypedDict):
    id: int
    linktype: int
    link_type: str
    snaplen: int
    tsresol: tuple[str, int]  # ("decimal", n): ticks of 10^-n s; ("binary", n): of 2^-n s
    tsoffset_s: int
    name: str | None
    description: str | None
    section: int
    fcslen: int | None
    frames: int

class DamageDict(TypedDict, total=False):
    kind: str
    count: int
    frames: list[int]
    detail: str

class InfoDict(TypedDict):
    path: str
    size: int | None
    format: str
    compression: str | None
    frames: int
    first_ts: int | None
    last_ts: int | None
    interfaces: list[InterfaceDict]
    damage: list[DamageDict]
    comments: dict[int, list[str]]
    section_comments: list[str]
    comments_left_out: int
    sections: int
    bytes_unread: int
    shb_info: dict[str, str]

class CaptureReader:
    def read_batch(self, max_frames: int = 4096) -> list[FrameTuple]: ...
    def read_columns(self, max_frames: int = 65536) -> dict[str, bytes]: ...
    def info(self) -> InfoDict: ...
    def close(self) -> None: ...

def open_capture(source: str | bytes | PathLike[str], max_decompressed: int = ...,
                 max_expansion: float = ...) -> CaptureReader: ...
def _panic_for_test() -> None: ...

class DecodedCapture(TypedDict):
    """What :func:`decode_capture` returns.

    ``columns`` maps a name to the bytes of a little-endian array, one value per frame unless
    said otherwise (``memoryview(b).cast(fmt)`` or ``numpy.frombuffer`` reads it without a copy):
    ``no`` Q, ``ts`` q, ``caplen`` I, ``wirelen`` I, ``iface`` i, ``direction`` B, ``linktype`` i,
    ``src_mac`` 6 bytes a frame, ``encap`` i and ``note`` i (codes into the ``encap`` and ``note``
    lists; -1: none), ``ip_version`` B, ``src`` and ``dst`` 16 bytes a frame (an IPv4 address in
    the first 4), ``ttl`` B, ``ip_id`` I, ``df`` B, ``frag`` B (packet.Frag), ``proto`` B,
    ``sport`` H, ``dport`` H, ``seq`` I, ``ack`` I, ``flags`` H, ``window`` H, ``payload_len`` q,
    ``cksum`` B (packet.Cksum), ``pkttype`` H, ``ifindex`` I, ``left_to_dpkt`` B (1: a link type
    the core leaves to dpkt; decode the frame in Python). A nullable column ``x`` has ``x_valid``
    (B, 1 where present): ``src_mac``, ``ttl``, ``ip_id``, ``df``, ``proto``, ``sport``, ``dport``,
    ``seq``, ``ack``, ``flags``, ``window``, ``options``, ``payload_len``, ``pkttype``,
    ``ifindex``. Ragged columns: ``vlan`` (H) with ``vlan_offsets`` (I, n + 1), ``options``
    (bytes) with ``options_offsets`` (I, n + 1).
    """

    n: int
    columns: dict[str, bytes]
    encap: list[str]
    note: list[str]
    info: InfoDict  # the decoder's damage merged with the reader's
    non_ip: int
    ip_fragments: int
    error: Exception | None  # a pcapsleuth.errors exception met part way (not raised)

def decode_capture(source: str | bytes | PathLike[str], verify_checksums: bool = True,
                   trust_partial_checksums: bool = False, max_decompressed: int = ...,
                   max_expansion: float = ...) -> DecodedCapture: ...
