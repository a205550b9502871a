"""ACRNet: train and test, one CLI (SPEC §7–10). This file is the command line, the config and the dispatch; the work
is in train.py (SPEC §8), inference.py (§9–§10 test pass), seeds.py (seed variance), localize.py (--video).

    python main.py --data_path data --data_name thumos14                      # train (SPEC §8), best-on-test
    python main.py --data_path data --data_name thumos14 --val_fraction 0.2   # the honest protocol
    python main.py --data_path data --data_name thumos14 --seeds 42,43,44     # one run per seed, spread over seeds
    python main.py --data_path data --model_file outputs/thumos14.pth         # test a checkpoint (its own settings)
    python main.py --demo                                                     # synthetic data, CPU, minutes

Training evaluates every --eval_iter steps (test pass of SPEC §9, mAP of SPEC §10), appends a row to
`<save_path>/<data_name>.csv`, keeps the best checkpoint (SPEC §8 rule) in `<save_path>/<data_name>.pth` with its
predictions / ground truth JSON, and writes the resume file `<save_path>/<data_name>_last.pt` (`--resume`).
Bad input (missing data, wrong checkpoint, bad flag value) → one line `error: <message>` on stderr, exit 2, before
any work: also an unwritable --save_path, and a new run into a folder holding an earlier run (pass --resume to
continue it, --overwrite to replace it; `--demo` overwrites its own folder).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import demo
import inference
import localize
import postprocess
import seeds
import train
from utils import (
    InputError,
    format_thresholds,
    is_finite_number,
    parse_act_th,
    parse_seeds,
    prepare_output_dir,
    remove_stale_temps,
    reproducible,
    resolve_device,
    run_cli,
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
    "overwrite": True,  # its own folder holds throwaway runs: a second `--demo` replaces the first (a note says so)
}
# The settings that change test results; --model_file takes them from the checkpoint unless a flag is given.
TEST_SETTINGS = ("num_seg", "cls_th", "iou_th", "act_th", "alpha", "fps", "rate", "pool")


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
    seeds: list[int] | None = None
    pool: bool = False
    annotation_file: str | None = None
    ambiguous: bool = True
    model_file: str | None = None
    device: str = "auto"
    resume: bool = False
    overwrite: bool = False
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
    cudnn_benchmark: bool = False
    preload: bool = False
    skip_bad: bool = False

    def summary(self) -> str:
        items = dataclasses.asdict(self)
        items["act_th"] = format_thresholds(self.act_th)
        return "config: " + " ".join(f"{k}={v}" for k, v in items.items())


# --- command line ----------------------------------------------------------------------------------------------


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
    one = p.add_mutually_exclusive_group()
    one.add_argument("--seed", type=int, default=S, help="random seed (default: 42)")
    one.add_argument("--seeds", type=parse_seeds, default=S, help="one run per seed (42,43,44), then their spread")
    p.add_argument("--pool", action=argparse.BooleanOptionalAction, default=S, help="temporal pool in the heads")
    p.add_argument("--annotation_file", default=S, help="annotations to use instead of the dataset's default file")
    p.add_argument("--no_ambiguous", dest="ambiguous", action="store_false", default=S, help="THUMOS14: no §9.4 filter")
    p.add_argument("--model_file", default=S, help="test this checkpoint (with its own test settings) instead")
    p.add_argument("--device", default=S, help="auto (CUDA if available), cpu, cuda, cuda:1 ...")
    p.add_argument("--resume", action="store_true", default=S, help="continue from <save_path>/<data_name>_last.pt")
    p.add_argument("--overwrite", action="store_true", default=S, help="a new run may replace an earlier run's files")
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
    p.add_argument("--cudnn_benchmark", action="store_true", default=S, help="CUDA: autotuned, non-deterministic")
    p.add_argument("--preload", action="store_true", default=S, help="hold the training features on the device")
    return p


def make_config(argv: Sequence[str] | None = None) -> Config:
    """Flags → Config. Later layers win: Config defaults < dataset defaults (SPEC §8) < --demo defaults < the test
    settings stored in a --model_file checkpoint < flags given (a note says which setting came from where)."""
    given = vars(build_parser().parse_args(argv))
    if "act_th" in given:
        given["act_th"] = parse_act_th(" ".join(given["act_th"]))
    demo = DEMO_DEFAULTS if given.get("demo") else {}
    if "save_path" in given:  # a folder the user names is not throwaway: the usual rule (refuse, or --overwrite)
        demo = {k: v for k, v in demo.items() if k != "overwrite"}
    data_name = given.get("data_name", demo.get("data_name", Config.data_name))
    stored: dict[str, Any] = {}
    if given.get("model_file"):
        data_name, stored = inference.checkpoint_settings(given["model_file"], data_name, given, TEST_SETTINGS)
    cfg = Config(**{**DATASET_DEFAULTS[data_name], **demo, **stored, **given, "data_name": data_name})
    validate(cfg)
    return cfg


# The range of every numeric flag, checked up front (`--init_lr -1` was an Adam traceback, `--lamda nan` a NaN loss
# and a garbage checkpoint with exit 0). flag → (test, what the one-line error says the value must be).
AT_LEAST_1 = (lambda v: v >= 1, "at least 1")
POSITIVE = (lambda v: v > 0, "a finite number > 0")
NON_NEGATIVE = (lambda v: v >= 0, "a finite number >= 0")
UNIT = (lambda v: 0 <= v <= 1, "a finite number in [0, 1]")  # scores and tIoUs lie in [0, 1]
SEED = (lambda v: 0 <= v < 2**32, "in [0, 2**32)")  # numpy.random.seed's range
FLAG_RANGES: dict[str, tuple[Callable[[float], bool], str]] = {
    "num_seg": AT_LEAST_1,
    "batch_size": AT_LEAST_1,
    "num_iter": AT_LEAST_1,
    "eval_iter": AT_LEAST_1,
    "rate": AT_LEAST_1,
    "stop_at": AT_LEAST_1,
    "workers": (lambda v: v >= 0, "0 or more"),
    "seed": SEED,
    "init_lr": POSITIVE,
    "weight_decay": NON_NEGATIVE,
    "lamda": NON_NEGATIVE,
    "cls_th": UNIT,
    "iou_th": UNIT,
    "alpha": POSITIVE,
    "fps": POSITIVE,
    "val_fraction": (lambda v: 0 <= v < 1, "a finite number in [0, 1)"),
}


def check_range(flag: str, value: Any) -> None:
    """One numeric flag against FLAG_RANGES (None = not set) → InputError `--<flag> <value>: must be <rule>`."""
    ok, must = FLAG_RANGES[flag]
    if value is not None and not (is_finite_number(value) and ok(value)):
        shown = f"{value:g}" if isinstance(value, float) else value
        raise InputError(f"--{flag} {shown}: must be {must}")


def validate(cfg: Config) -> None:
    """Refuse settings that cannot run, in one line each, before anything is read or written."""
    for flag in FLAG_RANGES:
        check_range(flag, getattr(cfg, flag))
    if not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in cfg.act_th):
        raise InputError(
            f"--act_th {format_thresholds(cfg.act_th)}: thresholds must lie in [0, 1] (scores are clipped)"
        )
    if cfg.seeds is not None:
        if not cfg.seeds or len(set(cfg.seeds)) != len(cfg.seeds):
            raise InputError(f"--seeds {cfg.seeds}: give one or more distinct seeds")
        for seed in cfg.seeds:
            check_range("seed", seed)
        if cfg.model_file or cfg.video:
            raise InputError("--seeds trains one run per seed; it does not go with --model_file or --video")


# --- dispatch ----------------------------------------------------------------------------------------------------


def prepare_outputs(cfg: Config) -> None:
    """Before any work (data, model, training), for every folder the run writes into (--save_path, and seed<s>/ of
    each --seeds run): a training run must not silently replace an earlier run nor --resume a missing one
    (train.check_start, one line), the folder must be writable (one line, not a traceback at the first save), and
    the temporaries that killed saves left there are removed (utils.prepare_output_dir)."""
    runs = [seeds.seed_config(cfg, seed) for seed in cfg.seeds] if cfg.seeds else [cfg]
    if not cfg.model_file:
        for sub in runs:  # every seed before the first one trains
            train.check_start(sub)
    for folder in dict.fromkeys([cfg.save_path, *(sub.save_path for sub in runs)]):
        prepare_output_dir(folder, "--save_path")
        remove_stale_temps(Path(folder) / f"{cfg.data_name}_test_vis")  # --save_vis pictures


def run(cfg: Config) -> Any:
    """Dispatch: --video → localize; --model_file → test a checkpoint; --seeds → one run per seed; else train."""
    print(cfg.summary())
    if cfg.video:
        return localize.run(cfg)
    device = resolve_device(cfg.device)
    if not cfg.demo and not Path(cfg.data_path).is_dir():  # (the demo writes its data folder, after the checks)
        raise InputError(f"{cfg.data_path}: data folder not found (--data_path)")
    prepare_outputs(cfg)
    if cfg.demo:
        demo.ensure_demo(cfg.data_path)
        print("DEMO: synthetic features on real THUMOS14 timelines — the numbers below say nothing about ACRNet.")
    if not cfg.ambiguous and cfg.data_name == "thumos14":
        print("WARNING: --no_ambiguous: THUMOS14 predictions are NOT filtered by the Ambiguous segments (SPEC §9.4); "
              "the mAP is not comparable with published numbers", file=sys.stderr)  # fmt: skip
    start = time.perf_counter()
    with reproducible(device, cudnn_benchmark=cfg.cudnn_benchmark, tf32=cfg.tf32):
        if cfg.model_file:
            out = inference.test_checkpoint(cfg, device)
        elif cfg.seeds:
            out = seeds.run_seeds(cfg, device)
        else:
            out = train.train(cfg, device)
    print(f"done in {time.perf_counter() - start:.0f} s")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry: 0 on success (or localize.run's exit code), 2 on bad input (`error: <message>` on stderr)."""
    return run_cli(lambda: run(make_config(argv)), interrupted="continue with --resume (from the last evaluation)")


if __name__ == "__main__":
    sys.exit(main())
