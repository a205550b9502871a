"""Diagnosing a detector: DETAD's three error analyses (Alwassel, Caba Heilbron, Escorcia, Ghanem, "Diagnosing
Error in Temporal Action Detectors", ECCV 2018), to the number, vectorised.

    out = diagnose(annotations, predictions, "thumos14", "test")   # the dict written as diagnosis.json
    print(write_diagnosis(out, "outputs/diagnosis"))                 # diagnosis.json + 3 PNGs → the tables

    python evaluate.py GT PRED --diagnose OUT      # the command line (evaluate.py); main.py --model_file X --diagnose

annotations: `dataset.read_annotations`'s flat form {video: {"subset", "duration", "annotations": [{"label",
"segment", [DETAD characteristics]}]}}; predictions: `evaluate.read_predictions`'s {video: [{"label", "score",
"segment"}]}. All three analyses use the normalized AP (AP_N): precision P = R·N_avg / (R·N_avg + fp), N_avg = the
number of ground-truth instances per class over the whole subset.

* false positives: each of the top 10·n_c predictions of each class is typed, at each tIoU threshold, True Positive
  or one of five errors (double detection, wrong label, localization, confusion, background); the profile gives the
  share of each type among the 1st…10th n_c predictions of each class (groups 1G…10G), the gain of an error type is
  the change of average-mAP_N when the predictions of that type are removed;
* sensitivity: average-mAP_N of the ground truth of one bucket of one characteristic (coverage, length, number of
  instances; ActivityNet's test file adds context size, context distance and agreement), matching done once;
* false negatives: the share of a bucket's instances that no prediction matches (low-precision matches discarded).

DETAD's code is followed to the number, quirks included, where it is deterministic and does not crash; where it
depends on an unstable sort or crashes, this module does what was evidently intended: every false positive in a
video without ground truth is Background; tied scores are ordered as stable sorts would order them (matching and
gains: later prediction first; top-10G cut, profile and sensitivity: earlier prediction first; among ground truth of
equal tIoU the later one is matched, the first one types an error); a class without predictions has AP_N 0; an
instance whose characteristic lies outside that characteristic's bins is left out of it (one warning line);
predictions with a label that has no ground truth are ignored (counted in extra.num_predictions_ignored).
docs/evaluate.md ("Diagnosing a run") lists the settings and how to read the figures.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numba
import numpy as np

from dataset import THUMOS14_CLASSES
from evaluate import match_video_ids
from utils import InputError, atomic_json_dump, atomic_path, format_table, warn_once

ERROR_TYPES = (
    "True Positive",
    "Double Detection Err",
    "Wrong Label Err",
    "Localization Err",
    "Confusion Err",
    "Background Err",
)
TP, DD, WL, LOC, CONF, BG = range(6)  # codes of ERROR_TYPES
FP_ERROR_TYPES = ERROR_TYPES[1:]
GROUPS = tuple(f"{g + 1}G" for g in range(10))  # the profile's groups: ranks [g·n_c, (g+1)·n_c) of each class
MIN_TIOU_THR = 0.1  # below it a false positive is Background
THETA_FN = 0.05  # the false-negative analysis discards matches at normalized precision <= this

_SIZES5 = ("XS", "S", "M", "L", "XL")
_SIZES4 = ("XS", "S", "M", "L")
# DETAD's bins (edges, labels) per dataset and characteristic: right-closed, the lowest edge included.
BINS: dict[str, dict[str, tuple[list[float], tuple[str, ...]]]] = {
    "thumos14": {
        "coverage": ([0.0, 0.02, 0.04, 0.06, 0.08, 1.0], _SIZES5),
        "length": ([0.0, 3.0, 6.0, 12.0, 18.0, math.inf], _SIZES5),
        "num-instances": ([-1.0, 1.0, 40.0, 80.0, math.inf], _SIZES4),
    },
    "activitynet": {
        "context-size": ([-1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0], ("0", "1", "2", "3", "4", "5", "6")),
        "context-distance": ([-1.0, 0.0, 1.0, 2.0, 3.0], ("Inf", "N", "M", "F")),
        "agreement": (np.linspace(0, 1, 6).tolist(), ("XW", "W", "M", "H", "XH")),
        "coverage": (np.linspace(0, 1, 6).tolist(), _SIZES5),
        "length": ([0.0, 30.0, 60.0, 120.0, 180.0, math.inf], _SIZES5),
        "num-instances": ([-1.0, 1.0, 4.0, 8.0, math.inf], _SIZES4),
    },
}
TIOU_THRESHOLDS = {"thumos14": [0.5], "activitynet": np.linspace(0.5, 0.95, 10).tolist()}
COMPUTED = ("length", "coverage", "num-instances")  # derivable from segments and durations; the others are stored
FIGURES = ("false_positive.png", "sensitivity.png", "false_negative.png")


def characteristic_names(dataset: str, subset: str) -> list[str]:
    """The characteristics DETAD analyses for `dataset` and `subset`, in its order."""
    if dataset not in BINS:
        raise InputError(f"diagnosis: unknown dataset {dataset!r} (thumos14, activitynet)")
    if dataset == "thumos14" or subset == "validation":
        return ["coverage", "length", "num-instances"]
    if subset == "testing":
        return ["context-size", "context-distance", "agreement", "coverage", "length", "num-instances"]
    raise InputError(
        f"--subset {subset}: the diagnosis has ActivityNet settings for the 'validation' and 'testing' subsets only"
    )


def detad_dataset(name: str | None, annotations: Mapping[str, Any]) -> str:
    """`--dataset` (thumos14, activitynet, activitynet1.2, activitynet1.3) → DETAD's settings name; without one,
    thumos14 when every label is one of THUMOS14's 20 classes, else activitynet."""
    if name is None:
        labels = {a["label"] for e in annotations.values() for a in e["annotations"]}
        return "thumos14" if labels and labels <= set(THUMOS14_CLASSES) else "activitynet"
    if name.startswith("activitynet"):
        return "activitynet"
    if name != "thumos14":
        raise InputError(f"--dataset {name}: unknown dataset (thumos14, activitynet)")
    return name


