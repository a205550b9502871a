import builtins
import errno
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from utils import (
    OutputError,
    StageClock,
    atomic_csv_write,
    atomic_json_dump,
    atomic_np_save,
    atomic_path,
    atomic_torch_save,
    check_output_dir,
    remove_stale_temps,
    run_cli,
    warn_once,
)


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "out.json"
    atomic_json_dump({"a": 1}, target)
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half-written")
            raise RuntimeError("crash")
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # no temporary left behind


def test_atomic_np_save_exact_name(tmp_path):
    target = tmp_path / "v_rgb.npy"
    atomic_np_save(np.arange(6, dtype=np.float32).reshape(3, 2), target)
    assert np.load(target).shape == (3, 2)
    assert [p.name for p in tmp_path.iterdir()] == ["v_rgb.npy"]


def test_checkpoint_metadata_round_trip_and_plain_load(tmp_path):
    import torch

    from utils import InputError, load_checkpoint, save_checkpoint

    net = torch.nn.Module()
    net.cas_rgb_encoder = torch.nn.Sequential(torch.nn.Conv1d(4, 4, 1), torch.nn.ReLU(), torch.nn.Conv1d(4, 3, 1))
    meta = {"classes": ["a", "b", "c"], "data_name": "thumos14", "config": {"init_lr": 1e-4}}
    save_checkpoint(net.state_dict(), tmp_path / "m.pth", meta)
    sd, got = load_checkpoint(tmp_path / "m.pth", num_classes=3)
    assert got == meta
    net.load_state_dict(torch.load(tmp_path / "m.pth", weights_only=True), strict=True)  # still a plain state-dict
    torch.save(net.state_dict(), tmp_path / "plain.pth")
    assert load_checkpoint(tmp_path / "plain.pth")[1] is None
    with pytest.raises(InputError, match=r"m\.pth: checkpoint is for 3 classes, but the dataset has 20"):
        load_checkpoint(tmp_path / "m.pth", num_classes=20)
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match=r"bad\.pth: not a readable PyTorch checkpoint"):
        load_checkpoint(tmp_path / "bad.pth")
    with pytest.raises(InputError, match="not found"):
        load_checkpoint(tmp_path / "missing.pth")


def test_atomic_write_has_default_permissions(tmp_path):
    import os

    target = tmp_path / "out.json"
    atomic_json_dump({"a": 1}, target)
    plain = tmp_path / "plain.json"
    plain.write_text("{}")
    assert os.stat(target).st_mode & 0o777 == os.stat(plain).st_mode & 0o777


def test_run_cli_exit_codes(capsys):
    from utils import InputError, run_cli

    def bad():
        raise InputError("data/x.npy: width 512, expected 1024")

    def interrupted():
        raise KeyboardInterrupt

    assert run_cli(lambda: 1) == 1 and run_cli(lambda: None) == 0
    assert run_cli(bad) == 2
    assert capsys.readouterr().err == "error: data/x.npy: width 512, expected 1024\n"
    assert run_cli(interrupted, interrupted="run it again") == 130
    assert capsys.readouterr().err.strip() == "interrupted; run it again"
    with pytest.raises(KeyboardInterrupt):
        run_cli(interrupted)


# --- output safety: failed writes, writable check, stale temporaries, checkpoint bytes (issue 11) ------------------

ENOSPC = os.strerror(errno.ENOSPC)  # "No space left on device"
EROFS = os.strerror(errno.EROFS)  # "Read-only file system"


class FullFile:
    """A file object on a disk with `left` bytes free: writes past that fail like a full disk (ENOSPC)."""

    def __init__(self, f, left: int) -> None:
        self._f, self._left = f, left

    def write(self, data):
        if len(data) > self._left:
            self._f.write(data[: self._left])
            self._left = 0
            raise OSError(errno.ENOSPC, ENOSPC)
        self._left -= len(data)
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


def full_disk(monkeypatch, left: int = 100) -> None:
    """Every file opened for writing from now on (open(), Path.write_text) sits on a disk with `left` bytes free."""
    real = io.open

    def opener(file, mode="r", *args, **kwargs):
        f = real(file, mode, *args, **kwargs)
        return FullFile(f, left) if any(c in mode for c in "wax") else f

    monkeypatch.setattr(io, "open", opener)
    monkeypatch.setattr(builtins, "open", opener)


