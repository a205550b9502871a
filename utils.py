"""Small shared helpers: the one-line input error, atomic writes, seeding, device choice."""

from __future__ import annotations

import contextlib
import json
import os
import random
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch


class InputError(Exception):
    """Bad user input (file, flag, checkpoint). The CLI prints `error: <message>` on one line and exits 2.

    The message must name the file (or flag) and the problem, e.g.
    `features/val/video_x_rgb.npy: width 512, expected 1024`.
    """


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
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def atomic_json_dump(obj: Any, path: str | os.PathLike, **kwargs: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, **kwargs))


def atomic_np_save(array: np.ndarray, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:  # np.save on a name would append ".npy"
            np.save(f, array)


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(name: str = "auto") -> torch.device:
    """`auto` → CUDA if available, else CPU; otherwise `torch.device(name)` (clear error if CUDA is absent)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {name}: CUDA is not available on this machine")
    return device