# --- compiled kernels ------------------------------------------------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def _match(
    p_group: np.ndarray,  # [P] int64: (class, video) ground-truth group of each prediction, -1 if none
    p_seg: np.ndarray,  # [P, 2] float64, predictions in matching order (per class: score desc, later first)
    g_ptr: np.ndarray,  # [NG + 1] int64: group k is ground-truth rows g_ptr[k]:g_ptr[k+1] (file order)
    g_seg: np.ndarray,  # [G, 2] float64, grouped
    thresholds: np.ndarray,  # [T]
) -> np.ndarray:
    """Greedy matching, each threshold alone → matched [T, P] (grouped ground-truth row, -1 = false positive).
    A prediction takes the unlocked instance of highest tIoU if that tIoU >= the threshold; among equal tIoU the
    later instance (DETAD visits them by a reversed ascending argsort)."""
    n_th, n_pred = thresholds.shape[0], p_group.shape[0]
    matched = np.full((n_th, n_pred), -1, dtype=np.int64)
    locked = np.zeros((n_th, g_seg.shape[0]), dtype=np.bool_)
    iou = np.empty(g_seg.shape[0], dtype=np.float64)
    for i in range(n_pred):
        k = p_group[i]
        if k < 0:
            continue
        lo, hi = g_ptr[k], g_ptr[k + 1]
        ps, pe = p_seg[i, 0], p_seg[i, 1]
        for j in range(lo, hi):
            gs, ge = g_seg[j, 0], g_seg[j, 1]
            inter = max(0.0, min(pe, ge) - max(ps, gs))
            iou[j] = inter / ((ge - gs) + (pe - ps) - inter)  # kept ground truth has length > 0: no 0/0
        for t in range(n_th):
            best, best_iou = -1, -np.inf
            for j in range(lo, hi):
                if not locked[t, j] and iou[j] >= best_iou:
                    best, best_iou = j, iou[j]
            if best >= 0 and best_iou >= thresholds[t]:
                matched[t, i] = best
                locked[t, best] = True
    return matched


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _ap_n(hit: np.ndarray, keep: np.ndarray, ptr: np.ndarray, npos: np.ndarray, n_avg: float) -> np.ndarray:
    """Normalized AP of each class and threshold over the kept predictions → [T, C].

    hit, keep [T, P] bool (predictions grouped by class, ranked), ptr [C + 1], npos [C]. P = R·N_avg/(R·N_avg + fp);
    AP = VOC-2011 interpolation summed where recall changes; no kept prediction → 0; predictions, no ground truth →
    NaN. Operations in the order of the loop reference, so the numbers are the same to the bit."""
    n_th, n_cls = hit.shape[0], npos.shape[0]
    ap = np.zeros((n_th, n_cls))
    longest = 0
    for c in range(n_cls):
        longest = max(longest, ptr[c + 1] - ptr[c])
    rec = np.empty(longest + 2)
    prec = np.empty(longest + 2)
    for c in range(n_cls):
        for t in range(n_th):
            n, tp, fp = 0, 0, 0
            rec[0], prec[0] = 0.0, 0.0
            for i in range(ptr[c], ptr[c + 1]):
                if keep[t, i]:
                    if hit[t, i]:
                        tp += 1
                    else:
                        fp += 1
                    r = tp / npos[c]
                    n += 1
                    rec[n] = r
                    prec[n] = (r * n_avg) / (r * n_avg + fp)
            if n == 0:
                continue
            if npos[c] == 0:
                ap[t, c] = np.nan
                continue
            rec[n + 1], prec[n + 1] = 1.0, 0.0
            for i in range(n, -1, -1):
                prec[i] = max(prec[i], prec[i + 1])
            total = 0.0
            for i in range(1, n + 2):
                if rec[i] != rec[i - 1]:
                    total += (rec[i] - rec[i - 1]) * prec[i]
            ap[t, c] = total
    return ap


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _discard(matched: np.ndarray, ptr: np.ndarray, npos: np.ndarray, n_avg: float, theta: float) -> np.ndarray:
    """matched [T, P] (ranked by class) with every rank whose normalized precision on this curve is <= theta turned
    into a false positive (-1), all at once; the instance stays taken (no re-matching). NaN precision stays."""
    out = matched.copy()
    for c in range(npos.shape[0]):
        for t in range(matched.shape[0]):
            tp, fp = 0, 0
            for i in range(ptr[c], ptr[c + 1]):
                if matched[t, i] >= 0:
                    tp += 1
                else:
                    fp += 1
                r = tp / npos[c]
                if (r * n_avg) / (r * n_avg + fp) <= theta:
                    out[t, i] = -1
    return out


