"""The record of a training run, beside its checkpoint in --save_path (train.py writes it; `--seeds`: one record per
seed folder): what a researcher reads to see how a run went, and what reruns it.

- `<data_name>_train.csv`: one row per step, `step, loss, loss_cls, loss_gce_rgb, loss_gce_flow, lr, grad_norm,
  seconds`; written at each evaluation and at a --stop_at pause.
- `<data_name>_per_class.csv`: at each evaluation one row per class, `step, class, AP@<tIoU>…, AP@AVG` (the
  selection split: test, or the held-out videos of --val_fraction).
- `<data_name>_curves.png`: redrawn at each evaluation; losses, lr and gradient norm against step, mAP per tIoU and
  mAP@AVG against step, the kept checkpoint marked.
- `<data_name>.log`: what the run prints, without progress bars; appended across --resume.
- `<data_name>_config.json`: settings, package versions, git commit, data fingerprint; `main.py --config` reruns it.
- `tensorboard/`: event files with the per-step values, every evaluation, the per-class AP, the hyper-parameters.

Per-step values stay on the training device between evaluations (`StepLog`: in-place copies into a preallocated
tensor, no host-device sync inside a step) and reach the host once per evaluation. Each CSV is rewritten whole and
atomically, so a killed run never leaves a half row; after --resume the rows past the resume file's step are dropped
and the run writes the rows an uninterrupted run writes (the `seconds` column aside).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import importlib.metadata
import json
import platform
import subprocess
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

import dataset
from config import INVOCATION_KEYS
from utils import atomic_csv_write, atomic_json_dump, atomic_path, format_thresholds, log_output

ROOT = Path(__file__).resolve().parent
STEP_COLUMNS = ["step", "loss", "loss_cls", "loss_gce_rgb", "loss_gce_flow", "lr", "grad_norm", "seconds"]
ON_DEVICE = 5  # loss, loss_cls, loss_gce_rgb, loss_gce_flow, grad_norm: device tensors until an evaluation
PACKAGES = ("torch", "numpy", "scipy", "numba", "matplotlib", "tensorboard", "tqdm", "av", "pyyaml")
FINGERPRINT_HEAD = 8192  # bytes hashed at the start of each feature file: the .npy header and the first snippets
EVENT_FILES = "events.out.tfevents.*"  # TensorBoard's event file names


def record_files(cfg: Any) -> dict[str, Path]:
    """The record's files of the run `cfg`: train (per step), per_class, curves, log, config, tensorboard (folder)."""
    save, name = Path(cfg.save_path), cfg.data_name
    return {
        "train": save / f"{name}_train.csv",
        "per_class": save / f"{name}_per_class.csv",
        "curves": save / f"{name}_curves.png",
        "log": save / f"{name}.log",
        "config": save / f"{name}_config.json",
        "tensorboard": save / "tensorboard",
    }


# --- per-step values, on the device ------------------------------------------------------------------------------


def grad_norm(model: torch.nn.Module) -> torch.Tensor:
    """The L2 norm of all of `model`'s gradients → 0-dim tensor on their device (computed there: no host sync)."""
    return torch.nn.utils.get_total_norm([p.grad for p in model.parameters() if p.grad is not None])


class StepLog:
    """The per-step values since the last evaluation. The loss, its parts and the gradient norm stay on the training
    device in a preallocated float32 [capacity, 5] tensor, filled by in-place copies; the learning rate and the step's
    wall seconds are host numbers already. `take` brings them to the host: one sync, at an evaluation."""

    def __init__(self, capacity: int, device: torch.device) -> None:
        self.values = torch.zeros((capacity, ON_DEVICE), dtype=torch.float32, device=device)
        self.steps: list[int] = []
        self.host: list[tuple[float, float]] = []  # (lr, seconds) per step
        self._clock = time.perf_counter()

    def add(self, step: int, loss: torch.Tensor, parts: dict[str, torch.Tensor], norm: torch.Tensor, lr: float) -> None:
        """Step `step`'s total loss, its parts (model.acrnet_loss's dict), gradient norm (0-dim tensors) and lr."""
        now = time.perf_counter()
        self.values[len(self.steps)].copy_(torch.stack([loss, parts["cls"], parts["gce_rgb"], parts["gce_flow"], norm]))
        self.steps.append(step)
        self.host.append((lr, now - self._clock))
        self._clock = now

    def restart_clock(self) -> None:
        """The next step's seconds count from now (an evaluation's time is no step's)."""
        self._clock = time.perf_counter()

    def take(self) -> list[list[str]]:
        """The rows since the last call, as CSV cells (STEP_COLUMNS; float32 values in their shortest exact form)."""
        values = self.values[: len(self.steps)].cpu().numpy()  # the one host-device sync
        rows = [
            [str(step), *(str(v) for v in vals[:4]), repr(lr), str(vals[4]), f"{seconds:.4f}"]
            for step, vals, (lr, seconds) in zip(self.steps, values, self.host, strict=True)
        ]
        self.steps, self.host = [], []
        return rows


