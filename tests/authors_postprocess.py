"""The authors' post-processing written the way their code does it (method §9): the baseline of bench.py's tail ratio.

Not a reference for correctness (tests/reference_postprocess.py is) but for speed: what a user would otherwise run.
It follows the structure of the published WTAL post-processing the method describes:
- §9.3 one scipy `interp1d` over the predicted classes' columns (T' = 1, which interp1d refuses, is the constant
  curve the project chose, so the two can be compared on every input);
- §9.4 per class and threshold, `np.where(score ≥ θ)` then `np.split` at the gaps into runs (`grouping`), and per
  run a Python step: `np.mean` of the run and of its outer frames, a list `[start, end, confidence]`;
- §9.5 soft-NMS in per-pick numpy ops on the class's [K, 3] array: `np.argmax`, the tIoU of the pick with the rest,
  a Gaussian decay where tIoU > iou_th, `np.delete` of the pick (order-preserving, so "first on ties" holds;
  the swap-to-front variant some repositories use breaks that tie order);
- §9.6–9.7 per-video lists of `{"label", "score", "segment"}` dicts, the THUMOS14 Ambiguous filter a Python check
  per prediction (in tests/authors_evaluate.py, where the ActivityNet-style import reads them).
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import interp1d


def upgrade_resolution(arr: np.ndarray, num_frames: int) -> np.ndarray:
    """[T', K] → [F, K]: interp1d at x_j = j·T'/F, extrapolating; clipped to [0, 1] (method §9.3)."""
    t = arr.shape[0]
    x = np.arange(num_frames) * t / num_frames
    if t == 1:
        out = np.repeat(arr, num_frames, axis=0)
    else:
        out = interp1d(np.arange(t), arr, kind="linear", axis=0, fill_value="extrapolate")(x)
    return np.clip(out, 0.0, 1.0)


def grouping(arr: np.ndarray) -> list[np.ndarray]:
    """Frame indices → runs of consecutive indices."""
    return np.split(arr, np.where(np.diff(arr) != 1)[0] + 1)


def get_proposal_oic(frames: np.ndarray, theta: float, act: float, fps: float) -> list[list[float]]:
    """One class column [F] at one threshold → [[start_s, end_s, confidence]] (method §9.4), runs left to right."""
    f = frames.shape[0]
    pos = np.where(frames >= theta)[0]
    out = []
    if not pos.size:
        return out
    for run in grouping(pos):
        n = len(run)
        if n < 2:
            continue
        inner = np.mean(frames[run])
        outer_s = max(0, int(run[0] - 0.25 * n))
        outer_e = min(f - 1, int(run[-1] + 0.25 * n))
        outer_list = list(range(outer_s, int(run[0]))) + list(range(int(run[-1]) + 1, outer_e + 1))
        outer = np.mean(frames[outer_list]) if outer_list else 0.0
        out.append([(run[0] + 1) / fps, (run[-1] + 2) / fps, inner - outer + 0.2 * act])
    return out


def soft_nms(dets: np.ndarray, alpha: float, iou_th: float) -> list[list[float]]:
    """[K, 3] (start, end, score) → emitted [[start, end, score]] (method §9.5), one numpy round per pick."""
    dets = np.array(dets, dtype=np.float64).reshape(-1, 3)
    kept = []
    with np.errstate(invalid="ignore"):  # 0/0 tIoU of two empty segments: NaN, never > iou_th
        while dets.shape[0] > 0:
            i = int(np.argmax(dets[:, 2]))
            pick = dets[i]
            kept.append(pick.tolist())
            dets = np.delete(dets, i, axis=0)
            inter = np.maximum(np.minimum(pick[1], dets[:, 1]) - np.maximum(pick[0], dets[:, 0]), 0.0)
            iou = inter / ((pick[1] - pick[0]) + (dets[:, 1] - dets[:, 0]) - inter)
            dets[:, 2] *= np.where(iou > iou_th, np.exp(-(iou * iou) / alpha), 1.0)
    return kept


def authors_detect(act_score, seg_score, num_snippets, *, cls_th, act_th, alpha, iou_th, fps, rate):
    """method §9 steps 2–5 for one video → [(class_index, start_s, end_s, score)], classes ascending."""
    act_score = np.asarray(act_score, dtype=np.float64)
    seg_score = np.asarray(seg_score, dtype=np.float64)
    pred = np.where(act_score >= cls_th)[0]
    if len(pred) == 0:
        pred = np.array([np.argmax(act_score)])
    frames = upgrade_resolution(seg_score[:, pred], rate * int(num_snippets))
    proposals: dict[int, list[list[float]]] = {int(c): [] for c in pred}
    for theta in act_th:
        for k, c in enumerate(pred):
            proposals[int(c)] += get_proposal_oic(frames[:, k], float(theta), float(act_score[c]), fps)
    detections = []
    for c in sorted(proposals):
        if proposals[c]:
            detections += [(c, s, e, score) for s, e, score in soft_nms(np.array(proposals[c]), alpha, iou_th)]
    return detections