@numba.njit(cache=True, nogil=True)
def _nearest(p_video: np.ndarray, p_seg: np.ndarray, v_ptr: np.ndarray, g_seg: np.ndarray) -> tuple:
    """For each prediction, the FIRST instance of maximal tIoU among all ground truth of its video (any class, file
    order) → (row [P] int64, -1 when the video has none; tIoU [P])."""
    n = p_video.shape[0]
    best = np.full(n, -1, dtype=np.int64)
    best_iou = np.zeros(n)
    for i in range(n):
        v = p_video[i]
        if v < 0:
            continue
        ps, pe = p_seg[i, 0], p_seg[i, 1]
        for j in range(v_ptr[v], v_ptr[v + 1]):
            gs, ge = g_seg[j, 0], g_seg[j, 1]
            inter = max(0.0, min(pe, ge) - max(ps, gs))
            iou = inter / ((ge - gs) + (pe - ps) - inter)
            if best[i] < 0 or iou > best_iou[i]:
                best[i], best_iou[i] = j, iou
    return best, best_iou


# --- small exact helpers ----------------------------------------------------------------------------------------------


def _mean(x: np.ndarray, axis: int | None = None) -> Any:
    """Sequential (left-to-right) mean, as a plain loop sums; NaN propagates; empty → NaN. (np.mean sums pairwise:
    the last bits would differ from the loop reference, and the gains are differences of such means.)"""
    x = np.asarray(x, dtype=np.float64)
    if axis is None:
        x, axis = x.reshape(-1), 0
    n = x.shape[axis]
    if n == 0:
        return np.full(np.delete(x.shape, axis), np.nan) if x.ndim > 1 else math.nan
    total = np.cumsum(x, axis=axis).take(n - 1, axis=axis)
    return total / n if x.ndim > 1 else float(total) / n


def _average_map(ap: np.ndarray) -> float:
    """average-mAP_N: mean over thresholds of the mean over classes (ap [T, C])."""
    return _mean(_mean(ap, axis=1))


def _pick(values: np.ndarray, rows: np.ndarray, fill: int) -> np.ndarray:
    """values[rows] where rows >= 0, else `fill` (also when `values` is empty)."""
    if len(values) == 0:
        return np.full(rows.shape, fill, dtype=values.dtype)
    return np.where(rows >= 0, values[np.maximum(rows, 0)], fill)


def _null(x: float) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


def _div(a: float, b: float) -> float:
    """a / b as float64: x/0 → ±inf, 0/0 → NaN."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(a) / np.float64(b))


def bucket_index(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """pandas.cut(right=True, include_lowest=True): bin 0 = [e0, e1], bin k = (e(k), e(k+1)] → [N] int64, -1 for
    values outside [e0, eK] and NaN."""
    values = np.asarray(values, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.float64)
    b = np.searchsorted(edges, values, side="left") - 1
    b[values == edges[0]] = 0
    b[~((values >= edges[0]) & (values <= edges[-1]))] = -1  # NaN fails both
    return b


# --- inputs ----------------------------------------------------------------------------------------------------------


@dataclass
class _GroundTruth:
    """The kept instances of the subset, in file order (videos, then annotations) → arrays [G]."""

    classes: list[str]  # class index: order of first appearance (dropped instances count)
    video: np.ndarray  # [G] int64, position among the subset's videos (non-decreasing)
    cls: np.ndarray  # [G] int64
    seg: np.ndarray  # [G, 2] float64
    bucket: dict[str, np.ndarray]  # characteristic → [G] int64 bin (-1: outside the bins)
    n_videos: int
    counts: dict[str, int]


def _characteristic(
    name: str, anns: list[dict[str, Any]], seg: np.ndarray, per_video: np.ndarray, durations: np.ndarray,
    row_video: np.ndarray, videos: list[str], source: str,
) -> np.ndarray:  # fmt: skip
    """[N] values of one characteristic: the annotation's stored value (a DETAD file), else computed from the ground
    truth: length = end − start, coverage = length / video duration, num-instances = the video's instance count."""
    stored = np.array([a.get(name, np.nan) for a in anns], dtype=np.float64)
    has = np.array([name in a for a in anns], dtype=bool)
    if has.all():
        return stored
    missing = np.flatnonzero(~has)
    if name not in COMPUTED:
        v = videos[row_video[missing[0]]]
        raise InputError(
            f"{source}: video {v!r}: an instance has no {name!r}, which only DETAD's annotation file provides "
            f"({len(missing)} instances lack it)"
        )
    length = seg[:, 1] - seg[:, 0]
    if name == "length":
        computed = length
    elif name == "num-instances":
        computed = per_video[row_video].astype(np.float64)
    else:
        dur = durations[row_video]
        lacking = missing[np.isnan(dur[missing])]
        if lacking.size:
            v = videos[row_video[lacking[0]]]
            raise InputError(
                f"{source}: video {v!r} has no duration, which the diagnosis needs for the coverage of its instances "
                "(give an annotation file with durations, e.g. THUMOS14's annotations.json or ActivityNet's JSON)"
            )
        with np.errstate(divide="ignore", invalid="ignore"):
            computed = length / dur
    return np.where(has, stored, computed)


