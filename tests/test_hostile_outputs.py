"""Issue 19: odd output targets and hostile file names.

* Every output (``--json``, ``--html``, ``--markdown``, the report of ``render_html``) goes
  through one writer (:func:`pcapsleuth.outputs.open_output`): a regular file through an
  exclusively created temporary with an unpredictable name and a rename; a device node or a
  FIFO written directly, never replaced; a symbolic link's target written and the link kept;
  nothing left behind by a failed write, SIGTERM or SIGINT. As root (the suite runs as root) and
  as ``nobody``.
* Every output path is checked before the analysis; a failing write (a full disk) is the same
  one line and exit code 2, never an internal error.
* File names that are not UTF-8, or hold ANSI sequences and bidi overrides, are shown escaped
  everywhere and crash nothing.
* The terminal summary is bounded: long strings and thousands of interfaces are cut with a count.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dpkt
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _build as b  # noqa: E402

from pcapsleuth import errors, util  # noqa: E402
from pcapsleuth.cli import main  # noqa: E402

from .conftest import REPO, SAMPLES  # noqa: E402

LB = SAMPLES / "incidents" / "lb-client.pcap"
CLEAN = SAMPLES / "incidents" / "clean.pcap"
NOBODY = 65534
#: Raw control, bidi and format characters, and the surrogates of non-UTF-8 bytes: none may
#: reach a terminal (the progress line's own "\r" and the line ends aside).
RAW = re.compile("[\x00-\x09\x0b-\x0c\x0e-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff"
                 "\ud800-\udfff]")


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def run(*argv: str | os.PathLike[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main([os.fspath(a) for a in argv], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1", "PYTHONIOENCODING": "utf-8"}


def _cli(*argv: str | os.PathLike[str], **kw: object) -> subprocess.CompletedProcess[bytes]:
    """``pcapsleuth`` in a process of its own (real stdout and stderr, strict UTF-8)."""
    return subprocess.run([sys.executable, "-m", "pcapsleuth", *map(os.fspath, argv)], capture_output=True,
                          env=kw.pop("env", _env()), timeout=300, **kw)  # type: ignore[call-overload,no-any-return]


def _one_clean_line(err: str) -> None:
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in err and "internal error" not in err, err


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


# -- devices, FIFOs, links ---------------------------------------------------------------------------
def _null_node(where: Path) -> Path:
    """A copy of /dev/null (character device 1,3) made by mknod in a temporary directory."""
    node = where / "null"
    os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    return node


def _full_node(where: Path) -> Path:
    """A copy of /dev/full (1,7): the writer under test replaces no device of the machine's own,
    even when it regresses (the old one replaced /dev/full with the report)."""
    node = where / "full"
    os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
    return node


@pytest.mark.parametrize("opt", ["--json", "--html", "--markdown"])
def test_a_device_node_is_written_not_replaced(tmp_path: Path, opt: str) -> None:
    node = _null_node(tmp_path)
    before = os.stat(node)
    code, _, err = run("analyze", LB, opt, node, "-q", *(["--no-html"] if opt != "--html" else []))
    assert code == 0, err
    after = os.lstat(node)
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev and after.st_ino == before.st_ino
    assert _leftovers(tmp_path) == []


def test_json_and_report_to_a_device_node_together(tmp_path: Path) -> None:
    """bench/README.md's ``--json /dev/null``, with the report too (a copy of /dev/null)."""
    node = _null_node(tmp_path)
    code, _, err = run("analyze", LB, "--json", node, "--html", node, "--markdown", node, "-q")
    assert code == 0, err
    assert stat.S_ISCHR(os.lstat(node).st_mode) and os.lstat(node).st_rdev == os.makedev(1, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null"]


@pytest.mark.parametrize("opt", ["--json", "--html", "--markdown"])
def test_dev_full_is_one_clean_line_and_exit_2(tmp_path: Path, opt: str) -> None:
    full = _full_node(tmp_path)
    code, _, err = run("analyze", CLEAN, opt, full, "-q", *(["--no-html"] if opt != "--html" else []))
    assert code == 2
    _one_clean_line(err)
    assert err == f"pcapsleuth: error: {opt} {full}: cannot write: No space left on device\n"
    assert stat.S_ISCHR(os.lstat(full).st_mode) and os.lstat(full).st_rdev == os.makedev(1, 7)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]


