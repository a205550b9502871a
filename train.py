"""Training (method §8): the authors' batch stream, the loop with its periodic evaluation, the best-checkpoint rule and
the resume state. main.py calls `train(cfg, device)`; `cfg` is config.Config.

Batch stream (`BatchStream`): the V training videos listed round-robin to batch_size·num_iter items (item i = video
i mod V), one uniformly random permutation of that whole list per seed, step k taking items (k-1)·B … k·B-1. So every
video is visited equally often and a batch may hold a video twice (most THUMOS14 batches do). Each visit draws its
own snippet sample (method §7.3) from rng(seed, step, slot): a batch is a pure function of (seed, step), the same with
any --workers, after --resume, and with --preload.

Best checkpoint (`improves`): an evaluation's mAP@AVG in percent, rounded to one decimal, must be strictly greater
than the best so far (start 0): of two evaluations that round alike the earlier stays. The `.pth`, its predictions
and the final table follow that rule.

Resume: `<save_path>/<data_name>_last.pt` holds `TrainState` (model, optimizer, scheduler, step, evaluation rows,
running loss) and the RNG states, written after every evaluation and at a --stop_at pause. `check_start` (main.py
calls it before any work) refuses a new run into a folder holding an earlier run's files unless --overwrite.

The record of the run (per-step CSV, per-class AP, curves, log file, config file, TensorBoard) is record.py's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

import dataset
import record
from config import INVOCATION_KEYS
from inference import (
    csv_header,
    data_loader,
    ground_truth_json,
    load_checked_split,
    load_model,
    map_table,
    results_json,
    test_pass,
    write_test_outputs,
)
from model import ACRNet, acrnet_loss
from utils import (
    CHECKSUM_KEY,
    InputError,
    Progress,
    atomic_csv_write,
    atomic_json_dump,
    atomic_torch_save,
    available_memory,
    check_finite,
    checksum,
    describe,
    format_bytes,
    is_finite_number,
    note_no_checksum,
    save_checkpoint,
    set_seed,
    torch_load,
    verify_checksum,
)

STREAM_TAG, HOLDOUT_TAG = 8, 7  # rng([seed, tag]): independent draws for the batch stream and the held-out split
# Config fields that must match when a run is resumed (the others — device, workers, stop_at, preload — may change).
RESUME_KEYS = (
    "data_name num_seg batch_size num_iter eval_iter init_lr weight_decay lamda cls_th iou_th act_th alpha fps rate "
    "seed pool val_fraction ambiguous"
).split()
RESUME_VERSION = 2


# --- data --------------------------------------------------------------------------------------------------------


@dataclass
class RunData:
    """The splits of a run: train on `train`, select checkpoints on `select`, report on `test`."""

    train: dataset.Split
    select: dataset.Split  # the test split (the authors' protocol), or held-out training videos (--val_fraction)
    test: dataset.Split

    @property
    def honest(self) -> bool:
        return self.select is not self.test

    def fingerprint(self) -> str:
        """A hash of what the run depends on: classes, training videos (L, labels), selection videos (L, ground
        truth, ambiguous segments). Kept in the resume file, so a resume on other data is refused."""
        parts = {
            "classes": list(self.train.classes),
            "train": [self.train.videos, self.train.num_snippets],
            "select": [self.select.videos, self.select.num_snippets, self.select.ground_truth, self.select.ambiguous],
        }
        h = hashlib.sha256(json.dumps(parts, sort_keys=True).encode())
        h.update(np.ascontiguousarray(self.train.labels, np.float32).tobytes())
        return h.hexdigest()


def holdout_split(split: dataset.Split, fraction: float, seed: int) -> tuple[dataset.Split, dataset.Split]:
    """Split a training Split into (train, validation) by a seeded draw of round(fraction·V) videos (≥ 1)."""
    num = len(split.videos)
    num_val = max(1, round(fraction * num))
    if num_val >= num:
        raise InputError(f"--val_fraction {fraction}: leaves no training video ({num} in the training split)")
    order = np.random.default_rng([seed, HOLDOUT_TAG]).permutation(num)
    return split.subset(np.sort(order[num_val:])), split.subset(np.sort(order[:num_val]))


def load_data(cfg: Any) -> RunData:
    """The run's splits: selection on test, or on a held-out --val_fraction of the training videos."""
    train, test = (load_checked_split(cfg, split) for split in ("train", "test"))
    if cfg.val_fraction > 0:
        train, val = holdout_split(train, cfg.val_fraction, cfg.seed)
        return RunData(train, val, test)
    return RunData(train, test, test)