WRITERS = {
    "json": (lambda p: atomic_json_dump({"new": list(range(1000))}, p), "out.json"),
    "csv": (lambda p: atomic_csv_write(p, ["a", "b"], [[i, i] for i in range(1000)]), "out.csv"),
    "npy": (lambda p: atomic_np_save(np.zeros((100, 100), np.float32), p), "out.npy"),
}


@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_full_disk_is_one_line_and_keeps_the_previous_file(tmp_path, monkeypatch, capsys, kind):
    write, name = WRITERS[kind]
    target = tmp_path / name
    target.write_bytes(b"previous output")
    with monkeypatch.context() as m:
        full_disk(m)
        assert run_cli(lambda: write(target)) == 2
    assert capsys.readouterr().err == f"error: {target}: write failed: {ENOSPC}; the previous file is kept\n"
    assert target.read_bytes() == b"previous output"
    assert [p.name for p in tmp_path.iterdir()] == [name]  # the half-written temporary is gone
    with monkeypatch.context() as m:  # a first write: no "previous file" to speak of
        full_disk(m)
        with pytest.raises(OutputError, match=rf"new{target.suffix}: write failed: {ENOSPC}$"):
            write(tmp_path / f"new{target.suffix}")
    assert [p.name for p in tmp_path.iterdir()] == [name]


@pytest.mark.parametrize(
    "where, error, cause",
    [
        ("mkdtemp", OSError(errno.EROFS, EROFS), EROFS),  # read-only folder: the temporary cannot even be made
        ("mkdtemp", OSError(errno.EACCES, os.strerror(errno.EACCES)), "Permission denied"),
        ("replace", OSError(errno.EACCES, os.strerror(errno.EACCES)), "Permission denied"),  # the final rename
        ("replace", OSError(errno.EIO, os.strerror(errno.EIO)), os.strerror(errno.EIO)),
    ],
)
def test_read_only_and_forbidden_writes(tmp_path, monkeypatch, where, error, cause):
    target = tmp_path / "m.json"
    atomic_json_dump({"v": 1}, target)

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(tempfile if where == "mkdtemp" else os, where, fail)
    with pytest.raises(OutputError) as e:
        atomic_json_dump({"v": 2}, target)
    assert str(e.value) == f"{target}: write failed: {cause}; the previous file is kept"
    monkeypatch.undo()
    assert json.loads(target.read_text()) == {"v": 1} and [p.name for p in tmp_path.iterdir()] == ["m.json"]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full to make PyTorch's writer fail for real")
def test_torch_save_failure_names_file_and_cause(tmp_path, monkeypatch):
    """PyTorch's C++ writer on a full disk raises `RuntimeError: [enforce fail at inline_container.cc:...] unexpected
    pos ...` (no path, no reason): here its real error, from a write into /dev/full."""
    target = tmp_path / "thumos14.pth"
    atomic_torch_save({"w": torch.zeros(3)}, target)
    before = target.read_bytes()
    real_save = torch.save
    monkeypatch.setattr(torch, "save", lambda obj, f: real_save(obj, "/dev/full"))
    with pytest.raises(OutputError) as e:  # the disk is not full: the cause cannot be told, the torch error is quoted
        atomic_torch_save({"w": torch.zeros(100_000)}, target)
    msg = str(e.value)
    assert msg.startswith(f"{target}: write failed: PyTorch could not write it ([enforce fail at inline_container")
    assert msg.endswith("): the disk may be full or over quota; the previous file is kept") and "\n" not in msg
    full = os.statvfs_result((4096, 4096, 1000, 0, 0, 1000, 0, 0, 0, 255))  # no free block
    monkeypatch.setattr(os, "statvfs", lambda path: full)
    with pytest.raises(OutputError) as e:
        atomic_torch_save({"w": torch.zeros(100_000)}, target)
    assert str(e.value) == f"{target}: write failed: {ENOSPC}; the previous file is kept"
    assert target.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["thumos14.pth"]
    monkeypatch.setattr(torch, "save", lambda obj, f: (_ for _ in ()).throw(RuntimeError("a bug, not a write")))
    with pytest.raises(RuntimeError, match="a bug"):  # other errors are not dressed up as write failures
        atomic_torch_save({}, target)


