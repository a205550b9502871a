"""Detection mAP (method §10, the ActivityNet challenge metric, made deterministic) and its command line.

    ap = detection_map(ground_truth, predictions, tiou_thresholds)     # [n_thresholds]; ap.mean() = mAP@AVG

    python evaluate.py GT PRED [--tiou 0.1 0.2 ...] [--dataset thumos14|activitynet] [--subset NAME]
                       [--ambiguous FILE] [--per_class] [--diagnose OUT]

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
from pathlib import Path
from typing import Any

import numba
import numpy as np

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
from postprocess import filter_ambiguous
from utils import InputError, check_output_dir, format_table, number_problem, read_json, run_cli


@numba.njit(cache=True, nogil=True, error_model="numpy")  # numpy model: 0/0 is nan, not an exception
def _greedy_match(
    pred_video: np.ndarray,  # [P] int64, video row of each prediction, in descending-score order
    pred_seg: np.ndarray,  # [P, 2] float64
    gt_ptr: np.ndarray,  # [V + 1] int64: this class's ground truth of video v is rows gt_ptr[v]:gt_ptr[v+1]
    gt_seg: np.ndarray,  # [G, 2] float64
    thresholds: np.ndarray,  # [n_th] float64
) -> np.ndarray:
    """→ tp [n_th, P] bool. Each prediction in turn takes, per threshold, the unmatched ground truth of its video
    with the highest tIoU (first in ground-truth order on ties) if that tIoU ≥ the threshold; a NaN tIoU (two
    empty segments) never matches. Equivalent to method §10's walk from the highest tIoU down."""
    n_th, n_pred = thresholds.shape[0], pred_video.shape[0]
    tp = np.zeros((n_th, n_pred), dtype=np.bool_)
    locked = np.zeros((n_th, gt_seg.shape[0]), dtype=np.bool_)
    iou = np.empty(gt_seg.shape[0], dtype=np.float64)
    for k in range(n_pred):
        lo, hi = gt_ptr[pred_video[k]], gt_ptr[pred_video[k] + 1]
        s, e = pred_seg[k, 0], pred_seg[k, 1]
        for j in range(lo, hi):
            inter = max(0.0, min(e, gt_seg[j, 1]) - max(s, gt_seg[j, 0]))
            iou[j] = inter / ((e - s) + (gt_seg[j, 1] - gt_seg[j, 0]) - inter)
        for t in range(n_th):
            best, best_iou = -1, -np.inf
            for j in range(lo, hi):
                if not locked[t, j] and iou[j] > best_iou:
                    best, best_iou = j, iou[j]
            if best >= 0 and best_iou >= thresholds[t]:
                tp[t, k] = True
                locked[t, best] = True
    return tp


def interpolated_ap(tp: np.ndarray, num_gt: int) -> np.ndarray:
    """tp [n_th, P] bool over predictions in descending-score order → AP [n_th] (method §10: the ActivityNet
    interpolated precision, summed where recall changes; 0 without predictions)."""
    n_th, n_pred = tp.shape
    ap = np.zeros(n_th)
    if n_pred == 0:
        return ap
    tp_sum = np.cumsum(tp, axis=1, dtype=np.float64)
    fp_sum = np.cumsum(~tp, axis=1, dtype=np.float64)
    recall = tp_sum / num_gt
    precision = tp_sum / (tp_sum + fp_sum)
    zero, one = np.zeros((n_th, 1)), np.ones((n_th, 1))
    mprec = np.concatenate([zero, precision, zero], axis=1)
    mrec = np.concatenate([zero, recall, one], axis=1)
    mprec = np.maximum.accumulate(mprec[:, ::-1], axis=1)[:, ::-1]  # monotone non-increasing from the right
    for t in range(n_th):  # thresholds only; sum the changed points alone, as the ActivityNet code does
        idx = np.flatnonzero(mrec[t, 1:] != mrec[t, :-1]) + 1
        ap[t] = np.sum((mrec[t, idx] - mrec[t, idx - 1]) * mprec[t, idx])
    return ap


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