def _ground_truth(
    annotations: Mapping[str, Mapping[str, Any]], subset: str, names: list[str], bins: dict, source: str
) -> _GroundTruth:
    videos = [v for v, e in annotations.items() if e["subset"] == subset]
    per_video = np.array([len(annotations[v]["annotations"]) for v in videos], dtype=np.int64)
    anns = [a for v in videos for a in annotations[v]["annotations"]]
    if not anns:
        raise InputError(f"{source}: no ground-truth instances in subset {subset!r}")
    row_video = np.repeat(np.arange(len(videos), dtype=np.int64), per_video)
    durations = np.array([np.nan if annotations[v].get("duration") is None else annotations[v]["duration"]
                          for v in videos], dtype=np.float64).reshape(-1)  # fmt: skip
    classes = list(dict.fromkeys(a["label"] for a in anns))
    index = {c: i for i, c in enumerate(classes)}
    cls = np.array([index[a["label"]] for a in anns], dtype=np.int64)
    seg = np.array([a["segment"] for a in anns], dtype=np.float64).reshape(-1, 2)
    values = {x: _characteristic(x, anns, seg, per_video, durations, row_video, videos, source) for x in names}
    bucket = {x: bucket_index(values[x], bins[x][0]) for x in names}  # binned before the drops
    keep = np.ones(len(anns), dtype=bool)
    if "coverage" in names:  # DETAD drops coverage > 1 (and NaN) first, then start >= end
        keep = values["coverage"] <= 1.0
    n_cov = int(len(anns) - keep.sum())
    keep &= seg[:, 0] < seg[:, 1]
    counts = {
        "num_annotations": len(anns),
        "num_dropped_coverage": n_cov,
        "num_dropped_segment": int(len(anns) - n_cov - keep.sum()),
    }
    return _GroundTruth(
        classes, row_video[keep], cls[keep], seg[keep], {x: b[keep] for x, b in bucket.items()}, len(videos), counts
    )


def check_ground_truth(
    annotations: Mapping[str, Mapping[str, Any]], dataset: str, subset: str, *, source: str = "ground truth"
) -> None:
    """What `diagnose` would refuse in the ground truth (settings, instances, characteristics, durations), cheaply,
    so that a command line can say so before its other work (InputError)."""
    names = characteristic_names(dataset, subset)
    _ground_truth(annotations, subset, names, {x: BINS[dataset][x] for x in names}, source)


@dataclass
class _Predictions:
    """Predictions with a known label, in input order (videos, then each video's list) → arrays [P]."""

    video: np.ndarray  # [P] int64, position among the subset's videos; -1: a video without ground truth
    cls: np.ndarray  # [P] int64
    score: np.ndarray  # [P] float64
    seg: np.ndarray  # [P, 2] float64
    n_ignored: int

    def take(self, rows: np.ndarray) -> _Predictions:
        return _Predictions(self.video[rows], self.cls[rows], self.score[rows], self.seg[rows], self.n_ignored)

    def __len__(self) -> int:
        return len(self.cls)


def _predictions(
    predictions: Mapping[str, Sequence[Mapping[str, Any]]], videos: list[str], classes: list[str]
) -> _Predictions:
    ids = match_video_ids(videos, list(predictions))  # exact id, else with the ActivityNet `v_` prefix changed
    row = {v: i for i, v in enumerate(videos)}
    keys = list(predictions)
    sizes = np.array([len(predictions[k]) for k in keys], dtype=np.int64)
    video = np.repeat(np.array([row[ids[k]] if k in ids else -1 for k in keys], dtype=np.int64), sizes)
    flat = [p for k in keys for p in predictions[k]]
    index = {c: i for i, c in enumerate(classes)}
    cls = np.array([index.get(p["label"], -1) for p in flat], dtype=np.int64)
    score = np.array([p["score"] for p in flat], dtype=np.float64)
    seg = np.array([p["segment"] for p in flat], dtype=np.float64).reshape(-1, 2)
    known = cls >= 0  # a label without ground truth: ignored (DETAD raises KeyError)
    return _Predictions(video[known], cls[known], score[known], seg[known], int((~known).sum()))


# --- one evaluation --------------------------------------------------------------------------------------------------


@dataclass
class _Evaluation:
    """One matching of `preds` (ranked for matching) against all kept ground truth."""

    order: np.ndarray  # [P]: prediction rows in matching order (class ascending, score desc, later row first)
    ptr: np.ndarray  # [C + 1]: class c is order[ptr[c]:ptr[c+1]]
    matched: np.ndarray  # [T, P] ground-truth row matched by order[i] at each threshold, -1 for none


