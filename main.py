"""ACRNet: train and test, one CLI (SPEC §7–10).

    python main.py --data_path data --data_name thumos14                      # train (SPEC §8), best-on-test
    python main.py --data_path data --data_name thumos14 --val_fraction 0.2   # the honest protocol
    python main.py --data_path data --data_name thumos14 --model_file outputs/thumos14.pth   # test a checkpoint
    python main.py --demo                                                     # synthetic data, CPU, minutes

Training evaluates every --eval_iter steps (test pass of SPEC §9, mAP of SPEC §10), appends a row to
`<save_path>/<data_name>.csv`, keeps the best checkpoint by mAP@AVG in `<save_path>/<data_name>.pth` with its
predictions / ground truth JSON, and writes the resume file `<save_path>/<data_name>_last.pt` (`--resume`).
Bad input (missing data, wrong checkpoint, bad flag value) → one line `error: <message>` on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import random
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

import dataset
import evaluate
import localize
import postprocess
from model import ACRNet, acrnet_loss
from utils import (
    InputError,
    atomic_csv_write,
    atomic_json_dump,
    atomic_torch_save,
    load_checkpoint,
    resolve_device,
    run_cli,
    save_checkpoint,
    set_seed,
)

# SPEC §8 per-dataset settings (the authors' values); a flag given on the command line overrides them.
DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    "thumos14": {"num_seg": 750, "batch_size": 32, "alpha": 0.5, "pool": False},
    "activitynet1.2": {"num_seg": 80, "batch_size": 128, "alpha": 0.8, "pool": True},
    "activitynet1.3": {"num_seg": 80, "batch_size": 128, "alpha": 0.8, "pool": True},
}
# `--demo`: a config small enough to train on a 2-core CPU in minutes (the synthetic videos have L 15–117).
DEMO_DEFAULTS: dict[str, Any] = {
    "data_path": "demo_data",
    "data_name": "thumos14",
    "save_path": "outputs/demo",
    "num_seg": 48,
    "batch_size": 8,
    "num_iter": 60,
    "eval_iter": 20,
    "init_lr": 3e-4,  # few steps: a larger rate than the authors' 1e-4 (still cosine-annealed to 0)
}
# Config fields that must match when a run is resumed (the others — device, workers, stop_at — may change).
RESUME_KEYS = (
    "data_name num_seg batch_size num_iter eval_iter init_lr weight_decay lamda cls_th iou_th act_th alpha fps rate "
    "seed pool val_fraction"
).split()
RESUME_VERSION = 1


@dataclass
class Config:
    """Every setting of a run, printed at start and stored in checkpoints (`meta["config"]`)."""

    data_path: str = "data"
    data_name: str = "thumos14"
    save_path: str = "outputs"
    num_seg: int = 750
    batch_size: int = 32
    num_iter: int = 2000
    eval_iter: int = 100
    init_lr: float = 1e-4
    weight_decay: float = 1e-3
    lamda: float = 0.1
    cls_th: float = 0.1
    iou_th: float = 0.1
    act_th: list[float] = field(default_factory=postprocess.ACT_THRESHOLDS.tolist)
    alpha: float = 0.5
    fps: float = 25.0
    rate: int = 16
    workers: int = 0
    seed: int = 42
    pool: bool = False
    annotation_file: str | None = None
    model_file: str | None = None
    device: str = "auto"
    resume: bool = False
    stop_at: int | None = None
    val_fraction: float = 0.0
    demo: bool = False
    save_vis: bool = False
    video: str | None = None
    rgb_weights: str | None = None
    flow_weights: str | None = None
    flow: str = "tvl1"  # --video's optical flow: tvl1.py (the authors' CUDA TV-L1) or "opencv" (OpenCV's CPU class)
    progress: bool = True
    tf32: bool = False
    skip_bad: bool = False

    def summary(self) -> str:
        items = dataclasses.asdict(self)
        items["act_th"] = _act_th_repr(self.act_th)
        return "config: " + " ".join(f"{k}={v}" for k, v in items.items())


# --- command line ----------------------------------------------------------------------------------------------


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


def _act_th_repr(values: Sequence[float]) -> str:
    return ",".join(f"{v:g}" for v in values)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line `error: ...`, exit 2, like every other bad input
        raise InputError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    S = argparse.SUPPRESS  # every default lives in Config / DATASET_DEFAULTS: unset flags stay absent
    p.add_argument("--data_path", default=S, help="folder holding thumos14/ or activitynet/ (default: data)")
    p.add_argument("--data_name", default=S, choices=list(DATASET_DEFAULTS), help="dataset (default: thumos14)")
    p.add_argument("--save_path", default=S, help="where CSV, checkpoints, predictions go (default: outputs)")
    p.add_argument("--num_seg", "--num_segments", dest="num_seg", type=int, default=S, help="snippets per video S")
    p.add_argument("--batch_size", type=int, default=S, help="videos per training step")
    p.add_argument("--num_iter", type=int, default=S, help="training steps (default: 2000)")
    p.add_argument("--eval_iter", type=int, default=S, help="evaluate every this many steps (default: 100)")
    p.add_argument("--init_lr", type=float, default=S, help="Adam learning rate (default: 1e-4)")
    p.add_argument("--weight_decay", type=float, default=S, help="Adam weight decay (default: 1e-3)")
    p.add_argument("--lamda", type=float, default=S, help="weight of the actionness loss (default: 0.1)")
    p.add_argument("--cls_th", type=float, default=S, help="class score threshold (default: 0.1)")
    p.add_argument("--iou_th", type=float, default=S, help="soft-NMS tIoU threshold (default: 0.1)")
    p.add_argument("--act_th", nargs="+", default=S, help="actionness thresholds: 0.1:1.0:0.05 (arange), or list")
    p.add_argument("--alpha", type=float, default=S, help="soft-NMS alpha (default: per dataset)")
    p.add_argument("--fps", type=float, default=S, help="feature frame rate (default: 25)")
    p.add_argument("--rate", type=int, default=S, help="frames per snippet (default: 16)")
    p.add_argument("--workers", type=int, default=S, help="data-loading processes (default: 0)")
    p.add_argument("--seed", type=int, default=S, help="random seed (default: 42)")
    p.add_argument("--pool", action=argparse.BooleanOptionalAction, default=S, help="temporal pool in the heads")
    p.add_argument("--annotation_file", default=S, help="annotations to use instead of the dataset's default file")
    p.add_argument("--model_file", default=S, help="test this checkpoint instead of training")
    p.add_argument("--device", default=S, help="auto (CUDA if available), cpu, cuda, cuda:1 ...")
    p.add_argument("--resume", action="store_true", default=S, help="continue from <save_path>/<data_name>_last.pt")
    p.add_argument("--stop_at", type=int, default=S, help="stop after this step (a pause; continue with --resume)")
    p.add_argument("--val_fraction", type=float, default=S, help="hold out this fraction of training videos to select")
    p.add_argument("--demo", action="store_true", default=S, help="synthetic THUMOS14-layout data, small config")
    p.add_argument("--save_vis", action="store_true", default=S, help="pictures of the test pass (visualise.py)")
    p.add_argument("--video", default=S, help="localize actions in this video file (localize.py)")
    p.add_argument("--rgb_weights", default=S, help="I3D RGB weights for --video")
    p.add_argument("--flow_weights", default=S, help="I3D flow weights for --video")
    p.add_argument("--flow", default=S, choices=["tvl1", "opencv"], help="--video's optical flow (default: tvl1)")
    p.add_argument("--no_progress", dest="progress", action="store_false", default=S, help="no progress bars")
    p.add_argument("--skip_bad", action="store_true", default=S, help="skip and count bad feature files, not fail")
    p.add_argument("--tf32", action="store_true", default=S, help="CUDA: TF32 matmuls too (cuDNN convs already are)")
    return p


def make_config(argv: Sequence[str] | None = None) -> Config:
    """Flags → Config: Config defaults < dataset defaults (SPEC §8) < --demo defaults < flags given."""
    given = vars(build_parser().parse_args(argv))
    if "act_th" in given:
        given["act_th"] = parse_act_th(" ".join(given["act_th"]))
    values: dict[str, Any] = {}
    if given.get("demo"):
        values.update(DEMO_DEFAULTS)
    data_name = given.get("data_name", values.get("data_name", Config.data_name))
    values = {**DATASET_DEFAULTS[data_name], **values, **given}
    cfg = Config(**values)
    for name in ("num_seg", "batch_size", "num_iter", "eval_iter", "rate"):
        if getattr(cfg, name) < 1:
            raise InputError(f"--{name} {getattr(cfg, name)}: must be at least 1")
    if cfg.workers < 0:
        raise InputError(f"--workers {cfg.workers}: must be 0 or more")
    if not 0 <= cfg.seed < 2**32:  # numpy.random.seed's range
        raise InputError(f"--seed {cfg.seed}: must be in [0, 2**32)")
    if not 0.0 <= cfg.val_fraction < 1.0:
        raise InputError(f"--val_fraction {cfg.val_fraction}: must be in [0, 1)")
    if cfg.fps <= 0 or cfg.alpha <= 0:
        raise InputError("--fps and --alpha must be positive")
    return cfg


# --- data --------------------------------------------------------------------------------------------------------


def holdout_split(split: Any, fraction: float, seed: int) -> tuple[Any, Any]:
    """Split a training Split into (train, validation) by a seeded draw of round(fraction·V) videos (≥ 1)."""
    num = len(split.videos)
    num_val = max(1, round(fraction * num))
    if num_val >= num:
        raise InputError(f"--val_fraction {fraction}: leaves no training video ({num} in the training split)")
    order = np.random.default_rng([seed, 7]).permutation(num)
    val_idx, train_idx = np.sort(order[:num_val]), np.sort(order[num_val:])
    return subset_split(split, train_idx), subset_split(split, val_idx)


def subset_split(split: dataset.Split, keep: np.ndarray) -> dataset.Split:
    """The Split restricted to videos `keep` (indices, in the given order); per-video fields follow."""
    pick = lambda seq: [seq[i] for i in keep]  # noqa: E731
    videos = pick(split.videos)
    return dataclasses.replace(
        split,
        videos=videos,
        labels=split.labels[keep],
        num_snippets=pick(split.num_snippets),
        rgb_paths=pick(split.rgb_paths),
        flow_paths=pick(split.flow_paths),
        durations=pick(split.durations),
        ground_truth={v: split.ground_truth[v] for v in videos},
        ambiguous={v: split.ambiguous[v] for v in videos if v in split.ambiguous},
    )


def _stream_position_video(pos: np.ndarray, num_videos: int, seed: int) -> np.ndarray:
    """Video index at positions `pos` of the training stream: shuffled passes, pass p permuted by rng([seed, p])."""
    out = np.empty_like(pos)
    for p in np.unique(pos // num_videos):  # a batch spans at most a few passes
        sel = pos // num_videos == p
        perm = np.random.default_rng([seed, int(p)]).permutation(num_videos)
        out[sel] = perm[pos[sel] % num_videos]
    return out


class TrainSteps(torch.utils.data.Dataset):
    """Item k = the whole batch of training step `first + k` (1-based): (features [B, S, 2048], labels [B, C]).

    A pure function of (seed, step): the videos are stream positions (step-1)·B … step·B-1 of shuffled passes over
    the training set, and each video's snippet draw (SPEC §7.3) uses rng([seed, step, slot]). So any number of
    workers, and a resumed run, see exactly the batches an uninterrupted run sees.
    """

    def __init__(self, features: Any, batch_size: int, seed: int, first: int, last: int):
        self.features, self.batch_size, self.seed = features, batch_size, seed
        self.first, self.last = first, last

    def __len__(self) -> int:
        return max(0, self.last - self.first + 1)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        step = self.first + k
        pos = np.arange((step - 1) * self.batch_size, step * self.batch_size)
        videos = _stream_position_video(pos, len(self.features), self.seed)
        items = [self.features[(int(v), _item_seed(self.seed, step, slot))] for slot, v in enumerate(videos)]
        feats = torch.stack([torch.as_tensor(it[0]) for it in items])
        labels = torch.stack([torch.as_tensor(it[1]) for it in items])
        return feats, labels


def _item_seed(seed: int, step: int, slot: int) -> int:
    """A 62-bit seed for one video draw of one step, independent across (seed, step, slot)."""
    return int(np.random.SeedSequence([seed, step, slot]).generate_state(1, np.uint64)[0] >> np.uint64(2))


def _worker_init(worker_id: int) -> None:
    # Batches draw from their own rng([seed, step, slot]); seed the globals too so nothing else varies by worker.
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def _loader(ds: torch.utils.data.Dataset, cfg: Config, device: torch.device) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(
        ds,
        batch_size=None,
        shuffle=False,
        num_workers=cfg.workers,
        worker_init_fn=_worker_init,
        generator=torch.Generator().manual_seed(cfg.seed),
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )


# --- test pass (SPEC §9) and evaluation (SPEC §10) -------------------------------------------------------------


@dataclass
class EvalResult:
    accuracy: float
    maps: np.ndarray  # [n_tiou]
    predictions: dict[str, list[dict[str, Any]]]  # {video: [{"label", "score", "segment"}]}
    per_video: dict[str, dict[str, Any]]  # for --save_vis: seg_score, act_score, num_snippets, detections

    @property
    def avg(self) -> float:
        return float(np.mean(self.maps))


@torch.no_grad()
def test_pass(
    model: torch.nn.Module, split: Any, cfg: Config, device: torch.device, *, keep_scores: bool = False
) -> EvalResult:
    """Run every video of `split` one at a time (test sampling), post-process, and evaluate (SPEC §9–10)."""
    model.eval()
    features = dataset.FeatureDataset(split, cfg.num_seg, mode="test")
    loader = _loader(features, cfg, device)
    classes = list(split.classes)
    index = {name: i for i, name in enumerate(classes)}
    thumos = cfg.data_name == "thumos14"
    predictions: dict[str, list[dict[str, Any]]] = {}
    per_video: dict[str, dict[str, Any]] = {}
    correct = 0
    bar = tqdm(loader, desc="test", unit="video", leave=False, disable=not cfg.progress)
    for feats, label, video, num_snippets in bar:
        out = model(feats.to(device, non_blocking=True)[None])
        act = out.act_score[0].float().cpu().numpy()
        seg = out.seg_score[0].float().cpu().numpy()
        truth = set(np.flatnonzero(np.asarray(label) > 0).tolist())
        correct += set(np.asarray(postprocess.predicted_classes(act, cfg.cls_th)).tolist()) == truth
        dets = postprocess.detect(
            act,
            seg,
            int(num_snippets),
            cls_th=cfg.cls_th,
            act_th=cfg.act_th,
            alpha=cfg.alpha,
            iou_th=cfg.iou_th,
            fps=cfg.fps,
            rate=cfg.rate,
        )
        preds = localize.detections_as_records(dets, classes)
        if thumos:  # SPEC §9.4, on this video's predictions (keeps dets and predictions aligned)
            preds = postprocess.filter_ambiguous({video: preds}, split.ambiguous)[video]
        predictions[video] = preds
        if keep_scores:
            kept = [(index[p["label"]], p["segment"][0], p["segment"][1], p["score"]) for p in preds]
            per_video[video] = {
                "seg_score": seg,
                "act_score": act,
                "num_snippets": int(num_snippets),
                "detections": kept,
            }
    tious = dataset.DATASETS[cfg.data_name].tiou_thresholds
    gt = {v: split.ground_truth.get(v, []) for v in split.videos}
    maps = np.asarray(evaluate.detection_map(gt, predictions, tious), dtype=np.float64)
    return EvalResult(correct / max(len(split.videos), 1), maps, predictions, per_video)


# --- outputs -----------------------------------------------------------------------------------------------------


def csv_header(tious: Sequence[float], eval_name: str) -> list[str]:
    return ["step", "loss", f"{eval_name}_acc"] + [f"mAP@{t:.2f}" for t in tious] + ["mAP@AVG"]


def results_json(predictions: dict[str, list[dict[str, Any]]], data_name: str) -> dict[str, Any]:
    """ActivityNet results layout."""
    return {"version": f"ACRNet {data_name}", "results": predictions, "external_data": {}}


def ground_truth_json(split: Any, data_name: str, subset: str) -> dict[str, Any]:
    """The evaluated videos' ground truth in the ActivityNet annotation layout (readable by dataset.load_split)."""
    database = {v: {"subset": subset, "annotations": split.ground_truth.get(v, [])} for v in split.videos}
    return {"version": f"ACRNet {data_name}", "database": database}


