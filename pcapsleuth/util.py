"""Small shared helpers: time formatting and the like."""

from __future__ import annotations

import datetime as _dt

__all__ = ["iso_ts", "ts_seconds"]


_ISO_SECONDS: dict[int, str] = {}


def iso_ts(ts_ns: int | None) -> str | None:
    """Integer nanoseconds to an ISO 8601 UTC string with nanosecond digits (``...T12:00:00.000000001Z``)."""
    if ts_ns is None:
        return None
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
