#!/usr/bin/env python3
"""Fuzz the whole pcapsleuth pipeline: bytes -> reader -> decoder -> tracker -> detectors -> JSON,
terminal summary, Markdown, conn.log, and (every ``--deep-every`` inputs) the HTML report.

The contract under test (issue 9): whatever the bytes, the pipeline either raises a
:class:`pcapsleuth.errors.PcapsleuthError` (which the CLI turns into one line and an exit code)
or produces a result whose JSON is valid (no NaN/Infinity) - never any other exception.

Every ``--cli-every`` inputs (issue 19) the input also goes through the command line, in-process
(``pcapsleuth.cli.main``), under a mutated file name (random bytes: not UTF-8, control
characters, ANSI sequences, bidi overrides and marks) and with mutated output targets for
``--json``, ``--html`` and ``--markdown`` (a new or an existing file, a symlink, a dangling one,
a FIFO, copies of ``/dev/null`` and ``/dev/full`` made by mknod, a missing directory, ``-``): the exit code is
one the README documents and never 7, stderr holds no traceback and nothing raw from the name,
stdout is valid UTF-8, and no device, FIFO or link is replaced, nor any temporary left behind.

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
import re
import select
import shutil
import stat
import sys
import tempfile
import threading
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
#: The second capture of the command line's several-capture runs (a clean, small one).
SECOND_CAPTURE = REPO / "samples" / "incidents" / "clean.pcap"


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


# -- the command line, with hostile file names and odd output targets (issue 19) ---------------------
#: Exit codes the README documents for ``analyze`` and ``conn`` (7, an internal error, is a bug;
#: 130 and 143 need a signal).
CLI_CODES = {0, 1, 2, 3, 4, 5, 6}
#: What may not reach a terminal raw (the progress line's own "\r" and the line ends aside).
RAW = re.compile("[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff"
                 "\ud800-\udfff]")
_NAME_PIECES = [b"\x1b[2J", b"\x1b]0;pwned\x07", b"\x1b[31m", b"\r", b"\n", b"\t", b"\x7f",
                "\u202e".encode(), "\u2066".encode(), "\u200e".encode(), "\u200f".encode(), "\u061c".encode(),
                "\u2028".encode(), "\u2029".encode(), "\ufeff".encode(), "\u200b".encode(), "\xc2\x9b".encode(),
                b"\xff", b"\xfe", b"\x80", b"\xc3", b"\xed\xa0\x80", b"<script>", b"{{ 7*7 }}", b"`", b"|", b"*",
                b" ", b"-", b".", "é".encode(), "中".encode()]


def random_name(rng: random.Random, suffix: bytes = b"") -> bytes:
    """A file name of random bytes: not UTF-8, control characters, ANSI sequences, bidi; never
    ``/`` or NUL, never hidden (``.``) so that a writer's leftover temporary stands out."""
    parts = []
    for _ in range(rng.randrange(1, 8)):
        if rng.random() < 0.5:
            parts.append(rng.choice(_NAME_PIECES))
        else:
            parts.append(bytes(rng.choice([c for c in range(1, 256) if c not in (0x2F,)])
                               for _ in range(rng.randrange(1, 6))))
    name = b"n" + b"".join(parts).replace(b"/", b"_").replace(b"\0", b"_")
    return name[:200] + suffix


class _FifoReader:
    """Drains a FIFO while the CLI writes into it (opened first, so that the writer never blocks)."""

    def __init__(self, path: bytes) -> None:
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self.data = bytearray()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        while True:
            stopping = self.stop.is_set()
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except BlockingIOError:
                    chunk = b""
                self.data += chunk
                if chunk:
                    continue
            if stopping:
                return

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        os.close(self.fd)


def _target(rng: random.Random, d: bytes, kind: str, name: bytes, fifos: list[_FifoReader],
            checks: list[tuple[bytes, str, int]]) -> str:
    """Make an output target of ``kind`` in directory ``d``; returns the path for the option."""
    path = os.path.join(d, name)
    if kind == "existing":
        with open(path, "wb") as f:
            f.write(b"old\n")
    elif kind in ("symlink", "dangling"):
        real = os.path.join(d, b"real-" + name)
        if kind == "symlink":
            with open(real, "wb") as f:
                f.write(b"old\n")
        os.symlink(os.path.basename(real), path)
        checks.append((path, "link", 0))
    elif kind == "fifo":
        os.mkfifo(path)
        fifos.append(_FifoReader(path))
        checks.append((path, "fifo", 0))
    elif kind in ("device", "full"):
        # Copies of /dev/null and /dev/full made by mknod: a writer that regresses replaces these,
        # not the machine's own (as root the old one did). Without root, the machine's own,
        # which an ordinary user cannot replace.
        rdev = os.makedev(1, 3) if kind == "device" else os.makedev(1, 7)
        try:
            os.mknod(path, 0o666 | stat.S_IFCHR, rdev)
        except PermissionError:
            path = b"/dev/null" if kind == "device" else b"/dev/full"
        checks.append((path, "device", rdev))
    elif kind == "missing":
        path = os.path.join(d, b"missing", name)
    elif kind == "stdout":
        return "-"
    return os.fsdecode(path)