def _evaluate(gt: _GroundTruth, preds: _Predictions, thresholds: np.ndarray) -> _Evaluation:
    n_cls = len(gt.classes)
    rows = np.arange(len(preds))
    order = np.lexsort((-rows, -preds.score, preds.cls))
    ptr = np.searchsorted(preds.cls[order], np.arange(n_cls + 1)).astype(np.int64)
    # ground truth grouped by (class, video), file order inside a group
    g_key = gt.cls * gt.n_videos + gt.video
    g_order = np.lexsort((np.arange(len(g_key)), g_key))
    keys, starts = np.unique(g_key[g_order], return_index=True)
    g_ptr = np.append(starts, len(g_key)).astype(np.int64)
    p_key = preds.cls[order] * gt.n_videos + preds.video[order]
    group = np.searchsorted(keys, p_key)
    found = (preds.video[order] >= 0) & (group < len(keys))
    found[found] &= keys[group[found]] == p_key[found]
    group = np.where(found, group, -1).astype(np.int64)
    m = _match(group, np.ascontiguousarray(preds.seg[order]), g_ptr, np.ascontiguousarray(gt.seg[g_order]),
               thresholds)  # fmt: skip
    matched = _pick(g_order, m, -1)
    return _Evaluation(order, ptr, matched)


def _ap_table(ev: _Evaluation, matched: np.ndarray, npos: np.ndarray, n_avg: float, keep: Any = None) -> np.ndarray:
    """AP_N [T, C] of `ev`'s ranking with `matched` [T, P] as hits, over the predictions `keep` [T, P] (all: None)."""
    hit = matched >= 0
    keep = np.ones_like(hit) if keep is None else np.ascontiguousarray(keep)
    return _ap_n(hit, keep, ev.ptr, npos, n_avg)


# --- the three analyses ----------------------------------------------------------------------------------------------


def _false_positive(
    gt: _GroundTruth, preds: _Predictions, npos: np.ndarray, thresholds: np.ndarray, n_avg: float
) -> dict[str, Any]:
    """Top-10G limit, matching, error types, profile, gains."""
    n_th = len(thresholds)
    rows = np.arange(len(preds))
    by_class = np.lexsort((rows, -preds.score, preds.cls))  # class, score desc, earlier first
    cls = preds.cls[by_class]
    rank = np.arange(len(cls)) - np.searchsorted(cls, cls)
    limited = preds.take(by_class[(npos[cls] > 0) & (rank < 10 * npos[cls])])  # renumbered in this order
    ev = _evaluate(gt, limited, thresholds)
    base_ap = _ap_table(ev, ev.matched, npos, n_avg)
    base = _average_map(base_ap)

    # error type of each prediction (matching order) at each threshold
    v_ptr = np.searchsorted(gt.video, np.arange(gt.n_videos + 1)).astype(np.int64)
    seg = np.ascontiguousarray(limited.seg[ev.order])
    near, tau = _nearest(limited.video[ev.order], seg, v_ptr, np.ascontiguousarray(gt.seg))
    same = _pick(gt.cls, near, -1) == limited.cls[ev.order]
    thr = np.asarray(thresholds)[:, None]
    types = np.where(tau >= thr, np.where(same, DD, WL), np.where(tau >= MIN_TIOU_THR, np.where(same, LOC, CONF), BG))
    types[:, near < 0] = BG
    types[ev.matched >= 0] = TP

    # profile: the limited order is class ascending, score descending, earlier first: ranks within the class
    by_row = np.empty_like(types)
    by_row[:, ev.order] = types
    m_cls = limited.cls
    group = (np.arange(len(m_cls)) - np.searchsorted(m_cls, m_cls)) // np.maximum(npos[m_cls], 1)
    counts = np.bincount((group * 6 + by_row).ravel(), minlength=6 * len(GROUPS)).reshape(len(GROUPS), 6)
    sizes = np.bincount(group, minlength=len(GROUPS))

    def fractions(count: np.ndarray, size: int) -> dict[str, float | None]:
        return {k: _null(_div(count[i] / n_th, size)) for i, k in enumerate(ERROR_TYPES)}

    profile = {name: fractions(counts[g], int(sizes[g])) for g, name in enumerate(GROUPS)}
    gains = {}
    for k, name in enumerate(FP_ERROR_TYPES, start=1):
        ap = _ap_table(ev, ev.matched, npos, n_avg, keep=types != k)  # no re-matching: the others keep their flags
        gains[name] = _null(_mean(ap) - base)
    return {
        "average_mAP_N": _null(base),
        "profile": profile,
        "average_mAP_N_gain": gains,
        "all": fractions(counts.sum(axis=0), len(limited)),
        "M": len(limited),
    }