def average_precision_per_class(
    ground_truth: Mapping[str, Sequence[Mapping[str, Any]]],
    predictions: Mapping[str, Sequence[Mapping[str, Any]]],
    tiou_thresholds: Sequence[float] | np.ndarray,
) -> tuple[list[str], np.ndarray]:
    """→ (classes: sorted labels with ground truth, ap [n_classes, n_thresholds]). See `detection_map`."""
    thresholds = np.asarray(tiou_thresholds, dtype=np.float64).reshape(-1)
    videos = list(ground_truth)
    video_row = {v: i for i, v in enumerate(videos)}
    classes = sorted({a["label"] for anns in ground_truth.values() for a in anns})
    class_row = {c: i for i, c in enumerate(classes)}

    # ground truth, flattened: video row, class row, segment
    gt_video = np.array([video_row[v] for v in videos for _ in ground_truth[v]], dtype=np.int64)
    gt_class = np.array([class_row[a["label"]] for v in videos for a in ground_truth[v]], dtype=np.int64)
    gt_seg = np.array([a["segment"] for v in videos for a in ground_truth[v]], dtype=np.float64).reshape(-1, 2)

    # predictions, flattened in input order (videos as given, then their order); other videos/labels dropped
    ids = match_video_ids(videos, list(predictions))
    rows = [
        (video_row[ids[v]], class_row[p["label"]], float(p["score"]), *p["segment"])
        for v, preds in predictions.items()
        if v in ids
        for p in preds
        if p["label"] in class_row
    ]
    pred = np.array(rows, dtype=np.float64).reshape(-1, 5)
    pred_video, pred_class = pred[:, 0].astype(np.int64), pred[:, 1].astype(np.int64)

    ap = np.zeros((len(classes), len(thresholds)))
    gt_by_class = np.argsort(gt_class, kind="stable")  # keeps video order, then annotation order
    gt_bounds = np.searchsorted(gt_class[gt_by_class], np.arange(len(classes) + 1))
    pred_by_class = np.argsort(pred_class, kind="stable")  # keeps input order within a class
    pred_bounds = np.searchsorted(pred_class[pred_by_class], np.arange(len(classes) + 1))
    for c in range(len(classes)):  # classes only; matching and AP are vectorised / compiled inside
        g = gt_by_class[gt_bounds[c] : gt_bounds[c + 1]]  # sorted by video (stable): one block per video
        gt_ptr = np.searchsorted(gt_video[g], np.arange(len(videos) + 1)).astype(np.int64)
        p = pred_by_class[pred_bounds[c] : pred_bounds[c + 1]]
        p = p[np.argsort(-pred[p, 2], kind="stable")]  # score descending, ties in input order
        tp = _greedy_match(pred_video[p], np.ascontiguousarray(pred[p, 3:5]), gt_ptr, gt_seg[g], thresholds)
        ap[c] = interpolated_ap(tp, len(g))
    return classes, ap


def detection_map(
    ground_truth: Mapping[str, Sequence[Mapping[str, Any]]],
    predictions: Mapping[str, Sequence[Mapping[str, Any]]],
    tiou_thresholds: Sequence[float] | np.ndarray,
) -> np.ndarray:
    """Detection mAP per tIoU threshold → [n_thresholds] in [0, 1] (method §10).

    Per class and threshold: predictions sorted by score (stable: ties keep input order), each matched greedily
    to the unmatched same-class ground truth of its video with the highest float64 tIoU if that is ≥ the
    threshold (exactly equal counts); interpolated AP; a class without predictions has AP 0. The mean runs over
    the classes that have ground truth; predictions of other labels, or of videos not in `ground_truth`, are
    ignored (list a video with no instances as `video: []` to count its predictions as false positives).
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


def evaluate_files(
    gt_path: str | Path,
    pred_path: str | Path,
    *,
    tiou: Sequence[float] | None = None,
    dataset: str | None = None,
    subset: str | None = None,
    ambiguous: str | Path | None = None,
    per_class: bool = False,
    diagnose_dir: str | Path | None = None,
) -> str:
    """The CLI's work: read, filter, evaluate → the printed report (raises InputError on bad input). `diagnose_dir`:
    a folder for DETAD's error analyses (diagnose.py) of the same videos and predictions."""
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

    predictions = read_predictions(pred_path)
    ids = match_video_ids(list(ground_truth), list(predictions), pred_path)
    if len(ids) < len(predictions):
        n = len(predictions) - len(ids)
        print(
            f"note: {pred_path}: {n} videos not evaluated (not in subset {subset!r}, or dropped) — ignored",
            file=sys.stderr,
        )
    if ambiguous is not None:
        predictions = filter_ambiguous(predictions, read_ambiguous(ambiguous))
    classes, ap = average_precision_per_class(ground_truth, predictions, thresholds)
    n_pred = sum(len(predictions[v]) for v in ids)
    header = (
        f"{dataset} {subset}: {len(ground_truth)} videos, {len(classes)} classes, "
        f"{sum(map(len, ground_truth.values()))} ground-truth instances, {n_pred} predictions"
        f" (ambiguous filter: {ambiguous if ambiguous is not None else 'off'})"
    )
    rows = [("mAP", ap.mean(axis=0))]
    if per_class:
        rows += list(zip(classes, ap, strict=True))
    cells = [[name, *(f"{100 * a:.2f}" for a in row), f"{100 * np.mean(row):.2f}"] for name, row in rows]
    report = format_table(["tIoU", *(f"{t:.2f}" for t in thresholds), "AVG"], cells, title=header)
    if diagnose_dir is not None:
        evaluated: dict[str, list[dict[str, Any]]] = {}
        for video, key in ids.items():  # the videos and predictions evaluated above, under the ground truth's ids
            evaluated.setdefault(key, []).extend(predictions[video])
        report += "\n\n" + diagnose.run(
            {v: annotations[v] for v in ground_truth}, evaluated, detad, subset, diagnose_dir, source=str(gt_path),
            title=Path(pred_path).name,
        )  # fmt: skip
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Detection mAP of temporal action predictions (ActivityNet protocol, method §10)."
    )
    parser.add_argument(
        "gt", help="ground truth: annotations .json (flat or ActivityNet 'database') or THUMOS14 txt folder"
    )
    parser.add_argument("pred", help="predictions .json: {'results': {video: [...]}} or {video: [...]}")
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
            )
        )

    return run_cli(report)


if __name__ == "__main__":
    sys.exit(main())