@pytest.mark.parametrize("argv", [["analyze", str(CLEAN), "--no-html"], ["analyze", str(CLEAN), "--json", "-"],
                                  ["conn", str(CLEAN)], ["catalog"]])
def test_stdout_on_a_full_disk_is_one_clean_line(tmp_path: Path, argv: list[str]) -> None:
    """``> /dev/full``: the summary, ``--json -``, a conn.log: one line and exit 2, and no second
    complaint from the interpreter's own flush at exit."""
    with open(_full_node(tmp_path), "wb") as full:
        proc = subprocess.run([sys.executable, "-m", "pcapsleuth", *argv], stdout=full, stderr=subprocess.PIPE,
                              env=_env(), timeout=300)
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    _one_clean_line(err)
    assert "stdout: cannot write: No space left on device" in err


def test_a_fifo_is_written_directly(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    keep = _fifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(keep.read_bytes()))
    reader.start()
    try:
        code, _, err = run("analyze", LB, "--json", fifo, "-q", "--no-html")
    finally:
        _release(keep, reader)
    assert code == 0, err
    assert json.loads(got[0])["capture"]["frames"] > 0
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and _leftovers(tmp_path) == []


def _fifo(path: Path, mode: int = 0o600) -> Path:
    """A FIFO at ``path``, and a second link to it elsewhere: even if the FIFO's name is replaced
    (the bug under test), :func:`_release` can still reach the FIFO its reader waits on."""
    os.mkfifo(path, mode)
    os.chmod(path, mode)
    keep = Path(tempfile.mkdtemp(prefix="pcapsleuth-fifo-")) / "keep"
    os.link(path, keep)
    return keep