# --- what a run's memory must hold --------------------------------------------------------------------------------
# One training step (forward and backward) of a batch [B, T, 2048], measured on CPU as the peak resident memory of a
# step (B 1–32, T 500–4000, 20 classes): ~74 kB per snippet plus ~88 B per pair of snippets of a video, the [H, T, T]
# attention maps of method §2.1 (scores, two softmaxes, their gradients: 4 heads × 4 bytes × ~5.5). Rounded up here.
STEP_BYTES_PER_SNIPPET = 80_000  # the features [T, 2048] float32 (8 kB) and the activations
STEP_BYTES_PER_PAIR = 96  # the attention maps, per video: T² pairs
STEP_BYTES_FIXED = 400_000_000  # weights (22 M float32), their gradients, Adam's two moments
STREAM_BYTES_PER_ITEM = 16  # BatchStream: the int64 permutation of batch_size·num_iter items and their videos


def step_memory(batch_size: int, num_seg: int) -> int:
    """Estimated bytes of one training step on batches [batch_size, num_seg, 2048] (see the constants above)."""
    b, t = int(batch_size), int(num_seg)
    return b * t * STEP_BYTES_PER_SNIPPET + b * t * t * STEP_BYTES_PER_PAIR + STEP_BYTES_FIXED


def check_memory(cfg: Any, device: torch.device) -> None:
    """Before any data is read: refuse a training run whose step (`step_memory`) cannot fit the memory `device` has
    free, or whose batch stream cannot fit the host's, with one line that says the estimate and the limit. (--preload
    also holds the training features on the device; their size is known once they are listed.)"""
    need = step_memory(cfg.batch_size, cfg.num_seg)
    stream = cfg.batch_size * cfg.num_iter * STREAM_BYTES_PER_ITEM
    host, host_what = available_memory(torch.device("cpu"))
    if stream > host:
        raise InputError(
            f"--num_iter {cfg.num_iter} --batch_size {cfg.batch_size}: the batch stream lists batch_size × num_iter = "
            f"{cfg.batch_size * cfg.num_iter} videos ({format_bytes(stream)}), but the machine has "
            f"{format_bytes(host)} ({host_what}); lower --num_iter"
        )
    avail, what = (host - stream, host_what) if device.type == "cpu" else available_memory(device)
    if need > avail:
        raise InputError(
            f"--num_seg {cfg.num_seg} --batch_size {cfg.batch_size}: a training step needs about {format_bytes(need)} "
            f"(features [{cfg.batch_size}, {cfg.num_seg}, 2048] float32 and the network's activations: ~80 kB per "
            f"snippet and ~96 B per pair of snippets of a video), but {device} has {format_bytes(avail)} ({what}); "
            "lower --num_seg or --batch_size"
        )


# --- the batch stream (method §8) ----------------------------------------------------------------------------------


def visit_seed(seed: int, step: int, slot: int) -> int:
    """A 62-bit seed for the snippet sample of one visit (step, slot), independent across (seed, step, slot)."""
    return int(np.random.SeedSequence([seed, step, slot]).generate_state(1, np.uint64)[0] >> np.uint64(2))


class BatchStream:
    """The authors' stream: `videos(k)` → int64 [B], the training videos of step k (1-based); `draws(k)` → their
    (video, snippet-sample seed) pairs."""

    def __init__(self, num_videos: int, batch_size: int, num_iter: int, seed: int) -> None:
        self.batch_size, self.num_iter, self.seed = batch_size, num_iter, seed
        # Permuting the list [i mod V] is taking perm[j] mod V: one uniformly random permutation of the whole list.
        self.order = np.random.default_rng([seed, STREAM_TAG]).permutation(batch_size * num_iter) % num_videos

    def videos(self, step: int) -> np.ndarray:
        if not 1 <= step <= self.num_iter:
            raise IndexError(f"step {step} outside 1..{self.num_iter}")
        return self.order[(step - 1) * self.batch_size : step * self.batch_size]

    def draws(self, step: int) -> list[tuple[int, int]]:
        return [(int(v), visit_seed(self.seed, step, slot)) for slot, v in enumerate(self.videos(step))]


class TrainSteps(torch.utils.data.Dataset):
    """Item k = the batch of step `first + k`: (features [B, S, 2048], labels [B, C]), read from the feature files
    (through a DataLoader: --workers processes assemble batches in parallel)."""

    def __init__(self, features: dataset.FeatureDataset, stream: BatchStream, first: int, last: int) -> None:
        self.features, self.stream, self.first, self.last = features, stream, first, last

    def __len__(self) -> int:
        return max(0, self.last - self.first + 1)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        items = [self.features[draw] for draw in self.stream.draws(self.first + k)]
        return torch.stack([it[0] for it in items]), torch.stack([it[1] for it in items])


