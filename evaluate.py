"""Detection mAP (method §10, the ActivityNet challenge metric, made deterministic) and its command line.

    ap = detection_map(ground_truth, predictions, tiou_thresholds)     # [n_thresholds]; ap.mean() = mAP@AVG

    python evaluate.py GT PRED [PRED ...] [--tiou 0.1 0.2 ...] [--dataset thumos14|activitynet] [--subset NAME]
                       [--ambiguous FILE] [--per_class] [--bootstrap [N]] [--seed S] [--out FILE] [--diagnose OUT]

ground_truth {video: [{"label", "segment": [s, e]}]}; predictions {video: [{"label", "score", "segment"}]}.
The evaluated videos are the ground truth's keys (a video with an empty list counts: its predictions are false
positives); predictions for other videos are ignored, those with a label that has no ground truth too.
ActivityNet ids match with or without the `v_` prefix of the feature files.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numba
import numpy as np

from config import RESAMPLES
from dataset import (
    DATASETS,
    id_candidates,
    read_ambiguous,
    read_annotations,
    segment_oddities,
    segment_problem,
    warn_odd_segments,
    warn_unknown_subsets,
)
from postprocess import ambiguous_overlap
from utils import (
    InputError,
    atomic_json_dump,
    check_output_dir,
    format_table,
    number_problem,
    read_json,
    run_cli,
)


@dataclass(frozen=True)
class Detections:
    """Predictions as arrays, one row per prediction, in input order (a video's rows together, videos in order):
    video [P] int64 (row of `videos`), label [P] int64 (row of `classes`), segment [P, 2] float64 (start, end in
    seconds), score [P] float64. The test pass builds these directly; JSON files are read into them."""

    videos: list[str]
    classes: list[str]
    video: np.ndarray
    label: np.ndarray
    segment: np.ndarray
    score: np.ndarray

    @classmethod
    def from_videos(
        cls, videos: list[str], classes: list[str], found: Sequence[tuple[np.ndarray, np.ndarray]]
    ) -> Detections:
        """Per video in `videos`, postprocess.detect_arrays's (class_index [D], (start, end, score) [D, 3]) →
        Detections, the videos' rows in order."""
        rows = np.concatenate([d for _, d in found]) if found else np.zeros((0, 3))
        return cls(
            videos,
            classes,
            np.repeat(np.arange(len(videos), dtype=np.int64), [len(c) for c, _ in found]),
            np.concatenate([c for c, _ in found]).astype(np.int64) if found else np.zeros(0, np.int64),
            rows[:, :2],
            rows[:, 2],
        )

    @classmethod
    def from_dict(cls, predictions: Mapping[str, Sequence[Mapping[str, Any]]]) -> Detections:
        """{video: [{"label", "score", "segment"}]} → Detections (videos in the given order, classes sorted)."""
        videos = list(predictions)
        classes = sorted({p["label"] for preds in predictions.values() for p in preds})
        row = {c: i for i, c in enumerate(classes)}
        flat = [p for preds in predictions.values() for p in preds]
        return cls(
            videos,
            classes,
            np.repeat(np.arange(len(videos), dtype=np.int64), [len(p) for p in predictions.values()]),
            np.array([row[p["label"]] for p in flat], dtype=np.int64),
            np.array([p["segment"] for p in flat], dtype=np.float64).reshape(-1, 2),
            np.array([p["score"] for p in flat], dtype=np.float64),
        )

    def select(self, keep: np.ndarray) -> Detections:
        """The rows where keep [P] bool is True."""
        return Detections(
            self.videos, self.classes, self.video[keep], self.label[keep], self.segment[keep], self.score[keep]
        )

    def as_dict(self) -> dict[str, list[dict[str, Any]]]:
        """{video: [{"label", "score", "segment": [start, end]}]} for every video (the ActivityNet results layout; for
        the files written, not for evaluation)."""
        out: dict[str, list[dict[str, Any]]] = {v: [] for v in self.videos}
        rows = zip(self.video.tolist(), self.label.tolist(), self.score.tolist(), self.segment.tolist(), strict=True)
        for v, c, p, seg in rows:
            out[self.videos[v]].append({"label": self.classes[c], "score": p, "segment": seg})
        return out


@dataclass(frozen=True)
class Matches:
    """Every prediction matched once at every threshold (method §10), sorted as AP walks them: the flags are reused
    for every resample of the videos (bootstrap.py), since matching is per video.

    Rows: the predictions of evaluated videos and ground-truth classes, class by class, score descending, ties in
    input order. blocks [n_blocks + 1]: row boundaries of the runs with one class, one score and one video — the
    unit that a video's copies repeat in a resample. class_blocks [C + 1]: class c's blocks."""

    classes: list[str]  # labels with ground truth, sorted
    thresholds: np.ndarray  # [n_th]
    gt_count: np.ndarray  # [V, C] int64 ground-truth instances per evaluated video and class
    video: np.ndarray  # [P] int64 video row of each sorted prediction
    tp: np.ndarray  # [P, n_th] bool
    blocks: np.ndarray  # [n_blocks + 1] int64
    class_blocks: np.ndarray  # [C + 1] int64

    @property
    def n_videos(self) -> int:
        return self.gt_count.shape[0]


@numba.njit(cache=True, nogil=True, error_model="numpy")  # numpy model: 0/0 is nan, not an exception
def _greedy_match(
    pred_key: np.ndarray,  # [P] int64 class·V + video of each prediction, in AP order
    pred_seg: np.ndarray,  # [P, 2] float64
    gt_ptr: np.ndarray,  # [C·V + 1] int64: the ground truth of (class, video) key k is rows gt_ptr[k]:gt_ptr[k+1]
    gt_seg: np.ndarray,  # [G, 2] float64, sorted by key (annotation order within a key)
    thresholds: np.ndarray,  # [n_th] float64
) -> np.ndarray:
    """→ tp [P, n_th] bool. Each prediction in turn takes, per threshold, the unmatched ground truth of its video
    and class with the highest tIoU (first in ground-truth order on ties) if that tIoU ≥ the threshold; a NaN tIoU
    (two empty segments) never matches. Equivalent to method §10's walk from the highest tIoU down."""
    n_th, n_pred = thresholds.shape[0], pred_key.shape[0]
    tp = np.zeros((n_pred, n_th), dtype=np.bool_)
    locked = np.zeros((gt_seg.shape[0], n_th), dtype=np.bool_)
    iou = np.empty(gt_seg.shape[0], dtype=np.float64)
    for k in range(n_pred):
        lo, hi = gt_ptr[pred_key[k]], gt_ptr[pred_key[k] + 1]
        s, e = pred_seg[k, 0], pred_seg[k, 1]
        for j in range(lo, hi):
            inter = max(0.0, min(e, gt_seg[j, 1]) - max(s, gt_seg[j, 0]))
            iou[j] = inter / ((e - s) + (gt_seg[j, 1] - gt_seg[j, 0]) - inter)
        for t in range(n_th):
            best, best_iou = -1, -np.inf
            for j in range(lo, hi):
                if not locked[j, t] and iou[j] > best_iou:
                    best, best_iou = j, iou[j]
            if best >= 0 and best_iou >= thresholds[t]:
                tp[k, t] = True
                locked[best, t] = True
    return tp


def match_video_ids(
    gt_videos: Sequence[str], pred_videos: Sequence[str], source: str | Path = "predictions"
) -> dict[str, str]:
    """Prediction video id → ground-truth id: exact, else with a `v_` prefix added or stripped (ActivityNet's bare
    YouTube ids vs `v_<id>` feature names). Ids with no counterpart are left out. Two prediction ids of one video
    (`k` and `v_k`) → InputError naming them (`source`: the predictions file): both would be scored as that video."""
    gt = set(gt_videos)
    out: dict[str, str] = {}
    taken: dict[str, str] = {}  # ground-truth id → the prediction id matched to it
    for video in pred_videos:
        key = next((k for k in id_candidates(video) if k in gt), None)
        if key is None:
            continue
        if key in taken:
            raise InputError(
                f"{source}: videos {taken[key]!r} and {video!r} both name ground-truth video {key!r} (ids match "
                "with or without 'v_'), so both would be scored as it; keep one"
            )
        out[video], taken[key] = key, video
    return out


def match(
    ground_truth: Mapping[str, Sequence[Mapping[str, Any]]],
    detections: Detections,
    tiou_thresholds: Sequence[float] | np.ndarray,
) -> Matches:
    """Match `detections` against `ground_truth` {video: [{"label", "segment"}]} (its keys are the evaluated videos)
    at every threshold, once. Predictions of other videos (after `v_` matching) or of labels without ground truth
    are left out. Vectorised but for the compiled greedy walk."""
    thresholds = np.asarray(tiou_thresholds, dtype=np.float64).reshape(-1)
    videos = list(ground_truth)
    n_v = len(videos)
    video_row = {v: i for i, v in enumerate(videos)}
    classes = sorted({a["label"] for anns in ground_truth.values() for a in anns})
    class_row = {c: i for i, c in enumerate(classes)}
    n_c = len(classes)
    gt_key = np.array([class_row[a["label"]] * n_v + video_row[v] for v in videos for a in ground_truth[v]], np.int64)
    gt_seg = np.array([a["segment"] for v in videos for a in ground_truth[v]], dtype=np.float64).reshape(-1, 2)
    by_key = np.argsort(gt_key, kind="stable")  # annotation order within a (class, video)
    gt_ptr = np.searchsorted(gt_key[by_key], np.arange(n_c * n_v + 1)).astype(np.int64)
    gt_count = np.diff(gt_ptr).reshape(n_c, n_v).T.copy()

    ids = match_video_ids(videos, detections.videos)
    v_map = np.array([video_row[ids[v]] if v in ids else -1 for v in detections.videos], dtype=np.int64)
    c_map = np.array([class_row.get(c, -1) for c in detections.classes], dtype=np.int64)
    video, label = v_map[detections.video], c_map[detections.label]
    keep = np.flatnonzero((video >= 0) & (label >= 0))
    video, label, score = video[keep], label[keep], detections.score[keep]
    order = np.lexsort((-score, label))  # class, then score descending; stable: ties keep input order
    video, label, score = video[order], label[order], score[order]
    seg = np.ascontiguousarray(detections.segment[keep][order])
    tp = _greedy_match(label * n_v + video, seg, gt_ptr, np.ascontiguousarray(gt_seg[by_key]), thresholds)

    change = np.flatnonzero((np.diff(label) != 0) | (np.diff(score) != 0) | (np.diff(video) != 0)) + 1
    blocks = np.concatenate([[0], change, [len(order)] if len(order) else []]).astype(np.int64)
    class_blocks = np.searchsorted(label[blocks[:-1]], np.arange(n_c + 1)).astype(np.int64)
    return Matches(classes, thresholds, gt_count, video, tp, blocks, class_blocks)


@numba.njit(cache=True, nogil=True)
def _weighted_ap(
    tp: np.ndarray,  # [P, n_th] bool
    video: np.ndarray,  # [P] int64
    blocks: np.ndarray,  # [n_blocks + 1]
    class_blocks: np.ndarray,  # [C + 1]
    counts: np.ndarray,  # [B, V] int64: copies of each video in each resample
    npos: np.ndarray,  # [B, C] float64 ground-truth instances per resample and class
) -> np.ndarray:
    """→ AP [B, C, n_th] (NaN where a class has no ground truth in a resample).

    AP of the list in which each block is repeated as often as its video is drawn (copies adjacent, as a copied
    video's predictions stand in the input), walked backward from the totals: the precision made monotone from
    the right is a running maximum, and AP sums recall step × that maximum at the true positives (method §10)."""
    n_b, n_c, n_th = counts.shape[0], class_blocks.shape[0] - 1, tp.shape[1]
    ap = np.full((n_b, n_c, n_th), np.nan)
    tp_k = np.empty(n_th)
    best = np.empty(n_th)
    acc = np.empty(n_th)
    for b in range(n_b):
        w = counts[b]
        for c in range(n_c):
            if npos[b, c] == 0:
                continue
            n_k = 0.0
            tp_k[:] = 0.0
            for q in range(class_blocks[c], class_blocks[c + 1]):
                m = w[video[blocks[q]]]
                if m:
                    n_k += m * (blocks[q + 1] - blocks[q])
                    for r in range(blocks[q], blocks[q + 1]):
                        for t in range(n_th):
                            tp_k[t] += m * tp[r, t]
            best[:] = 0.0
            acc[:] = 0.0
            for q in range(class_blocks[c + 1] - 1, class_blocks[c] - 1, -1):
                m = w[video[blocks[q]]]
                for _ in range(m):
                    for r in range(blocks[q + 1] - 1, blocks[q] - 1, -1):
                        for t in range(n_th):
                            precision = tp_k[t] / n_k
                            if tp[r, t]:
                                step = tp_k[t] / npos[b, c] - (tp_k[t] - 1.0) / npos[b, c]
                                acc[t] += step * max(precision, best[t])
                                tp_k[t] -= 1.0
                            best[t] = max(best[t], precision)
                        n_k -= 1.0
            ap[b, c] = acc
    return ap


def class_ap(matches: Matches, counts: np.ndarray | None = None) -> np.ndarray:
    """AP per class and threshold → [C, n_th]; with counts [B, V] (copies of each evaluated video per resample)
    → [B, C, n_th], NaN where a class has no ground truth in that resample. A class without predictions has AP 0."""
    single = counts is None
    if single:
        counts = np.ones((1, matches.n_videos), dtype=np.int64)
    counts = np.ascontiguousarray(counts, dtype=np.int64)
    npos = (counts @ matches.gt_count).astype(np.float64)
    ap = _weighted_ap(matches.tp, matches.video, matches.blocks, matches.class_blocks, counts, npos)
    return ap[0] if single else ap


def average_precision_per_class(
    ground_truth: Mapping[str, Sequence[Mapping[str, Any]]],
    predictions: Mapping[str, Sequence[Mapping[str, Any]]] | Detections,
    tiou_thresholds: Sequence[float] | np.ndarray,
) -> tuple[list[str], np.ndarray]:
    """→ (classes: sorted labels with ground truth, ap [n_classes, n_thresholds]). See `detection_map`."""
    detections = predictions if isinstance(predictions, Detections) else Detections.from_dict(predictions)
    matches = match(ground_truth, detections, tiou_thresholds)
    return matches.classes, class_ap(matches)


def detection_map(
    ground_truth: Mapping[str, Sequence[Mapping[str, Any]]],
    predictions: Mapping[str, Sequence[Mapping[str, Any]]] | Detections,
    tiou_thresholds: Sequence[float] | np.ndarray,
) -> np.ndarray:
    """Detection mAP per tIoU threshold → [n_thresholds] in [0, 1] (method §10).

    Per class and threshold: predictions sorted by score (stable: ties keep input order), each matched greedily
    to the unmatched same-class ground truth of its video with the highest float64 tIoU if that is ≥ the
    threshold (exactly equal counts); interpolated AP; a class without predictions has AP 0. The mean runs over
    the classes that have ground truth; predictions of other labels, or of videos not in `ground_truth`, are
    ignored (list a video with no instances as `video: []` to count its predictions as false positives).
    `predictions` is {video: [{"label", "score", "segment"}]} or Detections.
    """
    classes, ap = average_precision_per_class(ground_truth, predictions, tiou_thresholds)
    if not classes:
        raise ValueError("ground truth has no action instances: mAP is undefined")
    return ap.mean(axis=0)


# --- command line --------------------------------------------------------------------------------------------------


def read_predictions(path: str | Path) -> dict[str, list[dict[str, Any]]]:
    """ActivityNet results JSON `{"results": {video: [...]}, ...}` or a bare `{video: [...]}` → predictions,
    each `{"label": str, "score": number, "segment": [start, end]}`. Malformed or reversed (end < start) → InputError
    naming the file, video and prediction; zero-length segments and negative starts → one warning line (kept)."""
    path = Path(path)
    data = read_json(path)
    if isinstance(data, dict) and "results" in data:
        data = data["results"]
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected {{'results': {{video: [predictions]}}}} or {{video: [predictions]}}")
    out = {}
    odd: Counter[str] = Counter()
    n_odd = 0
    for video, preds in data.items():
        if not isinstance(preds, list):
            raise InputError(f"{path}: video {video!r}: expected a list of predictions, got {type(preds).__name__}")
        for i, p in enumerate(preds):
            seg = p.get("segment") if isinstance(p, dict) else None
            if not (
                isinstance(p, dict)
                and isinstance(p.get("label"), str)
                and "score" in p
                and isinstance(seg, list)
                and len(seg) == 2
            ):
                raise InputError(
                    f"{path}: video {video!r} prediction {i}: expected {{'label': str, 'score': number, "
                    f"'segment': [start, end]}}, got {json.dumps(p)[:80]}"
                )
            for field, x in (("score", p["score"]), ("segment start", seg[0]), ("segment end", seg[1])):
                if number_problem(x) is not None:
                    raise InputError(f"{path}: video {video!r} prediction {i}: {field} {number_problem(x)}")
            problem = segment_problem(*map(float, seg))
            if problem is not None:
                raise InputError(f"{path}: video {video!r} prediction {i}: {problem}")
            kinds = segment_oddities(*map(float, seg))
            odd.update(kinds)
            n_odd += bool(kinds)
        out[str(video)] = [
            {
                "label": p["label"],
                "score": float(p["score"]),
                "segment": [float(p["segment"][0]), float(p["segment"][1])],
            }
            for p in preds
        ]
    warn_odd_segments(path, odd, n_odd, "predictions")
    return out


def _dataset_key(name: str) -> str:
    return "activitynet1.3" if name == "activitynet" else name  # 1.2 and 1.3 share subsets and tIoUs


def _method_names(paths: Sequence[str | Path]) -> list[str]:
    """Short names of the prediction files: their stems; where two stems are the same, folder/stem; else the paths."""
    for name in (lambda p: p.stem, lambda p: f"{p.parent.name}/{p.stem}", str):
        names = [name(Path(p)) for p in paths]
        if len(set(names)) == len(names):
            return names
    return [str(p) for p in paths]


def _pct(x: float) -> str:
    return f"{100 * x:.2f}"


def evaluate_files(
    gt_path: str | Path,
    pred_path: str | Path | Sequence[str | Path],
    *,
    tiou: Sequence[float] | None = None,
    dataset: str | None = None,
    subset: str | None = None,
    ambiguous: str | Path | None = None,
    per_class: bool = False,
    bootstrap: int | None = None,
    seed: int = 0,
    out: str | Path | None = None,
    diagnose_dir: str | Path | None = None,
) -> str:
    """The CLI's work: read, filter, evaluate one or more prediction files on the same ground truth → the printed
    report; with `bootstrap` N, 95 % intervals from N resamples of the test videos and, for two or more files, paired
    comparisons; `out`: a JSON of the numbers; `diagnose_dir`: a folder for DETAD's error analyses (diagnose.py) of
    the same videos and predictions, one file only (raises InputError on bad input)."""
    import bootstrap as boot  # the resampling layer on top of this module's matches

    paths = [pred_path] if isinstance(pred_path, str | Path) else list(pred_path)
    if bootstrap is not None and not RESAMPLES[0](bootstrap):
        raise InputError(f"--bootstrap {bootstrap}: give the number of resamples, {RESAMPLES[1]}")
    if not 0 <= seed < 2**63:
        raise InputError(f"--seed {seed}: give a seed ≥ 0")
    if out is not None and (Path(out).is_dir() or not Path(out).parent.is_dir()):
        why = "is a folder, not a file" if Path(out).is_dir() else f"its folder {Path(out).parent} does not exist"
        raise InputError(f"--out {out}: {why}")
    if diagnose_dir is not None and len(paths) > 1:
        raise InputError(f"--diagnose diagnoses one predictions file, not {len(paths)}: run it once per file")
    annotations = read_annotations(gt_path)
    detad = None
    if diagnose_dir is not None:
        import diagnose  # (it imports this module)

        detad = diagnose.detad_dataset(dataset, annotations)  # --dataset, else guessed from the classes
    if dataset is None:  # THUMOS14 ids are video_<validation|test>_<n>; others (W-TALC's video_<n>) ActivityNet
        thumos = annotations and all(v.startswith(("video_validation_", "video_test_")) for v in annotations)
        dataset = "thumos14" if thumos else "activitynet"
    info = DATASETS[_dataset_key(dataset)]
    subset = subset or info.test_subset
    warn_unknown_subsets(annotations, info, gt_path, also=[subset])
    dropped = set(info.dropped_test)
    ground_truth = {
        v: e["annotations"] for v, e in annotations.items() if e["subset"] == subset and v not in dropped
    }  # fmt: skip
    if not any(ground_truth.values()):
        subsets = ", ".join(sorted({e["subset"] for e in annotations.values()}))
        raise InputError(f"{gt_path}: no ground-truth instances in subset {subset!r} (subsets present: {subsets})")
    thresholds = np.asarray(tiou if tiou is not None else info.tiou_thresholds, dtype=np.float64)
    if not np.all((thresholds > 0) & (thresholds <= 1)):
        raise InputError(f"--tiou {' '.join(map(str, thresholds.tolist()))}: thresholds must lie in (0, 1]")
    if diagnose_dir is not None:  # before any work: settings for the subset, durations, a writable folder
        diagnose.check_ground_truth({v: annotations[v] for v in ground_truth}, detad, subset, source=str(gt_path))
        check_output_dir(diagnose_dir, "--diagnose")
    amb = read_ambiguous(ambiguous) if ambiguous is not None else None

    names = _method_names(paths)
    matches, counted, kept = [], [], []
    for path in paths:
        det = Detections.from_dict(read_predictions(path))
        ids = match_video_ids(list(ground_truth), det.videos, path)
        if len(ids) < len(det.videos):
            n = len(det.videos) - len(ids)
            print(
                f"note: {path}: {n} videos not evaluated (not in subset {subset!r}, or dropped) — ignored",
                file=sys.stderr,
            )
        if amb is not None:
            det = det.select(~ambiguous_overlap(det.video, det.segment, det.videos, amb))
        evaluated = np.array([v in ids for v in det.videos], dtype=bool)
        counted.append(int(evaluated[det.video].sum()) if len(det.videos) else 0)
        matches.append(match(ground_truth, det, thresholds))
        kept.append((det, ids))
    classes = matches[0].classes
    aps = [class_ap(m) for m in matches]  # [C, n_th] each
    maps = np.array([ap.mean(axis=0) for ap in aps])  # [M, n_th]

    preds_note = (
        f"{counted[0]} predictions"
        if len(paths) == 1
        else "predictions: " + ", ".join(f"{n} {c}" for n, c in zip(names, counted, strict=True))
    )
    header = (
        f"{dataset} {subset}: {len(ground_truth)} videos, {len(classes)} classes, "
        f"{sum(map(len, ground_truth.values()))} ground-truth instances, {preds_note}"
        f" (ambiguous filter: {ambiguous if ambiguous is not None else 'off'})"
    )
    columns = ["tIoU", *(f"{t:.2f}" for t in thresholds), "AVG"]
    intervals = None
    if bootstrap is not None:
        counts = boot.resample_counts(len(ground_truth), bootstrap, seed)
        samples = np.stack([boot.resampled_maps(m, counts) for m in matches], axis=1)  # [B, M, n_th]
        sampled = boot.with_avg(samples)  # [B, M, n_th + 1]
        intervals = boot.percentile_interval(sampled)  # (low, high) [M, n_th + 1]
        header += f"\n95 % intervals: {bootstrap} resamples of the {len(ground_truth)} test videos (seed {seed})"
    rows = []
    for i, name in enumerate(names):
        rows.append([name if len(paths) > 1 else "mAP", *map(_pct, maps[i]), _pct(maps[i].mean())])
        if intervals is not None:
            low, high = intervals[0][i], intervals[1][i]
            rows.append(["  95 % interval", *(f"{_pct(lo)}–{_pct(hi)}" for lo, hi in zip(low, high, strict=True))])
    if per_class and len(paths) == 1:
        rows += [[c, *map(_pct, row), _pct(np.mean(row))] for c, row in zip(classes, aps[0], strict=True)]
    report = [format_table(columns, rows, title=header)]
    if per_class and len(paths) > 1:
        cells = [[c, *(_pct(ap[k].mean()) for ap in aps)] for k, c in enumerate(classes)]
        report.append(format_table(["class", *names], cells, title="AP per class, averaged over the tIoUs (%)"))
    comparisons = []
    if bootstrap is not None and len(paths) > 1:
        comparisons = boot.compare(names, maps.mean(axis=1), sampled[:, :, -1])
        cells = [
            [f"{c.a} − {c.b}", f"{100 * c.difference:+.2f}", f"{100 * c.low:+.2f} … {100 * c.high:+.2f}",
             f"{100 * c.flip_share:.1f} %" if c.flip_share == c.flip_share else "—"]
            for c in comparisons
        ]  # fmt: skip
        report.append(
            format_table(
                ["mAP@AVG", "difference", "95 % interval", "order flips"],
                cells,
                title=f"paired bootstrap over the same {bootstrap} resamples",
            )
        )
    if out is not None:
        record: dict[str, Any] = {
            "ground_truth": str(gt_path),
            "dataset": dataset,
            "subset": subset,
            "tiou": thresholds.tolist(),
            "bootstrap": {"resamples": bootstrap, "seed": seed, "level": boot.LEVEL} if bootstrap else None,
            "methods": [],
            "comparisons": [
                {
                    "a": c.a,
                    "b": c.b,
                    "difference": c.difference,
                    "interval": [c.low, c.high],
                    "flip_share": c.flip_share if c.flip_share == c.flip_share else None,
                }
                for c in comparisons
            ],
        }
        for i, (name, path) in enumerate(zip(names, paths, strict=True)):
            entry: dict[str, Any] = {"name": name, "file": str(path), "map": maps[i].tolist(), "avg": maps[i].mean()}
            if intervals is not None:
                entry["interval"] = {"low": intervals[0][i].tolist(), "high": intervals[1][i].tolist()}
            entry["per_class"] = {c: ap.tolist() for c, ap in zip(classes, aps[i], strict=True)}
            record["methods"].append(entry)
        atomic_json_dump(record, out)
        report.append(f"→ {out}")
    if diagnose_dir is not None:
        det, ids = kept[0]
        evaluated: dict[str, list[dict[str, Any]]] = {}
        for video, preds in det.as_dict().items():  # the videos and predictions evaluated above, under the GT's ids
            if video in ids:
                evaluated.setdefault(ids[video], []).extend(preds)
        report.append(
            diagnose.run(
                {v: annotations[v] for v in ground_truth}, evaluated, detad, subset, diagnose_dir,
                source=str(gt_path), title=Path(paths[0]).name,
            )
        )  # fmt: skip
    return "\n\n".join(report)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Detection mAP of temporal action predictions (ActivityNet protocol, method §10)."
    )
    parser.add_argument(
        "gt", help="ground truth: annotations .json (flat or ActivityNet 'database') or THUMOS14 txt folder"
    )
    parser.add_argument(
        "pred", nargs="+", help="predictions .json: {'results': {video: [...]}} or {video: [...]}; several: compared"
    )
    parser.add_argument("--tiou", type=float, nargs="+", help="tIoU thresholds (default: the dataset's, method §10)")
    parser.add_argument(
        "--dataset",
        choices=["thumos14", "activitynet", "activitynet1.2", "activitynet1.3"],
        help="protocol: default tIoUs, test subset, dropped videos (default: guessed from the video ids)",
    )
    parser.add_argument("--subset", help="ground-truth subset to evaluate (default: test / validation)")
    parser.add_argument("--ambiguous", help="THUMOS14 Ambiguous_test.txt: drop predictions overlapping its segments")
    parser.add_argument("--per_class", action="store_true", help="also print the AP of every class")
    parser.add_argument(
        "--diagnose",
        metavar="OUT",
        help="also DETAD's error analyses (false positives, sensitivity, false negatives) → OUT/diagnosis.json, "
        "tables, three PNGs; settings of --dataset, else guessed from the classes",
    )
    parser.add_argument(
        "--bootstrap", type=int, nargs="?", const=1000, metavar="N",
        help="95%% intervals from N resamples of the test videos (default N: 1000); several files: paired differences",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap resamples (default: 0)")
    parser.add_argument("--out", help="also write the numbers (mAP, intervals, comparisons) to this JSON file")
    args = parser.parse_args(argv)

    def report() -> None:
        print(
            evaluate_files(
                args.gt,
                args.pred,
                tiou=args.tiou,
                dataset=args.dataset,
                subset=args.subset,
                ambiguous=args.ambiguous,
                per_class=args.per_class,
                diagnose_dir=args.diagnose,
                bootstrap=args.bootstrap,
                seed=args.seed,
                out=args.out,
            )
        )

    return run_cli(report)


if __name__ == "__main__":
    sys.exit(main())