def format_table(tious: Sequence[float], maps: np.ndarray, accuracy: float, title: str) -> str:
    """README-style table: mAP@tIoU and AVG ×100, one decimal."""
    head = [f"@{t:g}" for t in tious] + ["AVG", "acc"]
    vals = [f"{100 * m:.1f}" for m in maps] + [f"{100 * float(np.mean(maps)):.1f}", f"{100 * accuracy:.1f}"]
    widths = [max(len(h), len(v)) for h, v in zip(head, vals, strict=True)]
    line = lambda cells: "| " + " | ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return f"{title}\n{line(head)}\n{sep}\n{line(vals)}"


def _meta(cfg: Config, classes: Sequence[str]) -> dict[str, Any]:
    return {"classes": list(classes), "data_name": cfg.data_name, "config": dataclasses.asdict(cfg)}


def _save_visuals(cfg: Config, result: EvalResult, split: Any, tag: str) -> None:
    import visualise  # matplotlib only when pictures are asked for

    tious = dataset.DATASETS[cfg.data_name].tiou_thresholds
    gt = {v: split.ground_truth.get(v, []) for v in split.videos}
    names, ap_gt = evaluate.average_precision_per_class(gt, result.predictions, tious)
    ap = np.full((len(split.classes), len(tious)), np.nan)  # NaN rows: classes without ground truth
    ap[[list(split.classes).index(c) for c in names]] = ap_gt
    out_dir = Path(cfg.save_path) / f"{cfg.data_name}_{tag}_vis"
    written = visualise.save_test_visuals(
        out_dir, result.per_video, gt, list(split.classes), ap, tious, fps=cfg.fps, rate=cfg.rate, progress=cfg.progress
    )
    print(f"{len(written)} pictures → {out_dir}")


