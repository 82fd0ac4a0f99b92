#!/usr/bin/env python3
"""Fuzz the whole pcapsleuth pipeline: bytes -> reader -> decoder -> tracker -> detectors -> JSON,
terminal summary, Markdown, conn.log, and (every ``--deep-every`` inputs) the HTML report.

The contract under test (issue 9): whatever the bytes, the pipeline either raises a
:class:`pcapsleuth.errors.PcapsleuthError` (which the CLI turns into one line and an exit code)
or produces a result whose JSON is valid (no NaN/Infinity) - never any other exception.

Two engines, one target and one mutator (fuzz/mutate.py, structure-aware: records, blocks, IP and
TCP header fields, whole frames reordered), seeded with the small real samples in samples/:

* ``atheris`` (coverage-guided, libFuzzer; ``pip install atheris``): the mutator is offered to
  libFuzzer as a custom mutator next to its own byte-level one, and the pcapsleuth modules are
  instrumented for coverage. libFuzzer options (``-runs=``, ``-max_total_time=``, ``-seed=``,
  ``-timeout=``, ``-rss_limit_mb=``, a corpus directory) pass straight through.
* ``random`` (no dependencies, deterministic): the same mutator with ``random.Random(--seed)``;
  this is what the test suite runs (tests/test_fuzz.py).

Examples (from the repository root; see fuzz/README.md)::

    .venv/bin/python fuzz/fuzz_pipeline.py --engine atheris -max_total_time=900 fuzz/corpus
    .venv/bin/python fuzz/fuzz_pipeline.py --engine random --minutes 15 --seed 7
    .venv/bin/python fuzz/fuzz_pipeline.py --replay tests/fuzz_regressions

A failing input is written to ``--crash-dir`` (default fuzz/crashes/) as ``crash-<sha1>.bin``
(libFuzzer writes ``crash-<sha1>`` in the working directory or ``-artifact_prefix=``).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import sys
import tempfile
import time
import traceback
from collections.abc import Iterable
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from mutate import mutate  # noqa: E402

#: Bound on decompressed input inside the fuzzer (the CLI's default is 64 GiB).
MAX_DECOMPRESSED = 8 * 1024 * 1024
#: Seeds bigger than this are left out (libFuzzer's -max_len and speed).
MAX_SEED = 64 * 1024
#: An input taking longer than this is reported as slow (not a failure by itself).
SLOW_SECONDS = 5.0


def seed_files() -> list[Path]:
    """The inputs the fuzzer mutates: every small real sample (pcap, pcapng, compressed), the
    malformed set and the saved regressions."""
    exts = (".pcap", ".pcapng", ".gz", ".cap")
    roots = (REPO / "samples", REPO / "tests" / "malformed", REPO / "tests" / "fuzz_regressions")
    # The gzip bomb is left out: every mutant of it would spend seconds on 8 MiB of empty records.
    return sorted(p for root in roots if root.is_dir() for p in root.rglob("*")
                  if p.is_file() and p.name.endswith(exts) and p.stat().st_size <= MAX_SEED
                  and "bomb" not in p.name)


def load_seeds() -> list[bytes]:
    return [p.read_bytes() for p in seed_files()]


def run_one(data: bytes, *, deep: bool = False, workdir: str | None = None) -> None:
    """The fuzz target. Raises only for a bug: anything but a PcapsleuthError, or invalid JSON."""
    from pcapsleuth.analysis import analyze_capture
    from pcapsleuth.connlog import write_conn_log
    from pcapsleuth.errors import PcapsleuthError
    from pcapsleuth.markdown import render_markdown

    source: bytes | str = data
    if deep:
        # Through a file, as the CLI reads it: the report reads the file a second time for evidence.
        fd, source = tempfile.mkstemp(suffix=".pcap", dir=workdir)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    try:
        try:
            result = analyze_capture(source, max_decompressed=MAX_DECOMPRESSED)
        except PcapsleuthError:
            return
        text = json.dumps(result.to_json_dict(), allow_nan=False, ensure_ascii=False)
        streamed = io.StringIO()
        result.write_json(streamed)  # what the CLI writes: the same document, streamed
        if json.loads(streamed.getvalue()) != json.loads(text):
            raise AssertionError("write_json and to_json_dict disagree")
        result.summary_text()
        render_markdown(result, "report.html")
        write_conn_log([c.to_dict() for c in result.connections], io.StringIO(),
                       open_ts=result.capture.first_ts, close_ts=result.capture.last_ts)
        if deep:
            from pcapsleuth.report import render_html

            render_html(result, source)
        _streamed(source, deep)
    finally:
        if deep:
            assert isinstance(source, str)
            os.unlink(source)


def _streamed(source: bytes | str, deep: bool) -> None:
    """The same input the way ``pcapsleuth analyze`` reads it: streamed, the report and the
    Markdown drawn from the digest and the spill. Its JSON must be valid; it need not equal the
    in-memory one here (a mangled timestamp far in the future lets the sweep retire everything
    before the packets that follow it, which the in-memory tracker would still add to)."""
    from pcapsleuth.analysis import analyze_capture
    from pcapsleuth.connlog import write_conn_log
    from pcapsleuth.markdown import render_markdown
    from pcapsleuth.report import findings_to_read

    with analyze_capture(source, max_decompressed=MAX_DECOMPRESSED, streaming=True) as result:
        out = io.StringIO()
        result.write_json(out)
        json.loads(out.getvalue())
        result.summary_text()
        view = result.report_view(findings_to_read)
        render_markdown(view, "report.html")
        write_conn_log((json.loads(line) for line in result.sink.connection_lines()), io.StringIO(),
                       open_ts=result.capture.first_ts, close_ts=result.capture.last_ts)
        if deep:
            from pcapsleuth.report import render_html

            assert isinstance(source, str)
            render_html(view, source)


def _save(crash_dir: Path, data: bytes, tb: str) -> Path:
    crash_dir.mkdir(parents=True, exist_ok=True)
    name = "crash-" + hashlib.sha1(data).hexdigest()
    path = crash_dir / f"{name}.bin"
    path.write_bytes(data)
    (crash_dir / f"{name}.txt").write_text(tb)
    return path


class Stats:
    def __init__(self) -> None:
        self.iterations = 0
        self.failures: list[tuple[bytes, str]] = []
        self.slowest = 0.0
        self.slow: list[bytes] = []


def run_random(seeds: list[bytes], *, iterations: int | None = None, seconds: float | None = None, seed: int = 0,
               deep_every: int = 200, crash_dir: Path | None = None, log: Iterable[str] | None = None,
               quiet: bool = True) -> Stats:
    """The deterministic engine: ``iterations`` mutated inputs (or as many as fit in ``seconds``)."""
    rng = random.Random(seed)
    stats = Stats()
    corpus = list(seeds)
    deadline = None if seconds is None else time.monotonic() + seconds
    with tempfile.TemporaryDirectory(prefix="pcapsleuth-fuzz-") as workdir:
        while True:
            if iterations is not None and stats.iterations >= iterations:
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
            base = rng.choice(corpus)
            data = mutate(rng, base, corpus)
            stats.iterations += 1
            deep = deep_every > 0 and stats.iterations % deep_every == 0
            t0 = time.monotonic()
            try:
                run_one(data, deep=deep, workdir=workdir)
            except Exception:  # noqa: BLE001 - this is what the fuzzer looks for
                tb = traceback.format_exc()
                stats.failures.append((data, tb))
                if crash_dir is not None:
                    path = _save(crash_dir, data, tb)
                    if not quiet:
                        print(f"CRASH #{stats.iterations}: {path}\n{tb}", file=sys.stderr, flush=True)
            elapsed = time.monotonic() - t0
            stats.slowest = max(stats.slowest, elapsed)
            if elapsed > SLOW_SECONDS:
                stats.slow.append(data)
                if crash_dir is not None:
                    crash_dir.mkdir(parents=True, exist_ok=True)
                    (crash_dir / f"slow-{hashlib.sha1(data).hexdigest()}.bin").write_bytes(data)
            # Keep some mutants as new seeds so that mutations stack over time (bounded pool).
            if len(data) <= MAX_SEED and rng.random() < 0.05:
                if len(corpus) < len(seeds) + 500:
                    corpus.append(data)
                else:
                    corpus[len(seeds) + rng.randrange(500)] = data
            if not quiet and stats.iterations % 1000 == 0:
                print(f"#{stats.iterations} failures={len(stats.failures)} slowest={stats.slowest:.2f}s",
                      file=sys.stderr, flush=True)
    return stats


def replay(paths: list[Path]) -> int:
    """Run each input (files, or every file in directories) through the deep target; 1 if any fails."""
    files = sorted(f for p in paths for f in ([p] if p.is_file() else p.iterdir()) if f.is_file()
                   and not f.name.endswith((".txt", ".md")))
    bad = 0
    for f in files:
        try:
            run_one(f.read_bytes(), deep=True)
            print(f"ok    {f}")
        except Exception:  # noqa: BLE001
            bad += 1
            print(f"FAIL  {f}\n{traceback.format_exc()}")
    return 1 if bad else 0


def run_atheris(libfuzzer_argv: list[str], deep_every: int) -> None:
    """Coverage-guided: libFuzzer drives, our structure-aware mutator is offered as a custom one."""
    import atheris

    with atheris.instrument_imports(include=["pcapsleuth"]):
        import pcapsleuth.analysis
        import pcapsleuth.connlog
        import pcapsleuth.markdown
        import pcapsleuth.report  # noqa: F401
    seeds = load_seeds()
    counter = [0]
    workdir = tempfile.mkdtemp(prefix="pcapsleuth-fuzz-")

    def test_one_input(data: bytes) -> None:
        counter[0] += 1
        run_one(data, deep=deep_every > 0 and counter[0] % deep_every == 0, workdir=workdir)

    def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
        rng = random.Random(seed)
        if rng.random() < 0.25:
            return bytes(atheris.Mutate(data, max_size))
        try:
            return mutate(rng, data, seeds, max_size)
        except Exception:  # noqa: BLE001 - a mutator bug must not end a long run (tests/test_fuzz.py finds it)
            traceback.print_exc()
            return bytes(atheris.Mutate(data, max_size))

    # libFuzzer's first directory is the corpus it writes to (fuzz/corpus/ unless one is named);
    # the samples go in as a second, read-only seed directory.
    dirs = [a for a in libfuzzer_argv[1:] if not a.startswith("-")]
    if not dirs:
        libfuzzer_argv.append(str(HERE / "corpus"))
        dirs = [str(HERE / "corpus")]
    for d in dirs:
        Path(d).mkdir(parents=True, exist_ok=True)
    seed_dir = Path(workdir) / "seeds"
    seed_dir.mkdir()
    for p in seed_files():
        (seed_dir / p.name).write_bytes(p.read_bytes())
    libfuzzer_argv.append(str(seed_dir))
    if not any(a.startswith("-max_len=") for a in libfuzzer_argv):
        libfuzzer_argv.append(f"-max_len={MAX_SEED}")
    atheris.Setup(libfuzzer_argv, test_one_input, custom_mutator=custom_mutator)
    atheris.Fuzz()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0], allow_abbrev=False,
                                epilog="libFuzzer options (-runs=N, -max_total_time=S, -seed=N ...) and a "
                                       "corpus directory are passed to atheris.")
    p.add_argument("--engine", choices=("atheris", "random"), default=None,
                   help="default: atheris when installed, else random")
    p.add_argument("--iterations", type=int, help="random engine: number of inputs")
    p.add_argument("--minutes", type=float, help="random engine: run this long")
    p.add_argument("--seed", type=int, default=0, help="random engine: seed")
    p.add_argument("--deep-every", type=int, default=200, help="render the HTML report for every Nth input")
    p.add_argument("--crash-dir", default=str(HERE / "crashes"))
    p.add_argument("--replay", nargs="+", metavar="PATH", help="run these inputs once and report")
    args, rest = p.parse_known_args(argv[1:])
    rest = [argv[0], *rest]
    if args.replay:
        return replay([Path(p) for p in args.replay])
    engine = args.engine
    if engine is None:
        try:
            import atheris  # noqa: F401

            engine = "atheris"
        except ImportError:
            engine = "random"
    if engine == "atheris":
        run_atheris(rest, args.deep_every)
        return 0
    seconds = None if args.minutes is None else args.minutes * 60
    iterations = args.iterations if args.iterations is not None or seconds is not None else 10_000
    t0 = time.monotonic()
    stats = run_random(load_seeds(), iterations=iterations, seconds=seconds, seed=args.seed,
                       deep_every=args.deep_every, crash_dir=Path(args.crash_dir), quiet=False)
    elapsed = time.monotonic() - t0
    print(f"random engine, seed {args.seed}: {stats.iterations} inputs in {elapsed:.0f} s "
          f"({stats.iterations / max(elapsed, 1e-9):.0f}/s), {len(stats.failures)} failures, "
          f"slowest input {stats.slowest:.2f} s")
    return 1 if stats.failures else 0


if __name__ == "__main__":
    sys.exit(main())
