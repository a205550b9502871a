"""ACRNet: train and test, one CLI (method §7–10). This file is the command line and the dispatch; the settings are
config.py's `Config`, the work is in train.py (method §8), inference.py (§9–§10 test pass), seeds.py (seed variance),
localize.py (--video).

    python main.py --data_path data --data_name thumos14                      # train (method §8), best-on-test
    python main.py --data_path data --data_name thumos14 --val_fraction 0.2   # the honest protocol
    python main.py --data_path data --data_name thumos14 --seeds 42,43,44     # one run per seed, spread over seeds
    python main.py --data_path data --model_file outputs/thumos14.pth         # test a checkpoint → outputs/test
    python main.py --data_path data --model_file outputs/thumos14.pth --diagnose   # + DETAD's error analyses
    python main.py --demo                                                     # synthetic data, CPU, minutes
    python main.py --config outputs/thumos14_config.json --save_path again    # rerun a run from its config file

Training evaluates every --eval_iter steps (test pass of method §9, mAP of method §10), appends a row to
`<save_path>/<data_name>.csv`, keeps the best checkpoint (method §8 rule) in `<save_path>/<data_name>.pth` with its
predictions / ground truth JSON, and writes the resume file `<save_path>/<data_name>_last.pt` (`--resume`). Beside
them, the record of the run (record.py): a per-step CSV, per-class AP, curves, a log file, TensorBoard events and
`<data_name>_config.json`, which `--config` reads back (JSON, or YAML; flags given override it).
Bad input (missing data, wrong checkpoint, bad flag value) → one line `error: <message>` on stderr, exit 2, before
any work: also an unwritable --save_path, and a new run into a folder holding an earlier run (pass --resume to
continue it, --overwrite to replace it; `--demo` overwrites its own folder).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dataset
import demo
import inference
import localize
import seeds
import train
from config import DATASET_DEFAULTS, DEMO_DEFAULTS, TEST_SETTINGS, Config, read_settings, validate
from utils import (
    InputError,
    claim_output_dir,
    parse_act_th,
    parse_seeds,
    prepare_output_dir,
    remove_stale_temps,
    reproducible,
    resolve_device,
    run_cli,
)

TEST_FOLDER = "test"  # --model_file without --save_path writes into <the default save_path>/test

# --- command line ----------------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line `error: ...`, exit 2, like every other bad input
        raise InputError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    S = argparse.SUPPRESS  # every default lives in Config / DATASET_DEFAULTS: unset flags stay absent
    p.add_argument("--config", default=S, help="settings file: a run's <data_name>_config.json, or JSON/YAML")
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
    p.add_argument("--no_ambiguous", dest="ambiguous", action="store_false", default=S, help="THUMOS14: no §9.7 filter")
    p.add_argument(
        "--model_file", default=S, help="test this checkpoint (its own test settings) instead; writes to outputs/test"
    )
    p.add_argument("--device", default=S, help="auto (CUDA if available), cpu, cuda, cuda:1 ...")
    p.add_argument("--resume", action="store_true", default=S, help="continue from <save_path>/<data_name>_last.pt")
    p.add_argument("--overwrite", action="store_true", default=S, help="a new run may replace an earlier run's files")
    p.add_argument("--stop_at", type=int, default=S, help="stop after this step (a pause; continue with --resume)")
    p.add_argument("--val_fraction", type=float, default=S, help="hold out this fraction of training videos to select")
    p.add_argument("--demo", action="store_true", default=S, help="synthetic THUMOS14-layout data, small config")
    p.add_argument("--save_vis", action="store_true", default=S, help="pictures of the test pass (visualise.py)")
    p.add_argument(
        "--diagnose", action="store_true", default=S, help="--model_file: DETAD's error analyses of the test run too"
    )
    p.add_argument("--video", default=S, help="localize actions in this video file (localize.py)")
    p.add_argument("--rgb_weights", default=S, help="I3D RGB weights for --video")
    p.add_argument("--flow_weights", default=S, help="I3D flow weights for --video")
    p.add_argument("--show_all", action="store_true", default=S, help="--video / --save_vis: show every detection")
    p.add_argument("--flow", default=S, choices=["tvl1", "opencv"], help="--video's optical flow (default: tvl1)")
    p.add_argument("--no_progress", dest="progress", action="store_false", default=S, help="no progress bars")
    p.add_argument("--skip_bad", action="store_true", default=S, help="skip and count bad feature files, not fail")
    p.add_argument("--tf32", action="store_true", default=S, help="CUDA: TF32 matmuls too (cuDNN convs already are)")
    p.add_argument("--cudnn_benchmark", action="store_true", default=S, help="CUDA: autotuned, non-deterministic")
    p.add_argument(
        "--bootstrap", type=int, nargs="?", const=1000, default=S, metavar="N",
        help="--model_file: 95%% intervals of the mAP from N resamples of the test videos (default N: 1000)",
    )  # fmt: skip
    p.add_argument("--preload", action="store_true", default=S, help="hold the training features on the device")
    return p


def make_config(argv: Sequence[str] | None = None) -> Config:
    """Flags → Config. Later layers win: Config defaults < dataset defaults (method §8) < --demo defaults < a test
    run's own folder (--model_file without --video: `outputs/test`, `outputs/demo/test`) < the test settings stored
    in a --model_file checkpoint < a --config file's settings < flags given (a note says which test setting came from
    where)."""
    flags = vars(build_parser().parse_args(argv))
    if "act_th" in flags:
        flags["act_th"] = parse_act_th(" ".join(flags["act_th"]))
    from_file = read_settings(flags.pop("config")) if "config" in flags else {}
    if "seed" in flags:  # --seed given: one run, whatever the file's --seeds
        from_file.pop("seeds", None)
    given = {**from_file, **flags}
    demo = DEMO_DEFAULTS if given.get("demo") else {}
    if "save_path" in given:  # a folder the user names is not throwaway: the usual rule (refuse, or --overwrite)
        demo = {k: v for k, v in demo.items() if k != "overwrite"}
    data_name = given.get("data_name", demo.get("data_name", Config.data_name))
    stored: dict[str, Any] = {}
    test_run: dict[str, Any] = {}
    if given.get("model_file"):
        data_name, stored = inference.checkpoint_settings(given["model_file"], data_name, given, TEST_SETTINGS)
        if not given.get("video"):  # a test run's files go beside no training run's: <default save_path>/test
            test_run = {"save_path": str(Path(demo.get("save_path", Config.save_path)) / TEST_FOLDER)}
    cfg = Config(**{**DATASET_DEFAULTS[data_name], **demo, **test_run, **stored, **given, "data_name": data_name})
    validate(cfg)
    return cfg


# --- dispatch ----------------------------------------------------------------------------------------------------


def prepare_outputs(cfg: Config) -> None:
    """Before any work (data, model, training), for every folder the run writes into (--save_path, and seed<s>/ of
    each --seeds run): a training run must not silently replace an earlier run nor --resume a missing one
    (train.check_start, one line), the folder must be writable (one line, not a traceback at the first save), and
    the temporaries that killed saves left there are removed (utils.prepare_output_dir). Each folder is held for the
    life of the run: a second run into it is one line naming the holder (utils.claim_output_dir)."""
    runs = [seeds.seed_config(cfg, seed) for seed in cfg.seeds] if cfg.seeds else [cfg]
    folders = list(dict.fromkeys([cfg.save_path, *(sub.save_path for sub in runs)]))
    for folder in folders:  # a folder another run is writing: that is the one line, not its files (check_start)
        if Path(folder).is_dir():
            claim_output_dir(folder, "--save_path")
    if not cfg.model_file:
        for sub in runs:  # every seed before the first one trains
            train.check_start(sub)
    for folder in folders:
        prepare_output_dir(folder, "--save_path")  # held until the run ends (utils.claim_output_dir)
        remove_stale_temps(Path(folder) / f"{cfg.data_name}_test_vis")  # --save_vis pictures


def check_data(cfg: Config) -> None:
    """The data folder and its annotation file are there (one line each otherwise): cheap, before the config is
    printed. The features are checked when the split loads (dataset.load_split); the demo writes its data later."""
    if cfg.demo:
        return
    if not Path(cfg.data_path).is_dir():
        raise InputError(f"{cfg.data_path}: data folder not found (--data_path)")
    if cfg.annotation_file is None:
        dataset.find_annotation_file(cfg.data_path, cfg.data_name)
    elif not Path(cfg.annotation_file).exists():
        raise InputError(f"{cfg.annotation_file}: annotation file not found (--annotation_file)")


def run(cfg: Config) -> Any:
    """Dispatch: --video → localize; --model_file → test a checkpoint; --seeds → one run per seed; else train.
    Everything cheap is checked before the config is printed, so a bad input is the first and only line."""
    if cfg.video:
        return localize.run(cfg, header=cfg.summary())
    device = resolve_device(cfg.device)
    if not cfg.model_file:
        train.check_memory(cfg, device)  # a batch that cannot fit: refused before any data is read
    check_data(cfg)
    prepare_outputs(cfg)
    print(cfg.summary())
    if cfg.demo:
        demo.ensure_demo(cfg.data_path)
        print("DEMO: synthetic features on real THUMOS14 timelines — the numbers below say nothing about ACRNet.")
    if not cfg.ambiguous and cfg.data_name == "thumos14":
        print("WARNING: --no_ambiguous: THUMOS14 predictions are NOT filtered by the Ambiguous segments (method §9.7); "
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


def interrupted_hint(cfg: Config | None, started: float) -> str:
    """What to run after Ctrl-C: continue with --resume where a run has its resume file; else start again (with
    --overwrite where an interrupted run left outputs but no resume file); a test or --video run is just rerun. A
    resume file older than the command (`started`, time.time()) that was a new run with --overwrite is the replaced
    run's: not this one's to continue."""
    if cfg is None or cfg.model_file:
        return "nothing to resume: run the command again"
    runs = [seeds.seed_config(cfg, seed) for seed in cfg.seeds] if cfg.seeds else [cfg]

    def ours(last: Path) -> bool:
        return last.is_file() and (cfg.resume or not cfg.overwrite or last.stat().st_mtime >= started)

    resumable = [r for r in runs if ours(train.run_files(r)[0])]
    left = [r for r in runs if r not in resumable and "--overwrite" in train.start_again(r)]
    flags = ["--resume"] * bool(resumable) + ["--overwrite"] * bool(left)
    if not flags:
        step = min(cfg.eval_iter, cfg.num_iter)
        return f"no resume file yet (the first is written at step {step}'s evaluation): run the same command again"
    if not resumable:
        return "no resume file yet, but outputs of the interrupted run: run the same command with --overwrite"
    return (
        f"continue: the same command with {' '.join(flags)} added (from the last evaluation or --stop_at pause; the "
        f"run's settings are also in {Path(cfg.save_path) / (cfg.data_name + '_config.json')}, for --config)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry: 0 on success (or localize.run's exit code), 2 on bad input (`error: <message>` on stderr)."""
    made: list[Config] = []
    started = time.time()

    def body() -> Any:
        made.append(make_config(argv))
        return run(made[0])

    return run_cli(body, interrupted=lambda: interrupted_hint(made[0] if made else None, started))


if __name__ == "__main__":
    sys.exit(main())