def test_check_output_dir(tmp_path, monkeypatch):
    folder = check_output_dir(tmp_path / "a" / "b", "--save_path")
    assert folder.is_dir() and list(folder.iterdir()) == []  # created; the probe left nothing
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match=r"file: --save_path is a file, not a folder$"):
        check_output_dir(tmp_path / "file", "--save_path")

    def fsync_full(fd):
        raise OSError(errno.ENOSPC, ENOSPC)

    with monkeypatch.context() as m:  # a full disk: the 64 KiB probe fails (at fsync at the latest)
        m.setattr(os, "fsync", fsync_full)
        with pytest.raises(OutputError) as e:
            check_output_dir(folder, "--save_path")
    assert str(e.value) == f"{folder}: output folder (--save_path) is not writable: {ENOSPC}"
    assert list(folder.iterdir()) == []

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, EROFS)

    with monkeypatch.context() as m:
        m.setattr(tempfile, "mkdtemp", read_only)
        with pytest.raises(OutputError, match=rf"b: output folder \(--output_dir\) is not writable: {EROFS}$"):
            check_output_dir(folder, "--output_dir")
        m.setattr(Path, "mkdir", read_only)
        with pytest.raises(OutputError, match=rf"new: cannot create the output folder \(--save_path\): {EROFS}$"):
            check_output_dir(tmp_path / "new", "--save_path")


NOBODY = 65534  # the unprivileged user and group of Debian-like systems


