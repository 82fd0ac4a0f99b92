"""TCP sequence-number arithmetic, modulo 2^32 (RFC 793 section 3.3; Suricata's SEQ_LT/SEQ_GT).

Every comparison of raw sequence or acknowledgment numbers in pcapsleuth goes through here.
"""

from __future__ import annotations

__all__ = ["seq_delta", "seq_lt", "seq_le", "seq_gt", "seq_ge", "seq_add", "seq_between"]

_MASK = 0xFFFFFFFF


def seq_delta(a: int, b: int) -> int:
    """``a - b`` as a signed 32-bit value: positive when ``a`` is after ``b`` in sequence space."""
    d = (a - b) & _MASK
    return d - 0x100000000 if d & 0x80000000 else d


def seq_lt(a: int, b: int) -> bool:
    return bool((a - b) & 0x80000000)  # seq_delta(a, b) < 0, without building the signed value


def seq_le(a: int, b: int) -> bool:
    return seq_delta(a, b) <= 0


def seq_gt(a: int, b: int) -> bool:
    d = (a - b) & _MASK  # seq_delta(a, b) > 0: non-zero with the sign bit clear
    return d != 0 and not d & 0x80000000


def seq_ge(a: int, b: int) -> bool:
    return seq_delta(a, b) >= 0


def seq_add(a: int, n: int) -> int:
    return (a + n) & _MASK


def seq_between(x: int, low: int, high: int) -> bool:
    """``low <= x <= high`` in sequence space (Zeek's seq_between)."""
    return seq_delta(x, low) >= 0 and seq_delta(high, x) >= 0