def write_test_outputs(cfg: Config, result: EvalResult, split: Any, tag: str, step: int | None = None) -> None:
    """`<data_name>_<tag>.csv` (one row), `_<tag>_predictions.json`, `_<tag>_ground_truth.json`; table on stdout."""
    tious = dataset.DATASETS[cfg.data_name].tiou_thresholds
    save = Path(cfg.save_path)
    row = [step if step is not None else "", "", result.accuracy, *result.maps.tolist(), result.avg]
    atomic_csv_write(save / f"{cfg.data_name}_{tag}.csv", csv_header(tious, "test"), [row])
    atomic_json_dump(results_json(result.predictions, cfg.data_name), save / f"{cfg.data_name}_{tag}_predictions.json")
    atomic_json_dump(ground_truth_json(split, cfg.data_name, "test"), save / f"{cfg.data_name}_{tag}_ground_truth.json")
    print(format_table(tious, result.maps, result.accuracy, f"{cfg.data_name} test mAP (%)"))
    if cfg.save_vis:
        _save_visuals(cfg, result, split, tag)


# --- the two modes -----------------------------------------------------------------------------------------------


def _rng_state() -> dict[str, Any]:
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


def _set_rng_state(state: dict[str, Any]) -> None:
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


def load_checked_split(cfg: Config, split: str) -> Any:
    """dataset.load_split with the run's flags; prints the split's summary (videos, classes, what was skipped)."""
    loaded = dataset.load_split(
        cfg.data_path,
        cfg.data_name,
        split,
        skip_bad=cfg.skip_bad,
        annotation_file=cfg.annotation_file,
        progress=cfg.progress,
    )
    print(loaded.summary())
    return loaded