class PreloadedSteps:
    """The batches of TrainSteps (same snippets, same values), gathered from the whole training set read once into
    one float32 [ΣL, 2048] tensor on `device` (--preload; GPU memory when training on CUDA): per step only the
    [B + B·S] indices travel to the device, no features are read or copied host → device."""

    def __init__(
        self, features: dataset.FeatureDataset, stream: BatchStream, first: int, last: int, device: torch.device
    ) -> None:
        split = features.split
        self.features, self.stream, self.first, self.last, self.device = features, stream, first, last, device
        self.offsets = np.concatenate([[0], np.cumsum(split.num_snippets, dtype=np.int64)])
        d = dataset.FEATURE_DIM
        self.bank = torch.empty((int(self.offsets[-1]), 2 * d), dtype=torch.float32, device=device)
        for v in Progress(range(len(split)), desc="preload features"):  # one video at a time
            rows = slice(int(self.offsets[v]), int(self.offsets[v + 1]))
            self.bank[rows] = torch.from_numpy(split.video_features(v))
        self.labels = torch.from_numpy(split.labels).to(device)

    def __len__(self) -> int:
        return max(0, self.last - self.first + 1)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for step in range(self.first, self.last + 1):
            draws = self.stream.draws(step)
            snippets = [self.offsets[v] + self.features.indices(v, seed) for v, seed in draws]
            index = torch.from_numpy(np.concatenate([[v for v, _ in draws], *snippets]).astype(np.int64))
            if self.device.type == "cuda":
                index = index.pin_memory()  # an asynchronous copy: the GPU is not waited for
            index = index.to(self.device, non_blocking=True)
            b = len(draws)
            yield self.bank[index[b:]].view(b, -1, self.bank.shape[1]), self.labels[index[:b]]


def training_batches(
    cfg: Any, split: dataset.Split, first: int, last: int, device: torch.device
) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
    """The batches of steps first..last (1-based) of the run's stream, from the files or (--preload) from memory."""
    if first > last:  # a finished run resumed (e.g. --seeds --resume): nothing to read
        return []
    features = dataset.FeatureDataset(split, cfg.num_seg, mode="train")
    stream = BatchStream(len(split), cfg.batch_size, cfg.num_iter, cfg.seed)
    if cfg.preload:
        return PreloadedSteps(features, stream, first, last, device)
    return data_loader(TrainSteps(features, stream, first, last), cfg, device)


# --- the best-checkpoint rule (method §8) --------------------------------------------------------------------------


def rounded_map(avg: float) -> float:
    """mAP@AVG as a fraction → percent rounded to one decimal (Python's round), the value method §8 compares."""
    return round(100 * avg, 1)


def improves(avg: float, best: float) -> bool:
    """Does an evaluation with mAP@AVG `avg` (fraction) replace the kept one, whose rounded value is `best`?"""
    return rounded_map(avg) > best


def best_index(avgs: Sequence[float]) -> int | None:
    """Index of the evaluation the rule keeps among `avgs` in order (None when none rounds above 0.0)."""
    best, index = 0.0, None
    for i, avg in enumerate(avgs):
        if improves(avg, best):
            best, index = rounded_map(avg), i
    return index


# --- the resume state --------------------------------------------------------------------------------------------


