"""Small shared helpers: the one-line input error, atomic writes and output folders, the one text table, flag
parsers, seeding, device choice and determinism, checkpoints, stage timing."""

from __future__ import annotations

import contextlib
import csv
import errno
import hashlib
import io
import json
import math
import os
import random
import re
import shlex
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

try:
    import fcntl
except ImportError:  # not POSIX: temporaries are not locked (see remove_stale_temps)
    fcntl = None  # type: ignore[assignment]

import numpy as np
import torch


class InputError(Exception):
    """Bad user input (file, flag, checkpoint). The CLI prints `error: <message>` on one line and exits 2.

    The message must name the file (or flag) and the problem, e.g.
    `features/val/video_x_rgb.npy: width 512, expected 1024`.
    """


class OutputError(InputError):
    """An output cannot be written (disk full, read-only or forbidden folder): one line naming the file and the cause;
    the CLI prints it like an InputError (exit 2). Whatever the file held before is unchanged."""


def read_json(path: str | os.PathLike) -> Any:
    """Parse a JSON file; a missing, unreadable or malformed file → InputError naming it (one line).

    Stricter than json.loads where it would silently read something else than the file says: a key listed twice in
    one object (json.loads keeps the last: a duplicated video id replaced the first entry) → InputError naming the
    key. Numbers float64 cannot hold as finite values (1e400, a 400-digit integer) and NaN / Infinity read as
    `JSONNumber` (inf or nan, shown as written), which every finiteness check refuses (`number_problem`).
    """
    path = Path(path)

    def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) != len(pairs):
            seen: set[str] = set()
            key = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
            raise InputError(f"{path}: key {key!r} appears twice in one object (JSON readers keep only the last)")
        return obj

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read ({type(e).__name__})") from None
    try:
        return json.loads(
            text, object_pairs_hook=unique_keys, parse_float=_json_float, parse_int=_json_int,
            parse_constant=JSONNumber,
        )  # fmt: skip
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    except RecursionError:
        raise InputError(f"{path}: not valid JSON (nested too deeply)") from None


class JSONNumber(float):
    """A JSON number float64 cannot hold as a finite value (1e400, a 400-digit integer), or NaN / Infinity: the float
    it reads as (inf / nan, so every finiteness check refuses it) that shows as written in messages."""

    text: str

    def __new__(cls, text: str) -> JSONNumber:
        self = super().__new__(cls, float(text))  # float() takes any number of digits (int() stops at 4300)
        self.text = text
        return self

    def __repr__(self) -> str:
        return _shorten_digits(self.text)

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)


def _json_float(text: str) -> float:
    value = float(text)
    return value if math.isfinite(value) else JSONNumber(text)


def _json_int(text: str) -> int | float:
    return int(text) if math.isfinite(float(text)) else JSONNumber(text)


def _shorten_digits(text: str, keep: int = 10) -> str:
    """A long number as `1000000000…0000000000 (401 digits)`; short ones as they are."""
    if len(text) <= 2 * keep + 4:
        return text
    digits = sum(c.isdigit() for c in text)
    return f"{text[:keep]}…{text[-keep:]} ({digits} digits)"


def show_value(x: Any) -> str:
    """A value read from a file, for a one-line message: JSON's spelling (true, null, "text"), long numbers shortened,
    containers by their type."""
    if x is None or isinstance(x, bool | str):
        return _shorten_digits(json.dumps(x), 40) if isinstance(x, str) else json.dumps(x)
    if isinstance(x, JSONNumber):
        return repr(x)
    if isinstance(x, int | np.integer):
        try:
            return _shorten_digits(str(x))
        except ValueError:  # over Python's 4300-digit conversion limit
            return f"an integer of about {int(int(x).bit_length() * math.log10(2)) + 1} digits"
    if isinstance(x, float | np.floating):
        return repr(float(x))
    if isinstance(x, list | dict):
        text = json.dumps(x, default=repr)
        return text if len(text) <= 60 else f"{text[:57]}..."
    return f"a {type(x).__name__}"


def is_finite_number(x: Any) -> bool:
    """A number (Python or NumPy int or float, not bool) that is finite as a float64: a 400-digit integer is not."""
    if isinstance(x, bool | np.bool_) or not isinstance(x, int | float | np.integer | np.floating):
        return False
    try:
        return math.isfinite(x)
    except OverflowError:  # an int beyond float64's range
        return False


def number_problem(x: Any) -> str | None:
    """Why `x`, a value read from a file, is not a finite number → a phrase naming it (`true is not a number`,
    `1e400 is not a finite number`), or None when it is one."""
    if is_finite_number(x):
        return None
    if isinstance(x, bool | np.bool_) or not isinstance(x, int | float | np.integer | np.floating):
        kind = " (a string)" if isinstance(x, str) else ""
        return f"{show_value(x)} is not a number{kind}"
    return f"{show_value(x)} is not a finite number"


# --- atomic outputs ----------------------------------------------------------------------------------------------
# Every output is written as `<folder>/.<name>.<random>.tmp/<name>` and renamed onto `<folder>/<name>` when complete.
# The private folder gives the file its final name while it is written, so what a writer derives from the name
# is what a direct save would give (torch.save names its zip archive's inner folder after the file: a checkpoint's
# bytes do not depend on the temporary name). The writing process holds an exclusive flock on the file until the
# rename: a killed process loses its lock, which is how remove_stale_temps tells a stale temporary from a live one.