def load_data(cfg: Config) -> tuple[Any, Any, Any]:
    """(train split, selection split, test split): selection is the test split unless --val_fraction > 0."""
    train, test = (load_checked_split(cfg, split) for split in ("train", "test"))
    if cfg.val_fraction > 0:
        train, val = holdout_split(train, cfg.val_fraction, cfg.seed)
        return train, val, test
    return train, test, test


def train(cfg: Config, device: torch.device) -> dict[str, Any]:
    """SPEC §8 training with periodic evaluation, best checkpoint, resume file. → the best CSV row as a dict."""
    train_split, sel_split, test_split = load_data(cfg)
    honest = sel_split is not test_split
    eval_name = "val" if honest else "test"
    classes = list(train_split.classes)
    tious = dataset.DATASETS[cfg.data_name].tiou_thresholds
    save = Path(cfg.save_path)
    last_path = save / f"{cfg.data_name}_last.pt"
    best_path = save / f"{cfg.data_name}.pth"

    set_seed(cfg.seed)
    model = ACRNet(len(classes), pool=cfg.pool).to(device)
    # fused: the same Adam update in one kernel (the optimizer step alone ran 3x faster than foreach on a 2-core CPU)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.init_lr, weight_decay=cfg.weight_decay, fused=True)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.num_iter, eta_min=0.0)
    step, rows, best = 0, [], -math.inf
    loss_sum = torch.zeros((), device=device)  # accumulated on device: no host sync inside a step
    loss_count = 0
    data = _data_fingerprint(train_split, sel_split)
    if cfg.resume:
        step, rows, best, loss_sum, loss_count = _load_resume(last_path, cfg, model, opt, sched, device, data)
        print(f"resumed from {last_path} at step {step}")
    header = csv_header(tious, eval_name)

    features = dataset.FeatureDataset(train_split, cfg.num_seg, mode="train")
    stop = min(cfg.num_iter, cfg.stop_at) if cfg.stop_at is not None else cfg.num_iter
    loader = _loader(TrainSteps(features, cfg.batch_size, cfg.seed, step + 1, stop), cfg, device)
    eval_seconds, start = 0.0, time.perf_counter()
    bar = tqdm(total=cfg.num_iter, initial=step, desc="train", unit="step", disable=not cfg.progress)
    for x, y in loader:
        step += 1
        model.train()
        out = model(x.to(device, non_blocking=True))
        loss, _ = acrnet_loss(out, y.to(device, non_blocking=True), lamda=cfg.lamda)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        loss_sum += loss.detach()
        loss_count += 1
        bar.update(1)
        if step % cfg.eval_iter == 0 or step == cfg.num_iter:
            mean_loss = float(loss_sum) / loss_count
            loss_sum.zero_()
            loss_count = 0
            t0 = time.perf_counter()
            result = test_pass(model, sel_split, cfg, device)
            rows.append([step, mean_loss, result.accuracy, *result.maps.tolist(), result.avg])
            atomic_csv_write(save / f"{cfg.data_name}.csv", header, rows)
            if result.avg > best:
                best = result.avg
                save_checkpoint(model.state_dict(), best_path, _meta(cfg, classes))
                atomic_json_dump(
                    results_json(result.predictions, cfg.data_name), save / f"{cfg.data_name}_predictions.json"
                )
                atomic_json_dump(
                    ground_truth_json(sel_split, cfg.data_name, eval_name),
                    save / f"{cfg.data_name}_ground_truth.json",
                )
            _save_resume(last_path, cfg, model, opt, sched, step, rows, best, loss_sum, loss_count, data)
            eval_seconds += time.perf_counter() - t0
            bar.set_postfix(loss=f"{mean_loss:.4f}", mAP=f"{100 * result.avg:.1f}", best=f"{100 * best:.1f}")
    bar.close()
    if loss_count:  # stopped between evaluations (--stop_at): keep the steps done since the last one
        _save_resume(last_path, cfg, model, opt, sched, step, rows, best, loss_sum, loss_count, data)
    total = time.perf_counter() - start
    print(f"{total:.0f} s: training {total - eval_seconds:.0f} s, evaluation and saving {eval_seconds:.0f} s")
    if step < cfg.num_iter:
        print(f"stopped at step {step} of {cfg.num_iter}; continue with --resume")
    if not rows:
        return {}
    best_row = max(rows, key=lambda r: r[-1])  # first of equal maxima = the one checkpointed
    print(
        format_table(
            tious,
            np.asarray(best_row[3:-1]),
            best_row[2],
            f"best {eval_name} mAP (%) at step {best_row[0]} of {step} (checkpoint {best_path})"
            + (" — SYNTHETIC demo data" if cfg.demo else ""),
        )
    )
    if step == cfg.num_iter and (honest or cfg.save_vis):
        # Honest protocol: the checkpoint chosen on validation, scored once on test. (--save_vis: its pictures.)
        sd, _ = load_checkpoint(best_path, len(classes))
        model.load_state_dict(sd)
        result = test_pass(model, test_split, cfg, device, keep_scores=cfg.save_vis)
        write_test_outputs(cfg, result, test_split, "test", step=best_row[0])
    return dict(zip(header, best_row, strict=True))


