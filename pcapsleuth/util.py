"""Small shared helpers: time formatting and the like."""

from __future__ import annotations

import contextlib
import datetime as _dt
import gc
import re
import struct
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["iso_ts", "json_safe", "no_cyclic_gc", "pack_ints", "straight_line", "ts_seconds", "unpack_ints"]


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


#: Characters JSON may carry raw but a terminal would act on: DEL and the C1 controls (CSI is
#: U+009B), line/paragraph separators, and the bidi embeddings, overrides and isolates.
_JSON_ESCAPES = {c: f"\\u{c:04x}" for c in [*range(0x7F, 0xA0), 0x061C, 0x200E, 0x200F, 0x2028, 0x2029,
                                            *range(0x202A, 0x202F), *range(0x2066, 0x206A)]}


_JSON_ESCAPE_ANY = re.compile("[" + "".join(re.escape(chr(c)) for c in _JSON_ESCAPES) + "]").search


def json_safe(text: str) -> str:
    """Encoded JSON with the characters above written as ``\\uXXXX`` escapes: the same document
    once parsed, and nothing a terminal would act on when it is printed (``--json -``).

    Nearly every text has none of them: one regex scan (a few ns a character, where
    ``str.translate`` with a dict costs ~50 ns a character) returns it as it is. (Not
    ``str.isascii``: DEL is ASCII.)
    """
    if _JSON_ESCAPE_ANY(text) is None:
        return text
    return text.translate(_JSON_ESCAPES)


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