def _check_without_privileges(folder: Path) -> str | None:
    """check_output_dir(folder) in a forked child that is this user, or `nobody` when this is root (CI: root writes
    through file permissions) → the OutputError's message, or None if the check passed. A fork, not a new
    interpreter: the code is already loaded, so `nobody` needs no access to this checkout or its Python."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 3
        try:
            os.close(read)
            if os.geteuid() == 0:
                code = 4  # if dropping root fails: the parent skips
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
                code = 3
            try:
                check_output_dir(folder, "--save_path")
                code = 0
            except OutputError as e:
                os.write(write, str(e).encode())
                code = 2
        except BaseException as e:  # noqa: BLE001 — reported to the parent as a failure
            os.write(write, f"unexpected {type(e).__name__}: {e}".encode())
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        message = f.read().decode()
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    if code == 4:
        pytest.skip(f"root cannot drop its privileges here: {message}")
    assert code in (0, 2), message
    return message if code == 2 else None


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX file permissions")
def test_check_output_dir_real_permissions():
    """A read-only folder, and folders under one that cannot be entered, refused by the file system itself."""
    base = Path(tempfile.mkdtemp())  # not pytest's tmp_path: its parents are private to this user
    try:
        base.chmod(0o755)
        ro, closed = base / "ro", base / "closed"
        ro.mkdir(mode=0o555)
        closed.mkdir(mode=0o000)
        denied = os.strerror(errno.EACCES)
        assert _check_without_privileges(ro) == f"{ro}: output folder (--save_path) is not writable: {denied}"
        new = ro / "new"
        assert _check_without_privileges(new) == f"{new}: cannot create the output folder (--save_path): {denied}"
        out = closed / "out"  # Path.exists() itself raises PermissionError there
        assert _check_without_privileges(out) == f"{out}: cannot create the output folder (--save_path): {denied}"
        assert list(ro.iterdir()) == []  # the probe left nothing, and made nothing
        (base / "rw").mkdir(mode=0o777)
        (base / "rw").chmod(0o777)  # (mkdir's mode passes through the umask)
        assert _check_without_privileges(base / "rw") is None  # the same child, where it may write: no error
    finally:
        for d in (base / "ro", base / "closed"):
            if d.exists():
                d.chmod(0o700)
        shutil.rmtree(base)


def test_remove_stale_temps_keeps_live_and_foreign_files(tmp_path, capsys):
    stale = tmp_path / ".thumos14.pth.k1ll3d00.tmp"  # a save killed mid-write: its folder and half a file
    stale.mkdir()
    (stale / "thumos14.pth").write_bytes(b"x" * 1000)
    empty = tmp_path / ".x.npy.abcdefgh.tmp"  # killed between making the folder and the file
    empty.mkdir()
    old = tmp_path / ".thumos14_last.pt.q_9zz0a1.tmp"  # earlier versions wrote plain temporary files
    old.write_bytes(b"y" * 500)
    keep = {
        "notes.tmp": "a user's file",
        ".hidden.tmp": "not our pattern (no random part)",
        ".a.json.abc.tmp": "random part too short",
        ".b.json.ABCDEFGH.tmp": "tempfile never uses capitals",
    }
    for name in keep:
        (tmp_path / name).write_text("keep")
    foreign = tmp_path / ".c.json.abcdefgh.tmp"  # our pattern, but holds something we never write
    foreign.mkdir()
    (foreign / "other").write_text("keep")
    target = tmp_path / "live.json"
    with atomic_path(target) as tmp:  # a save in progress (this or another process: the lock is per open file)
        tmp.write_text('{"live": 1}')
        removed = remove_stale_temps(tmp_path)
        assert tmp.is_file(), "a live temporary is never removed"
    assert sorted(p.name for p in removed) == sorted(p.name for p in (stale, empty, old))
    assert json.loads(target.read_text()) == {"live": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*keep, foreign.name, "live.json"])
    err = capsys.readouterr().err
    assert err == f"note: {tmp_path}: removed 3 temporary file(s) of interrupted saves (0.0 MB)\n"
    assert remove_stale_temps(tmp_path) == [] and capsys.readouterr().err == ""
    assert remove_stale_temps(tmp_path / "absent") == []


def test_killed_save_leaves_a_temporary_the_next_run_removes(tmp_path):
    """kill -9 during a save: the temporary stays (and is kept while its writer lives); the previous file is intact."""
    target = tmp_path / "thumos14.pth"
    atomic_torch_save({"step": torch.tensor(1)}, target)
    child = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
        from utils import atomic_path
        with atomic_path({str(target)!r}) as tmp:
            tmp.write_bytes(b"half a checkpoint")
            print("saving", flush=True)
            time.sleep(120)
    """)
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "saving"
        assert remove_stale_temps(tmp_path) == []  # its writer is alive
    finally:
        proc.kill()  # SIGKILL: no cleanup runs
        proc.wait()
    (temp,) = [p for p in tmp_path.iterdir() if p.name != target.name]
    assert temp.name.startswith(".thumos14.pth.") and (temp / "thumos14.pth").read_bytes() == b"half a checkpoint"
    assert remove_stale_temps(tmp_path) == [temp]
    assert [p.name for p in tmp_path.iterdir()] == ["thumos14.pth"]
    assert torch.load(target, weights_only=True) == {"step": torch.tensor(1)}


@pytest.mark.parametrize("name", ["thumos14.pth", "thumos14_last.pt", "run.v2.pth"])
def test_checkpoint_bytes_do_not_depend_on_the_temporary_name(tmp_path, name):
    state = {"w": torch.arange(10.0), "step": 3}
    atomic_torch_save(state, tmp_path / "a" / name)
    atomic_torch_save(state, tmp_path / "b" / name)
    first = (tmp_path / "a" / name).read_bytes()
    assert first == (tmp_path / "b" / name).read_bytes()
    (tmp_path / "plain").mkdir()
    torch.save(state, tmp_path / "plain" / name)
    assert first == (tmp_path / "plain" / name).read_bytes(), "the same bytes as a direct torch.save to that name"
    stem = name.rsplit(".", 1)[0]
    with zipfile.ZipFile(tmp_path / "a" / name) as z:
        assert {n.split("/")[0] for n in z.namelist()} == {stem}


