"""Slow, obviously-correct transcription of DETAD's three analyses (test oracle; plain loops, float64).

DETAD (H. Alwassel et al., "Diagnosing Error in Temporal Action Detectors", ECCV 2018; public code
HumamAlwassel/DETAD, Python 3 version of Nov 2021) diagnoses a temporal action detector with three analyses:

* false-positive analysis: every prediction (top 10·n_c per class) is typed True Positive / Double Detection /
  Wrong Label / Localization / Confusion / Background at each tIoU threshold; the "profile" gives the share of
  each type in the groups 1G…10G of each class's ranking, and the "gain" of each error type is the change of
  average-mAP_N when predictions of that type are removed;
* sensitivity analysis: average-mAP_N restricted to the ground truth of one bucket of one characteristic
  (coverage, length, number of instances, …) — but matching is done once against all ground truth;
* false-negative analysis: the fraction of a bucket's ground truth that no prediction matches.

All three use the *normalized* AP (AP_N): precision P = R·N_avg / (R·N_avg + fp), N_avg being the dataset-wide
average number of instances per class. The specification followed line by line is /work/shared/DETAD.md
(cited as §N and Qn below; Qn are the quirks of §8). Where DETAD's own code is deterministic and does not crash,
this module follows it to the number, bugs included, and names the quirk in a comment. Where DETAD depends on an
unstable sort or crashes, it does what was evidently intended:

* Q1  every false positive in a video without kept ground truth is Background (DETAD types all but one of them
      against the ground truth of another video it processed earlier, or crashes);
* Q2  ties follow stable emulations of DETAD's unstable sorts:
      - matching ranking (§4.2) and gain ranking (§5.4): score descending, among equal scores the LATER
        prediction-id first (the reversal of a stable ascending sort);
      - ground truth visited by a prediction in matching (§4.3): tIoU descending, among equal tIoU the LATER
        ground truth (in file order) first — §4.3 says "ties as in 4.2", i.e. the same reversed ascending sort;
      - profile ranking (§5.3) and sensitivity ranking (§6): score descending, EARLIER prediction-id first
        (pandas descending sort, stable);
      - top-10G limit (§5.1): score descending, EARLIER prediction-id kept at the cut (and first after renumbering);
      - error typing (§5.2, Q3): the FIRST ground truth of maximal tIoU in file order (np.argmax; deterministic);
* Q6  a class without any prediction has AP_N 0 wherever it enters (DETAD's sensitivity analysis raises KeyError);
* Q12 predictions are validated as this project's evaluator validates them: label a str, score and segment
      finite numbers, segment of two values with start <= end, else ValueError (a reversed segment is an
      error; zero-length segments are kept). Predictions whose label is not in the ground truth's class index
      (DETAD: KeyError) are ignored and counted in extra["num_predictions_ignored"]. Predictions on videos
      without ground truth (or of another subset) are kept, as DETAD keeps them.
* Q13 an instance whose characteristic value lies outside that characteristic's edges (or is NaN) is left out
      of that characteristic's buckets only (a warning counts them); DETAD's FN analysis crashes on it. The FN
      denominator S stays the number of all kept ground truth.

Numbers agree with a numpy implementation to rounding (sums here are sequential Python sums, numpy's are
pairwise), so compare with a relative tolerance of ~1e-12, not bit for bit. `None` stands for DETAD's NaN,
empty groups and empty buckets (JSON null). Top-level keys missing from the inputs raise ValueError (DETAD:
IOError).
"""

from __future__ import annotations

import copy
import math
import warnings

import numpy as np

ERROR_TYPES = (
    "True Positive",
    "Double Detection Err",
    "Wrong Label Err",
    "Localization Err",
    "Confusion Err",
    "Background Err",
)
FP_ERROR_TYPES = ERROR_TYPES[1:]
GROUPS = tuple(f"{g + 1}G" for g in range(10))
MIN_TIOU_THR = 0.1  # §3: min_tiou_thr of the false-positive analysis
THETA_FN = 0.05  # §3: minimum normalized precision of the false-negative analysis

