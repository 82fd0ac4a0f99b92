"""Zeek-compatible ``conn.log`` (ASCII/TSV writer format) from the connection table.

The header and column order are those Zeek writes (checked against the corpus baselines, Zeek at
commit a13de64): Zeek's base ``Conn::Info`` columns, ``ip_proto`` last among them, then
``community_id`` as ``policy/protocols/conn/community-id-logging`` appends it.

Values follow Zeek's ``Conn::set_conn`` rules where they matter to readers of the log:

* ``duration``, ``orig_bytes`` and ``resp_bytes`` are only set when the duration is positive (a
  one-packet connection logs ``-`` for all three, as Zeek does);
* an empty history is unset (``-``), not ``(empty)``;
* anything the connection dict does not carry (``service``, ``local_orig``, ``tunnel_parents`` ...)
  is unset.

Output is deterministic: rows in the order given (ours: order of first frame; Zeek writes at
connection removal), ``#open``/``#close`` from the first/last packet time of the connections (or
the ``open_ts``/``close_ts`` given), formatted in UTC, never the wall clock.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

__all__ = ["CONN_FIELDS", "CONN_TYPES", "write_conn_log", "conn_log_row"]

# (Zeek column, Zeek type)
_COLUMNS: tuple[tuple[str, str], ...] = (
    ("ts", "time"),
    ("uid", "string"),
    ("id.orig_h", "addr"),
    ("id.orig_p", "port"),
    ("id.resp_h", "addr"),
    ("id.resp_p", "port"),
    ("proto", "enum"),
    ("service", "string"),
    ("duration", "interval"),
    ("orig_bytes", "count"),
    ("resp_bytes", "count"),
    ("conn_state", "string"),
    ("local_orig", "bool"),
    ("local_resp", "bool"),
    ("missed_bytes", "count"),
    ("history", "string"),
    ("orig_pkts", "count"),
    ("orig_ip_bytes", "count"),
    ("resp_pkts", "count"),
    ("resp_ip_bytes", "count"),
    ("tunnel_parents", "set[string]"),
    ("ip_proto", "count"),
    ("community_id", "string"),
)
CONN_FIELDS: tuple[str, ...] = tuple(name for name, _ in _COLUMNS)
CONN_TYPES: tuple[str, ...] = tuple(ztype for _, ztype in _COLUMNS)

SEPARATOR = "\t"
SET_SEPARATOR = ","
EMPTY_FIELD = "(empty)"
UNSET_FIELD = "-"

# Connection dict key for each column whose name differs (``id.orig_h`` is ``orig_h``).
_DICT_KEY = {"id.orig_h": "orig_h", "id.orig_p": "orig_p", "id.resp_h": "resp_h", "id.resp_p": "resp_p"}

_PROTO_NUMBERS = {"tcp": 6, "udp": 17}

_ISO = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?Z$")


def _ns(value: Any) -> int | None:
    """A timestamp as integer nanoseconds: ISO 8601 UTC text (``iso_ts``), int ns, or float s."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError(f"not a timestamp: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return round(value * 1e9)
    m = _ISO.match(str(value))
    if not m:
        raise ValueError(f"not an ISO 8601 UTC timestamp: {value!r}")
    y, mo, d, h, mi, s, frac = m.groups()
    base = _dt.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), tzinfo=_dt.timezone.utc)
    return int(base.timestamp()) * 1_000_000_000 + int((frac or "0").ljust(9, "0"))


def _time(ns: int) -> str:
    """Zeek's ``time`` format: epoch seconds, 6 decimals (rounded to the microsecond)."""
    us = (ns + 500) // 1000
    return f"{us // 1_000_000}.{us % 1_000_000:06d}"


