"""Small shared helpers: the one-line input error, atomic writes, seeding, device choice."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import random
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch


class InputError(Exception):
    """Bad user input (file, flag, checkpoint). The CLI prints `error: <message>` on one line and exits 2.

    The message must name the file (or flag) and the problem, e.g.
    `features/val/video_x_rgb.npy: width 512, expected 1024`.
    """


def read_json(path: str | os.PathLike) -> Any:
    """Parse a JSON file; a missing, unreadable or malformed file → InputError naming it (one line)."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read ({type(e).__name__})") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None


def is_finite_number(x: Any) -> bool:
    """A JSON number (int or float, not bool) that is finite."""
    return isinstance(x, int | float) and not isinstance(x, bool) and bool(np.isfinite(x))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success rename it onto `path` (atomic on POSIX).

    A crash or an exception leaves the old `path` untouched and removes the temporary file,
    so a reader never sees a half-written checkpoint, feature file or JSON.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give outputs the permissions open() would
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def atomic_json_dump(obj: Any, path: str | os.PathLike, **kwargs: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, **kwargs))


def atomic_csv_write(path: str | os.PathLike, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Write a CSV (header + rows, `\n` line ends) atomically."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue())


def atomic_np_save(array: np.ndarray, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:  # np.save on a name would append ".npy"
            np.save(f, array)


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def run_cli(body: Callable[[], int | None], *, interrupted: str | None = None) -> int:
    """Run a command-line body → exit code: its own int (None = 0); InputError → `error: <message>` on one line on
    stderr and 2; Ctrl-C → `interrupted; <interrupted>` and 130 (re-raised when no hint is given)."""
    try:
        code = body()
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if interrupted is None:
            raise
        print(f"\ninterrupted; {interrupted}", file=sys.stderr)
        return 130
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


def resolve_device(name: str = "auto") -> torch.device:
    """`auto` → CUDA if available, else CPU; otherwise `torch.device(name)` (clear error if CUDA is absent)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {name}: CUDA is not available on this machine")
    return device


# --- checkpoints -------------------------------------------------------------------------------------------------
# A checkpoint this project writes is a plain ACRNet state-dict (so `net.load_state_dict(torch.load(path,
# weights_only=True))` works, as with the authors' files) whose `_metadata[""]["acrnet"]` entry carries the class
# list, dataset name and config. PyTorch keeps `_metadata` through save/load and ignores unknown entries in it.

_META_KEY = "acrnet"


def save_checkpoint(state_dict: dict[str, torch.Tensor], path: str | os.PathLike, meta: dict[str, Any]) -> None:
    """Atomically write `state_dict` with `meta` (JSON-like: classes, data_name, config) attached."""
    sd = type(state_dict)(state_dict)  # shallow copy: do not touch the caller's metadata
    metadata = dict(getattr(state_dict, "_metadata", {}) or {})
    metadata[""] = {**metadata.get("", {}), _META_KEY: meta}
    sd._metadata = type(getattr(state_dict, "_metadata", None) or {})(metadata)  # type: ignore[attr-defined]
    atomic_torch_save(sd, path)


def load_checkpoint(
    path: str | os.PathLike, num_classes: int | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None]:
    """Load a checkpoint safely (`weights_only=True`) → (state_dict, meta or None for the authors' plain files).

    Raises InputError (one line naming the file) if it is missing, unreadable, not an ACRNet state-dict, or made
    for another class count than `num_classes`.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: checkpoint file not found")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt, truncated, or not a torch file: pickle/zip errors vary
        raise InputError(f"{path}: not a readable PyTorch checkpoint ({type(e).__name__})") from None
    if not isinstance(sd, dict) or "cas_rgb_encoder.2.weight" not in sd:
        raise InputError(f"{path}: not an ACRNet state-dict (no 'cas_rgb_encoder.2.weight' entry)")
    found = int(sd["cas_rgb_encoder.2.weight"].shape[0])
    if num_classes is not None and found != num_classes:
        raise InputError(f"{path}: checkpoint is for {found} classes, but the dataset has {num_classes}")
    meta = (getattr(sd, "_metadata", None) or {}).get("", {}).get(_META_KEY)
    return sd, meta