def _release(keep: Path, reader: threading.Thread) -> None:
    """Unblock a reader still waiting for a writer (the write under test failed), then join it."""
    while reader.is_alive():
        try:  # succeeds once the reader has the FIFO open: it then reads an end of file
            os.close(os.open(keep, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass  # the reader is not there yet
        reader.join(0.05)
    shutil.rmtree(keep.parent)


def test_a_symlink_gets_its_target_written_and_stays_a_link(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "out.json"
    target.write_text("old\n")
    link = tmp_path / "out.json"
    link.symlink_to(Path("real") / "out.json")
    dangling = tmp_path / "report.html"
    dangling.symlink_to(Path("real") / "report.html")  # its target does not exist yet
    code, _, err = run("analyze", LB, "--json", link, "--html", dangling, "-q")
    assert code == 0, err
    assert link.is_symlink() and os.readlink(link) == os.path.join("real", "out.json")
    assert json.loads(target.read_text())["capture"]["frames"] > 0
    assert dangling.is_symlink() and (tmp_path / "real" / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert _leftovers(tmp_path) == [] and _leftovers(tmp_path / "real") == []


def test_a_link_planted_at_the_old_temporary_name_is_not_followed(tmp_path: Path) -> None:
    """The writer used ``<dest>.tmp``: a symlink there made root overwrite whatever it pointed at."""
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    names = ["lb-client.pcapsleuth.html", "out.json", "t.md"]
    for name in names:
        (tmp_path / f"{name}.tmp").symlink_to(victim)
    code, _, err = run("analyze", LB, "--json", "out.json", "--markdown", "t.md", "-q")
    assert code == 0, err
    assert victim.read_text() == "precious\n"
    for name in names:
        assert (tmp_path / f"{name}.tmp").is_symlink() and os.readlink(tmp_path / f"{name}.tmp") == str(victim)
        assert (tmp_path / name).is_file() and not (tmp_path / name).is_symlink()


def test_render_html_writes_through_the_same_writer(tmp_path: Path) -> None:
    """``pcapsleuth.report.render_html(result, path, out_path)`` (the API) has no writer of its own."""
    from pcapsleuth.analysis import analyze_capture
    from pcapsleuth.report import render_html

    node = _null_node(tmp_path)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (tmp_path / "r.html.tmp").symlink_to(victim)
    result = analyze_capture(CLEAN)
    render_html(result, CLEAN, node)
    render_html(result, CLEAN, tmp_path / "r.html")
    assert stat.S_ISCHR(os.lstat(node).st_mode) and victim.read_text() == "precious\n"
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")


def test_permissions_like_a_new_file_or_kept(tmp_path: Path) -> None:
    """A new file: 0666 less the umask (not mkstemp's 0600). A replaced file keeps its mode, owner
    and group, as an editor's save would."""
    old = os.umask(0o027)
    try:
        code, _, err = run("analyze", CLEAN, "--json", "new.json", "-q", "--no-html")
    finally:
        os.umask(old)
    assert code == 0, err
    assert stat.S_IMODE(os.stat(tmp_path / "new.json").st_mode) == 0o640
    kept = tmp_path / "kept.json"
    kept.write_text("old\n")
    os.chmod(kept, 0o604)
    os.chown(kept, NOBODY, NOBODY)
    code, _, err = run("analyze", CLEAN, "--json", kept, "-q", "--no-html")
    assert code == 0, err
    st = os.stat(kept)
    assert stat.S_IMODE(st.st_mode) == 0o604 and (st.st_uid, st.st_gid) == (NOBODY, NOBODY)
    assert json.loads(kept.read_text())["capture"]["frames"] == 10


@pytest.fixture()
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs (we are root), filled up but for the small files already on it."""
    mnt = tmp_path / "full"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", str(mnt)], check=True)
    try:
        for name in ("out.json", "r.html", "t.md"):
            (mnt / name).write_text("old\n")
        with open(mnt / "filler", "wb", buffering=0) as f, pytest.raises(OSError, match="No space left"):
            while True:
                f.write(b"\0" * 4096)
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True)


def test_a_full_disk_midway_keeps_the_old_file_and_no_temporary(full_disk: Path) -> None:
    """ENOSPC in the middle of the write: one line, exit 2, the old file as it was, no temporary
    (the old writer's internal error 7 for --json)."""
    for opt, name in (("--json", "out.json"), ("--html", "r.html"), ("--markdown", "t.md")):
        dest = full_disk / name
        code, _, err = run("analyze", LB, opt, dest, "-q", *(["--no-html"] if opt != "--html" else []))
        assert code == 2, err
        _one_clean_line(err)
        assert err == f"pcapsleuth: error: {opt} {dest}: cannot write: No space left on device\n"
        assert dest.read_text() == "old\n"
        assert _leftovers(full_disk) == []


# -- SIGTERM and SIGINT in the middle of a write -----------------------------------------------------
_SLOW_WRITE = """
import sys
import pcapsleuth.analysis as analysis

def write_document(fp, *args, **kw):
    fp.write('{"capture": ')
    fp.flush()
    print("writing", flush=True)  # the parent sends the signal now
    sys.stdin.read()  # blocks: the signal arrives while the temporary is open and half written
    raise SystemExit("the signal did not come")

analysis.write_document = write_document  # the streamed analysis's write_json calls it
from pcapsleuth.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize(("sig", "code", "word"), [(signal.SIGTERM, 143, "terminated"),
                                                   (signal.SIGINT, 130, "interrupted")])
def test_a_signal_mid_write_leaves_no_temporary(tmp_path: Path, sig: int, code: int, word: str) -> None:
    dest = tmp_path / "out.json"
    dest.write_text("old\n")
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_WRITE, "analyze", str(LB), "--json", str(dest), "-q",
                             "--no-html"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=_env(), cwd=tmp_path)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"writing\n"
        assert len(_leftovers(tmp_path)) == 1  # the write is under way, through a temporary
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, err
    assert err.decode() == f"pcapsleuth: {word}\n"
    assert _leftovers(tmp_path) == [] and dest.read_text() == "old\n"


def test_sigterm_handler_is_restored_after_main() -> None:
    """main() run in-process (a notebook, a test) gives SIGTERM back as it found it."""
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    code, _, _ = run("analyze", CLEAN, "--no-html", "-q")
    assert code == 0 and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


# -- as an ordinary user -----------------------------------------------------------------------------
@pytest.fixture()
def public_dir() -> Iterator[Path]:
    """A directory ``nobody`` can enter and read, with a capture in it (pytest's tmp_path is 0700)."""
    d = Path(tempfile.mkdtemp(prefix="pcapsleuth-nobody-"))
    try:
        os.chmod(d, 0o755)
        shutil.copy(LB, d / "lb.pcap")
        os.chmod(d / "lb.pcap", 0o644)
        yield d
    finally:
        shutil.rmtree(d)


#: The interpreter lives under /root (0700): the child starts as root, runs one analysis with
#: every output into a private directory (so that every module it imports lazily is loaded),
#: then becomes nobody for good (setuid drops the real, effective and saved ids) before main().
_AS_NOBODY = """
import io, os, sys, tempfile
from pcapsleuth.cli import main
with tempfile.TemporaryDirectory() as d:
    warm = ["analyze", "lb.pcap", "--html", "-", "--json", d + "/w.json", "--markdown", d + "/w.md", "-q"]
    assert main(warm, stdout=io.StringIO()) == 0
os.setgroups([])
os.setgid(65534)
os.setuid(65534)
assert os.getuid() == os.geteuid() == 65534 and os.getgid() == 65534
sys.exit(main(sys.argv[1:]))
"""


def _as_nobody(cwd: Path, *argv: str | os.PathLike[str]) -> subprocess.CompletedProcess[bytes]:
    env = {**_env(), "HOME": str(cwd), "MPLCONFIGDIR": str(cwd)}
    return subprocess.run([sys.executable, "-c", _AS_NOBODY, *map(os.fspath, argv)], capture_output=True, env=env,
                          cwd=cwd, timeout=300)


def test_as_nobody_dev_null_and_a_fifo_work(public_dir: Path) -> None:
    """Without root, ``--json /dev/null`` exited 7: the writer tried to create ``/dev/null.tmp``."""
    proc = _as_nobody(public_dir, "analyze", "lb.pcap", "--json", "/dev/null", "--markdown", "/dev/null", "--html",
                      "/dev/null", "-q")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == b""
    fifo = public_dir / "fifo"
    keep = _fifo(fifo, 0o666)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(keep.read_bytes()))
    reader.start()
    try:
        proc = _as_nobody(public_dir, "analyze", "lb.pcap", "--json", fifo, "--no-html", "-q")
    finally:
        _release(keep, reader)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(got[0])["capture"]["frames"] > 0


def test_as_nobody_an_unwritable_directory_is_found_before_the_analysis(public_dir: Path) -> None:
    """``--json`` into a directory nobody may write to exited 7 'internal error PermissionError'
    after the whole analysis; now one line, exit 2, before it (a missing capture would be 3)."""
    locked = public_dir / "locked"
    locked.mkdir(mode=0o755)
    for opt in ("--json", "--html", "--markdown"):
        for target in (locked / "x.out", locked):
            if opt == "--json" and target == locked:
                continue  # a directory is no place for the JSON: another message, tested below
            proc = _as_nobody(public_dir, "analyze", "missing.pcap", opt, target, "--no-html" if opt != "--html"
                              else "-q")
            err = proc.stderr.decode()
            assert proc.returncode == 2, err
            _one_clean_line(err)
            assert f"pcapsleuth: error: {opt} {target}: " in err and "not writable (permission denied)" in err
    fifo = public_dir / "rofifo"
    os.mkfifo(fifo, 0o644)
    os.chmod(fifo, 0o644)
    proc = _as_nobody(public_dir, "analyze", "missing.pcap", "--json", fifo)
    assert proc.returncode == 2 and b"not writable (permission denied)" in proc.stderr


# -- output paths checked before the analysis --------------------------------------------------------
@pytest.mark.parametrize("opt", ["--json", "--html", "--markdown"])
def test_every_output_path_is_checked_before_the_analysis(tmp_path: Path, opt: str) -> None:
    """The same one line and exit code 2 for every output; the capture is not even opened (it
    does not exist here: opening it would exit 3)."""
    (tmp_path / "file").write_text("x")
    # (a directory is a valid target of each of them: <stem><suffix> inside it, tests/test_cli.py)
    cases = [(tmp_path / "no" / "such" / "x.out", f"directory {tmp_path / 'no' / 'such'} does not exist"),
             (tmp_path / "file" / "x.out", f"{tmp_path / 'file'} is not a directory")]
    for target, problem in cases:
        code, out, err = run("analyze", tmp_path / "missing.pcap", opt, target)
        assert code == 2, err
        _one_clean_line(err)
        assert err == f"pcapsleuth: error: {opt} {target}: {problem}\n"
        assert out == ""
    # several captures together (vantage points) are checked the same way
    code, _, err = run("analyze", tmp_path / "a.pcap", tmp_path / "b.pcap", opt, cases[0][0])
    assert code == 2 and err == f"pcapsleuth: error: {opt} {cases[0][0]}: {cases[0][1]}\n"


# -- file names that are not UTF-8, or hostile ---------------------------------------------------------
def _pcapng(n_ifaces: int = 1, *, name: str = "eth0", desc: str = "", comments: int = 0,
            comment_len: int = 0) -> bytes:
    """One UDP datagram per interface (one connection); ``comments`` EPB comments of ``comment_len``."""
    frame = b.eth(b.ip4(dpkt.udp.UDP(sport=5353, dport=53, data=b"q" * 20), proto=17))
    opts = [(2, name.encode())] + ([(3, desc.encode())] if desc else [])
    out = b.shb("<") + b"".join(b.idb("<", options=opts) for _ in range(n_ifaces))
    for i in range(max(n_ifaces, comments)):
        note = [(1, (f"comment {i} " + "c" * comment_len).encode())] if i < comments else []
        out += b.epb("<", i % n_ifaces, 1_700_000_000_000_000 + i, frame, options=note)
    return out


BAD = b"bad\xff\xfe"  # not UTF-8: os.fsdecode gives "bad\udcff\udcfe"


def _bad_file(where: Path, suffix: bytes = b".pcapng", data: bytes | None = None) -> str:
    path = os.fsencode(where) + b"/" + BAD + suffix
    with open(path, "wb") as f:
        f.write(_pcapng() if data is None else data)
    return os.fsdecode(path)


def test_non_utf8_file_names_are_shown_escaped_everywhere(tmp_path: Path) -> None:
    """``bad\\xff\\xfe.pcapng`` exited 7 (UnicodeEncodeError) in the default run and with --json."""
    cap = _bad_file(tmp_path)
    shown = str(tmp_path) + "/bad\\xff\\xfe.pcapng"
    # the default run: summary on stdout, report in the current directory
    code, out, err = run("analyze", cap)
    assert code == 0, err
    assert not RAW.search(out) and f"{shown}: pcapng" in out and "report: bad\\xff\\xfe.pcapsleuth.html" in out
    report = os.fsencode(tmp_path) + b"/" + BAD + b".pcapsleuth.html"  # the file is named with the bytes
    html = Path(os.fsdecode(report)).read_bytes().decode("utf-8")  # strict: valid UTF-8
    assert "bad\\xff\\xfe" in html and not RAW.search(html.replace("\n", ""))
    # --json to a file and to stdout: valid UTF-8 JSON, the name escaped as text
    code, _, err = run("analyze", cap, "--json", "out.json", "--no-html", "-q")
    assert code == 0, err
    doc = json.loads((tmp_path / "out.json").read_bytes().decode("utf-8"))
    assert doc["capture"]["path"] == shown
    code, out, _ = run("analyze", cap, "--json", "-")
    assert code == 0 and json.loads(out)["capture"]["path"] == shown and not RAW.search(out.replace("\n", ""))
    # Markdown to a file and to stdout, the HTML to stdout
    code, _, err = run("analyze", cap, "--markdown", "t.md", "-q", "--no-html")
    assert code == 0, err
    assert "bad\\xff\\xfe" in (tmp_path / "t.md").read_bytes().decode("utf-8")
    for opt in ("--markdown", "--html"):
        code, out, err = run("analyze", cap, opt, "-")
        assert code == 0, err
        assert "bad\\xff\\xfe" in out and not re.search("[\ud800-\udfff]", out)
    # the progress line and conn
    code, out, err = run("analyze", cap, "--no-html", "--progress")
    assert code == 0 and "analyzed bad\\xff\\xfe.pcapng:" in err and not RAW.search(err.replace("\r", ""))
    code, out, err = run("conn", cap, "--progress")
    assert code == 0 and "#path\tconn" in out and "analyzed bad\\xff\\xfe.pcapng:" in err
    # an error line naming the file
    junk = _bad_file(tmp_path, b".txt", b"not a capture")
    code, _, err = run("analyze", junk)
    assert code == 4
    assert err == f"pcapsleuth: {tmp_path}/bad\\xff\\xfe.txt: not a pcap or pcapng capture (magic 6e6f7420)\n"


def test_non_utf8_file_names_with_several_captures(tmp_path: Path) -> None:
    cap = _bad_file(tmp_path)
    (tmp_path / "out").mkdir()
    code, out, err = run("analyze", cap, CLEAN, "--json", "v.json", "--markdown", "v.md", "--html", "out")
    assert code == 0, err
    assert not RAW.search(out) and "[bad\\xff\\xfe] " in out and "vantage points: bad\\xff\\xfe, clean" in out
    doc = json.loads((tmp_path / "v.json").read_bytes().decode("utf-8"))
    assert doc["vantage_points"][0]["name"] == "bad\\xff\\xfe"
    assert "bad\\xff\\xfe" in (tmp_path / "v.md").read_bytes().decode("utf-8")
    [report] = (tmp_path / "out").iterdir()
    assert "bad\\xff\\xfe" in report.read_bytes().decode("utf-8")
    code, out, err = run("analyze", cap, cap, "--separate", "--html", "out", "--progress")
    assert code == 0, err
    assert not RAW.search(out) and not RAW.search(err.replace("\r", ""))


def test_non_utf8_file_name_through_a_real_utf8_stdout(tmp_path: Path) -> None:
    """In a process of its own, whose stdout is strict UTF-8 (what failed)."""
    cap = _bad_file(tmp_path)
    for extra, shown in (([], b"bad\\xff\\xfe"), (["--json", "-"], b"bad\\\\xff\\\\xfe"),
                         (["--markdown", "-"], b"bad\\xff\\xfe"), (["--html", "-"], b"bad\\xff\\xfe")):
        proc = _cli("analyze", cap, *extra, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert shown in proc.stdout and b"\xff" not in proc.stdout
        proc.stdout.decode("utf-8")


def test_file_names_with_ansi_and_bidi_are_escaped_with_several_captures(tmp_path: Path) -> None:
    """10b: the summary of several captures printed the names raw (a window title, a cleared
    screen, reversed text)."""
    names = ["\x1b]0;pwned\x07title.pcapng", "\x1b[2J\x1b[31mred.pcapng", "abc\u202etxt.pcapng",
             "lrm\u200e\u200f\u061c\u2028\u2029.pcapng"]
    for name in names:
        (tmp_path / name).write_bytes(_pcapng())
    for extra in ([], ["--separate"]):
        code, out, err = run("analyze", *names, "--no-html", *extra)
        assert code == 0, err
        assert not RAW.search(out), repr(out)
        assert "\\x1b]0;pwned\\x07title" in out and "\\x1b[2J\\x1b[31mred" in out and "abc\\u202etxt" in out
        assert "lrm\\u200e\\u200f\\u061c\\u2028\\u2029" in out


# -- the escaped characters (10c) ------------------------------------------------------------------------
def test_bidi_marks_separators_and_invisible_format_characters_are_escaped() -> None:
    for ch, shown in [("\u200e", "\\u200e"), ("\u200f", "\\u200f"), ("\u061c", "\\u061c"), ("\u2028", "\\u2028"),
                      ("\u2029", "\\u2029"), ("\ufeff", "\\ufeff"), ("\u200b", "\\u200b"), ("\u200d", "\\u200d"),
                      ("\u2066", "\\u2066"), ("\u00ad", "\\xad"), ("\U000e0041", "\\U000e0041"),
                      ("\udcff", "\\xff"), ("\ud800", "\\ud800")]:
        assert errors.printable(f"a{ch}b") == f"a{shown}b"
    assert errors.printable("é ü 中文 😀 \\x1b") == "é ü 中文 😀 \\x1b"  # visible text as it is


def test_the_escaped_set_is_every_control_format_separator_and_surrogate() -> None:
    """Exactly Unicode's Cc, Cf, Zl, Zp and Cs (of the running Python's Unicode; the table is
    Unicode 15's, so a character it holds may be unassigned here)."""
    escaped = {c for a, z in errors.ESCAPED_RANGES for c in range(a, z + 1)}
    wanted = {"Cc", "Cf", "Zl", "Zp", "Cs"}
    for c in range(0x110000):
        cat = unicodedata.category(chr(c))
        if cat in wanted:
            assert c in escaped, f"U+{c:04X} ({cat}) is not escaped"
        elif c in escaped:
            assert cat == "Cn", f"U+{c:04X} ({cat}) is escaped"


def test_json_escapes_the_same_characters_and_parses_back() -> None:
    """The JSON's policy (util.json_safe) is the terminal's, minus C0 (which json.dumps escapes):
    the same document once parsed, and a non-UTF-8 byte written as the text ``\\xff``."""
    term = {c for a, z in errors.ESCAPED_RANGES for c in range(a, z + 1) if c >= 0x7F}
    assert set(util._JSON_ESCAPES) == term
    text = "x\u200e\u200f\u061c\u2028\u2029\ufeff\u200b\U000e0041\u202e\x85y"
    encoded = util.json_safe(json.dumps({"s": text}, ensure_ascii=False))
    assert encoded.isascii() and json.loads(encoded) == {"s": text}
    assert json.loads(util.json_safe(json.dumps({"s": "bad\udcff"}, ensure_ascii=False))) == {"s": "bad\\xff"}


# -- a bounded terminal summary (5, the terminal half) -----------------------------------------------
def test_terminal_summary_caps_long_strings(tmp_path: Path) -> None:
    """12 comments of 60 KB, and 60 KB interface names and descriptions: a few hundred bytes a
    line, the rest counted (all of it is in the JSON)."""
    cap = tmp_path / ("n" * 240 + ".pcapng")
    cap.write_bytes(_pcapng(4, name="i" * 60_000, desc="d" * 60_000, comments=12, comment_len=60_000))
    code, out, err = run("analyze", cap, "--no-html", "--json", "all.json")
    assert code == 0, err
    lines = out.splitlines()
    assert max(map(len, lines)) < 1000 and len(out) < 6000, (len(out), max(map(len, lines)))
    assert lines[0].startswith(str(cap)[:200] + "… (")  # the path, cut too
    assert f"{'i' * 200}… (59,800 more bytes, in the JSON) ({'d' * 200}… (59,800 more bytes, in the JSON))" in out
    doc = json.loads((tmp_path / "all.json").read_text())
    assert doc["capture"]["interfaces"][0]["name"] == "i" * 60_000
    assert len(doc["capture"]["comments"]) == 12 and len(doc["capture"]["comments"][0]["comment"]) > 60_000


def test_terminal_summary_caps_the_interface_lines(tmp_path: Path) -> None:
    """4,096 interfaces gave 4,105 lines."""
    cap = tmp_path / "many.pcapng"
    cap.write_bytes(_pcapng(4096))
    code, out, err = run("analyze", cap, "--no-html")
    assert code == 0, err
    iface_lines = [line for line in out.splitlines() if line.startswith("  interface  ")]
    assert len(iface_lines) == 9 and len(out.splitlines()) < 20
    assert iface_lines[-1] == "  interface  … and 4,088 more interfaces (in the JSON)"
    assert iface_lines[0].startswith("  interface  0: eth0 EN10MB")


def test_capped_counts_the_bytes_left_out() -> None:
    assert util.capped("abc", 3) == "abc"
    assert util.capped("abcdé", 3) == "abc… (3 more bytes, in the JSON)"
    assert util.capped("ab\udcff\udcfe", 2) == "ab… (2 more bytes, in the JSON)"  # the file name's two bytes


# -- the fuzz target's command line (fuzz/fuzz_pipeline.py run_cli) -----------------------------------
def _fuzz() -> Any:
    sys.path.insert(0, str(REPO / "fuzz"))
    import fuzz_pipeline

    return fuzz_pipeline


def test_fuzz_command_line_with_hostile_names_and_output_targets() -> None:
    """40 inputs through the command line in-process, each under a file name of random bytes (not
    UTF-8, control characters, ANSI, bidi) and with random output targets (a new or an existing
    file, a symlink, a dangling one, a FIFO, copies of /dev/null and /dev/full, a missing
    directory, stdout): documented exit codes only (never 7), no traceback, nothing raw on the
    terminal, the JSON valid UTF-8, no device, FIFO or link replaced, no temporary left. The
    longer runs: ``fuzz/fuzz_pipeline.py --cli-every N`` (default 20)."""
    fz = _fuzz()
    stats = fz.run_random(fz.load_seeds(), iterations=40, seed=19019, deep_every=0, cli_every=1)
    report = "\n\n".join(tb for _, tb in stats.failures[:3])
    assert not stats.failures, f"{len(stats.failures)} command lines broke the contract:\n{report}"
    assert stats.cli_runs == 40
    assert stats.cli_codes.get(0, 0) >= 10 and stats.cli_codes.get(2, 0) >= 3  # outputs written, and refused


def test_fuzz_command_line_checks_can_fail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a writer that renames over whatever is there (the old one), the fuzz target finds the
    device node given to --json replaced; and its names are hostile, yet valid file names."""
    import pcapsleuth.outputs as outputs

    fz = _fuzz()
    monkeypatch.setattr(outputs, "_resolve", lambda path: ("replace", os.path.realpath(path), None))
    with pytest.raises(AssertionError, match="was replaced"):
        fz.run_cli(CLEAN.read_bytes(), 5, str(tmp_path), force={"--json": "device"})
    import random

    names = [fz.random_name(random.Random(i)) for i in range(300)]
    assert all(b"/" not in n and b"\0" not in n and not n.startswith(b".") for n in names)
    undecodable = sum(1 for n in names if _undecodable(n))
    assert undecodable > 100 and sum(1 for n in names if b"\x1b" in n) > 30


def _undecodable(name: bytes) -> bool:
    try:
        name.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False
