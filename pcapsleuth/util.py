"""Small shared helpers: time formatting and the like."""

from __future__ import annotations

import contextlib
import datetime as _dt
import gc
import re
import struct
from collections.abc import Iterable, Iterator
from typing import Any

from .errors import ESCAPED_RANGES, char_class

__all__ = ["capped", "iso_ts", "json_safe", "no_cyclic_gc", "pack_ints", "straight_line", "ts_seconds", "unpack_ints"]


@contextlib.contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector for a block (reference counting still frees everything).

    An analysis holds millions of long-lived objects and makes no reference cycles; each automatic
    full collection would rescan all of them (seconds on a big capture) to find nothing.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


_ISO_SECONDS: dict[int, str] = {}


def iso_ts(ts_ns: int | None) -> str | None:
    """Integer nanoseconds to an ISO 8601 UTC string with nanosecond digits (``...T12:00:00.000000001Z``)."""
    if ts_ns is None:
        return None
    # Beyond what datetime64[ns] holds (1677..2262) a timestamp is damage: clamp, as the reader does.
    ts_ns = min(max(ts_ns, -(2**63) + 1), 2**63 - 1)
    sec, frac = divmod(ts_ns, 1_000_000_000)
    base = _ISO_SECONDS.get(sec)
    if base is None:
        # A capture's timestamps fall in few distinct seconds: format each second once.
        if len(_ISO_SECONDS) >= 65536:
            _ISO_SECONDS.clear()
        base = _ISO_SECONDS[sec] = _dt.datetime.fromtimestamp(sec, tz=_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{frac:09d}Z"


def ts_seconds(ts_ns: int | None) -> float | None:
    """Nanoseconds to float seconds (for JSON fields such as durations)."""
    return None if ts_ns is None else ts_ns / 1e9


def _json_escape(c: int) -> str:
    if 0xDC80 <= c <= 0xDCFF:  # a byte of a non-UTF-8 file name: "\\xff" as text, as on the terminal
        return f"\\\\x{c - 0xDC00:02x}"
    if 0xD800 <= c <= 0xDFFF:  # any other lone surrogate: no JSON parser need accept "\\udcxx"
        return f"\\\\u{c:04x}"
    if c > 0xFFFF:
        hi, lo = divmod(c - 0x10000, 0x400)
        return f"\\u{0xD800 + hi:04x}\\u{0xDC00 + lo:04x}"
    return f"\\u{c:04x}"


#: Characters JSON may carry raw but a terminal would act on, or that disguise text: the ones
#: the terminal escapes (``errors.ESCAPED_RANGES``: DEL and the C1 controls (CSI is U+009B), the
#: invisible format characters (bidi marks, embeddings, overrides and isolates; zero-width
#: characters, the BOM ...), line/paragraph separators) as ``\\uXXXX``, which parses back to the
#: same string. The C0 controls are left to ``json.dumps``, which escapes them itself. Lone
#: surrogates are no JSON text at all: a file name's non-UTF-8 byte 0xff (U+DCFF) is written as
#: the four characters ``\\xff``, as the terminal, the Markdown and the report show it.
_JSON_ESCAPES = {c: _json_escape(c) for a, b in ESCAPED_RANGES for c in range(max(a, 0x7F), b + 1) if b >= 0x7F}


_JSON_ESCAPE_ANY = re.compile(char_class(tuple((max(a, 0x7F), b) for a, b in ESCAPED_RANGES if b >= 0x7F))).search


def json_safe(text: str) -> str:
    """Encoded JSON with the characters above written as ``\\uXXXX`` escapes: the same document
    once parsed (a non-UTF-8 byte of a file name, which JSON cannot hold, becomes ``\\xff``), valid
    UTF-8, and nothing a terminal would act on when it is printed (``--json -``).

    Nearly every text has none of them: one regex scan (a few ns a character, where
    ``str.translate`` with a dict costs ~50 ns a character) returns it as it is. (Not
    ``str.isascii``: DEL is ASCII.)
    """
    if _JSON_ESCAPE_ANY(text) is None:
        return text
    return text.translate(_JSON_ESCAPES)


def capped(text: str, limit: int, where: str = "in the JSON") -> str:
    """``text``, or its first ``limit`` characters and ``… (N more bytes, in the JSON)`` (N: the
    UTF-8 bytes left out): a string from a capture (a 60 KB comment, a 4 MB interface name) shown
    where a long one would flood the screen or stall a viewer."""
    if len(text) <= limit:
        return text
    rest = text[limit:]
    try:
        n = len(rest.encode("utf-8", "surrogateescape"))  # a file name's non-UTF-8 bytes: one each
    except UnicodeEncodeError:
        n = len(rest.encode("utf-8", "surrogatepass"))
    return f"{text[:limit]}… ({n:,} more bytes, {where})"


def pack_ints(layout: struct.Struct, values: tuple[int, ...]) -> bytes | tuple[int, ...]:
    """``values`` packed by ``layout`` (a few bytes each, where a Python int costs 28 to 36), or
    kept as they are when one does not fit: a timestamp beyond 64 bits, from a mangled capture.
    For what is kept by the ten thousand; :func:`unpack_ints` reads either back."""
    try:
        return layout.pack(*values)
    except struct.error:
        return values


def unpack_ints(layout: struct.Struct, kept: bytes | tuple[int, ...]) -> tuple[int, ...]:
    return layout.unpack(kept) if type(kept) is bytes else kept  # type: ignore[return-value]


def straight_line(name: str, params: str, body: Iterable[str]) -> Any:
    """A function of plain statements, one per attribute: setting or deleting ~50 slots this way
    costs a microsecond, a loop of ``setattr`` calls four (as ``dataclasses`` builds ``__init__``).
    For the objects that are packed and unpacked by the thousand (tracker, tcpanalysis)."""
    namespace: dict[str, Any] = {}
    exec(f"def {name}({params}):\n" + "".join(f"    {line}\n" for line in body), namespace)  # noqa: S102
    return namespace[name]
