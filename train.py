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
    InputError,
    Progress,
    atomic_csv_write,
    atomic_json_dump,
    atomic_torch_save,
    available_memory,
    format_bytes,
    save_checkpoint,
    set_seed,
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
        atomic_torch_save(state, path)

    def restore(self, path: Path, cfg: Any, device: torch.device, data: str) -> None:
        if not path.is_file():
            raise _no_resume_file(path)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            if state.get("version") != RESUME_VERSION:
                raise KeyError("version")
        except Exception as e:  # corrupt, truncated, not ours, an older layout
            raise InputError(f"{path}: not a readable resume file of this version ({type(e).__name__})") from None
        for key, old in state["config"].items():
            new = getattr(cfg, key)
            if old != new:
                raise InputError(
                    f"{path}: run was started with --{key} {old}, now {new}; use the same settings to resume"
                )
        if state["data"] != data:
            raise InputError(
                f"{path}: run was started on other data (training/selection videos, snippet counts or annotations "
                "differ); use the same --data_path and --annotation_file to resume"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        self.step, self.rows = int(state["step"]), [list(r) for r in state["rows"]]
        self.loss_sum, self.loss_count = state["loss_sum"].to(device), int(state["loss_count"])


def _no_resume_file(path: Path) -> InputError:
    return InputError(f"{path}: no resume file (--resume continues a run that has evaluated at least once)")


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
            raise _no_resume_file(last)
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
    if cfg.resume:
        state.restore(last_path, cfg, device, fingerprint)
        print(f"resumed from {last_path} at step {state.step}")
    header = csv_header(tious, select_name)
    if data.honest:  # the test mAP of every evaluation too (never used to select): the authors' protocol alongside
        header += ["test_acc"] + [f"test_mAP@{t:.2f}" for t in tious] + ["test_mAP@AVG"]

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
        title = f"best {select_name} mAP (%) at step {selected.step} of {state.step} (checkpoint {best_path}){demo}"
        print(map_table(tious, selected.maps, selected.accuracy, title))
    if data.honest and summary.best_on_test is not None:
        s = summary.best_on_test
        title = f"authors' protocol, for comparison: best test mAP (%) over the evaluations, at step {s.step}{demo}"
        print(map_table(tious, s.maps, s.accuracy, title))
    if state.step == cfg.num_iter and selected is not None and (data.honest or cfg.save_vis):
        # Honest protocol: the checkpoint chosen on validation, scored once on test. (--save_vis: its pictures.)
        model = load_model(best_path, data.test, cfg.pool, device)
        result = test_pass(model, data.test, cfg, device, keep_scores=cfg.save_vis)
        write_test_outputs(cfg, result, data.test, "test", step=selected.step)
        if data.honest:
            summary.held_out = Scores(selected.step, result.accuracy, result.maps.tolist())
    return summary
