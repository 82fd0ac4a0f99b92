"""Progress of a long analysis: a bar in notebooks, one updating line on terminals, else nothing.

Two halves:

* :func:`feed_with_progress` is the analysis loop with a hook: every :data:`REPORT_EVERY` packets it
  calls ``callback(done, total, unit)``. ``unit`` is ``"bytes"`` when the capture's position in its
  file can be read (``done`` bytes of ``total``; for compressed input the compressed bytes), else
  ``"frames"`` (``total`` is known when the engine counted the frames beforehand, else ``None``).
  :func:`pcapsleuth.analysis.analyze_capture` uses it when given ``progress=``; without a callback
  the analysis loop is the plain one.
* :class:`Progress` is such a callback that draws. ``mode="auto"`` picks an updating HTML display
  inside a Jupyter kernel (``IPython.display``, only if IPython is already imported), a ``\\r`` line
  on stderr when stderr is a terminal, and nothing otherwise (logs, CI, pipes). Nothing is drawn
  for analyses shorter than ``delay`` seconds, so small captures print no noise.

No dependencies beyond the standard library (IPython only when running inside it).

>>> with Progress("capture.pcap", mode="terminal", delay=0) as bar:   # doctest: +SKIP
...     result = analyze_capture("capture.pcap", progress=bar)
"""

from __future__ import annotations

import html
import importlib
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from .packet import Packet

__all__ = ["REPORT_EVERY", "Progress", "ProgressCallback", "auto_mode", "feed_with_progress"]

#: ``callback(done, total, unit)``: ``unit`` is ``"bytes"`` or ``"frames"``; ``total`` may be None.
ProgressCallback = Callable[[int, int | None, str], None]

#: Packets between two calls of the callback (a power of two: the test is one AND).
REPORT_EVERY = 8192


def _position(cap: Any) -> tuple[Callable[[], int] | None, int | None]:
    """A function reading how far into its file the capture is, and the file's size; (None, None)
    when the capture does not tell (a pipe, the tshark engine reading its own copy)."""
    src = getattr(cap, "src", None)
    raw = getattr(src, "_raw", None)  # the file as opened, before decompression
    size = getattr(src, "size", None)
    if raw is None or not isinstance(size, int) or size <= 0:
        return None, None
    try:
        raw.tell()
    except (OSError, ValueError, AttributeError):
        return None, None
    return raw.tell, size


def feed_with_progress(cap: Iterable[Packet], feed: Callable[[Packet], object], callback: ProgressCallback) -> int:
    """Feed every packet of ``cap`` to ``feed``, calling ``callback`` every :data:`REPORT_EVERY`
    packets and once at the end; returns the number of packets."""
    tell, size = _position(cap)
    frames_total = getattr(cap, "frames_total", None)

    def report(n: int, final: bool) -> None:
        if tell is not None and size is not None:
            try:
                callback(size if final else min(tell(), size), size, "bytes")
                return
            except (OSError, ValueError):
                pass  # the file went away under us: count frames instead
        callback(n, n if final else frames_total, "frames")

    n = 0
    for pkt in cap:
        feed(pkt)
        n += 1
        if not n & (REPORT_EVERY - 1):
            report(n, False)
    report(n, True)
    return n


def _in_notebook() -> bool:
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:  # noqa: BLE001 - a broken IPython means: not a notebook
        return False
    return shell is not None and hasattr(shell, "kernel")


def auto_mode(progress: bool | None, stream: TextIO | None = None) -> str | None:
    """The display for ``progress=``: ``"notebook"``, ``"terminal"`` or None (nothing).

    ``None`` (auto): a notebook inside a Jupyter kernel, the terminal when stderr is a TTY, else
    nothing. ``True``: the same choice, but the terminal line even when stderr is no TTY.
    ``False``: nothing.
    """
    if progress is False:
        return None
    if _in_notebook():
        return "notebook"
    err = stream if stream is not None else sys.stderr
    try:
        tty = err.isatty()
    except (AttributeError, ValueError):
        tty = False
    if tty or progress is True:
        return "terminal"
    return None


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover - the loop returns