def _data_fingerprint(train_split: dataset.Split, sel_split: dataset.Split) -> str:
    """A hash of the data a run depends on: classes, training videos (L, labels), selection videos (L, ground truth).

    Stored in the resume file, so a resume on other data (--annotation_file, --data_path, changed features) is
    refused instead of silently continuing on a different training stream."""
    parts = {
        "classes": list(train_split.classes),
        "train": [train_split.videos, train_split.num_snippets],
        "select": [sel_split.videos, sel_split.num_snippets, sel_split.ground_truth, sel_split.ambiguous],
    }
    h = hashlib.sha256(json.dumps(parts, sort_keys=True).encode())
    h.update(np.ascontiguousarray(train_split.labels, np.float32).tobytes())
    return h.hexdigest()


def _save_resume(
    path: Path,
    cfg: Config,
    model,
    opt,
    sched,
    step: int,
    rows: list,
    best: float,
    loss_sum,
    loss_count: int,
    data: str = "",
) -> None:
    """The resume file: everything the rest of the run depends on (loadable with weights_only=True)."""
    state = {
        "version": RESUME_VERSION,
        "config": {k: getattr(cfg, k) for k in RESUME_KEYS},
        "data": data,
        "step": step,
        "rows": rows,
        "best": best,
        "loss_sum": loss_sum.detach().cpu(),  # the running loss of the steps since the last evaluation
        "loss_count": loss_count,
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "rng": _rng_state(),
    }
    atomic_torch_save(state, path)