def _sensitivity(
    gt: _GroundTruth, preds: _Predictions, ev: _Evaluation, names: list[str], bins: dict, n_avg: float
) -> dict[str, dict[str, float | None]]:
    """Per characteristic and bin: mean over the classes with ground truth in the bin of the average AP_N over the
    class's predictions minus those matched (at any threshold) to an instance of another bin."""
    n_cls = len(gt.classes)
    rows = np.arange(len(preds))
    order = np.lexsort((rows, -preds.score, preds.cls))  # class, score desc, earlier first (pandas' order)
    position = np.empty_like(ev.order)
    position[ev.order] = np.arange(len(ev.order))
    matched = ev.matched[:, position[order]]
    hit = matched >= 0
    sens = _Evaluation(order, ev.ptr, matched)
    out = {}
    for x in names:
        labels = bins[x][1]
        b = _pick(gt.bucket[x], matched, -1)
        lo = np.where(hit, b, len(labels)).min(axis=0)
        hi = np.where(hit, b, -1).max(axis=0)
        # -1: matched nothing (stays in every bin); the one bin of all its matches; -2: none (matches of several bins)
        home = np.where(~hit.any(axis=0), -1, np.where((lo == hi) & (lo >= 0), lo, -2))
        out[x] = {}
        for k, label in enumerate(labels):
            npos = np.bincount(gt.cls[gt.bucket[x] == k], minlength=n_cls)
            if not npos.any():
                out[x][label] = None  # an empty bin has no number
                continue
            keep = np.broadcast_to((home == -1) | (home == k), matched.shape)
            per_class = _mean(_ap_table(sens, matched, npos, n_avg, keep=keep), axis=0)
            out[x][label] = _null(_mean(per_class[npos > 0]))
    return out


def _false_negative(
    gt: _GroundTruth, matched_gt: np.ndarray, names: list[str], bins: dict, n_th: int
) -> dict[str, dict[str, float | None]]:
    """Per characteristic and bin: the share of its instances never matched, averaged over thresholds.
    matched_gt [T, G] bool."""
    S = len(gt.cls)
    out = {}
    for x in names:
        out[x] = {}
        for k, label in enumerate(bins[x][1]):
            members = gt.bucket[x] == k
            n_b = int(members.sum())
            if n_b == 0:
                out[x][label] = None
                continue
            missed = (~matched_gt[:, members]).sum(axis=1)
            total = 0.0
            for u in missed.tolist():  # DETAD's expression, summed in threshold order
                total += 0.0 if u == 0 else u / ((n_b / S) * S)
            out[x][label] = total / n_th
    return out


def diagnose(
    annotations: Mapping[str, Mapping[str, Any]],
    predictions: Mapping[str, Sequence[Mapping[str, Any]]],
    dataset: str,
    subset: str,
    *,
    source: str = "ground truth",
) -> dict[str, Any]:
    """DETAD's three analyses → a JSON-ready dict (None where DETAD has no number: an empty group or bin).

    {"dataset", "tiou_thresholds", "average_mAP_N", "false_positive": {"average_mAP_N", "profile": {"1G"…"10G":
    {type: fraction}}, "average_mAP_N_gain": {error type: gain}}, "sensitivity": {characteristic: {bin: mAP_N}},
    "false_negative": {characteristic: {bin: rate}}, "extra": {...}}. Fractions in [0, 1].

    annotations: videos of `subset` are the ground truth (others ignored); an instance's characteristics are read
    from its DETAD fields when present, else computed (coverage needs the video's duration). predictions: on any
    video (those without ground truth are all false positives); validated as evaluate.read_predictions does.
    dataset: "thumos14" (tIoU 0.5) or "activitynet" (0.5:0.05:0.95; subset "validation" or "testing").
    """
    names = characteristic_names(dataset, subset)
    bins = {x: BINS[dataset][x] for x in names}
    thresholds = np.asarray(TIOU_THRESHOLDS[dataset], dtype=np.float64)
    n_th = len(thresholds)
    gt = _ground_truth(annotations, subset, names, bins, source)
    preds = _predictions(predictions, [v for v, e in annotations.items() if e["subset"] == subset], gt.classes)
    n_cls = len(gt.classes)
    npos = np.bincount(gt.cls, minlength=n_cls).astype(np.int64)
    n_avg = len(gt.cls) / n_cls  # global, true division

    out_of_edges = {x: int((gt.bucket[x] < 0).sum()) for x in names}
    for x, n in out_of_edges.items():
        if n:
            warn_once(f"{source}: {n} ground-truth instance(s) outside the {x} bins: left out of {x}")

    ev = _evaluate(gt, preds, thresholds)  # one matching of all predictions: sensitivity and false negatives
    ap_all = _ap_table(ev, ev.matched, npos, n_avg)
    average = _average_map(ap_all)
    fp = _false_positive(gt, preds, npos, thresholds, n_avg)
    sensitivity = _sensitivity(gt, preds, ev, names, bins, n_avg)
    matched_fn = _discard(ev.matched, ev.ptr, npos, n_avg, THETA_FN)
    ap_fn = _ap_table(ev, matched_fn, npos, n_avg)
    matched_gt = np.zeros((n_th, len(gt.cls)), dtype=bool)
    t_idx, p_idx = np.nonzero(matched_fn >= 0)
    matched_gt[t_idx, matched_fn[t_idx, p_idx]] = True
    false_negative = _false_negative(gt, matched_gt, names, bins, n_th)

    relative = {}
    for x in names:
        ratios = [_div(v * 100, average * 100) for v in sensitivity[x].values() if v is not None]
        ratios = [r for r in ratios if math.isfinite(r)]
        relative[x] = {"min": min(ratios) if ratios else None, "max": max(ratios) if ratios else None}

    return {
        "dataset": dataset,
        "tiou_thresholds": thresholds.tolist(),
        "average_mAP_N": _null(average),
        "false_positive": {k: fp[k] for k in ("average_mAP_N", "profile", "average_mAP_N_gain")},
        "sensitivity": sensitivity,
        "false_negative": false_negative,
        "extra": {
            "sensitivity_relative_change": relative,
            "false_negative_average_mAP_N": _null(_average_map(ap_fn)),
            "false_positive_all_top10G": fp["all"],
            "num_ground_truth": len(gt.cls),
            "num_predictions": len(preds),
            "num_predictions_top10G": fp["M"],
            "average_num_instance_per_class": n_avg,
            "num_classes": n_cls,
            "num_annotations_in_subset": gt.counts["num_annotations"],
            "num_dropped_coverage": gt.counts["num_dropped_coverage"],
            "num_dropped_segment": gt.counts["num_dropped_segment"],
            "num_predictions_ignored": preds.n_ignored,
            "num_out_of_edges": out_of_edges,
            "mAP_N": [_null(v) for v in _mean(ap_all, axis=1)],
        },
    }


