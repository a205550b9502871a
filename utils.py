"""Small shared helpers: the one-line input error, atomic writes, the one text table, flag parsers, seeding, device
choice and determinism, checkpoints."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import random
import re
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
            values = np.arange(start, stop, step).tolist()
        else:
            values = [float(p) for p in re.split(r"[,\s]+", text) if p]
    except ValueError:
        raise InputError(
            f"--act_th {text!r}: not numbers; give start:stop:step (e.g. 0.1:1.0:0.05) or a list (0.1,0.2 / 0.1 0.2)"
        ) from None
    if not values:
        raise InputError(f"--act_th {text!r}: gives no thresholds")
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


def resolve_device(name: str = "auto") -> torch.device:
    """`auto` → CUDA if available, else CPU; otherwise `torch.device(name)` (clear error if CUDA is absent)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {name}: CUDA is not available on this machine")
    return device


@contextlib.contextmanager
def reproducible(device: torch.device, *, cudnn_benchmark: bool = False, tf32: bool = False) -> Iterator[None]:
    """Deterministic kernels inside the block, the previous settings restored after. CUDA: cuDNN deterministic, no
    autotuning (the authors' setting, SPEC §8) unless `cudnn_benchmark`; `tf32` allows TF32 matmuls (the attention;
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