def run_cli(data: bytes, scenario: int, workdir: str, *, force: dict[str, str] | None = None) -> int:
    """The command line on ``data`` under the scenario ``random.Random(scenario)`` draws; raises
    AssertionError (naming the scenario and the command) for a broken contract. Returns the exit
    code. ``force``: output options and the kind of target each must get (``{"--json": "fifo"}``;
    an ``analyze`` run then)."""
    import pcapsleuth.cli

    rng = random.Random(scenario)
    d = tempfile.mkdtemp(prefix="cli-", dir=workdir).encode()
    cap = os.path.join(d, random_name(rng, rng.choice([b".pcap", b".pcapng", b".gz", b""])))
    with open(cap, "wb") as f:
        f.write(data)
    argv: list[str] = []
    if rng.random() < 0.1 and not force:
        argv = ["conn", os.fsdecode(cap)]
    else:
        argv = ["analyze", os.fsdecode(cap)]
        if rng.random() < 0.25:  # several captures: vantage points, or --separate
            second = os.path.join(d, random_name(rng, b".pcapng"))
            shutil.copy(SECOND_CAPTURE, second)
            argv.append(os.fsdecode(second))
            if rng.random() < 0.3:
                argv.append("--separate")
    fifos: list[_FifoReader] = []
    checks: list[tuple[bytes, str, int]] = []
    kinds = ["new", "existing", "symlink", "dangling", "fifo", "device", "full", "missing", "stdout"]
    described = []
    json_file = None
    if argv[0] == "analyze":
        for opt in ("--json", "--html", "--markdown"):
            if force is not None:
                if opt not in force:
                    continue
                kind = force[opt]
            elif rng.random() < 0.5:
                continue
            else:
                kind = rng.choice(kinds)
            argv += [opt, _target(rng, d, kind, random_name(rng, b".out"), fifos, checks)]
            described.append(f"{opt} {kind}")
            if opt == "--json" and kind in ("new", "existing", "symlink", "dangling"):
                json_file = os.fsencode(argv[-1])
        if "--html" not in argv and rng.random() < 0.7:
            argv.append("--no-html")
        if rng.random() < 0.2:
            argv.append("-q")
    if rng.random() < 0.3:
        argv.append("--progress")
    argv += ["--max-decompressed", str(MAX_DECOMPRESSED)] if argv[0] == "analyze" else []
    before = set(os.listdir(d))
    out_bytes, err_bytes = io.BytesIO(), io.BytesIO()
    # A strict UTF-8 stdout and stderr, as a terminal's: a surrogate written raw fails.
    out = io.TextIOWrapper(out_bytes, encoding="utf-8", errors="strict", write_through=True)
    err = io.TextIOWrapper(err_bytes, encoding="utf-8", errors="strict", write_through=True)
    cwd = os.getcwd()
    os.chdir(d)  # the default report goes to the current directory
    try:
        code = pcapsleuth.cli.main(argv, stdout=out, stderr=err)
    finally:
        os.chdir(cwd)
        for r in fifos:
            r.close()
    what = f"scenario {scenario}: pcapsleuth {' '.join(repr(a) for a in argv)} ({', '.join(described)})"
    stderr = err_bytes.getvalue().decode("utf-8")
    stdout = out_bytes.getvalue().decode("utf-8")
    assert code in CLI_CODES, f"{what}: exit {code}: {stderr}"
    assert "Traceback" not in stderr and "internal error" not in stderr, f"{what}: {stderr}"
    for line in stderr.replace("\r", "\n").splitlines():
        assert not RAW.search(line), f"{what}: raw character on stderr: {line!r}"
    if not any(a == "-" for a in argv) and argv[0] == "analyze":
        assert not RAW.search(stdout.replace("\n", "")), f"{what}: raw character in the summary"
    for path, kind, rdev in checks:
        st = os.lstat(path)
        if kind == "device":
            assert stat.S_ISCHR(st.st_mode) and st.st_rdev == rdev, f"{what}: {path!r} was replaced"
        elif kind == "fifo":
            assert stat.S_ISFIFO(st.st_mode), f"{what}: the FIFO {path!r} was replaced"
        else:
            assert stat.S_ISLNK(st.st_mode), f"{what}: the symlink {path!r} was replaced"
    if json_file is not None and code in (0, 1):
        with open(json_file, "rb") as f:
            json.loads(f.read().decode("utf-8"))  # valid UTF-8, valid JSON, whatever the name
    left = [n for n in set(os.listdir(d)) - before if n.startswith(b".")]
    assert not left, f"{what}: temporaries left behind: {left}"
    assert not os.path.exists(os.path.join(d, b"missing")), f"{what}: a missing directory was created"
    shutil.rmtree(d)
    return code