_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp$")  # tempfile's 8 random characters


def _lock(fd: int, blocking: bool = True) -> bool:
    """Exclusive flock on `fd` → True; False where the file system has no locks (or not POSIX). With
    blocking=False a lock held by another process raises BlockingIOError."""
    if fcntl is None:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        raise
    except OSError:  # ENOLCK, EOPNOTSUPP: e.g. an NFS mount without a lock daemon
        return False
    return True


@contextlib.contextmanager
def _temp_file(path: Path) -> Iterator[Path]:
    """A locked, empty `<parent>/.<name>.<random>.tmp/<name>` (removed, folder and all, on exit)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(3):  # again only if another process's remove_stale_temps took it before it was locked
        folder = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
        tmp = folder / path.name
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # 0o666 & ~umask, like open()
        except FileNotFoundError:
            continue
        if not _lock(fd):  # no locks here: nothing to hold (and an open file could not be renamed off POSIX)
            os.close(fd)
            fd = -1
            break
        try:
            if os.path.samestat(os.fstat(fd), os.stat(tmp)):
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    else:
        raise OSError(errno.EAGAIN, "its temporary file was removed by another process three times")
    try:
        yield tmp
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # still locked: no other process takes it meanwhile
        if fd >= 0:
            os.close(fd)


def _write_failure(path: Path, cause: str) -> OutputError:
    kept = "; the previous file is kept" if path.exists() else ""
    return OutputError(f"{path}: write failed: {cause}{kept}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path with `path`'s file name; on success rename it onto `path` (atomic on POSIX).

    A crash or an exception leaves the old `path` untouched and removes the temporary file, so a reader never sees a
    half-written checkpoint, feature file or JSON. A failed write (OSError: no space, read-only, permission, I/O)
    → OutputError `<path>: write failed: <cause>[; the previous file is kept]`.
    """
    path = Path(path)
    try:
        with _temp_file(path) as tmp:
            yield tmp
            os.replace(tmp, path)
    except OSError as e:
        raise _write_failure(path, e.strerror or str(e)) from None


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """torch.save(obj, path), atomically; the bytes equal a direct torch.save to `path` (same archive name).

    PyTorch's own writer reports a failed write as `RuntimeError: [enforce fail at inline_container.cc:...]
    unexpected pos ...` without the OS's reason: the cause is then read from the file system (full, read-only).
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        try:
            torch.save(obj, tmp)
        except RuntimeError as e:
            if "inline_container" not in str(e) and "StreamWriter" not in str(e):
                raise  # not a write failure: a bug, shown as such
            raise _write_failure(path, _file_system_cause(tmp.parent, e)) from None


def _file_system_cause(folder: Path, error: Exception) -> str:
    """Why a write into `folder` failed when the writer did not say (PyTorch's C++ writer)."""
    try:
        st = os.statvfs(folder)
    except OSError:
        st = None
    if st is not None and st.f_flag & os.ST_RDONLY:
        return os.strerror(errno.EROFS)  # "Read-only file system"
    if st is not None and st.f_bavail * st.f_frsize < (1 << 20):
        return os.strerror(errno.ENOSPC)  # "No space left on device"
    first = " ".join(str(error).split())[:120]
    return f"PyTorch could not write it ({first}): the disk may be full or over quota"


def atomic_text_write(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_json_dump(obj: Any, path: str | os.PathLike, **kwargs: Any) -> None:
    atomic_text_write(path, json.dumps(obj, **kwargs))


def atomic_csv_write(path: str | os.PathLike, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Write a CSV (header + rows, `\n` line ends) atomically."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    atomic_text_write(path, buf.getvalue())


def atomic_np_save(array: np.ndarray, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:  # np.save on a name would append ".npy"
            np.save(f, array)


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Remove what killed saves left in `folder` (not its subfolders) → the removed paths; one note on stderr.

    Only this project's temporaries are touched: `.<name>.<random>.tmp` folders holding nothing but `<name>`, and
    plain files of that name (earlier versions wrote those). One is stale when no process holds its lock, so a
    concurrent run of ours (another extract.py shard, a training next to a localize run) keeps its live ones. Where
    the file system has no locks (some NFS mounts) nothing can be told apart and nothing is removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed, size = [], 0
    for entry in sorted(folder.iterdir()):
        m = _TEMP_NAME.match(entry.name)
        if m is None or entry.is_symlink():
            continue
        if entry.is_dir():
            inside = os.listdir(entry)
            if inside not in ([], [m["name"]]):
                continue  # not ours
            target = entry / m["name"] if inside else None
        else:
            target = entry
        n = _remove_if_unlocked(entry, target)
        if n is not None:
            removed.append(entry)
            size += n
    if removed:
        print(
            f"note: {folder}: removed {len(removed)} temporary file(s) of interrupted saves ({size / 1e6:.1f} MB)",
            file=sys.stderr,
        )
    return removed


def _remove_if_unlocked(entry: Path, target: Path | None) -> int | None:
    """Remove `entry` (a temp folder or file) unless a live process locks `target` → bytes freed, or None if kept."""
    if target is None:  # an empty temp folder: its writer died before creating the file (or just renamed it)
        with contextlib.suppress(OSError):
            entry.rmdir()
            return 0
        return None
    try:
        fd = os.open(target, os.O_WRONLY)
    except OSError:
        return None
    try:
        if not _lock(fd, blocking=False):
            return None  # no locks here: cannot tell a live temporary from a stale one
        size = os.fstat(fd).st_size
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()
        return size
    except OSError:  # BlockingIOError: a live writer holds it; else it vanished or cannot be removed
        return None
    finally:
        os.close(fd)


def check_output_dir(folder: str | os.PathLike, flag: str) -> Path:
    """Create `folder` if needed and prove a write into it (a 64 KiB temporary file, fsync'ed, removed) → the path.

    Run before any work, so a read-only, forbidden or full output folder is one line at the start
    (`<folder>: output folder (<flag>) is not writable: <cause>`), not a traceback at the first save.
    """
    folder = Path(folder)
    try:  # exists() too: under a folder that cannot be entered it raises PermissionError
        if folder.exists() and not folder.is_dir():
            raise OutputError(f"{folder}: {flag} is a file, not a folder")
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{folder}: cannot create the output folder ({flag}): {e.strerror or e}") from None
    try:
        with _temp_file(folder / "write_check") as tmp, open(tmp, "wb") as f:
            f.write(bytes(1 << 16))
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise OutputError(f"{folder}: output folder ({flag}) is not writable: {e.strerror or e}") from None
    return folder


def prepare_output_dir(
    folder: str | os.PathLike, flag: str, *, job: str | None = None, part: str | None = None
) -> Path:
    """What every command does first with its output folder: check_output_dir, claim_output_dir (held until the
    command ends), then remove_stale_temps."""
    folder = check_output_dir(folder, flag)
    claim_output_dir(folder, flag, job=job, part=part)
    remove_stale_temps(folder)
    return folder


# --- one run per output folder -------------------------------------------------------------------------------------
# A run holds its output folder for its whole life: an exclusive flock on a holder file `.acrnet.<random>.holder` in
# the folder, which also says who holds it (pid, host, command, start time). The kernel drops a flock when its process
# ends in any way (a SIGKILL too), so a killed run never blocks the next; its holder file is removed by the next claim.
# Claims are made one at a time under a flock on the folder itself (held for milliseconds), so two runs starting at
# the same moment cannot both miss each other. Runs of one job may share a folder when they say so: processes with the
# same `job` and different `part`s (extract.py's shards and torchrun ranks). Where the file system has no locks (some
# NFS mounts) runs are not kept apart.

_HOLDER = re.compile(r"^\.acrnet\.[A-Za-z0-9_]{8}\.holder$")
_CLAIMS: dict[str, tuple[int, Path]] = {}  # real path of a folder this process holds → (holder fd, holder file)
CLAIM_WAIT = 30.0  # seconds a claim waits for another process's claim of the same folder to finish


def claim_output_dir(folder: str | os.PathLike, flag: str, *, job: str | None = None, part: str | None = None) -> None:
    """Hold the existing folder `folder` until this process ends or `release_output_dirs()` → None; held by another
    live run (with another `job`, or the same `part` of it) → InputError naming the holder. Holding it already: no-op.
    """
    folder = Path(folder)
    key = os.path.realpath(folder)
    if key in _CLAIMS or fcntl is None:
        return
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError as e:
        raise OutputError(f"{folder}: cannot open the output folder ({flag}): {e.strerror or e}") from None
    try:
        if not _lock_waiting(dir_fd, folder, flag):
            return  # no locks on this file system
        for entry in sorted(folder.iterdir()):
            if _HOLDER.match(entry.name):
                holder = _live_holder(entry)
                if holder is not None and (job is None or holder.get("job") != job or holder.get("part") == part):
                    raise InputError(_in_use(folder, flag, holder, shared=job is not None))
        fd, name = tempfile.mkstemp(prefix=".acrnet.", suffix=".holder", dir=folder)
        _lock(fd)
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": shlex.join(sys.argv) if sys.argv and sys.argv[0] else "python",
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "job": job,
            "part": part,
        }
        os.write(fd, json.dumps(info).encode())
        _CLAIMS[key] = (fd, Path(name))
    except OSError as e:
        raise OutputError(f"{folder}: cannot hold the output folder ({flag}): {e.strerror or e}") from None
    finally:
        os.close(dir_fd)  # ends the claim's short lock on the folder (the holder file's lock stays)


def release_output_dirs() -> None:
    """Let go of every folder this process holds (run_cli does at the end of a command; process exit does too)."""
    for fd, path in _CLAIMS.values():
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(fd)
    _CLAIMS.clear()


def _lock_waiting(fd: int, folder: Path, flag: str) -> bool:
    """Exclusive flock on `fd`, waiting up to CLAIM_WAIT seconds → True (False: no locks here)."""
    deadline = time.monotonic() + CLAIM_WAIT
    while True:
        try:
            return _lock(fd, blocking=False)
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise InputError(
                    f"{folder}: another process has been claiming this output folder ({flag}) for {CLAIM_WAIT:.0f} s; "
                    "is it stopped?"
                ) from None
            time.sleep(0.02)


def _live_holder(path: Path) -> dict[str, Any] | None:
    """The holder file's info if a live process holds it, else None (a stale one is removed)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return None
    try:
        try:
            if not _lock(fd, blocking=False):
                return None
        except BlockingIOError:  # held: a live run
            try:
                info = json.loads(os.read(fd, 1 << 16) or b"{}")
            except ValueError:
                info = {}
            return info if isinstance(info, dict) else {}
        with contextlib.suppress(OSError):
            path.unlink()  # its process ended without letting go (killed): stale
        return None
    finally:
        os.close(fd)


def _in_use(folder: Path, flag: str, holder: dict[str, Any], shared: bool) -> str:
    """The one line for a folder held by another run."""
    shown = lambda v: "".join(c if c.isprintable() else "?" for c in str(v))  # noqa: E731 — one line, whatever it holds
    command = shown(holder.get("command", "?"))
    command = command if len(command) <= 200 else command[:199] + "…"
    who = f"pid {shown(holder.get('pid', '?'))} on {shown(holder.get('host', '?'))}"
    since = f", started {shown(holder['started'])}" if holder.get("started") else ""
    hint = f"wait for it to end, or choose another {flag}"
    if shared:
        hint += " (shards of one extract job may share a folder: same videos, weights, --flow and shard count)"
    return f"{folder}: in use by another run ({who}{since}: {command}); {hint}"


# --- timing -----------------------------------------------------------------------------------------------------

T = TypeVar("T")


class StageClock:
    """Wall seconds per stage of a pipeline: `with clock("i3d"): ...`, or `clock.iterate("decode", frames)` for the
    time spent producing an iterator's items. A stage nested in another counts only for itself (the outer stage's
    time excludes it), so the stages add up to the time spent inside them: where the wall time went."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._nested: list[float] = []  # per open stage: seconds spent in stages opened inside it

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        self._nested.append(0.0)
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            self.seconds[stage] = self.seconds.get(stage, 0.0) + elapsed - self._nested.pop()
            if self._nested:
                self._nested[-1] += elapsed

    def iterate(self, stage: str, items: Iterable[T]) -> Iterator[T]:
        it = iter(items)
        while True:
            with self(stage):
                try:
                    item = next(it)
                except StopIteration:
                    return
            yield item


# --- progress and the run log -------------------------------------------------------------------------------------
# A progress bar is for a person watching a terminal. Redirected to a file, tqdm's bars fill it with `\r` lines: there
# the same progress is a plain line every PROGRESS_EVERY seconds. A run log (log_output) gets the plain lines, never a
# bar, whatever stderr is.

PROGRESS_EVERY = 10.0  # seconds between two plain progress lines of one task


class Tee:
    """A text stream writing to `stream` (what stdout or stderr was) and to the open text file `log`."""

    def __init__(self, stream: Any, log: Any) -> None:
        self.stream, self.log = stream, log

    def write(self, text: str) -> int:
        self.stream.write(text)
        self.log.write(text)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()
        self.log.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def __getattr__(self, name: str) -> Any:  # encoding, fileno, ...: the stream's
        return getattr(self.stream, name)


def _terminal_and_logs(stream: Any) -> tuple[Any, list[Any]]:
    """`stream` (sys.stderr) → (the stream under any Tee layers, the log files of those layers)."""
    logs = []
    while isinstance(stream, Tee):
        logs.append(stream.log)
        stream = stream.stream
    return stream, logs


@contextlib.contextmanager
def log_output(path: str | os.PathLike, *, append: bool) -> Iterator[Any]:
    """Inside the block, what is printed on stdout and stderr also goes to the file `path` (appended, or a new file),
    line-buffered, so a killed run's log holds every line printed before the kill → the open log file."""
    path = Path(path)
    try:
        log = open(path, "a" if append else "w", encoding="utf-8", buffering=1)
    except OSError as e:
        raise OutputError(f"{path}: cannot write the run log: {e.strerror or e}") from None
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = Tee(saved[0], log), Tee(saved[1], log)
    try:
        yield log
    finally:
        sys.stdout, sys.stderr = saved
        log.close()


class Progress:
    """Progress of one task (iterate over it, or call `update`): a tqdm bar where stderr is a terminal; elsewhere a
    plain line on stderr every PROGRESS_EVERY seconds (`check test features: 120/212 (57 %), 3.1 s`), and a last
    one at the end of a task that printed any; nothing at all when `enabled` is False (--no_progress). A run log
    (log_output) gets the plain lines, never the bar. Use `write` for a message while a bar is shown."""

    def __init__(
        self,
        iterable: Iterable[Any] | None = None,
        *,
        desc: str,
        total: float | None = None,
        unit: str = "it",
        unit_scale: bool = False,
        leave: bool = True,
        initial: int = 0,
        enabled: bool = True,
    ) -> None:
        if total is None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.iterable, self.desc, self.unit, self.unit_scale = iterable, desc, unit, unit_scale
        self.n, self._total, self.postfix = initial, total, ""
        self._start = self._last = time.perf_counter()
        self._printed = self._closed = False
        self.bar: Any = None
        self._lines: list[Any] = []  # streams that get the plain lines
        if not enabled or sys.stderr is None:
            return
        terminal, logs = _terminal_and_logs(sys.stderr)
        if terminal is not None and terminal.isatty():
            from tqdm import tqdm

            self.bar = tqdm(
                total=total, desc=desc, unit=unit, unit_scale=unit_scale, leave=leave, initial=initial, file=terminal,
                dynamic_ncols=True,
            )  # fmt: skip
            self._lines = logs
        else:
            self._lines = [sys.stderr]

    @property
    def total(self) -> float | None:
        return self._total

    @total.setter
    def total(self, value: float | None) -> None:
        self._total = value
        if self.bar is not None:
            self.bar.total = value
            self.bar.refresh()

    def __iter__(self) -> Iterator[Any]:
        for item in self.iterable:  # type: ignore[union-attr]
            yield item
            self.update()
        self.close()  # (not in a `finally`: a loop left by an exception prints no "done" line after its error)

    def __len__(self) -> int:
        return len(self.iterable)  # type: ignore[arg-type]

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: float = 1) -> None:
        self.n += n
        if self.bar is not None:
            self.bar.update(n)
        if self._lines:
            now = time.perf_counter()
            if now - self._last >= PROGRESS_EVERY:
                self._print_line(now)

    def set_postfix(self, **values: Any) -> None:
        self.postfix = ", ".join(f"{k} {v}" for k, v in values.items())
        if self.bar is not None:
            self.bar.set_postfix(**values)

    def write(self, message: str, file: Any = None) -> None:
        """Print `message` on a line of its own (above the bar, if one is shown)."""
        if self.bar is not None:
            self.bar.write(message, file=file or sys.stdout)
        else:
            print(message, file=file or sys.stdout)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.bar is not None:
            self.bar.close()
        if self._printed:
            self._print_line(time.perf_counter())

    def line(self, now: float | None = None) -> str:
        """The plain progress line: `<desc>: <n>/<total> (<pct> %), <seconds> s[, <postfix>]`."""
        now = time.perf_counter() if now is None else now
        amount = self._amount(self.n)
        if self._total:
            amount += f"/{self._amount(self._total)} ({100 * self.n / self._total:.0f} %)"
        else:
            amount += f" {self.unit}"
        return f"{self.desc}: {amount}, {now - self._start:.1f} s" + (f", {self.postfix}" if self.postfix else "")

    def _amount(self, value: float) -> str:
        if self.unit_scale:
            from tqdm import tqdm

            return tqdm.format_sizeof(value, self.unit)
        return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"

    def _print_line(self, now: float) -> None:
        text = self.line(now) + "\n"
        for stream in self._lines:
            stream.write(text)
            stream.flush()
        self._last, self._printed = now, True


_WARNED: set[str] = set()


def warn_once(message: str) -> None:
    """Print `warning: <message>` on stderr, once per process (a file read for both splits warns once)."""
    if message not in _WARNED:
        _WARNED.add(message)
        print(f"warning: {message}", file=sys.stderr)


def format_table(
    header: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None, align: str | None = None
) -> str:
    """The project's one text table (main's mAP tables, evaluate's AP table, localize's detections): a GitHub Markdown
    table padded to align on a terminal, so it reads in a console and pastes into a README unchanged.

    Cells are printed with str() (callers format their numbers). `align` has one letter per column, `l` or `r`;
    default: the first column left (names), the others right (numbers). `title`, if given, is the line above.
    """
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    align = align or "l" + "r" * (len(header) - 1)
    if len(align) != len(header) or set(align) - {"l", "r"} or any(len(row) != len(header) for row in cells):
        raise ValueError(f"format_table: every row and `align` need {len(header)} columns, align only 'l'/'r'")
    widths = [max(3, *(len(row[i]) for row in cells)) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        padded = (c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(row, widths, align, strict=True))
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join(
        "-" * (w + 2) if a == "l" else "-" * (w + 1) + ":" for w, a in zip(widths, align, strict=True)
    )
    lines = [line(cells[0]), rule + "|", *map(line, cells[1:])]
    return "\n".join(([title] if title else []) + lines)


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def run_cli(body: Callable[[], int | None], *, interrupted: str | Callable[[], str] | None = None) -> int:
    """Run a command-line body → exit code: its own int (None = 0); InputError → `error: <message>` on one line on
    stderr and 2; Ctrl-C → `interrupted; <interrupted>` (a text, or a function giving it then) and 130 (re-raised
    when no hint is given)."""
    try:
        code = body()
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if interrupted is None:
            raise
        print(f"\ninterrupted; {interrupted if isinstance(interrupted, str) else interrupted()}", file=sys.stderr)
        return 130
    finally:
        release_output_dirs()  # the command's output folders are free for the next run
    return code if isinstance(code, int) else 0


def parse_shard(text: str) -> tuple[int, int]:
    """`--shard I/N` → (I, N) with 0 <= I < N (0-based: shard I takes videos I, I+N, ... of the sorted list)."""
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise InputError(f"--shard {text!r}: expected I/N, e.g. 0/4") from None
    if not 0 <= i < n:
        raise InputError(f"--shard {text}: needs 0 <= I < N")
    return i, n


MAX_THRESHOLDS = 1000  # --act_th: post-processing time and memory grow with the count (the method uses 18)


def _too_many_thresholds(text: str, count: int | str) -> str:
    shown = text if len(text) <= 60 else text[:59] + "…"
    return (
        f"--act_th {shown!r}: {count} thresholds, at most {MAX_THRESHOLDS} (post-processing time and memory grow "
        "with the count; the method uses 18: 0.1:1.0:0.05)"
    )


def parse_act_th(text: str) -> list[float]:
    """`--act_th` value → thresholds. `a:b:s` means numpy.arange(a, b, s) (exactly its float64 values);
    otherwise a list separated by spaces and/or commas (`0.1 0.2`, `0.1,0.2`). Never evaluated as code."""
    text = text.strip()
    if not text:
        raise InputError("--act_th: empty value; give start:stop:step (e.g. 0.1:1.0:0.05) or numbers (0.1,0.2)")
    try:
        if ":" in text:
            parts = text.split(":")
            if len(parts) != 3:
                raise ValueError
            start, stop, step = (float(p) for p in parts)
            if not all(math.isfinite(v) for v in (start, stop, step)) or step <= 0:
                raise InputError(f"--act_th {text!r}: start:stop:step needs finite numbers and a positive step")
            count = (stop - start) / step  # numpy.arange's length (rounded up), known before it allocates
            if count > MAX_THRESHOLDS:
                raise InputError(_too_many_thresholds(text, f"{math.ceil(count)}" if count < 1e15 else f"{count:.3g}"))
            values = np.arange(start, stop, step).tolist()
        else:
            values = [float(p) for p in re.split(r"[,\s]+", text) if p]
    except ValueError:
        raise InputError(
            f"--act_th {text!r}: not numbers; give start:stop:step (e.g. 0.1:1.0:0.05) or a list (0.1,0.2 / 0.1 0.2)"
        ) from None
    if not values:
        raise InputError(f"--act_th {text!r}: gives no thresholds")
    if len(values) > MAX_THRESHOLDS:
        raise InputError(_too_many_thresholds(text, len(values)))
    if not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in values):
        raise InputError(f"--act_th {text!r}: thresholds must lie in [0, 1] (scores are clipped to [0, 1])")
    return values


def parse_seeds(text: str) -> list[int]:
    """`--seeds 42,43,44` → [42, 43, 44] (commas and/or spaces)."""
    try:
        return [int(p) for p in re.split(r"[,\s]+", text.strip()) if p]
    except ValueError:
        raise InputError(f"--seeds {text!r}: expected integers, e.g. 42,43,44") from None


def format_thresholds(values: Sequence[float]) -> str:
    """[0.1, 0.15, ...] → "0.1,0.15,..." (how configs print --act_th)."""
    return ",".join(f"{v:g}" for v in values)


DEVICE_CHOICES = "cpu, cuda, cuda:N (N = a GPU index) or auto (CUDA if there is a GPU, else cpu)"


def resolve_device(name: str = "auto", flag: str = "--device") -> torch.device:
    """`auto` → CUDA if available, else CPU; `cpu`, `cuda`, `cuda:N` → that device. Anything else, or a CUDA device
    this machine does not have → InputError `--device <name>: ...` (one line naming the choices)."""
    name = str(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    m = re.fullmatch(r"cpu|cuda(?::(\d{1,4}))?", name)
    if m is None:
        shown = name.encode("unicode_escape").decode("ascii")  # one line, whatever was typed
        raise InputError(f"{flag} {shown}: not a device; choose {DEVICE_CHOICES}")
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise InputError(f"{flag} {name}: this machine has no CUDA GPU (PyTorch sees none); use --device cpu or auto")
    count = torch.cuda.device_count()
    if m[1] is not None and int(m[1]) >= count:
        raise InputError(f"{flag} {name}: this machine has {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}")
    return torch.device(name)


def available_memory(device: torch.device) -> tuple[int, str]:
    """(bytes a run may still allocate on `device`, what that number is). CUDA: the GPU's free memory
    (torch.cuda.mem_get_info). CPU: MemAvailable of /proc/meminfo, capped by a cgroup v2 memory.max (containers);
    off Linux the free (or total) physical memory of os.sysconf."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free), f"free on {device}"
    avail, what = None, "available memory (RAM)"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    if avail is None:
        with contextlib.suppress(ValueError, OSError, AttributeError):
            pages = os.sysconf("SC_AVPHYS_PAGES") if hasattr(os, "sysconf") else -1
            avail = int(pages) * os.sysconf("SC_PAGE_SIZE") if pages > 0 else None
    if avail is None:
        avail = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        what = "physical memory (RAM)"
    with contextlib.suppress(OSError, ValueError):
        cg = Path("/sys/fs/cgroup")
        limit = (cg / "memory.max").read_text().strip()
        if limit != "max":
            room = int(limit) - int((cg / "memory.current").read_text())
            if room < avail:
                avail, what = max(room, 0), "memory left under this container's limit"
    return int(avail), what


def format_bytes(n: float) -> str:
    """1.5e9 → '1.5 GB' (decimal units)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


# --- names from data as file names -----------------------------------------------------------------------------------


def safe_file_name(name: Any, source: str | os.PathLike, what: str = "video name") -> str:
    """`name` (from data: a video or class name) as one file-name part → `name`, unchanged. A name that could leave the
    folder or break the file system → InputError `<source>: <what> <name>: cannot be a file name (<why>)`: empty, a
    path separator (/ or \\), `.` or `..` alone, a NUL or other control character. Every path built from a name read
    from data goes through here."""
    why = None
    if not isinstance(name, str) or not name:
        why = "it is empty" if isinstance(name, str) else f"it is not text but {type(name).__name__}"
    elif "/" in name or "\\" in name:
        why = "it holds a path separator, / or \\"
    elif name in (".", ".."):
        why = f"{name} names a folder"
    elif any(ord(c) < 32 or 127 <= ord(c) < 160 for c in name):
        why = "it holds a NUL or other control character"
    if why is not None:
        shown = ascii(name) if len(ascii(name)) <= 200 else ascii(name)[:199] + "..."
        where = str(source).encode("unicode_escape").decode("ascii")
        raise InputError(f"{where}: {what} {shown}: cannot be a file name ({why})")
    return name


@contextlib.contextmanager
def reproducible(device: torch.device, *, cudnn_benchmark: bool = False, tf32: bool = False) -> Iterator[None]:
    """Deterministic kernels inside the block, the previous settings restored after. CUDA: cuDNN deterministic, no
    autotuning (the authors' setting, method §8) unless `cudnn_benchmark`; `tf32` allows TF32 matmuls (the attention;
    cuDNN runs the convolutions in TF32 by default). CPU: torch.use_deterministic_algorithms (warn only)."""
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    saved = (torch.are_deterministic_algorithms_enabled(), cudnn.deterministic, cudnn.benchmark, matmul.allow_tf32)
    cudnn.deterministic, cudnn.benchmark = not cudnn_benchmark, cudnn_benchmark
    if tf32:
        matmul.allow_tf32 = True
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(saved[0])
        cudnn.deterministic, cudnn.benchmark, matmul.allow_tf32 = saved[1:]


# --- checkpoints -------------------------------------------------------------------------------------------------
# A checkpoint this project writes is a plain ACRNet state-dict (so `net.load_state_dict(torch.load(path,
# weights_only=True))` works, as with the authors' files) whose `_metadata[""]["acrnet"]` entry carries the class
# list, dataset name and config, and the checksum of the rest (`sha256`, see `checksum`). PyTorch keeps `_metadata`
# through save/load and ignores unknown entries in it. The resume file (train.py) carries the same checksum of its
# content. A zip archive stores its members uncompressed with a CRC that torch.load does not check: a flipped bit in a
# tensor loads silently, and trains NaN or scores 0 — the checksum is what tells a damaged file.

_META_KEY = "acrnet"
CHECKSUM_KEY = "sha256"
META_FIELDS = {  # the fields of a checkpoint's metadata entry → what each must be (checked on load)
    "classes": "a list of class names",
    "data_name": "a dataset name (a string)",
    "config": "a mapping of settings",
    "step": "a step number (an integer >= 0)",
    CHECKSUM_KEY: "a SHA-256 hex digest",
}


def _leaves(obj: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """The leaves of nested dicts / lists / tuples → (path of keys and indices, leaf), dict keys in a fixed order."""
    if isinstance(obj, dict):
        for key in sorted(obj, key=repr):
            yield from _leaves(obj[key], (*path, key))
    elif isinstance(obj, list | tuple):
        for i, item in enumerate(obj):
            yield from _leaves(item, (*path, i))
    else:
        yield path, obj


def checksum(obj: Any) -> str:
    """SHA-256 hex digest of a nested structure of tensors and plain values (a state-dict, a resume file): per leaf, in
    a fixed key order, its path, and a tensor's dtype, shape and bytes (row-major) or another value's repr. Equal for
    the object saved and the object loaded back (weights_only); any changed byte of a tensor changes it."""
    h = hashlib.sha256()
    for path, leaf in _leaves(obj):
        h.update(repr(path).encode())
        if isinstance(leaf, torch.Tensor):
            t = leaf.detach().cpu().contiguous()
            h.update(f"{t.dtype} {tuple(t.shape)};".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy())
        else:
            h.update(f"={leaf!r};".encode())
    return h.hexdigest()


def verify_checksum(path: Path, obj: Any, stored: Any) -> None:
    """`stored` (the file's checksum field) against checksum(obj) → InputError naming the file on a mismatch."""
    if not (isinstance(stored, str) and re.fullmatch(r"[0-9a-f]{64}", stored)):
        raise InputError(f"{path}: field {CHECKSUM_KEY}: expected a SHA-256 hex digest, found {describe(stored)}")
    if checksum(obj) != stored:
        raise InputError(
            f"{path}: checksum mismatch (the file is damaged; use another copy, or an earlier checkpoint of the run)"
        )


_NOTED: set[Path] = set()


def note_no_checksum(path: Path) -> None:
    """One note per file and process (a --model_file is read twice: its settings, then its weights)."""
    if path not in _NOTED:
        _NOTED.add(path)
        print(f"note: {path}: written before checkpoints carried a checksum; its tensors are checked to be finite only")


def _all_finite(t: torch.Tensor) -> bool:
    if not (t.is_floating_point() or t.is_complex()):
        return True
    if t.dtype in (torch.float16, torch.float32, torch.float64) and t.device.type == "cpu":
        return bool(np.isfinite(t.detach().numpy()).all())  # NumPy: 20x faster than torch.isfinite on a CPU
    return bool(torch.isfinite(t).all())


def check_finite(path: Path, obj: Any) -> None:
    """Every floating tensor in `obj` (nested dicts / lists) holds finite values, else an InputError naming the file
    and the tensor's key (a damaged file, or a run that diverged)."""
    for keys, leaf in _leaves(obj):
        if isinstance(leaf, torch.Tensor) and not _all_finite(leaf):
            bad = int((~torch.isfinite(leaf)).sum())
            raise InputError(
                f"{path}: tensor {'.'.join(map(str, keys))!r} holds {bad} NaN or infinite value(s) of {leaf.numel()} "
                "(a damaged file, or a run that diverged)"
            )


def describe(value: Any) -> str:
    """A short description of a wrong value in a message: its type and the start of its repr."""
    text = repr(value)
    return f"{type(value).__name__} {text[:40] + '...' if len(text) > 40 else text}"


def torch_load(path: Path, what: str) -> Any:
    """torch.load(path, weights_only=True) on the CPU; a missing, unreadable or foreign file → one InputError line."""
    if not path.is_file():
        raise InputError(f"{path}: {what} file not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt, truncated, or not a torch file: pickle/zip errors vary
        raise InputError(f"{path}: not a readable PyTorch {what} ({type(e).__name__})") from None


def save_checkpoint(state_dict: dict[str, torch.Tensor], path: str | os.PathLike, meta: dict[str, Any]) -> None:
    """Atomically write `state_dict` with `meta` (JSON-like: classes, data_name, config, step) and the checksum of
    both attached."""
    sd = type(state_dict)(state_dict)  # shallow copy: do not touch the caller's metadata
    meta = {k: v for k, v in meta.items() if k != CHECKSUM_KEY}
    meta[CHECKSUM_KEY] = checksum({"tensors": dict(sd), "meta": meta})
    metadata = dict(getattr(state_dict, "_metadata", {}) or {})
    metadata[""] = {**metadata.get("", {}), _META_KEY: meta}
    sd._metadata = type(getattr(state_dict, "_metadata", None) or {})(metadata)  # type: ignore[attr-defined]
    atomic_torch_save(sd, path)


def _checkpoint_meta(path: Path, sd: dict[str, Any]) -> dict[str, Any] | None:
    """The metadata entry of a loaded state-dict (None: an authors' plain file), its fields checked."""
    metadata = getattr(sd, "_metadata", None)
    if metadata is None:
        return None
    entry = metadata.get("") if isinstance(metadata, dict) else None
    if not isinstance(entry, dict):
        raise InputError(f"{path}: the state-dict's _metadata is not PyTorch's (a mapping of module names)")
    meta = entry.get(_META_KEY)
    if meta is None:
        return None
    if not isinstance(meta, dict):
        raise InputError(f"{path}: metadata: expected a mapping of {', '.join(META_FIELDS)}, found {describe(meta)}")
    for key, value in meta.items():
        if key not in META_FIELDS:
            raise InputError(f"{path}: metadata: unknown field {key!r} (the fields are {', '.join(META_FIELDS)})")
        ok = {
            "classes": lambda v: isinstance(v, list) and all(isinstance(c, str) for c in v),
            "data_name": lambda v: isinstance(v, str),
            "config": lambda v: isinstance(v, dict) and all(isinstance(k, str) for k in v),
            "step": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
            CHECKSUM_KEY: lambda v: isinstance(v, str),
        }[key](value)
        if not ok:
            raise InputError(f"{path}: metadata field {key!r}: expected {META_FIELDS[key]}, found {describe(value)}")
    return meta


def load_checkpoint(
    path: str | os.PathLike, num_classes: int | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None]:
    """Load a checkpoint safely (`weights_only=True`) → (state_dict, meta or None for the authors' plain files; the
    meta without its checksum).

    Raises InputError (one line naming the file) if it is missing, unreadable, not an ACRNet state-dict, its metadata
    malformed, its checksum does not match (a damaged file), a tensor holds NaN or infinite values, or it is made for
    another class count than `num_classes`. A file of this project without a checksum (written before it was stored)
    loads with a note.
    """
    path = Path(path)
    sd = torch_load(path, "checkpoint")
    if not isinstance(sd, dict) or "cas_rgb_encoder.2.weight" not in sd:
        raise InputError(f"{path}: not an ACRNet state-dict (no 'cas_rgb_encoder.2.weight' entry)")
    for key, value in sd.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise InputError(f"{path}: entry {key!r} is {describe(value)}, not a tensor (not an ACRNet state-dict)")
    meta = _checkpoint_meta(path, sd)
    if meta is not None:
        stored = meta.get(CHECKSUM_KEY)
        meta = {k: v for k, v in meta.items() if k != CHECKSUM_KEY}
        if stored is None:
            note_no_checksum(path)
        else:
            verify_checksum(path, {"tensors": dict(sd), "meta": meta}, stored)
    check_finite(path, sd)
    head = sd["cas_rgb_encoder.2.weight"]
    if head.dim() != 3:
        raise InputError(f"{path}: 'cas_rgb_encoder.2.weight' has shape {tuple(head.shape)}, expected [C, 1024, 1]")
    found = int(head.shape[0])
    if num_classes is not None and found != num_classes:
        raise InputError(f"{path}: checkpoint is for {found} classes, but the dataset has {num_classes}")
    return sd, meta