# --- the config file ---------------------------------------------------------------------------------------------


def settings(cfg: Any) -> dict[str, Any]:
    """The run's resolved settings, less how this command continued it (--resume, --stop_at, --overwrite)."""
    return {k: v for k, v in dataclasses.asdict(cfg).items() if k not in INVOCATION_KEYS}


def data_fingerprint(splits: dict[str, dataset.Split]) -> str:
    """sha256 of the data a run reads: per split (name → Split) its classes, videos, snippet counts L, labels, ground
    truth and ambiguous segments, and per feature file its name, byte size and first FINGERPRINT_HEAD bytes (the .npy
    header and the first snippets). Cheap: no feature file is read whole (a re-extraction that changes only later
    snippets goes unnoticed). Independent of where the data folder lies."""
    h = hashlib.sha256()
    files: dict[Path, None] = {}
    for name, s in splits.items():
        parts = [name, s.classes, s.videos, s.num_snippets, s.ground_truth, s.ambiguous]
        h.update(json.dumps(parts, sort_keys=True, default=float).encode())
        h.update(np.ascontiguousarray(s.labels, np.float32).tobytes())
        files.update(dict.fromkeys([*s.rgb_paths, *s.flow_paths]))
    for path in files:
        with open(path, "rb") as f:
            h.update(f"{path.name}\0{path.stat().st_size}\0".encode())
            h.update(f.read(FINGERPRINT_HEAD))
    return h.hexdigest()