def test_stage_clock_nested_stages_are_exclusive(monkeypatch):
    import utils

    now = [0.0]
    monkeypatch.setattr(utils.time, "perf_counter", lambda: now[0])
    clock = StageClock()

    def frames():  # decoding: 1 s a frame
        for k in range(3):
            now[0] += 1
            yield k

    def pairs():  # flow: 2 s more per frame, on top of the decoding nested inside it
        for k in clock.iterate("decode", frames()):
            now[0] += 2
            yield k

    got = []
    for k in clock.iterate("flow", pairs()):
        with clock("i3d"):
            now[0] += 4
        now[0] += 100  # outside any stage: not counted
        got.append(k)
    assert got == [0, 1, 2]
    assert clock.seconds == {"decode": 3.0, "flow": 6.0, "i3d": 12.0}


def test_warn_once(monkeypatch, capsys):
    import utils

    monkeypatch.setattr(utils, "_WARNED", set())
    for _ in range(3):
        warn_once("x.json: 2 segments kept as given")
    warn_once("y.json: other")
    assert capsys.readouterr().err == "warning: x.json: 2 segments kept as given\nwarning: y.json: other\n"


def test_format_table_is_an_aligned_markdown_table():
    from utils import format_table

    text = format_table(["class", "AP"], [["Diving", "75.45"], ["LongJump", "3.1"]], title="t")
    assert text.splitlines() == [
        "t",
        "| class    |    AP |",
        "|----------|------:|",
        "| Diving   | 75.45 |",
        "| LongJump |   3.1 |",
    ]
    assert format_table(["a", "b"], [], align="rl").splitlines()[1] == "|----:|-----|"  # min width 3
    with pytest.raises(ValueError, match="2 columns"):
        format_table(["a", "b"], [["only one"]])
    with pytest.raises(ValueError, match="2 columns"):
        format_table(["a", "b"], [], align="lx")


# --- issue 20: one run per output folder, names from data as file names, --device, upper bounds -------------------

from folder_holder import held, holder  # noqa: E402


def test_claim_output_dir_one_run_per_folder(tmp_path):
    import re
    import signal
    import socket

    from utils import InputError, claim_output_dir, release_output_dirs

    folder = tmp_path / "out"
    folder.mkdir()
    child = held(holder(folder))
    try:
        with pytest.raises(InputError) as e:
            claim_output_dir(folder, "--save_path")
        pattern = (
            rf"{re.escape(str(folder))}: in use by another run \(pid {child.pid} on {re.escape(socket.gethostname())}, "
            rf"started \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d: main.py --save_path {re.escape(str(folder))}\); "
            r"wait for it to end, or choose another --save_path"
        )
        assert re.fullmatch(pattern, str(e.value)), str(e.value)
        with pytest.raises(InputError, match="shards of one extract job may share"):
            claim_output_dir(folder, "--save_path", job="j", part="0/2")  # a job does not share with a plain run
    finally:
        child.send_signal(signal.SIGKILL)  # the kernel drops its lock: the next claim proceeds
        child.wait()
    (stale,) = folder.iterdir()
    assert stale.name.startswith(".acrnet.") and stale.name.endswith(".holder")
    claim_output_dir(folder, "--save_path")
    claim_output_dir(folder, "--save_path")  # held already: no-op
    (mine,) = folder.iterdir()  # the killed run's holder file is gone, this process's is there
    assert mine != stale and json.loads(mine.read_text())["pid"] == os.getpid()
    release_output_dirs()
    assert list(folder.iterdir()) == []


def test_claim_output_dir_shards_of_one_job(tmp_path):
    from utils import InputError, claim_output_dir, release_output_dirs

    folder = tmp_path / "out"
    folder.mkdir()
    child = held(holder(folder, job="j", part="0/2"))
    try:
        claim_output_dir(folder, "--output_dir", job="j", part="1/2")  # another shard of the same job: shares
        release_output_dirs()
        for job, part in [("j", "0/2"), ("k", "1/2"), (None, None)]:  # the same shard twice, another job, a plain run
            with pytest.raises(InputError, match=f"pid {child.pid} on "):
                claim_output_dir(folder, "--output_dir", job=job, part=part)
    finally:
        child.kill()
        child.wait()
    release_output_dirs()