class Stats:
    def __init__(self) -> None:
        self.iterations = 0
        self.cli_runs = 0
        self.cli_codes: dict[int, int] = {}
        self.failures: list[tuple[bytes, str]] = []
        self.slowest = 0.0
        self.slow: list[bytes] = []


def run_random(seeds: list[bytes], *, iterations: int | None = None, seconds: float | None = None, seed: int = 0,
               deep_every: int = 200, cli_every: int = 0, crash_dir: Path | None = None,
               log: Iterable[str] | None = None, quiet: bool = True) -> Stats:
    """The deterministic engine: ``iterations`` mutated inputs (or as many as fit in ``seconds``);
    every ``cli_every``-th (0: none) also through the command line (:func:`run_cli`), alternately
    the mutant and its unmutated seed (so that outputs are written too, not only errors)."""
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
            if cli_every > 0 and stats.iterations % cli_every == 0:
                scenario = rng.randrange(2**32)
                cli_data = data if (stats.iterations // cli_every) % 2 else base
                try:
                    code = run_cli(cli_data, scenario, workdir)
                    stats.cli_runs += 1
                    stats.cli_codes[code] = stats.cli_codes.get(code, 0) + 1
                except Exception:  # noqa: BLE001
                    tb = traceback.format_exc()
                    stats.failures.append((cli_data, tb))
                    if crash_dir is not None:
                        path = _save(crash_dir, cli_data, f"command line, random.Random({scenario}):\n{tb}")
                        if not quiet:
                            print(f"CLI CRASH #{stats.iterations}: {path}\n{tb}", file=sys.stderr, flush=True)
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


def run_atheris(libfuzzer_argv: list[str], deep_every: int, cli_every: int = 0) -> None:
    """Coverage-guided: libFuzzer drives, our structure-aware mutator is offered as a custom one."""
    import atheris

    with atheris.instrument_imports(include=["pcapsleuth"]):
        import pcapsleuth.analysis
        import pcapsleuth.cli
        import pcapsleuth.connlog
        import pcapsleuth.markdown
        import pcapsleuth.outputs
        import pcapsleuth.report  # noqa: F401
    seeds = load_seeds()
    counter = [0]
    workdir = tempfile.mkdtemp(prefix="pcapsleuth-fuzz-")

    def test_one_input(data: bytes) -> None:
        counter[0] += 1
        run_one(data, deep=deep_every > 0 and counter[0] % deep_every == 0, workdir=workdir)
        if cli_every > 0 and counter[0] % cli_every == 0:
            # The scenario (file name, output targets) follows from the input: a crash reproduces.
            run_cli(data, int.from_bytes(hashlib.sha1(data).digest()[:4], "big"), workdir)

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
    p.add_argument("--cli-every", type=int, default=20,
                   help="run every Nth input through the command line too, under a hostile file name and with "
                        "odd output targets (0: never)")
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
        run_atheris(rest, args.deep_every, args.cli_every)
        return 0
    seconds = None if args.minutes is None else args.minutes * 60
    iterations = args.iterations if args.iterations is not None or seconds is not None else 10_000
    t0 = time.monotonic()
    stats = run_random(load_seeds(), iterations=iterations, seconds=seconds, seed=args.seed,
                       deep_every=args.deep_every, cli_every=args.cli_every, crash_dir=Path(args.crash_dir),
                       quiet=False)
    elapsed = time.monotonic() - t0
    print(f"random engine, seed {args.seed}: {stats.iterations} inputs in {elapsed:.0f} s "
          f"({stats.iterations / max(elapsed, 1e-9):.0f}/s), {stats.cli_runs} through the command line "
          f"(exit codes {dict(sorted(stats.cli_codes.items()))}), "
          f"{len(stats.failures)} failures, slowest input {stats.slowest:.2f} s")
    return 1 if stats.failures else 0


if __name__ == "__main__":
    sys.exit(main())