def _duration(seconds: float) -> str:
    """A remaining time as people say it: "8 s", "3 min 5 s", "1 h 02 min"."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class Progress:
    """A progress display for one analysis, usable as ``analyze_capture(..., progress=bar)``.

    ``label`` names what is analyzed (escaped in HTML). ``mode``: ``"notebook"``, ``"terminal"``,
    ``None`` (draw nothing, just count) or ``"auto"`` (see :func:`auto_mode`). ``delay``: seconds
    before anything is drawn; ``interval``: the least time between two redraws. ``display`` is the
    notebook's display function (default: ``IPython.display.display``), replaceable in tests.
    """

    def __init__(self, label: str, *, mode: str | None = "auto", stream: TextIO | None = None, delay: float = 0.5,
                 interval: float = 0.1, display: Callable[..., Any] | None = None) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.mode = auto_mode(None, self.stream) if mode == "auto" else mode
        if self.mode not in (None, "notebook", "terminal"):
            raise ValueError(f"progress mode must be 'notebook', 'terminal', 'auto' or None, not {mode!r}")
        self.delay = delay
        self.interval = interval
        self._display = display
        self._handle: Any = None
        self._start = time.monotonic()
        self._last_draw = -1.0
        self._width = 0
        self.shown = False
        self.done = 0
        self.total: int | None = None
        self.unit = "frames"

    # the callback ------------------------------------------------------------------------------
    def __call__(self, done: int, total: int | None, unit: str) -> None:
        self.done, self.total, self.unit = done, total, unit
        if self.mode is None:
            return
        now = time.monotonic()
        at_end = total is not None and done >= total  # all read: say so at once, whatever the interval
        if now - self._start < self.delay or (self.shown and now - self._last_draw < self.interval and not at_end):
            return
        self._last_draw = now
        self._draw(self.text(), self.fraction())

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        # A failed analysis keeps its line as it stood ("analyzing ... 40%"), ended, so the error
        # that follows is a line of its own; a finished one ends with what was done.
        self.close(final=self.text() if exc_type is not None else None)

    def close(self, final: str | None = None) -> None:
        """End the display: a last line (``final``, default: what was done and how long it took)
        replaces the bar; nothing when the bar was never shown."""
        if not self.shown or self.mode is None:
            return
        text = final if final is not None else self.text(finished=True)
        if self.mode == "terminal":
            self.stream.write("\r" + text.ljust(self._width) + "\n")
            self.stream.flush()
        else:
            self._notebook(text, None)
        self.shown = False

    # what is shown -----------------------------------------------------------------------------
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return max(0.0, min(1.0, self.done / self.total))

    def text(self, *, finished: bool = False) -> str:
        elapsed = time.monotonic() - self._start
        if self.unit == "bytes":
            amount = _size(self.done) + (f" of {_size(self.total)}" if self.total else "")
        else:
            amount = f"{self.done:,} frames" + (f" of {self.total:,}" if self.total and not finished else "")
        frac = self.fraction()
        pct = f"{frac * 100:3.0f}% " if frac is not None and not finished else ""
        verb = "analyzed" if finished else "analyzing"
        left = ""
        if not finished and frac is not None and 0.01 <= frac < 1 and elapsed >= 2:
            left = f", about {_duration(elapsed * (1 - frac) / frac)} left"
        elif not finished and frac == 1:
            left = ", finishing"  # the connections still open are closed and checked after the last frame
        return f"pcapsleuth: {verb} {self.label}: {pct}{amount}, {elapsed:.1f} s{left}"

    def _draw(self, text: str, frac: float | None) -> None:
        self.shown = True
        if self.mode == "terminal":
            bar = ""
            if frac is not None:
                filled = int(frac * 24)
                bar = "[" + "#" * filled + "." * (24 - filled) + "] "
            line = bar + text
            self._width = max(self._width, len(line))
            self.stream.write("\r" + line.ljust(self._width))
            self.stream.flush()
        else:
            self._notebook(text, frac)

    def _notebook(self, text: str, frac: float | None) -> None:
        bar = "" if frac is None else f'<progress value="{frac:.4f}" max="1" style="width:16em"></progress> '
        bundle = {"text/plain": text, "text/html": f"<div>{bar}<code>{html.escape(text)}</code></div>"}
        if self._handle is None:
            show = self._display
            if show is None:  # only reached inside a running kernel
                show = importlib.import_module("IPython.display").display
            self._handle = show(bundle, raw=True, display_id=True)
        else:
            self._handle.update(bundle, raw=True)