def rng_state() -> dict[str, Any]:
    """Python, NumPy and PyTorch RNG states as tensors / plain ints and lists (loadable with weights_only=True)."""
    version, py_state, gauss = random.getstate()
    np_state = np.random.get_state(legacy=False)
    state = {
        "python": [version, list(py_state), gauss],
        "numpy": {
            "key": torch.from_numpy(np.asarray(np_state["state"]["key"], dtype=np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, py_state, gauss = state["python"]
    random.setstate((version, tuple(py_state), gauss))
    n = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": "MT19937",
            "state": {"key": n["key"].numpy().astype(np.uint32), "pos": n["pos"]},
            "has_gauss": n["has_gauss"],
            "gauss": n["gauss"],
        }
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass
class TrainState:
    """Everything the rest of a run depends on; `save` / `restore` the resume file (loadable with weights_only)."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    loss_sum: torch.Tensor  # loss summed since the last evaluation, on the device: no host sync inside a step
    loss_count: int = 0
    step: int = 0
    rows: list[list[float]] = field(default_factory=list)  # the CSV rows, one per evaluation

    def take_mean_loss(self) -> float:
        """Mean training loss since the last call (one host sync, at an evaluation)."""
        mean = float(self.loss_sum) / max(self.loss_count, 1)
        self.loss_sum.zero_()
        self.loss_count = 0
        return mean

    def save(self, path: Path, cfg: Any, data: str) -> None:
        state = {
            "version": RESUME_VERSION,
            "config": {k: getattr(cfg, k) for k in RESUME_KEYS},
            "data": data,
            "step": self.step,
            "rows": self.rows,
            "loss_sum": self.loss_sum.detach().cpu(),
            "loss_count": self.loss_count,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": rng_state(),
        }
        state[CHECKSUM_KEY] = checksum(state)
        atomic_torch_save(state, path)

    def restore(self, path: Path, cfg: Any, device: torch.device, data: str, row_length: int) -> None:
        """Continue from the resume file `path`, its every field checked first (one line naming the file and the
        field); `row_length`: the columns of an evaluation row of this run."""
        state = read_resume(path, cfg, data, row_length, self)
        for name, target in (("model", self.model), ("optimizer", self.optimizer), ("scheduler", self.scheduler)):
            try:
                target.load_state_dict(state[name])
            except (RuntimeError, ValueError, TypeError, KeyError) as e:
                detail = " ".join(str(e).split())[:200]
                raise InputError(f"{path}: field '{name}': does not fit this run ({detail})") from None
        set_rng_state(state["rng"])
        self.step, self.rows = state["step"], [list(r) for r in state["rows"]]
        self.loss_sum, self.loss_count = state["loss_sum"].to(device), state["loss_count"]


def _no_resume_file(path: Path, cfg: Any) -> InputError:
    first = min(cfg.eval_iter, cfg.num_iter)
    written = f"one is written at a run's first evaluation, step {first}, and at a --stop_at pause"
    return InputError(f"{path}: no resume file ({written}); {start_again(cfg)}")


def start_again(cfg: Any) -> str:
    """What starts the run `cfg` again when it has no resume file: a plain rerun, or --overwrite where the interrupted
    run left outputs (a new run would refuse to replace them)."""
    _, best, csv = run_files(cfg)
    if best.exists() or csv.exists():
        return "start the run again with --overwrite instead of --resume (it replaces the interrupted run's outputs)"
    return "start the run again without --resume"


RESUME_FIELDS = "version config data step rows loss_sum loss_count model optimizer scheduler rng".split()
# Adam's param-group entries a resume file must hold (PyTorch adds the others itself when an older file lacks them).
ADAM_GROUP_KEYS = {"params", "lr", "betas", "eps", "weight_decay", "amsgrad", "initial_lr"}


def read_resume(path: Path, cfg: Any, data: str, row_length: int, into: TrainState) -> dict[str, Any]:
    """Load the resume file `path` of the run `cfg` → its content, every field checked against what the run `into`
    (fresh model, optimizer, scheduler) would restore: the checksum, the settings and data the run started with, the
    step, the evaluation rows (`row_length` numbers each), the model, optimizer, scheduler and RNG states."""
    if not path.is_file():
        raise _no_resume_file(path, cfg)
    state = torch_load(path, "resume file")
    if not isinstance(state, dict) or state.get("version") != RESUME_VERSION:
        found = state.get("version") if isinstance(state, dict) else describe(state)
        raise InputError(
            f"{path}: not a resume file of this version (version {found}, this version reads {RESUME_VERSION})"
        )
    if CHECKSUM_KEY in state:
        verify_checksum(path, {k: v for k, v in state.items() if k != CHECKSUM_KEY}, state[CHECKSUM_KEY])
    else:
        note_no_checksum(path)
    bad = lambda field, problem: InputError(f"{path}: field {field}: {problem}")  # noqa: E731
    for key in state:
        if key not in (*RESUME_FIELDS, CHECKSUM_KEY):
            raise InputError(f"{path}: unknown field {key!r} (not a resume file of this version)")
    for key in RESUME_FIELDS:
        if key not in state:
            raise InputError(f"{path}: field {key!r} is missing (not a complete resume file)")
    config = state["config"]
    if not isinstance(config, dict):
        raise bad("'config'", f"expected a mapping of settings, found {describe(config)}")
    for key in config:
        if key not in RESUME_KEYS:
            raise bad(f"'config.{key}'", f"unknown setting (the resume file's settings are {', '.join(RESUME_KEYS)})")
    for key in RESUME_KEYS:
        if key not in config:
            raise bad(f"'config.{key}'", "missing")
        old, new = config[key], getattr(cfg, key)
        if not _plain(old):
            raise bad(f"'config.{key}'", f"expected a setting's value, found {describe(old)}")
        if old != new:
            raise InputError(
                f"{path}: run was started with --{key} {old}, now {new}; use the same settings to resume (they are in "
                f"{Path(cfg.save_path) / (cfg.data_name + '_config.json')}: python main.py --config FILE --resume)"
            )
    if state["data"] != data:
        raise InputError(
            f"{path}: run was started on other data (training/selection videos, snippet counts or annotations "
            "differ); use the same --data_path and --annotation_file to resume"
        )
    step = state["step"]
    if not _integer(step) or not 1 <= step <= cfg.num_iter:
        raise bad("'step'", f"{step!r}, expected an integer in 1..{cfg.num_iter} (--num_iter)")
    _check_rows(state["rows"], step, row_length, bad)
    loss_sum, loss_count = state["loss_sum"], state["loss_count"]
    if not (isinstance(loss_sum, torch.Tensor) and loss_sum.dim() == 0 and loss_sum.is_floating_point()):
        raise bad("'loss_sum'", f"expected a scalar float tensor, found {describe(loss_sum)}")
    if not _integer(loss_count) or not 0 <= loss_count <= step:
        raise bad("'loss_count'", f"{loss_count!r}, expected an integer in 0..{step} (the step)")
    check_finite(path, {"loss_sum": loss_sum, "model": state["model"], "optimizer": state["optimizer"]})
    model = state["model"]
    if not isinstance(model, dict) or not all(isinstance(v, torch.Tensor) for v in model.values()):
        raise bad("'model'", "expected a state-dict (a mapping of tensors)")
    params = [p for group in into.optimizer.param_groups for p in group["params"]]
    template = {
        "state": {i: {"step": torch.zeros(()), "exp_avg": p, "exp_avg_sq": p} for i, p in enumerate(params)},
        "param_groups": into.optimizer.state_dict()["param_groups"],
    }
    _match(state["optimizer"], template, "optimizer", bad, _optional_in_adam)
    _match(state["scheduler"], into.scheduler.state_dict(), "scheduler", bad, lambda keys: str(keys[-1])[:1] == "_")
    if state["scheduler"]["last_epoch"] != step:
        raise bad("'scheduler.last_epoch'", f"{state['scheduler']['last_epoch']!r}, expected the step, {step}")
    _check_rng(state["rng"], bad)
    return state


def _optional_in_adam(keys: tuple[Any, ...]) -> bool:
    """May the entry at `keys` be missing from an Adam state? A parameter's state (it had no gradient yet), and the
    param-group options that PyTorch fills in for a file of an older version."""
    return keys[0] == "state" and len(keys) == 2 or keys[0] == "param_groups" and keys[-1] not in ADAM_GROUP_KEYS


def _integer(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _plain(v: Any) -> bool:
    """A setting's value as a resume file stores it: None, a bool, number or string, or a list of numbers."""
    if isinstance(v, list):
        return all(isinstance(x, int | float) and not isinstance(x, bool) for x in v)
    return v is None or isinstance(v, bool | int | float | str)


def _check_rows(rows: Any, step: int, length: int, bad: Any) -> None:
    """The evaluation rows: lists of `length` finite numbers, their steps (column 0) increasing integers <= step."""
    if not isinstance(rows, list):
        raise bad("'rows'", f"expected a list of evaluation rows, found {describe(rows)}")
    last = 0
    for i, row in enumerate(rows):
        if not (isinstance(row, list | tuple) and len(row) == length and all(map(is_finite_number, row))):
            raise bad(f"'rows[{i}]'", f"expected {length} finite numbers (an evaluation row), found {describe(row)}")
        if not (float(row[0]).is_integer() and last < row[0] <= step):
            raise bad(f"'rows[{i}]'", f"step {row[0]!r} is not an evaluation step in {last + 1}..{step}")
        last = int(row[0])


def _match(saved: Any, template: Any, where: str, bad: Any, optional: Any, keys: tuple[Any, ...] = ()) -> None:
    """`saved` (an optimizer or scheduler state) has the structure of `template` (the fresh one's): the same keys
    (those for which optional(keys) holds may be missing), tensors of the template's shape, numbers for numbers, and the
    same kind of other values. (A scheduler's load_state_dict sets whatever attributes its keys name.)"""
    field = repr(".".join([where, *map(str, keys)]))
    if isinstance(template, dict):
        if not isinstance(saved, dict):
            raise bad(field, f"expected a mapping, found {describe(saved)}")
        for key in saved:
            if key not in template:
                raise bad(field, f"unknown entry {key!r} (not the state of this run's {where})")
        for key, value in template.items():
            if key in saved:
                _match(saved[key], value, where, bad, optional, (*keys, key))
            elif not optional((*keys, key)):
                raise bad(field, f"entry {key!r} is missing (not the state of this run's {where})")
    elif keys and keys[-1] == "params":  # the parameters' indices
        if saved != template:
            raise bad(field, f"expected {template!r}, found {describe(saved)}")
    elif isinstance(template, list | tuple):
        if not isinstance(saved, list | tuple) or len(saved) != len(template):
            raise bad(field, f"expected {len(template)} entries, found {describe(saved)}")
        for i, (a, b) in enumerate(zip(saved, template, strict=True)):
            _match(a, b, where, bad, optional, (*keys, i))
    elif isinstance(template, torch.Tensor):
        if not (isinstance(saved, torch.Tensor) and saved.shape == template.shape and saved.is_floating_point()):
            raise bad(field, f"expected a float tensor of shape {tuple(template.shape)}, found {describe(saved)}")
    elif _integer(template) or isinstance(template, float):
        if not is_finite_number(saved) or (_integer(template) and not _integer(saved)):
            raise bad(field, f"expected {'an integer' if _integer(template) else 'a number'}, found {describe(saved)}")
    elif type(saved) is not type(template):
        raise bad(field, f"expected {type(template).__name__}, found {describe(saved)}")


def _check_rng(rng: Any, bad: Any) -> None:
    """The RNG states, each tried on a scratch generator (the process's own are set only once all fits)."""
    if not isinstance(rng, dict) or not {"python", "numpy", "torch"} <= set(rng) <= {
        "python",
        "numpy",
        "torch",
        "cuda",
    }:
        raise bad("'rng'", "expected the python, numpy and torch RNG states (and cuda)")
    try:
        version, py_state, gauss = rng["python"]
        random.Random().setstate((version, tuple(py_state), gauss))
    except (TypeError, ValueError, OverflowError):
        raise bad("'rng.python'", "not a state of Python's random module") from None
    n = rng["numpy"]
    try:
        key = n["key"] if isinstance(n, dict) else None
        if not (isinstance(key, torch.Tensor) and key.dtype == torch.int64 and key.shape == (624,)):
            raise TypeError
        np.random.RandomState().set_state(
            ("MT19937", n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"])
        )
    except (TypeError, ValueError, KeyError, IndexError, OverflowError):
        raise bad("'rng.numpy'", "not a state of NumPy's random generator") from None
    try:
        if not isinstance(rng["torch"], torch.Tensor):
            raise TypeError
        torch.Generator().set_state(rng["torch"])
    except (TypeError, RuntimeError):
        raise bad("'rng.torch'", "not a state of PyTorch's CPU generator") from None
    cuda = rng.get("cuda", [])
    if not (
        isinstance(cuda, list | tuple) and all(isinstance(t, torch.Tensor) and t.dtype == torch.uint8 for t in cuda)
    ):
        raise bad("'rng.cuda'", "not a list of CUDA generator states")


def run_files(cfg: Any) -> tuple[Path, Path, Path]:
    """(resume file, best checkpoint, CSV) of the run `cfg` in its --save_path."""
    save = Path(cfg.save_path)
    return save / f"{cfg.data_name}_last.pt", save / f"{cfg.data_name}.pth", save / f"{cfg.data_name}.csv"


def check_start(cfg: Any) -> None:
    """Before any work: --resume needs its resume file, and a new run does not silently replace an earlier run's files
    (resume file, best checkpoint, CSV: a forgotten --resume would overwrite them at the first evaluation). With
    --overwrite the new run replaces them as it goes, and a note says so."""
    last, best, csv = run_files(cfg)
    if cfg.resume:
        if not last.is_file():
            raise _no_resume_file(last, cfg)
        return
    earlier = [p for p in (last, best, csv) if p.exists()]
    if not earlier:
        return
    if cfg.overwrite:
        names = ", ".join(p.name for p in earlier)
        print(f"note: {cfg.save_path}: starting a new run (--overwrite): it replaces the earlier run's {names}")
    elif last in earlier:
        raise InputError(
            f"{last}: an earlier run's resume file; pass --resume to continue that run, or --overwrite to start a new "
            "run that replaces its files"
        )
    else:
        raise InputError(
            f"{earlier[0]}: an earlier run's output; pass --overwrite to start a new run that replaces it, or choose "
            "another --save_path"
        )


# --- the run -----------------------------------------------------------------------------------------------------


@dataclass
class Scores:
    """One evaluation of one split at training step `step`: accuracy and mAP per tIoU (fractions)."""

    step: int
    accuracy: float
    maps: list[float]

    @property
    def avg(self) -> float:
        return float(np.mean(self.maps))


@dataclass
class RunSummary:
    """What a run reports. `selected` = the kept evaluation (its checkpoint is `<data_name>.pth`)."""

    steps: int  # steps done (fewer than num_iter after a --stop_at pause)
    selected: Scores | None  # on the selection split; None when no evaluation rounds above 0.0
    best_on_test: Scores | None  # the authors' protocol: the rule applied to the test mAP of every evaluation
    seconds: dict[str, float] = field(default_factory=dict)  # wall time: load (data, --preload), train, evaluate
    held_out: Scores | None = None  # --val_fraction: the test scores of the checkpoint selected on validation


def _scores(rows: list[list[float]], n_tiou: int, block: int) -> Scores | None:
    """The kept evaluation among `rows` by the columns of `block` (0: selection split, 1: test in an honest run)."""
    first = 2 + block * (n_tiou + 2)  # columns: step, loss, then per block acc, mAP@tIoU…, mAP@AVG
    index = best_index([r[first + 1 + n_tiou] for r in rows])
    if index is None:
        return None
    row = rows[index]
    return Scores(int(row[0]), float(row[first]), [float(m) for m in row[first + 1 : first + 1 + n_tiou]])


def train_step(
    state: TrainState, x: torch.Tensor, y: torch.Tensor, lamda: float, log: record.StepLog | None = None
) -> None:
    """One Adam step on a batch x [B, S, 2048], y [B, C] (on the model's device); cosine schedule stepped once. `log`
    gets the step's losses, gradient norm and learning rate (on the device: no host sync)."""
    state.model.train()
    loss, parts = acrnet_loss(state.model(x), y, lamda=lamda)
    state.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if log is not None:
        lr = state.optimizer.param_groups[0]["lr"]
        log.add(state.step + 1, loss.detach(), parts, record.grad_norm(state.model), lr)
    state.optimizer.step()
    state.scheduler.step()
    state.loss_sum += loss.detach()
    state.loss_count += 1
    state.step += 1


def checkpoint_meta(cfg: Any, classes: Sequence[str], step: int) -> dict[str, Any]:
    config = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in INVOCATION_KEYS}
    return {"classes": list(classes), "data_name": cfg.data_name, "config": config, "step": step}


def train(cfg: Any, device: torch.device) -> RunSummary:
    """method §8 training with periodic evaluation, the best checkpoint, the resume file, the record of the run
    (record.py); the final report."""
    with record.Record(cfg) as rec:  # from here on, what the run prints also goes to its log file
        return _train(cfg, device, rec)


def _train(cfg: Any, device: torch.device, rec: record.Record) -> RunSummary:
    load_start = time.perf_counter()
    data = load_data(cfg)
    select_name = "val" if data.honest else "test"
    classes = list(data.train.classes)
    tious = dataset.DATASETS[cfg.data_name].tiou_thresholds
    n_tiou = len(tious)
    save = Path(cfg.save_path)
    last_path, best_path, csv_path = run_files(cfg)

    set_seed(cfg.seed)
    model = ACRNet(len(classes), pool=cfg.pool).to(device)
    # fused: the same Adam update in one kernel (the optimizer step alone ran 3x faster than foreach on a 2-core CPU)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.init_lr, weight_decay=cfg.weight_decay, fused=True)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.num_iter, eta_min=0.0)
    state = TrainState(model, opt, sched, loss_sum=torch.zeros((), device=device))
    fingerprint = data.fingerprint()
    header = csv_header(tious, select_name)
    if data.honest:  # the test mAP of every evaluation too (never used to select): the authors' protocol alongside
        header += ["test_acc"] + [f"test_mAP@{t:.2f}" for t in tious] + ["test_mAP@AVG"]
    if cfg.resume:
        state.restore(last_path, cfg, device, fingerprint, len(header))
        print(f"resumed from {last_path} at step {state.step}")
        kept = _scores(state.rows, n_tiou, 0)
        if kept is not None and not best_path.is_file():
            lost = (
                f"the checkpoint kept at step {kept.step} is lost (a later evaluation above its {rounded_map(kept.avg)}"
            )
            print(f"warning: {best_path}: missing; {lost} % mAP@AVG writes a new one)", file=sys.stderr)

    stop = min(cfg.num_iter, cfg.stop_at) if cfg.stop_at is not None else cfg.num_iter
    batches = training_batches(cfg, data.train, state.step + 1, stop, device)  # --preload reads the features here
    splits = {"train": data.train, select_name: data.select, "test": data.test}
    steps = rec.start(splits, select_name, state.step, device)
    eval_seconds, start = 0.0, time.perf_counter()
    load_seconds = start - load_start
    bar = Progress(total=cfg.num_iter, initial=state.step, desc="train", unit="step", enabled=cfg.progress)
    for x, y in batches:
        train_step(state, x.to(device, non_blocking=True), y.to(device, non_blocking=True), cfg.lamda, steps)
        bar.update(1)
        if state.step % cfg.eval_iter == 0 or state.step == cfg.num_iter:
            mean_loss = state.take_mean_loss()  # waits for the device: the steps' time is not counted as evaluation
            t0 = time.perf_counter()
            kept = _scores(state.rows, n_tiou, 0)
            best = rounded_map(kept.avg) if kept else 0.0
            result = test_pass(model, data.select, cfg, device)
            row = [state.step, mean_loss, result.accuracy, *result.maps.tolist(), result.avg]
            if data.honest:
                tested = test_pass(model, data.test, cfg, device)
                row += [tested.accuracy, *tested.maps.tolist(), tested.avg]
            state.rows.append(row)
            atomic_csv_write(csv_path, header, state.rows)
            kept_step = state.step if improves(result.avg, best) else kept.step if kept else None
            bar.write(rec.evaluation(header, state.rows, result.class_ap, kept_step))  # before the resume file
            if improves(result.avg, best):
                best = rounded_map(result.avg)
                save_checkpoint(model.state_dict(), best_path, checkpoint_meta(cfg, classes, state.step))
                atomic_json_dump(
                    results_json(result.predictions, cfg.data_name), save / f"{cfg.data_name}_predictions.json"
                )
                atomic_json_dump(
                    ground_truth_json(data.select, cfg.data_name, select_name),
                    save / f"{cfg.data_name}_ground_truth.json",
                )
            state.save(last_path, cfg, fingerprint)
            eval_seconds += time.perf_counter() - t0
            steps.restart_clock()  # the evaluation's time is no step's
            bar.set_postfix(loss=f"{row[1]:.4f}", mAP=f"{100 * result.avg:.1f}", best=f"{best:.1f}")
    bar.close()
    if state.loss_count:  # stopped between evaluations (--stop_at): keep the steps done since the last one
        rec.pause()
        state.save(last_path, cfg, fingerprint)
    total = time.perf_counter() - start
    print(f"{total:.0f} s: training {total - eval_seconds:.0f} s, evaluation and saving {eval_seconds:.0f} s")
    seconds = {"load": load_seconds, "train": total - eval_seconds, "evaluate": eval_seconds}
    if state.step < cfg.num_iter:
        print(f"stopped at step {state.step} of {cfg.num_iter}; continue with --resume")
    selected = _scores(state.rows, n_tiou, 0)
    summary = RunSummary(state.step, selected, _scores(state.rows, n_tiou, 1) if data.honest else selected, seconds)
    demo = " — SYNTHETIC demo data" if cfg.demo else ""
    if state.rows and selected is None:
        print(f"no {select_name} mAP@AVG rounded above 0.0 % in any evaluation: no checkpoint kept (method §8 rule)")
    if selected is not None:
        where = f"checkpoint {best_path}" if best_path.is_file() else f"its checkpoint {best_path} is missing"
        title = f"best {select_name} mAP (%) at step {selected.step} of {state.step} ({where}){demo}"
        print(map_table(tious, selected.maps, selected.accuracy, title))
    if data.honest and summary.best_on_test is not None:
        s = summary.best_on_test
        title = f"authors' protocol, for comparison: best test mAP (%) over the evaluations, at step {s.step}{demo}"
        print(map_table(tious, s.maps, s.accuracy, title))
    final_pass = state.step == cfg.num_iter and selected is not None and (data.honest or cfg.save_vis)
    if final_pass and not best_path.is_file():
        missing = f"warning: {best_path}: missing: no test pass of the kept checkpoint (step {selected.step})"
        print(missing, file=sys.stderr)
    elif final_pass:
        # Honest protocol: the checkpoint chosen on validation, scored once on test. (--save_vis: its pictures.)
        model = load_model(best_path, data.test, cfg.pool, device)
        result = test_pass(model, data.test, cfg, device, keep_scores=cfg.save_vis)
        write_test_outputs(cfg, result, data.test, "test", step=selected.step)
        if data.honest:
            summary.held_out = Scores(selected.step, result.accuracy, result.maps.tolist())
    return summary
