"""The test side of a run (method §9–§10): load a split with the run's flags, the test pass (one video at a time →
post-processing → detection mAP), the files a test pass writes, and testing a checkpoint (`--model_file`).

    result = test_pass(model, split, cfg, device)      # EvalResult: accuracy, maps [n_tiou], predictions
    print(map_table(tious, result.maps, result.accuracy, "thumos14 test mAP (%)"))

`cfg` is config.Config (any object with its fields works).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import bootstrap
import dataset
import evaluate
import postprocess
from config import stored_setting
from model import ACRNet
from utils import (
    InputError,
    Progress,
    atomic_csv_write,
    atomic_json_dump,
    format_table,
    load_checkpoint,
)


def load_checked_split(cfg: Any, split: str) -> dataset.Split:
    """dataset.load_split with the run's flags; prints the split's summary (videos, classes, what was skipped). With
    --skip_bad every skipped video and its reason is written to `<save_path>/<data_name>_<split>_skipped.txt` (one
    `video<TAB>reason` line each; empty when none), which the summary points at."""
    loaded = dataset.load_split(
        cfg.data_path,
        cfg.data_name,
        split,
        skip_bad=cfg.skip_bad,
        annotation_file=cfg.annotation_file,
        progress=cfg.progress,
        ambiguous=cfg.ambiguous,
        fps=cfg.fps,
        rate=cfg.rate,
    )
    listed = None
    if cfg.skip_bad:  # written even when empty: a list left by an earlier run would name files no longer skipped
        listed = Path(cfg.save_path) / f"{cfg.data_name}_{split}_skipped.txt"
        loaded.write_skipped(listed)
    print(loaded.summary(skipped_file=listed))
    return loaded


def _worker_init(worker_id: int) -> None:
    # Batches draw from their own rng([seed, step, slot]); seed the globals too so nothing else varies by worker.
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def data_loader(ds: torch.utils.data.Dataset, cfg: Any, device: torch.device) -> torch.utils.data.DataLoader:
    """Items of `ds` as they are (each item is already a whole batch or one test video), `cfg.workers` processes."""
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


# --- test pass (method §9) and evaluation (method §10) -------------------------------------------------------------


@dataclass
class EvalResult:
    accuracy: float
    maps: np.ndarray  # [n_tiou]
    detections: evaluate.Detections  # the predictions, as arrays (after the THUMOS14 ambiguous filter)
    per_video: dict[str, dict[str, Any]]  # for --save_vis: seg_score, act_score, num_snippets, detections
    class_ap: np.ndarray | None = None  # [C, n_tiou] AP per class of the split (NaN rows: no ground truth)
    matches: evaluate.Matches | None = None  # the matched flags, for bootstrap intervals

    @property
    def avg(self) -> float:
        return float(np.mean(self.maps))

    @property
    def predictions(self) -> dict[str, list[dict[str, Any]]]:
        """{video: [{"label", "score", "segment"}]}: the records the predictions JSON holds."""
        return self.detections.as_dict()


@torch.no_grad()
def test_pass(
    model: torch.nn.Module, split: dataset.Split, cfg: Any, device: torch.device, *, keep_scores: bool = False
) -> EvalResult:
    """Run every video of `split` one at a time (test sampling), post-process, and evaluate (method §9–10). The
    detections stay arrays from post-processing to the evaluator."""
    model.eval()
    features = dataset.FeatureDataset(split, cfg.num_seg, mode="test")
    loader = data_loader(features, cfg, device)
    classes = list(split.classes)
    videos: list[str] = []
    found: list[tuple[np.ndarray, np.ndarray]] = []  # per video: class_index [D], (start, end, score) [D, 3]
    scores: dict[str, tuple[np.ndarray, np.ndarray, int]] = {}
    correct = 0
    bar = Progress(loader, desc="test", unit="video", leave=False, enabled=cfg.progress)
    for feats, label, video, num_snippets in bar:
        out = model(feats.to(device, non_blocking=True)[None])
        act = out.act_score[0].float().cpu().numpy()
        seg = out.seg_score[0].float().cpu().numpy()
        truth = set(np.flatnonzero(np.asarray(label) > 0).tolist())
        correct += set(np.asarray(postprocess.predicted_classes(act, cfg.cls_th)).tolist()) == truth
        found.append(
            postprocess.detect_arrays(
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
        )
        videos.append(video)
        if keep_scores:
            scores[video] = (seg, act, int(num_snippets))
    detections = evaluate.Detections.from_videos(videos, classes, found)
    if cfg.data_name == "thumos14":  # method §9.7
        detections = detections.select(
            ~postprocess.ambiguous_overlap(detections.video, detections.segment, videos, split.ambiguous)
        )
    per_video = {}
    if keep_scores:
        kept = detections.video
        for i, video in enumerate(videos):
            seg, act, n = scores[video]
            rows_i = np.flatnonzero(kept == i)
            dets = [
                (c, s, e, p)
                for c, (s, e), p in zip(
                    detections.label[rows_i].tolist(),
                    detections.segment[rows_i].tolist(),
                    detections.score[rows_i].tolist(),
                    strict=True,
                )
            ]
            per_video[video] = {"seg_score": seg, "act_score": act, "num_snippets": n, "detections": dets}
    tious = dataset.DATASETS[cfg.data_name].tiou_thresholds
    gt = {v: split.ground_truth.get(v, []) for v in split.videos}
    matches = evaluate.match(gt, detections, tious)
    if not matches.classes:
        raise ValueError("ground truth has no action instances: mAP is undefined")
    ap = evaluate.class_ap(matches)
    index = {name: i for i, name in enumerate(classes)}
    class_ap = np.full((len(classes), len(tious)), np.nan)
    class_ap[[index[c] for c in matches.classes]] = ap
    maps = np.asarray(ap.mean(axis=0), dtype=np.float64)  # = evaluate.detection_map: the mean over classes with GT
    return EvalResult(correct / max(len(split.videos), 1), maps, detections, per_video, class_ap, matches)


# --- outputs -----------------------------------------------------------------------------------------------------


def csv_header(tious: Sequence[float], eval_name: str) -> list[str]:
    return ["step", "loss", f"{eval_name}_acc"] + [f"mAP@{t:.2f}" for t in tious] + ["mAP@AVG"]


def results_json(predictions: dict[str, list[dict[str, Any]]], data_name: str) -> dict[str, Any]:
    """ActivityNet results layout."""
    return {"version": f"ACRNet {data_name}", "results": predictions, "external_data": {}}


def ground_truth_json(split: dataset.Split, data_name: str, subset: str) -> dict[str, Any]:
    """The evaluated videos' ground truth in the ActivityNet annotation layout (readable by dataset.load_split), with
    their durations where known (evaluate.py --diagnose reads them)."""
    database = {
        v: {"subset": subset, "annotations": split.ground_truth.get(v, [])} | ({} if d is None else {"duration": d})
        for v, d in zip(split.videos, split.durations, strict=True)
    }
    return {"version": f"ACRNet {data_name}", "database": database}


def map_table(tious: Sequence[float], maps: Sequence[float], accuracy: float, title: str) -> str:
    """README-style table of one evaluation: mAP@tIoU, AVG and accuracy ×100, one decimal."""
    head = [f"@{t:g}" for t in tious] + ["AVG", "acc"]
    cells = [f"{100 * m:.1f}" for m in maps] + [f"{100 * float(np.mean(maps)):.1f}", f"{100 * accuracy:.1f}"]
    return format_table(head, [cells], title=title, align="r" * len(head))


def _save_visuals(cfg: Any, result: EvalResult, split: dataset.Split, tag: str) -> None:
    import visualise  # matplotlib only when pictures are asked for

    tious = dataset.DATASETS[cfg.data_name].tiou_thresholds
    gt = {v: split.ground_truth.get(v, []) for v in split.videos}
    out_dir = Path(cfg.save_path) / f"{cfg.data_name}_{tag}_vis"
    classes, ap = list(split.classes), result.class_ap
    note = " — SYNTHETIC features on a real THUMOS14 timeline (demo)" if cfg.demo else ""
    written = visualise.save_test_visuals(
        out_dir, result.per_video, gt, classes, ap, tious, fps=cfg.fps, rate=cfg.rate, progress=cfg.progress,
        show_all=cfg.show_all, note=note, source=split.annotation_file or f"the {split.data_name} {split.split} split",
    )  # fmt: skip
    print(f"{len(written)} pictures → {out_dir}")


def write_test_outputs(cfg: Any, result: EvalResult, split: dataset.Split, tag: str, step: int | None = None) -> None:
    """`<data_name>_<tag>.csv` (one row), `_<tag>_predictions.json`, `_<tag>_ground_truth.json`; table on stdout."""
    tious = dataset.DATASETS[cfg.data_name].tiou_thresholds
    save = Path(cfg.save_path)
    row = [step if step is not None else "", "", result.accuracy, *result.maps.tolist(), result.avg]
    atomic_csv_write(save / f"{cfg.data_name}_{tag}.csv", csv_header(tious, "test"), [row])
    atomic_json_dump(results_json(result.predictions, cfg.data_name), save / f"{cfg.data_name}_{tag}_predictions.json")
    atomic_json_dump(ground_truth_json(split, cfg.data_name, "test"), save / f"{cfg.data_name}_{tag}_ground_truth.json")
    print(map_table(tious, result.maps, result.accuracy, f"{cfg.data_name} test mAP (%)"))
    if cfg.save_vis:
        _save_visuals(cfg, result, split, tag)


def load_model(path: str | Path, split: dataset.Split, pool: bool, device: torch.device) -> ACRNet:
    """ACRNet for `split`'s classes with the weights of checkpoint `path` (one-line InputError if they do not fit)."""
    sd, meta = load_checkpoint(path, len(split.classes))
    if meta and meta.get("classes") and list(meta["classes"]) != list(split.classes):
        raise InputError(f"{path}: checkpoint classes differ from the {split.data_name} classes")
    model = ACRNet(len(split.classes), pool=pool).to(device)
    try:
        model.load_state_dict(sd)
    except RuntimeError as e:
        raise InputError(f"{path}: does not fit ACRNet ({str(e).splitlines()[0]})") from None
    return model