# --- tables, figures, files ------------------------------------------------------------------------------------------

# One colour per prediction type, shared by the figures (true positives green, background grey).
COLOURS = ("#2ca02c", "#9467bd", "#ff7f0e", "#1f77b4", "#d62728", "#7f7f7f")


def _pct(v: float | None, digits: int = 1) -> str:
    return "—" if v is None else f"{100 * v:.{digits}f}"


def tables(out: dict[str, Any]) -> str:
    """The diagnosis as the project's text tables (percent; gains in points of average-mAP_N)."""
    thresholds = " ".join(f"{t:g}" for t in out["tiou_thresholds"])
    extra = out["extra"]
    head = (
        f"diagnosis ({out['dataset']}, tIoU {thresholds}): {extra['num_ground_truth']} instances, "
        f"{extra['num_classes']} classes, {extra['num_predictions']} predictions; average-mAP_N "
        f"{_pct(out['average_mAP_N'], 2)} % (all predictions), {_pct(out['false_positive']['average_mAP_N'], 2)} % "
        f"(top-10G, {extra['num_predictions_top10G']} predictions), {_pct(extra['false_negative_average_mAP_N'], 2)} "
        f"% (matches at normalized precision <= {THETA_FN:g} discarded)"
    )
    profile = out["false_positive"]["profile"]
    rows = [[g, *(_pct(profile[g][k]) for k in ERROR_TYPES)] for g in GROUPS]
    rows.append(["top-10G", *(_pct(extra["false_positive_all_top10G"][k]) for k in ERROR_TYPES)])
    short = ["true pos.", "double det.", "wrong label", "localization", "confusion", "background"]
    fp = format_table(["group", *short], rows, title="false-positive profile (% of each group's predictions)")
    gains = out["false_positive"]["average_mAP_N_gain"]
    gain = format_table(
        ["error type removed", *short[1:]],
        [["average-mAP_N gain (points)", *(_pct(gains[k], 2) for k in FP_ERROR_TYPES)]],
        title="false positives: what removing each error type would gain",
    )
    rows = []
    for x, bins in out["sensitivity"].items():
        change = extra["sensitivity_relative_change"][x]
        for label, v in bins.items():
            rows.append([x, label, _pct(v), _pct(out["false_negative"][x][label])])
        rows.append([x, "min/max ÷ average", "/".join(_pct(change[k], 0) for k in ("min", "max")), ""])
    per_bin = format_table(
        ["characteristic", "bin", "mAP_N (%)", "false negatives (%)"], rows,
        title="sensitivity (average-mAP_N of each bin's instances) and false-negative rate per bin; — = no instance",
    )  # fmt: skip
    return "\n\n".join([head, fp, gain, per_bin])


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    return Figure(figsize=(width, height), dpi=100)


def _save(fig: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


def draw_false_positive(out: dict[str, Any], path: Path, title: str) -> None:
    """Stacked bars: the share of each type among the predictions of groups 1G…10G (and all of the top 10G);
    beside them, the average-mAP_N gain (points) of removing each error type."""
    fig = _figure(12, 4.8)
    ax, ax_gain = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2.1, 1]})
    profile = out["false_positive"]["profile"]
    names = [*GROUPS, "top-10G"]
    rows = [profile[g] for g in GROUPS] + [out["extra"]["false_positive_all_top10G"]]
    x = np.arange(len(names), dtype=float)
    x[-1] += 0.6  # the whole top-10G apart from the groups
    bottom = np.zeros(len(names))
    for name, colour in zip(ERROR_TYPES, COLOURS, strict=True):
        h = np.array([np.nan if r[name] is None else 100 * r[name] for r in rows])
        ax.bar(x, np.nan_to_num(h), 0.75, bottom=bottom, color=colour, label=name.replace(" Err", ""))
        bottom += np.nan_to_num(h)
    for xi, r in zip(x, rows, strict=True):
        if r["True Positive"] is None:
            ax.text(xi, 2, "empty", ha="center", va="bottom", rotation=90, fontsize=8, color="0.4")
    ax.set_xticks(x, names)
    ax.set_ylim(0, 100)
    ax.set_ylabel("share of the group's predictions (%)")
    ax.set_xlabel("group gG: ranks (g−1)·n_c … g·n_c−1 of each class c (n_c = its instances)")
    ax.set_title("false-positive profile", fontsize=11, pad=24)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=6, fontsize=8, frameon=False, columnspacing=1.0)
    gains = out["false_positive"]["average_mAP_N_gain"]
    values = [100 * (gains[k] or 0.0) for k in FP_ERROR_TYPES]
    labels = [k.replace(" Err", "") for k in FP_ERROR_TYPES]
    y = np.arange(len(labels))[::-1]
    ax_gain.barh(y, values, color=COLOURS[1:])
    for yi, v in zip(y, values, strict=True):
        ax_gain.text(v, yi, f" {v:.2f}", va="center", fontsize=9)
    ax_gain.set_yticks(y, labels)
    ax_gain.set_xlim(0, max(values + [0.1]) * 1.25)
    ax_gain.set_xlabel("average-mAP_N gain (points)")
    ax_gain.set_title("gain from removing each error type", fontsize=11)
    fig.suptitle(title, fontsize=11)
    fig.subplots_adjust(left=0.06, right=0.975, bottom=0.13, top=0.8, wspace=0.3)
    _save(fig, path)