def test_claims_starting_together_let_exactly_one_run(tmp_path):
    """Runs started at the same moment: the claims are made one at a time, so exactly one holds the folder."""
    import time

    folder = tmp_path / "out"
    folder.mkdir()
    start = time.time() + 4.0  # all four are started (and have imported torch) by then
    procs = [holder(folder, start=start, hold=3.0) for _ in range(4)]
    outs = [p.communicate(timeout=60)[0].split()[0] for p in procs]
    assert sorted(outs) == ["busy", "busy", "busy", "held"], outs
    from utils import claim_output_dir, release_output_dirs

    claim_output_dir(folder, "--save_path")  # the winner has ended: the folder is free, its holder file removed
    release_output_dirs()
    assert list(folder.iterdir()) == []


def test_safe_file_name():
    from utils import InputError, safe_file_name

    for name in ["video_test_0000004", "v_-abc_12", "a..b", ".hidden", "名前 with spaces"]:
        assert safe_file_name(name, "src") == name
    cases = {
        "../../../../tmp/x/pwned": "it holds a path separator, / or \\",
        "a\\b": "it holds a path separator, / or \\",
        "..": ".. names a folder",
        ".": ". names a folder",
        "": "it is empty",
        "a\x00b": "it holds a NUL or other control character",
        "a\nb": "it holds a NUL or other control character",
        "a\x7fb": "it holds a NUL or other control character",
    }
    for name, why in cases.items():
        with pytest.raises(InputError) as e:
            safe_file_name(name, Path("ann/videoname.npy"))
        assert str(e.value) == f"ann/videoname.npy: video name {ascii(name)}: cannot be a file name ({why})"
        assert "\n" not in str(e.value) and "\x00" not in str(e.value)
    with pytest.raises(InputError, match=r"^src: class 3: cannot be a file name \(it is not text but int\)$"):
        safe_file_name(3, "src", "class")


def test_resolve_device(monkeypatch):
    from utils import InputError, resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    choices = "choose cpu, cuda, cuda:N (N = a GPU index) or auto (CUDA if there is a GPU, else cpu)"
    for name in ["foo", "cpu:0", "CUDA", "cuda:", "cuda:x", "cuda:-1", "mps", ""]:
        with pytest.raises(InputError) as e:
            resolve_device(name)
        assert str(e.value) == f"--device {name}: not a device; {choices}"
    with pytest.raises(InputError, match=r"^--device cuda\\n1: not a device"):  # one line, whatever was typed
        resolve_device("cuda\n1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for name in ["cuda", "cuda:0"]:
        with pytest.raises(InputError) as e:
            resolve_device(name)
        assert (
            str(e.value)
            == f"--device {name}: this machine has no CUDA GPU (PyTorch sees none); use --device cpu or auto"
        )
    assert resolve_device("auto") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(InputError, match=r"^--device cuda:2: this machine has 2 CUDA GPU\(s\), cuda:0 to cuda:1$"):
        resolve_device("cuda:2")


def test_act_th_count_is_capped():
    from utils import MAX_THRESHOLDS, InputError, parse_act_th

    assert len(parse_act_th("0:1:0.001")) == MAX_THRESHOLDS == 1000
    assert len(parse_act_th(",".join(["0.5"] * 1000))) == 1000
    rule = "at most 1000 (post-processing time and memory grow with the count; the method uses 18: 0.1:1.0:0.05)"
    for text, count in [("0:1:1e-9", "1000000000"), ("0:1:0.000999", "1002"), ("0:1:1e-300", "1e+300")]:
        with pytest.raises(InputError) as e:
            parse_act_th(text)  # refused before numpy.arange allocates
        assert str(e.value) == f"--act_th {text!r}: {count} thresholds, {rule}"
    with pytest.raises(InputError, match=r": 1001 thresholds, at most 1000"):
        parse_act_th(" ".join(["0.5"] * 1001))


def test_available_memory_is_a_positive_part_of_the_machine():
    from utils import available_memory, format_bytes

    avail, what = available_memory(torch.device("cpu"))
    assert 0 < avail <= os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") and what
    assert format_bytes(3.07e13) == "30.7 TB" and format_bytes(999) == "999 B" and format_bytes(1.5e9) == "1.5 GB"