def _load_resume(
    path: Path, cfg: Config, model, opt, sched, device, data: str = ""
) -> tuple[int, list, float, torch.Tensor, int]:
    if not path.is_file():
        raise InputError(f"{path}: no resume file (--resume continues a run that has evaluated at least once)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if state.get("version") != RESUME_VERSION:
            raise KeyError("version")
    except Exception as e:  # corrupt, truncated, not ours
        raise InputError(f"{path}: not a readable resume file ({type(e).__name__})") from None
    for key, old in state["config"].items():
        new = getattr(cfg, key)
        if old != new:
            raise InputError(f"{path}: run was started with --{key} {old}, now {new}; use the same settings to resume")
    if state.get("data") and data and state["data"] != data:
        raise InputError(
            f"{path}: run was started on other data (training/selection videos, snippet counts or annotations "
            "differ); use the same --data_path and --annotation_file to resume"
        )
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    _set_rng_state(state["rng"])
    rows = [list(r) for r in state["rows"]]
    loss_sum = state["loss_sum"].to(device)
    return int(state["step"]), rows, float(state["best"]), loss_sum, int(state["loss_count"])


def test(cfg: Config, device: torch.device) -> EvalResult:
    """Test a checkpoint (`--model_file`): SPEC §9 test pass + §10 mAP, table, CSV and predictions JSON."""
    split = load_checked_split(cfg, "test")
    sd, meta = load_checkpoint(cfg.model_file, len(split.classes))
    if meta and meta.get("classes") and list(meta["classes"]) != list(split.classes):
        raise InputError(f"{cfg.model_file}: checkpoint classes differ from the {cfg.data_name} classes")
    model = ACRNet(len(split.classes), pool=cfg.pool).to(device)
    try:
        model.load_state_dict(sd)
    except RuntimeError as e:
        raise InputError(f"{cfg.model_file}: does not fit ACRNet ({str(e).splitlines()[0]})") from None
    result = test_pass(model, split, cfg, device, keep_scores=cfg.save_vis)
    write_test_outputs(cfg, result, split, "test")
    return result


def run(cfg: Config) -> Any:
    print(cfg.summary())
    if cfg.video:
        return localize.run(cfg)
    device = resolve_device(cfg.device)
    if cfg.demo:
        data_dir = Path(cfg.data_path)
        if not (data_dir / "thumos14" / "annotations.json").is_file():
            import demo

            print(f"writing the synthetic demo dataset → {data_dir / 'thumos14'}")
            demo.make_demo(data_dir, seed=0)
        print("DEMO: synthetic features on real THUMOS14 timelines — the numbers below say nothing about ACRNet.")
    if not Path(cfg.data_path).is_dir():
        raise InputError(f"{cfg.data_path}: data folder not found (--data_path)")
    deterministic = torch.are_deterministic_algorithms_enabled()
    if cfg.tf32:  # the attention matmuls in TF32, like cuDNN's default for the convolutions: 31 → 23 ms/step (H200)
        torch.backends.cuda.matmul.allow_tf32 = True
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    start = time.perf_counter()
    try:
        out = test(cfg, device) if cfg.model_file else train(cfg, device)
    finally:
        torch.use_deterministic_algorithms(deterministic)
    print(f"done in {time.perf_counter() - start:.0f} s")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry: 0 on success (or localize.run's exit code), 2 on bad input (`error: <message>` on stderr)."""
    return run_cli(lambda: run(make_config(argv)), interrupted="continue with --resume (from the last evaluation)")


if __name__ == "__main__":
    sys.exit(main())