_SIZES5 = ("XS", "S", "M", "L", "XL")
_SIZES4 = ("XS", "S", "M", "L")
# §2: (edges, labels) per dataset and characteristic; np.linspace values kept as numpy computes them.
BINS = {
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
# §3: the same thresholds for the three analyses.
TIOU_THRESHOLDS = {"thumos14": [0.5], "activitynet": np.linspace(0.5, 0.95, 10).tolist()}


def characteristic_names(dataset: str, subset: str) -> list[str]:
    """§3: the characteristics analysed, in DETAD's order."""
    if dataset == "thumos14":
        return ["coverage", "length", "num-instances"]
    if dataset == "activitynet":
        if subset == "validation":
            return ["coverage", "length", "num-instances"]
        if subset == "testing":
            return ["context-size", "context-distance", "agreement", "coverage", "length", "num-instances"]
        raise ValueError(f"DETAD has no ActivityNet characteristics for subset {subset!r} (validation, testing)")
    raise ValueError(f"unknown dataset {dataset!r} (thumos14, activitynet)")


# --- arithmetic ----------------------------------------------------------------------------------------------------


def _div(a, b) -> float:
    """a / b in IEEE float64 as numpy computes it: x/0 → ±inf, 0/0 and NaN/0 → NaN (no ZeroDivisionError)."""
    a, b = float(a), float(b)
    if b == 0.0:
        if a == 0.0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def _mean(values) -> float:
    """Plain mean; NaN propagates (numpy .mean()); empty → NaN."""
    values = list(values)
    total = 0.0
    for v in values:
        total += v
    return _div(total, len(values))


def _nanmean(values) -> float:
    """np.nanmean: mean of the non-NaN values; NaN when there is none."""
    return _mean([v for v in values if not math.isnan(v)])


def _null(x):
    """NaN (DETAD has no number) → None; everything else → float."""
    x = float(x)
    return None if math.isnan(x) else x


def tiou(ps: float, pe: float, gs: float, ge: float) -> float:
    """§4.1: tIoU of prediction [ps, pe] with ground truth [gs, ge], operations in this order."""
    inter = max(0.0, min(pe, ge) - max(ps, gs))
    union = (ge - gs) + (pe - ps) - inter
    return _div(inter, union)


def bucket_of(value: float, edges, labels):
    """§2: pandas cut, right-closed, include_lowest: L1 = [e0, e1], Lk = (e(k-1), ek]; outside or NaN → None."""
    if edges[0] <= value <= edges[1]:
        return labels[0]
    for k in range(1, len(labels)):
        if edges[k] < value <= edges[k + 1]:
            return labels[k]
    return None  # Q13: outside the edges (or NaN)


# --- characteristics (§2) ------------------------------------------------------------------------------------------


def characteristics(database: dict, durations: dict[str, float] | None = None) -> dict:
    """A deep copy of an ActivityNet-layout database {vid: {"subset", "annotations", "duration"?}} whose every
    annotation gains "length" = end − start, "coverage" = length / duration of the video and "num-instances" =
    number of annotations of the video, all labels together (§2). The duration is durations[vid] when `durations`
    is given, else the video's own "duration" field; it is read only for videos with at least one annotation
    (a KeyError names a video that needs one and has none). Division follows IEEE float64 (duration 0 → inf/NaN).
    """
    out = copy.deepcopy(database)
    for vid, entry in out.items():
        annotations = entry["annotations"]
        if not annotations:
            continue
        duration = float(durations[vid] if durations is not None else entry["duration"])
        for ann in annotations:
            start, end = float(ann["segment"][0]), float(ann["segment"][1])
            length = end - start
            ann["length"] = length
            ann["coverage"] = _div(length, duration)
            ann["num-instances"] = len(annotations)
    return out


# --- inputs (§1) ---------------------------------------------------------------------------------------------------


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _load_ground_truth(ground_truth: dict, subset: str, names: list[str], bins: dict):
    """§1: → (class_index {label: int}, kept rows, row counts). A row is a dict: gt_id, video, cls, start, end,
    bucket {characteristic: label or None}."""
    for key in ("database", "taxonomy", "version"):
        if key not in ground_truth:
            raise ValueError(f"ground truth lacks the top-level key {key!r} (DETAD: IOError)")
    class_index: dict[str, int] = {}
    rows = []
    gt_id = 0
    for vid, entry in ground_truth["database"].items():  # §1.1: file order
        if entry["subset"] != subset:
            continue
        for ann in entry["annotations"]:  # §1.2: list order
            label = ann["label"]
            if label not in class_index:
                class_index[label] = len(class_index)
            buckets = {}
            for x in names:  # §1.3: binned on all rows, before dropping
                edges, labels = bins[x]
                buckets[x] = bucket_of(float(ann[x]), edges, labels)
            rows.append(
                {
                    "gt_id": gt_id,  # §1.2: assigned before the drops, so gt-ids keep their gaps
                    "video": vid,
                    "cls": class_index[label],
                    "start": float(ann["segment"][0]),
                    "end": float(ann["segment"][1]),
                    "coverage": float(ann["coverage"]) if "coverage" in names else None,
                    "bucket": buckets,
                }
            )
            gt_id += 1
    if not class_index:
        raise ValueError(f"ground truth has no annotation in subset {subset!r}")
    kept = rows
    n_dropped_coverage = 0
    if "coverage" in names:  # §1.3: first coverage > 1.0 (NaN dropped too: only coverage <= 1.0 survives)
        kept = [r for r in rows if r["coverage"] <= 1.0]
        n_dropped_coverage = len(rows) - len(kept)
    n_before = len(kept)
    kept = [r for r in kept if r["start"] < r["end"]]  # §1.3: then start >= end
    counts = {
        "num_annotations": len(rows),
        "num_dropped_coverage": n_dropped_coverage,
        "num_dropped_segment": n_before - len(kept),
    }
    # Q4: a class whose every instance was dropped stays in class_index.
    return class_index, kept, counts


def _load_predictions(predictions: dict, class_index: dict[str, int]):
    """§1 + Q12: → (rows in file order, number ignored for an unknown label). A row: pid, video, cls, start, end,
    score. pid = position among the kept rows (file order; only relative order matters)."""
    for key in ("results", "version", "external_data"):
        if key not in predictions:
            raise ValueError(f"predictions lack the top-level key {key!r} (DETAD: IOError)")
    rows = []
    ignored = 0
    for vid, plist in predictions["results"].items():
        for i, p in enumerate(plist):
            seg = p.get("segment") if isinstance(p, dict) else None
            if not (
                isinstance(p, dict)
                and isinstance(p.get("label"), str)
                and _is_number(p.get("score"))
                and isinstance(seg, (list, tuple))
                and len(seg) == 2
                and _is_number(seg[0])
                and _is_number(seg[1])
            ):
                raise ValueError(f"video {vid!r} prediction {i}: expected {{label: str, score, segment: [s, e]}}")
            start, end = float(seg[0]), float(seg[1])
            if start > end:  # Q12: DETAD keeps reversed segments; the project's evaluator rejects them
                raise ValueError(f"video {vid!r} prediction {i}: reversed segment [{start}, {end}]")
            if p["label"] not in class_index:  # Q12: DETAD raises KeyError; ignored here
                ignored += 1
                continue
            rows.append(
                {
                    "pid": len(rows),
                    "video": vid,
                    "cls": class_index[p["label"]],
                    "start": start,
                    "end": end,
                    "score": float(p["score"]),
                }
            )
    return rows, ignored


# --- matching and AP_N (§4) ----------------------------------------------------------------------------------------


def rank_for_matching(preds: list[dict]) -> list[dict]:
    """§4.2 + Q2: scores.argsort()[::-1] emulated stably: score descending, later prediction-id first on ties."""
    return sorted(preds, key=lambda p: (p["score"], p["pid"]), reverse=True)


def rank_descending(preds: list[dict]) -> list[dict]:
    """§5.3, §6 + Q2: pandas sort_values(ascending=False) emulated stably: score descending, earlier id first."""
    return sorted(preds, key=lambda p: (-p["score"], p["pid"]))


def match_class(ranked: list[dict], gt_of_class: list[dict], thresholds) -> list[list]:
    """§4.3: greedy matching of one class's ranked predictions, each threshold independently (one lock per
    (threshold, GT)). → matched[ti][rank] = gt_id or None."""
    by_video: dict[str, list[dict]] = {}
    for g in gt_of_class:  # GT order
        by_video.setdefault(g["video"], []).append(g)
    matched = []
    for t in thresholds:
        locked = set()
        row = []
        for p in ranked:
            found = None
            gts = by_video.get(p["video"], [])  # no kept GT of the class in the video → FP at every t
            ious = [tiou(p["start"], p["end"], g["start"], g["end"]) for g in gts]
            # tIoU descending; among equal tIoU the later GT first (Q2: reversed stable ascending argsort)
            visit = sorted(range(len(gts)), key=lambda k: (ious[k], k), reverse=True)
            for k in visit:
                if ious[k] < t:  # the first GT below t stops the search: FP
                    break
                if gts[k]["gt_id"] in locked:
                    continue
                found = gts[k]["gt_id"]
                locked.add(found)
                break
            row.append(found)
        matched.append(row)
    return matched


def precision_recall(flags: list[bool], npos: int, n_avg: float) -> tuple[list[float], list[float]]:
    """§4.4: cumulative tp/fp over ranks, R = tp / npos, P = (R·N_avg) / (R·N_avg + fp)."""
    recall, precision = [], []
    tp = fp = 0
    for hit in flags:
        if hit:
            tp += 1
        else:
            fp += 1
        r = _div(tp, npos)
        recall.append(r)
        precision.append(_div(r * n_avg, r * n_avg + fp))
    return recall, precision


def discard_low_precision(matched_row: list, npos: int, n_avg: float, theta: float) -> list:
    """§4.4 + Q10: every rank with P <= θ on the first curve (one pass, all at once) becomes FP and loses its
    gt-id; the GT stays locked (no re-matching). NaN precision is never <= θ. θ = 0 is a no-op."""
    _, precision = precision_recall([m is not None for m in matched_row], npos, n_avg)
    return [None if precision[i] <= theta else m for i, m in enumerate(matched_row)]


def interpolated_ap(recall: list[float], precision: list[float]) -> float:
    """§4.5 (VOC 2011): prepend (0, 0), append (1, 0), make P non-increasing from the right, sum ΔR·P."""
    mrec = [0.0] + list(recall) + [1.0]
    mprec = [0.0] + list(precision) + [0.0]
    for i in range(len(mprec) - 2, -1, -1):
        mprec[i] = max(mprec[i], mprec[i + 1])
    ap = 0.0
    for i in range(1, len(mrec)):
        if mrec[i] != mrec[i - 1]:
            ap += (mrec[i] - mrec[i - 1]) * mprec[i]
    return ap


def average_precision_n(flags: list[bool], npos: int, n_avg: float) -> float:
    """AP_N of a ranked TP/FP list. No prediction → 0 (§4.5, Q6); predictions without GT → NaN (0/0 recall, §4.6)."""
    if not flags:
        return 0.0
    if npos == 0:
        return math.nan  # DETAD: recall 0/0 = NaN makes the whole sum NaN
    recall, precision = precision_recall(flags, npos, n_avg)
    return interpolated_ap(recall, precision)


def evaluate(gt: list[dict], preds: list[dict], n_classes: int, thresholds, n_avg: float, theta: float):
    """One DETAD evaluation: per class, rank (§4.2), match (§4.3), discard (§4.4), AP (§4.5).
    → (ap[ti][c], matched {pid: [gt_id or None per threshold]}, ranked {c: [pred, ...] in matching order})."""
    ap = [[0.0] * n_classes for _ in thresholds]
    matched: dict[int, list] = {}
    ranked_by_class: dict[int, list[dict]] = {}
    for c in range(n_classes):
        preds_c = [p for p in preds if p["cls"] == c]
        gt_c = [g for g in gt if g["cls"] == c]
        ranked = rank_for_matching(preds_c)
        rows = match_class(ranked, gt_c, thresholds)
        rows = [discard_low_precision(row, len(gt_c), n_avg, theta) for row in rows]
        for ti in range(len(thresholds)):
            ap[ti][c] = average_precision_n([m is not None for m in rows[ti]], len(gt_c), n_avg)
        for r, p in enumerate(ranked):
            matched[p["pid"]] = [rows[ti][r] for ti in range(len(thresholds))]
        ranked_by_class[c] = ranked
    return ap, matched, ranked_by_class


def average_map(ap: list[list[float]]) -> float:
    """§4.6: mean over thresholds of (mean over classes); NaN propagates (Q4)."""
    return _mean([_mean(row) for row in ap])


# --- false-positive analysis (§5) ----------------------------------------------------------------------------------


def limit_top10g(preds: list[dict], npos: list[int]) -> list[dict]:
    """§5.1: per class with n_c >= 1 kept GT (ascending), its 10·n_c best (score desc, earlier id kept at the cut,
    Q2); other classes' predictions are discarded. Re-numbered 0…M−1 in the kept order."""
    kept = []
    for c in range(len(npos)):
        if npos[c] == 0:
            continue
        preds_c = sorted([p for p in preds if p["cls"] == c], key=lambda p: (-p["score"], p["pid"]))
        kept += preds_c[: 10 * npos[c]]
    return [{**p, "pid": i} for i, p in enumerate(kept)]


def error_type(pred: dict, video_gt: list[dict], t: float) -> str:
    """§5.2: type of a false positive at threshold t against all kept GT of its video (every class, GT order)."""
    if not video_gt:
        return "Background Err"  # Q1: every FP of a video without kept GT (DETAD: only the first of them)
    best_j, best = 0, tiou(pred["start"], pred["end"], video_gt[0]["start"], video_gt[0]["end"])
    for j in range(1, len(video_gt)):
        v = tiou(pred["start"], pred["end"], video_gt[j]["start"], video_gt[j]["end"])
        if v > best:  # Q3: the FIRST maximal tIoU in GT order (np.argmax)
            best_j, best = j, v
    same = video_gt[best_j]["cls"] == pred["cls"]
    if best >= t:
        return "Double Detection Err" if same else "Wrong Label Err"
    if best >= MIN_TIOU_THR:
        return "Localization Err" if same else "Confusion Err"
    return "Background Err"


def _false_positive_analysis(gt, preds, n_classes, npos, thresholds, n_avg):
    T = len(thresholds)
    limited = limit_top10g(preds, npos)
    ap, matched, ranked = evaluate(gt, limited, n_classes, thresholds, n_avg, theta=0.0)
    base = average_map(ap)

    gt_by_video: dict[str, list[dict]] = {}
    for g in gt:
        gt_by_video.setdefault(g["video"], []).append(g)
    types: dict[int, list[str]] = {}
    for p in limited:
        types[p["pid"]] = [
            "True Positive" if matched[p["pid"]][ti] is not None else error_type(p, gt_by_video.get(p["video"], []), t)
            for ti, t in enumerate(thresholds)
        ]

    # §5.3 profile: all M predictions sorted by score (earlier id first on ties, Q2), split by class.
    ordered = rank_descending(limited)
    groups: list[list[dict]] = [[] for _ in GROUPS]
    for c in range(n_classes):
        members = [p for p in ordered if p["cls"] == c]
        if npos[c] == 0 or not members:
            continue
        for r, p in enumerate(members):
            g = r // npos[c]
            if g < len(GROUPS):  # always true after the limit (Q8: DETAD's `continue` has no effect)
                groups[g].append(p)

    def fractions(members: list[dict]) -> dict:
        out = {}
        for k in ERROR_TYPES:
            count = 0
            for ti in range(T):
                for p in members:
                    count += types[p["pid"]][ti] == k
            avg = count / T
            out[k] = _null(_div(avg, len(members)))  # Q8: empty group → 0/0 → None
        return out

    profile = {name: fractions(groups[g]) for g, name in enumerate(GROUPS)}

    # §5.4 gains (Q9): drop type-k predictions at each threshold, keep the others' flags, no re-matching.
    gains = {}
    for k in FP_ERROR_TYPES:
        table = []
        for ti in range(T):
            for c in range(n_classes):
                flags = [matched[p["pid"]][ti] is not None for p in ranked[c] if types[p["pid"]][ti] != k]
                table.append(average_precision_n(flags, npos[c], n_avg))
        gains[k] = _null(_mean(table) - base)

    return {
        "average_mAP_N": _null(base),
        "profile": profile,
        "average_mAP_N_gain": gains,
        "all": fractions(limited),
        "M": len(limited),
    }


# --- sensitivity (§6) and false-negative (§7) analyses ---------------------------------------------------------


def _sensitivity(gt, preds, n_classes, matched, names, bins, thresholds, n_avg):
    T = len(thresholds)
    out = {}
    for x in names:
        out[x] = {}
        for b in bins[x][1]:
            members = [g for g in gt if g["bucket"][x] == b]  # Q13: out-of-edges instances are in no bucket
            if not members:
                out[x][b] = None  # Q14: empty bucket
                continue
            values = []
            for c in range(n_classes):
                G = {g["gt_id"] for g in members if g["cls"] == c}
                if not G:
                    continue  # class skipped (NaN in DETAD's vector, ignored by nanmean)
                ordered = rank_descending([p for p in preds if p["cls"] == c])
                # Q7: one matching against ALL GT; a prediction stays iff at EVERY threshold its matched gt-id is
                # None or in G; all FPs of the class stay; N_avg stays global.
                kept = [p for p in ordered if all(m is None or m in G for m in matched[p["pid"]])]
                aps = [average_precision_n([matched[p["pid"]][ti] is not None for p in kept], len(G), n_avg)
                       for ti in range(T)]  # fmt: skip
                values.append(_mean(aps))  # Q6: no prediction → AP 0
            out[x][b] = _null(_nanmean(values))
    return out


def _false_negative(gt, matched, names, bins, thresholds):
    T = len(thresholds)
    S = len(gt)
    hit = [{m[ti] for m in matched.values() if m[ti] is not None} for ti in range(T)]
    out = {}
    for x in names:
        out[x] = {}
        for b in bins[x][1]:
            members = [g for g in gt if g["bucket"][x] == b]
            n_b = len(members)
            if n_b == 0:
                out[x][b] = None  # no GT in the bucket: no value
                continue
            total = 0.0
            for ti in range(T):  # Q11: sum in threshold order, then divide by T
                u = sum(1 for g in members if g["gt_id"] not in hit[ti])
                total += 0.0 if u == 0 else u / ((n_b / S) * S)  # Q11: DETAD's float expression
            out[x][b] = total / T
    return out


# --- the whole diagnosis (§9) --------------------------------------------------------------------------------------


def diagnose(ground_truth: dict, predictions: dict, dataset: str, subset: str) -> dict:
    """DETAD's three analyses → the JSON object of DETAD.md §9 (None where DETAD has no number).

    ground_truth: {"database": {vid: {"subset", "annotations": [{"label", "segment", <characteristics>}]}},
    "taxonomy", "version"}, annotations already carrying the characteristic fields (see `characteristics`);
    predictions: {"results": {vid: [{"label", "segment", "score"}]}, "version", "external_data"};
    dataset "thumos14" (threshold 0.5) or "activitynet" (np.linspace(0.5, 0.95, 10); subset "validation" or
    "testing"). Tie rules and the handling of DETAD's crashes: see the module docstring.
    """
    names = characteristic_names(dataset, subset)
    bins = {x: BINS[dataset][x] for x in names}
    thresholds = list(TIOU_THRESHOLDS[dataset])

    class_index, gt, gt_counts = _load_ground_truth(ground_truth, subset, names, bins)
    preds, n_ignored = _load_predictions(predictions, class_index)
    n_classes = len(class_index)
    npos = [sum(1 for g in gt if g["cls"] == c) for c in range(n_classes)]
    n_avg = len(gt) / n_classes  # §1.4, Q5: true division, global, used everywhere

    out_of_edges = {x: sum(1 for g in gt if g["bucket"][x] is None) for x in names}
    for x, n in out_of_edges.items():
        if n:  # Q13
            warnings.warn(f"{n} ground-truth instance(s) outside the {x} edges: left out of {x}", stacklevel=2)

    # Sensitivity base: all predictions, θ = 0 (§4.6, §6).
    ap_all, matched_all, _ = evaluate(gt, preds, n_classes, thresholds, n_avg, theta=0.0)
    average_mAP_N = average_map(ap_all)
    fp = _false_positive_analysis(gt, preds, n_classes, npos, thresholds, n_avg)
    sensitivity = _sensitivity(gt, preds, n_classes, matched_all, names, bins, thresholds, n_avg)
    ap_fn, matched_fn, _ = evaluate(gt, preds, n_classes, thresholds, n_avg, theta=THETA_FN)
    false_negative = _false_negative(gt, matched_fn, names, bins, thresholds)

    relative = {}
    for x in names:
        ratios = [_div(v * 100, average_mAP_N * 100) for v in sensitivity[x].values() if v is not None]
        ratios = [r for r in ratios if math.isfinite(r)]  # base 0 or NaN: no ratio
        relative[x] = {"min": min(ratios) if ratios else None, "max": max(ratios) if ratios else None}

    return {
        "dataset": dataset,
        "tiou_thresholds": [float(t) for t in thresholds],
        "average_mAP_N": _null(average_mAP_N),
        "false_positive": {
            "average_mAP_N": fp["average_mAP_N"],
            "profile": fp["profile"],
            "average_mAP_N_gain": fp["average_mAP_N_gain"],
        },
        "sensitivity": sensitivity,
        "false_negative": false_negative,
        "extra": {
            "sensitivity_relative_change": relative,
            "false_negative_average_mAP_N": _null(average_map(ap_fn)),
            "false_positive_all_top10G": fp["all"],
            "num_ground_truth": len(gt),
            "num_predictions": len(preds),
            "num_predictions_top10G": fp["M"],
            "average_num_instance_per_class": n_avg,
            "num_classes": n_classes,
            "num_annotations_in_subset": gt_counts["num_annotations"],
            "num_dropped_coverage": gt_counts["num_dropped_coverage"],
            "num_dropped_segment": gt_counts["num_dropped_segment"],
            "num_predictions_ignored": n_ignored,
            "num_out_of_edges": out_of_edges,
            "mAP_N": [_null(_mean(row)) for row in ap_all],
        },
    }