def checkpoint_settings(
    path: str, data_name: str, given: dict[str, Any], keys: Sequence[str]
) -> tuple[str, dict[str, Any]]:
    """The test settings `keys` stored in checkpoint `path` → (data_name, {setting: value}); prints one note naming
    which setting comes from the checkpoint, which from the flags `given`, which from the dataset's defaults.

    This project's checkpoints carry their config (utils.save_checkpoint); the authors' plain state-dicts carry none,
    and a checkpoint trained on another dataset than a --data_name given lends nothing. Without --data_name, the
    checkpoint's dataset is tested."""
    _, meta = load_checkpoint(path)
    trained = meta.get("config") if meta else None
    trained_on = meta.get("data_name") if meta else None
    stored: dict[str, Any] = {}
    if not isinstance(trained, dict):
        source = f"{path} (a plain state-dict: it stores none)"
    else:
        if trained_on in dataset.DATASETS and "data_name" not in given:
            data_name = trained_on
        source = f"{path} (trained on {trained_on}" + (")" if trained_on == data_name else ": not used)")
        if trained_on == data_name:  # checked as flags are; a flag given replaces the stored value unchecked
            stored = {k: stored_setting(path, k, trained[k]) for k in keys if k in trained and k not in given}
    show = lambda k, v: f"{k}={','.join(f'{t:g}' for t in v) if isinstance(v, list) else v}"  # noqa: E731
    taken = [show(k, v) for k, v in stored.items()]
    flags = [show(k, given[k]) for k in keys if k in given]
    rest = [k for k in keys if k not in given and k not in stored]
    print(
        f"note: test settings for {data_name}: from {source}: {' '.join(taken) or 'none'}; "
        f"from flags: {' '.join(flags) or 'none'}; {data_name} defaults: {' '.join(rest) or 'none'}"
    )
    return data_name, stored