def _ranges(x: str, edges: Sequence[float]) -> list[str]:
    """Bin edges → readable ranges: "0–3", …, ">18"; counts (integers): "≤1", "2–40", …, "≥81"."""
    out = []
    for k, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        if x in ("num-instances", "context-size", "context-distance"):
            first = int(lo) + 1
            out.append(f"≤{hi:g}" if k == 0 else f"≥{first}" if math.isinf(hi) else f"{hi:g}" if first == hi
                       else f"{first}–{hi:g}")  # fmt: skip
        else:
            out.append(f">{lo:g}" if math.isinf(hi) else f"{lo:g}–{hi:g}")
    return out


def _bars_per_bin(out: dict[str, Any], key: str, path: Path, title: str, ylabel: str, line: float | None) -> None:
    """One panel per characteristic, a bar per bin (percent), `line` (percent) dashed across every panel."""
    per_x = out[key]
    fig = _figure(3.2 * len(per_x) + 0.8, 4.1)
    axes = np.atleast_1d(fig.subplots(1, len(per_x), sharey=True))
    top = max([100 * v for b in per_x.values() for v in b.values() if v is not None] + [line or 0.0, 1.0])
    for ax, (x, bins) in zip(axes, per_x.items(), strict=True):
        labels = list(bins)
        values = [np.nan if bins[b] is None else 100 * bins[b] for b in labels]
        pos = np.arange(len(labels))
        ax.bar(pos, np.nan_to_num(values), 0.7, color="#4c72b0")
        for p, v in zip(pos, values, strict=True):
            shown, colour = ("no\ninstance", "0.5") if np.isnan(v) else (f"{v:.1f}", "black")
            ax.text(p, 0 if np.isnan(v) else v, shown, ha="center", va="bottom", fontsize=8, color=colour)
        if line is not None:
            ax.axhline(line, color="black", linestyle="--", linewidth=1.2, label=f"all instances: {line:.1f}")
        ranges = _ranges(x, BINS[out["dataset"]][x][0])
        ax.set_xticks(pos, [f"{b}\n{r}" for b, r in zip(labels, ranges, strict=True)])
        ax.tick_params(axis="x", labelsize=8)
        ax.set_title(x, fontsize=11)
        ax.set_ylim(0, top * 1.15)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel(ylabel)
    if line is not None:
        axes[0].legend(loc="upper left", fontsize=8)
    fig.suptitle(title, fontsize=11)
    fig.subplots_adjust(left=0.07, right=0.985, bottom=0.14, top=0.8, wspace=0.08)
    _save(fig, path)


def write_diagnosis(out: dict[str, Any], folder: str | Path, title: str = "") -> str:
    """`folder`/diagnosis.json (the dict of `diagnose`) and the three figures, each written atomically → the text
    tables. `title` heads the figures (e.g. the predictions' file)."""
    folder = Path(folder)
    atomic_json_dump(out, folder / "diagnosis.json", indent=1, allow_nan=False)
    head = f"{title}\n" if title else ""
    draw_false_positive(out, folder / FIGURES[0], f"{head}false positives ({out['dataset']})")
    average = out["average_mAP_N"]
    _bars_per_bin(
        out, "sensitivity", folder / FIGURES[1], f"{head}sensitivity: average-mAP_N of each bin's instances",
        "average-mAP_N (%)", None if average is None else 100 * average,
    )  # fmt: skip
    _bars_per_bin(
        out, "false_negative", folder / FIGURES[2], f"{head}false negatives: share of each bin's instances that no "
        f"prediction matches (at normalized precision > {THETA_FN:g})", "false-negative rate (%)", None,
    )  # fmt: skip
    return tables(out)


def run(
    annotations: Mapping[str, Mapping[str, Any]],
    predictions: Mapping[str, Sequence[Mapping[str, Any]]],
    dataset: str,
    subset: str,
    folder: str | Path,
    *,
    source: str = "ground truth",
    title: str = "",
) -> str:
    """diagnose + write_diagnosis (the command lines' path) → the text tables and where the files went."""
    out = diagnose(annotations, predictions, dataset, subset, source=source)
    text = write_diagnosis(out, folder, title)
    return f"{text}\n\ndiagnosis → {Path(folder) / 'diagnosis.json'}, " + ", ".join(FIGURES)