def git_commit() -> str | None:
    """This checkout's commit (`+changes` when tracked files differ from it), or None: not a git checkout, no git."""
    try:
        run = lambda *args: subprocess.run(  # noqa: E731
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        commit = run("rev-parse", "HEAD")
        return commit + ("+changes" if run("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.SubprocessError):
        return None


def environment(device: torch.device) -> dict[str, Any]:
    """Python, platform, package versions, the device, the git commit."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
        "device": f"{device} ({where})",
        "git_commit": git_commit(),
    }


def write_config(cfg: Any, splits: dict[str, dataset.Split], device: torch.device, path: Path) -> None:
    """`<data_name>_config.json`: {"settings", "data", "environment", "written"}; `main.py --config` reads it."""
    config = {
        "settings": settings(cfg),
        "data": {"fingerprint": data_fingerprint(splits), "videos": {k: len(s) for k, s in splits.items()}},
        "environment": environment(device),
        "written": datetime.now().isoformat(timespec="seconds"),
    }
    atomic_json_dump(config, path, indent=1)


# --- the record --------------------------------------------------------------------------------------------------


class Record:
    """The record of one training run. As a context manager: the run's log file (what is printed, appended on
    --resume); `start` then opens the rest, `evaluation` writes them at each evaluation, `pause` at a --stop_at."""

    def __init__(self, cfg: Any) -> None:
        self.cfg, self.files = cfg, record_files(cfg)
        self.step_rows: list[list[str]] = []  # the per-step CSV's rows
        self.class_rows: list[list[str]] = []  # the per-class CSV's rows
        self.steps: StepLog | None = None
        self.writer: Any = None  # TensorBoard's SummaryWriter
        self.classes: list[str] = []
        self.select = "test"
        self._log: Any = None

    def __enter__(self) -> Record:
        self._log = log_output(self.files["log"], append=bool(self.cfg.resume))
        log = self._log.__enter__()
        how = "resumed" if self.cfg.resume else "a new run"
        log.write(f"=== {datetime.now().isoformat(' ', 'seconds')}: {how} in {self.cfg.save_path}\n")
        log.write(self.cfg.summary() + "\n")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.writer is not None:
            self.writer.close()
        self._log.__exit__(*exc)

    def start(self, splits: dict[str, dataset.Split], select: str, step: int, device: torch.device) -> StepLog:
        """Before the first step of this command (`step` steps done): the config file, the CSVs so far (on --resume:
        their rows up to `step`), TensorBoard; prints where the record is → the StepLog the steps fill. `splits`:
        name → Split (train, test and, in an honest run, val); `select`: the name of the one that selects."""
        cfg, files = self.cfg, self.files
        self.classes, self.select = list(splits["train"].classes), select
        write_config(cfg, splits, device, files["config"])
        self.step_rows = _rows_up_to(files["train"], STEP_COLUMNS, step) if step else []
        self.class_rows = _rows_up_to(files["per_class"], self._class_header(), step) if step else []
        if len(self.step_rows) != step:
            print(f"note: {files['train']}: holds {len(self.step_rows)} of the {step} steps done; the others are lost")
        self.writer = self._tensorboard(purge_step=step + 1 if step else None)
        self.steps = StepLog(cfg.eval_iter, device)
        names = ", ".join(files[k].name for k in ("train", "per_class", "curves", "log", "config"))
        print(f"record of the run in {cfg.save_path}: {names}")
        print(f"TensorBoard: tensorboard --logdir {files['tensorboard']}")
        return self.steps

    def _class_header(self) -> list[str]:
        tious = dataset.DATASETS[self.cfg.data_name].tiou_thresholds
        return ["step", "class", *(f"AP@{t:.2f}" for t in tious), "AP@AVG"]

    def _tensorboard(self, purge_step: int | None) -> Any:
        """A SummaryWriter on `tensorboard/` with the run's hyper-parameters. A new run first removes the event files
        an earlier run left there; a resumed one hides the events past its resume step (TensorBoard's purge_step)."""
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams

        folder = self.files["tensorboard"]
        if purge_step is None and folder.is_dir():
            for old in folder.glob(EVENT_FILES):
                old.unlink()
        writer = SummaryWriter(str(folder), purge_step=purge_step)
        values = {k: format_thresholds(v) if k == "act_th" else v for k, v in settings(self.cfg).items()}
        values = {k: v if isinstance(v, int | float | str | bool) else str(v) for k, v in values.items()}
        for summary in hparams(values, {self._best_tag(): 0.0}):
            writer.file_writer.add_summary(summary)
        return writer

    def _best_tag(self) -> str:
        return f"best/{self.select} mAP@AVG (%)"

    def evaluation(
        self, header: Sequence[str], rows: Sequence[Sequence[float]], class_ap: np.ndarray, kept_step: int | None
    ) -> str:
        """At an evaluation: `rows` = the run's evaluation rows so far (`<data_name>.csv`, columns `header`), the last
        one this evaluation's; `class_ap` [C, n_tiou] its per-class AP (NaN rows: no ground truth); `kept_step` the
        step of the kept checkpoint (None: none). Writes every file of the record → a line for the run to print."""
        assert self.steps is not None, "Record.start first"
        step = int(rows[-1][0])
        new = self.steps.take()
        self.step_rows += new
        atomic_csv_write(self.files["train"], STEP_COLUMNS, self.step_rows)
        class_avg = class_ap.mean(axis=1)
        for name, ap, avg in zip(self.classes, class_ap, class_avg, strict=True):
            self.class_rows.append([str(step), name, *map(_cell, ap), _cell(avg)])
        atomic_csv_write(self.files["per_class"], self._class_header(), self.class_rows)
        kept = next((r for r in rows if int(r[0]) == kept_step), None)
        self._steps_to_tensorboard(new)
        self._evaluation_to_tensorboard(header, rows[-1], class_avg, kept)
        draw_curves(self.files["curves"], self.step_rows, header, rows, kept_step, self._title(step))
        return self._line(header, rows[-1], kept)

    def pause(self) -> None:
        """A --stop_at pause between evaluations: the steps since the last one go to the per-step CSV."""
        assert self.steps is not None, "Record.start first"
        new = self.steps.take()
        self.step_rows += new
        atomic_csv_write(self.files["train"], STEP_COLUMNS, self.step_rows)
        self._steps_to_tensorboard(new)

    def _steps_to_tensorboard(self, rows: list[list[str]]) -> None:
        for row in rows:
            step = int(row[0])
            for name, value in zip(STEP_COLUMNS[1:], row[1:], strict=True):
                self.writer.add_scalar(f"train/{name}", float(value), step)
        self.writer.flush()

    def _evaluation_to_tensorboard(
        self, header: Sequence[str], row: Sequence[float], class_avg: np.ndarray, kept: Sequence[float] | None
    ) -> None:
        """mAP per tIoU, mAP@AVG and accuracy (percent) of each evaluated split, per-class AP@AVG, the best so far."""
        step = int(row[0])
        for name, value in zip(header[2:], row[2:], strict=True):
            self.writer.add_scalar(self._tag(name), 100 * float(value), step)
        for name, avg in zip(self.classes, class_avg, strict=True):
            if not np.isnan(avg):
                self.writer.add_scalar(f"{self.select} AP@AVG per class (%)/{name}", 100 * float(avg), step)
        if kept is not None:
            self.writer.add_scalar(self._best_tag(), 100 * float(kept[list(header).index("mAP@AVG")]), step)
        self.writer.flush()

    def _tag(self, column: str) -> str:
        """An evaluation CSV column → its TensorBoard tag: `test_acc` → `test/accuracy (%)`, `mAP@0.50` (selection
        split) → `<select>/mAP@0.50 (%)`, `test_mAP@AVG` (honest protocol) → `test/mAP@AVG (%)`."""
        if column.endswith("_acc"):
            return f"{column[:-4]}/accuracy (%)"
        split, _, name = column.rpartition("_") if column.startswith("test_") else (self.select, "", column)
        return f"{split}/{name} (%)"

    def _title(self, step: int) -> str:
        cfg = self.cfg
        demo = " — SYNTHETIC demo data" if cfg.demo else ""
        return f"{cfg.data_name}, {cfg.save_path}: step {step} of {cfg.num_iter}{demo}"

    def _line(self, header: Sequence[str], row: Sequence[float], kept: Sequence[float] | None) -> str:
        """`step 20 of 60: loss 0.9123 | test mAP@AVG 32.1 %, acc 55.0 % | kept: step 20, 32.1 %`."""
        col = {name: float(v) for name, v in zip(header, row, strict=True)}
        text = f"step {int(row[0])} of {self.cfg.num_iter}: loss {col['loss']:.4f} | {self.select} mAP@AVG "
        text += f"{100 * col['mAP@AVG']:.1f} %, acc {100 * col[f'{self.select}_acc']:.1f} %"
        if "test_mAP@AVG" in col:
            text += f" | test mAP@AVG {100 * col['test_mAP@AVG']:.1f} %"
        if kept is None:
            return text + " | kept: none yet"
        return text + f" | kept: step {int(kept[0])}, {100 * float(kept[list(header).index('mAP@AVG')]):.1f} %"


def _cell(value: float) -> str:
    """A CSV cell of an AP: the float's shortest exact form, empty for NaN (a class without ground truth)."""
    return "" if np.isnan(value) else repr(float(value))


def _rows_up_to(path: Path, header: Sequence[str], step: int) -> list[list[str]]:
    """The rows of a record CSV whose step is at most `step` (what the resume file covers); [] if the file is missing
    or has another header (written by an older version)."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except OSError:
        return []
    if not rows or rows[0] != list(header):
        return []
    return [r for r in rows[1:] if len(r) == len(header) and r[0].isdigit() and int(r[0]) <= step]


# --- the curves --------------------------------------------------------------------------------------------------


def draw_curves(
    path: Path,
    step_rows: Sequence[Sequence[str]],
    header: Sequence[str],
    rows: Sequence[Sequence[float]],
    kept_step: int | None,
    title: str,
) -> None:
    """`<data_name>_curves.png`, 1200×750 px: the losses, lr and gradient norm per step (step_rows, STEP_COLUMNS);
    mAP per tIoU and mAP@AVG per evaluation (rows, columns `header`); the kept checkpoint's step marked in each."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    steps = np.array([[float(v) for v in r] for r in step_rows]).reshape(-1, len(STEP_COLUMNS))
    evals = np.asarray(rows, dtype=np.float64).reshape(len(rows), -1)
    x = steps[:, 0]
    fig = Figure(figsize=(12, 7.5), dpi=100)
    axes = fig.subplots(2, 2, sharex=True)
    (ax_loss, ax_map), (ax_lr, ax_norm) = axes
    fig.suptitle(title, fontsize=12)
    colours = {"loss": "black", "loss_cls": "tab:blue", "loss_gce_rgb": "tab:red", "loss_gce_flow": "tab:green"}
    labels = {"loss": "total", "loss_cls": "L_cls", "loss_gce_rgb": "L_gce rgb", "loss_gce_flow": "L_gce flow"}
    for name, colour in colours.items():
        y = steps[:, STEP_COLUMNS.index(name)]
        ax_loss.plot(x, y, color=colour, alpha=0.25, linewidth=0.8)
        ax_loss.plot(x, _smooth(y), color=colour, linewidth=1.8, label=labels[name])
    ax_loss.set_title("training loss per step (faint) and its running mean\ntotal = L_cls + λ·(L_gce rgb + L_gce flow)")
    if kept_step is not None:
        ax_loss.plot([], [], color="gold", linewidth=2, label=f"kept checkpoint (step {kept_step})")
    ax_loss.legend(loc="upper right", fontsize=9)
    ax_lr.plot(x, steps[:, STEP_COLUMNS.index("lr")], color="tab:purple", linewidth=1.5)
    ax_lr.set_title("learning rate")
    ax_lr.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    norm = steps[:, STEP_COLUMNS.index("grad_norm")]
    ax_norm.plot(x, norm, color="tab:orange", alpha=0.3, linewidth=0.8)
    ax_norm.plot(x, _smooth(norm), color="tab:orange", linewidth=1.8)
    ax_norm.set_title("gradient norm (L2, all parameters)")
    _draw_maps(ax_map, header, evals, kept_step)
    for ax in (ax_loss, ax_lr, ax_norm, ax_map):
        ax.grid(alpha=0.3)
        if kept_step is not None:
            ax.axvline(kept_step, color="gold", linewidth=2, alpha=0.8, zorder=0)
    for ax in axes[1]:
        ax.set_xlabel("step")
    ax_map.tick_params(labelbottom=True)
    fig.subplots_adjust(left=0.05, right=0.985, bottom=0.07, top=0.87, hspace=0.3, wspace=0.12)  # (tight_layout: 2x)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


def _draw_maps(ax: Any, header: Sequence[str], evals: np.ndarray, kept_step: int | None) -> None:
    """mAP (%) per tIoU (thin, light to dark with the threshold) and mAP@AVG (thick) per evaluation; the kept one."""
    import matplotlib

    header = list(header)
    x = evals[:, 0]
    select = header[2][: -len("_acc")]
    per_tiou = [(i, name) for i, name in enumerate(header) if name.startswith("mAP@") and name != "mAP@AVG"]
    shades = matplotlib.colormaps["viridis"](np.linspace(0.0, 0.85, len(per_tiou)))
    for (i, name), shade in zip(per_tiou, shades, strict=True):
        ax.plot(x, 100 * evals[:, i], color=shade, linewidth=1, marker=".", label=f"@{float(name[4:]):g}")
    avg = 100 * evals[:, header.index("mAP@AVG")]
    ax.plot(x, avg, color="black", linewidth=2.5, marker="o", label="AVG")
    if "test_mAP@AVG" in header:
        test = 100 * evals[:, header.index("test_mAP@AVG")]
        ax.plot(x, test, color="black", linewidth=1.5, linestyle="--", marker="o", label="test AVG")
    if kept_step is not None:
        k = int(np.flatnonzero(x == kept_step)[0])
        ax.plot(x[k], avg[k], marker="*", markersize=18, color="gold", markeredgecolor="black", zorder=5)
        right = x[k] > (x.min() + x.max()) / 2  # the label on the side with room
        ax.annotate(
            f"kept: step {kept_step}, {avg[k]:.1f} %", (x[k], avg[k]), xytext=(-14 if right else 14, 10),
            textcoords="offset points", ha="right" if right else "left", fontsize=10, fontweight="bold",
        )  # fmt: skip
    ax.set_title(f"{select} mAP (%) at each evaluation, per tIoU and AVG")
    ax.legend(loc="upper left", fontsize=8, ncol=2)


def _smooth(y: np.ndarray) -> np.ndarray:
    """Running mean over the last len/12 steps (1 to 50): the trend through the per-batch noise."""
    window = min(50, max(1, len(y) // 12))
    sums = np.cumsum(np.concatenate([[0.0], y]))
    ends = np.arange(1, len(y) + 1)
    starts = np.maximum(0, ends - window)
    return (sums[ends] - sums[starts]) / (ends - starts)
