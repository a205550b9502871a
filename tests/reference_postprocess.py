"""Slow, obviously-correct post-processing straight from method §9 (loops frame by frame, run by run, pair by pair).

Used by tests/test_postprocess.py and `python bench.py postprocess` to check postprocess.py. Step 3 uses scipy's
interp1d because method §9 defines the interpolation that way; T' = 1 (which interp1d refuses) is a constant curve.
"""

from __future__ import annotations

import math

import numpy as np
from reference_evaluate import ref_tiou  # the one tIoU of method §9.5 / §10 (NaN for two empty segments)
from scipy.interpolate import interp1d


def ref_predicted_classes(act_score, cls_th):
    classes = [c for c in range(len(act_score)) if act_score[c] >= cls_th]
    if not classes:
        best = 0
        for c in range(len(act_score)):
            if act_score[c] > act_score[best]:
                best = c
        classes = [best]
    return classes


def ref_frame_scores(column, num_frames):
    """One class column [T'] → list of F frame scores (method §9.3)."""
    t = len(column)
    xs = [j * t / num_frames for j in range(num_frames)]
    if t == 1:
        values = [float(column[0])] * num_frames
    else:
        f = interp1d(np.arange(t), np.asarray(column, dtype=np.float64), kind="linear", fill_value="extrapolate")
        values = [float(v) for v in f(np.array(xs, dtype=np.float64))]
    return [min(1.0, max(0.0, v)) for v in values]


def ref_runs(scores, theta):
    """Maximal runs (p0, pe) of consecutive frames with score ≥ theta, left to right."""
    runs, start = [], None
    for j, s in enumerate(scores):
        if s >= theta and start is None:
            start = j
        if s < theta and start is not None:
            runs.append((start, j - 1))
            start = None
    if start is not None:
        runs.append((start, len(scores) - 1))
    return runs


def ref_proposals(scores, thresholds, act, fps):
    """method §9.4 for one class: [[start_s, end_s, confidence]] threshold by threshold, runs left to right."""
    f = len(scores)
    out = []
    for theta in thresholds:
        for p0, pe in ref_runs(scores, theta):
            n = pe - p0 + 1
            if n < 2:
                continue
            inner = 0.0
            for j in range(p0, pe + 1):
                inner += scores[j]
            inner /= n
            lo = max(0, int(p0 - 0.25 * n))
            hi = min(f - 1, int(pe + 0.25 * n))
            outer_frames = list(range(lo, p0)) + list(range(pe + 1, hi + 1))
            outer = 0.0
            for j in outer_frames:
                outer += scores[j]
            outer = outer / len(outer_frames) if outer_frames else 0.0
            out.append([(p0 + 1) / fps, (pe + 2) / fps, inner - outer + 0.2 * act])
    return out


def ref_soft_nms(proposals, alpha, iou_th, gaps=None):
    """method §9.5. If `gaps` is a list, each pick appends the relative gap (best - runner-up) / |best| over distinct
    current scores, so a test can tell whether an input has near-ties whose order last-bit differences could flip
    (decays multiply, so a score's rounding error is relative to it)."""
    remaining = [list(p) for p in proposals]
    out = []
    while remaining:
        best = 0
        for i in range(1, len(remaining)):
            if remaining[i][2] > remaining[best][2]:
                best = i
        if gaps is not None:
            top = remaining[best][2]
            lower = [p[2] for p in remaining if p[2] != top]
            if lower:
                gaps.append((top - max(lower)) / max(abs(top), abs(max(lower))))
        pick = remaining.pop(best)
        out.append(pick)
        for p in remaining:
            iou = ref_tiou(pick, p)
            if iou > iou_th:
                p[2] = p[2] * math.exp(-(iou**2) / alpha)
    return out


def ref_detect(act_score, seg_score, num_snippets, *, cls_th, act_th, alpha, iou_th, fps, rate, gaps=None):
    """method §9 steps 2–5 → [(class, start_s, end_s, score)]."""
    seg_score = np.asarray(seg_score, dtype=np.float64)
    detections = []
    for c in ref_predicted_classes([float(a) for a in act_score], cls_th):
        scores = ref_frame_scores(seg_score[:, c], rate * num_snippets)
        proposals = ref_proposals(scores, [float(t) for t in act_th], float(act_score[c]), fps)
        for s, e, score in ref_soft_nms(proposals, alpha, iou_th, gaps):
            detections.append((c, s, e, score))
    return detections


def ref_filter_ambiguous(predictions, ambiguous):
    out = {}
    for video, preds in predictions.items():
        out[video] = []
        for p in preds:
            hit = False
            for a_s, a_e in ambiguous.get(video, []):
                if max(a_s, p["segment"][0]) < min(a_e, p["segment"][1]):
                    hit = True
            if not hit:
                out[video].append(p)
    return out


def ref_display_detections(detections, min_score, merge_tiou):
    """Detections above the floor, best first (the first listed on ties); each is shown unless an already shown one
    of its class overlaps it at tIoU ≥ merge_tiou, which then counts it as merged → (shown, merged)."""
    above = [tuple(d) for d in detections if d[3] >= min_score]
    order = sorted(range(len(above)), key=lambda i: -above[i][3])  # Python's sort is stable
    shown, merged = [], []
    for i in order:
        c, s, e, _ = above[i]
        for k, (c2, s2, e2, _) in enumerate(shown):
            if c2 == c and ref_tiou((s, e), (s2, e2)) >= merge_tiou:  # NaN (two empty segments) is never ≥
                merged[k] += 1
                break
        else:
            shown.append(above[i])
            merged.append(0)
    return shown, merged