def diagnosis_ground_truth(split: dataset.Split) -> tuple[dict[str, Any], str, str]:
    """The test split as diagnose.py's input → (annotations, DETAD settings name, subset); InputError now (before the
    test pass) if the diagnosis cannot run on it, e.g. without durations."""
    import diagnose

    subset = dataset.DATASETS[split.data_name].test_subset
    annotations = {
        v: {"subset": subset, "duration": d, "annotations": split.ground_truth.get(v, [])}
        for v, d in zip(split.videos, split.durations, strict=True)
    }
    name = diagnose.detad_dataset(split.data_name, annotations)
    diagnose.check_ground_truth(annotations, name, subset, source=str(split.annotation_file))
    return annotations, name, subset


def test_checkpoint(cfg: Any, device: torch.device) -> EvalResult:
    """Test a checkpoint (`--model_file`): method §9 test pass + §10 mAP, table, CSV and predictions JSON; with
    --diagnose, DETAD's error analyses in `<save_path>/<data_name>_test_diagnosis/`."""
    split = load_checked_split(cfg, "test")
    model = load_model(cfg.model_file, split, cfg.pool, device)
    truth = diagnosis_ground_truth(split) if cfg.diagnose else None
    result = test_pass(model, split, cfg, device, keep_scores=cfg.save_vis)
    write_test_outputs(cfg, result, split, "test")
    if truth is not None:
        import diagnose

        annotations, name, subset = truth
        folder = Path(cfg.save_path) / f"{cfg.data_name}_test_diagnosis"
        title = f"{Path(cfg.model_file).name} on {cfg.data_name} test" + (" (demo: synthetic features)" * cfg.demo)
        print(diagnose.run(annotations, result.predictions, name, subset, folder, source=str(split.annotation_file),
                           title=title))  # fmt: skip
    if cfg.bootstrap and result.matches is not None:
        print(interval_table(result.matches, cfg.bootstrap, f"{cfg.data_name} test mAP (%)"))
    return result


def interval_table(matches: evaluate.Matches, n_resamples: int, title: str, seed: int = 0) -> str:
    """The test summary's 95 % intervals: mAP per tIoU and AVG over `n_resamples` resamples of the test videos."""
    samples = bootstrap.resampled_maps(matches, bootstrap.resample_counts(matches.n_videos, n_resamples, seed))
    low, high = bootstrap.percentile_interval(bootstrap.with_avg(samples))
    head = [f"@{t:g}" for t in matches.thresholds] + ["AVG"]
    cells = [f"{100 * lo:.1f}–{100 * hi:.1f}" for lo, hi in zip(low, high, strict=True)]
    note = f"{title}: 95 % intervals, {n_resamples} resamples of the {matches.n_videos} test videos (seed {seed})"
    return format_table(head, [cells], title=note, align="r" * len(head))