def _log_stamp(ns: int) -> str:
    """``#open``/``#close`` format: ``%Y-%m-%d-%H-%M-%S`` (UTC here, for determinism)."""
    return _dt.datetime.fromtimestamp(ns // 1_000_000_000, tz=_dt.timezone.utc).strftime("%Y-%m-%d-%H-%M-%S")


def _escape(text: str, *, in_set: bool = False) -> str:
    """Zeek's ASCII escaping: separators and non-printables as ``\\xHH``; a value that reads as
    the unset/empty marker gets its first character escaped."""
    out = []
    for ch in text:
        if ch == SEPARATOR or ch == "\\" or not ch.isprintable() or (in_set and ch == SET_SEPARATOR):
            out.append("".join(f"\\x{b:02x}" for b in ch.encode("utf-8")))
        else:
            out.append(ch)
    s = "".join(out)
    if s in (UNSET_FIELD, EMPTY_FIELD):
        s = f"\\x{ord(s[0]):02x}" + s[1:]
    return s


def _ip_proto(d: dict[str, Any]) -> int | None:
    if d.get("ip_proto") is not None:
        return int(d["ip_proto"])
    proto = d.get("proto")
    if proto == "icmp":
        v6 = d.get("ip_version") == 6 or ":" in str(d.get("orig_h") or "")
        return 58 if v6 else 1
    return _PROTO_NUMBERS.get(str(proto))


def conn_log_row(conn: Any) -> list[str]:
    """One connection (object with ``to_dict()`` or a dict) as conn.log column texts."""
    d: dict[str, Any] = conn.to_dict() if hasattr(conn, "to_dict") else dict(conn)
    ts = d.get("ts") if d.get("ts") is not None else d.get("first_ts")
    duration: Any = d.get("duration")
    positive = duration is not None and float(duration) > 0
    values: dict[str, Any] = {
        "ts": None if ts is None else _time(_ns(ts) or 0),
        "duration": f"{float(duration):.6f}" if positive else None,
        "orig_bytes": d.get("orig_bytes") if positive else None,
        "resp_bytes": d.get("resp_bytes") if positive else None,
        "history": d.get("history") or None,
        "ip_proto": _ip_proto(d),
    }
    row = []
    for name, ztype in _COLUMNS:
        value = values[name] if name in values else d.get(_DICT_KEY.get(name, name))
        if value is None:
            row.append(UNSET_FIELD)
        elif ztype == "bool":
            row.append("T" if value else "F")
        elif ztype.startswith("set["):
            items = sorted(str(v) for v in value)
            row.append(SET_SEPARATOR.join(_escape(v, in_set=True) for v in items) if items else EMPTY_FIELD)
        elif ztype in ("count", "port"):
            row.append(str(int(value)))
        elif ztype in ("time", "interval"):
            row.append(str(value))  # already formatted above
        else:
            text = str(value)
            row.append(_escape(text) if text else EMPTY_FIELD)
    return row


def write_conn_log(connections: Iterable[Any], out: TextIO, *, path: str | None = None,
                   open_ts: int | None = None, close_ts: int | None = None) -> int:
    """Write a conn.log; returns the number of rows.

    ``path`` is the ``#path`` value (default ``conn``). ``open_ts``/``close_ts`` (integer ns, e.g.
    the capture's first/last packet) override the ``#open``/``#close`` times, which otherwise are
    the earliest ``first_ts`` and latest ``last_ts`` of the connections (epoch 0 if there are none).
    """
    first: int | None = None
    last: int | None = None

    def rows() -> Iterator[list[str]]:
        nonlocal first, last
        for conn in connections:
            d: dict[str, Any] = conn.to_dict() if hasattr(conn, "to_dict") else dict(conn)
            yield conn_log_row(d)
            f = _ns(d.get("ts") if d.get("ts") is not None else d.get("first_ts"))
            lt = _ns(d.get("last_ts"))
            if lt is None and f is not None and d.get("duration") is not None:
                lt = f + round(float(d["duration"]) * 1e9)
            if f is not None:
                first = f if first is None else min(first, f)
            if lt is not None:
                last = lt if last is None else max(last, lt)

    # With both stamps given, rows go out as they come (a million connections need not be held);
    # otherwise #open needs the earliest first_ts before the first row.
    body: Iterable[list[str]] = rows() if open_ts is not None and close_ts is not None else list(rows())
    opened = open_ts if open_ts is not None else (first if first is not None else 0)

    out.write("#separator " + "".join(f"\\x{ord(c):02x}" for c in SEPARATOR) + "\n")
    out.write(f"#set_separator{SEPARATOR}{SET_SEPARATOR}\n")
    out.write(f"#empty_field{SEPARATOR}{EMPTY_FIELD}\n")
    out.write(f"#unset_field{SEPARATOR}{UNSET_FIELD}\n")
    out.write(f"#path{SEPARATOR}{path or 'conn'}\n")
    out.write(f"#open{SEPARATOR}{_log_stamp(opened)}\n")
    out.write("#fields" + SEPARATOR + SEPARATOR.join(CONN_FIELDS) + "\n")
    out.write("#types" + SEPARATOR + SEPARATOR.join(CONN_TYPES) + "\n")
    n = 0
    for row in body:
        out.write(SEPARATOR.join(row) + "\n")
        n += 1
    closed = close_ts if close_ts is not None else (last if last is not None else opened)
    out.write(f"#close{SEPARATOR}{_log_stamp(closed)}\n")
    return n
