"""Post-processing of one test video (method §9): predicted classes → frame scores → OIC proposals → soft-NMS.

`detect(act_score, seg_score, num_snippets)` turns the network's video scores [C] and snippet CAS [T', C] into
`(class_index, start_s, end_s, score)` detections; `filter_ambiguous` applies the THUMOS14 Ambiguous filter
(method §9.7) to evaluator-style predictions. Everything is float64 and vectorised over frames, thresholds and runs;
soft-NMS, sequential by nature, is a small compiled (numba) loop; the only Python loop is over predicted classes.
`display_detections` is not the method: it picks what `main.py --video` prints and the pictures draw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numba
import numpy as np

from dataset import read_ambiguous  # noqa: F401  (re-exported: the official `video start end` reader)

ACT_THRESHOLDS = np.arange(0.1, 1.0, 0.05)  # method §8 default act_th: 18 values, exactly as numpy.arange makes them
_SUM_SCALE = 2.0**40  # fixed-point unit of the exact prefix sums (see oic_proposals)


def predicted_classes(act_score: np.ndarray, cls_th: float = 0.1) -> np.ndarray:
    """Step 2: indices (ascending) of classes with act_score ≥ cls_th; if none, the argmax class alone. [C] → [K]."""
    act_score = np.asarray(act_score, dtype=np.float64)
    classes = np.flatnonzero(act_score >= cls_th)
    return classes if classes.size else np.array([int(np.argmax(act_score))])


def frame_scores(seg_score: np.ndarray, num_frames: int) -> np.ndarray:
    """Step 3: snippet scores [T', K] → frame scores [F, K], linearly interpolated/extrapolated, clipped to [0, 1].

    Frame j sits at x_j = j·T'/F on the snippet axis. The arithmetic is scipy's interp1d(kind='linear',
    fill_value='extrapolate') operation for operation (searchsorted, clip the bracket to [1, T'-1], slope·dx + y_lo),
    so frame scores are bit-identical to it and threshold comparisons (score ≥ θ) agree exactly. T' = 1, where
    interp1d refuses (it needs two points), gives a constant curve: one point fixes no slope.
    """
    seg = np.asarray(seg_score, dtype=np.float64)
    t = seg.shape[0]
    if t == 1:
        return np.clip(np.repeat(seg, num_frames, axis=0), 0.0, 1.0)
    knots = np.arange(t, dtype=np.float64)
    x = np.arange(num_frames, dtype=np.float64) * t / num_frames
    hi = np.clip(np.searchsorted(knots, x), 1, t - 1)
    lo = hi - 1
    slope = (seg[hi] - seg[lo]) / (knots[hi] - knots[lo])[:, None]
    return np.clip(slope * (x - knots[lo])[:, None] + seg[lo], 0.0, 1.0)


def oic_proposals(
    scores: np.ndarray, thresholds: np.ndarray, act: float, *, fps: float = 25, min_len: int = 2
) -> np.ndarray:
    """Step 4 for one class: frame scores [F] → proposals [P, 3] = (start_s, end_s, confidence).

    Order: threshold by threshold (as given), runs left to right — the order soft-NMS breaks ties in.
    Runs at all thresholds at once: a [n_th, F] mask, run edges from its diff, means from one prefix sum.
    """
    f = scores.shape[0]
    if f >= 2**22:  # keeps the fixed-point prefix sum below 2^62
        raise ValueError(f"{f} frames is too many for one video (limit 2^22)")
    thresholds = np.asarray(thresholds, dtype=np.float64)
    padded = np.zeros((len(thresholds), f + 2), dtype=bool)
    padded[:, 1:-1] = scores[None, :] >= thresholds[:, None]  # [n_th, F] frames in a run, False on both sides
    # changes at a run start and one past its end; row-major order = threshold-major, then left to right, and
    # every row alternates start, end, start, end, ...
    edges = np.nonzero(padded[:, 1:] != padded[:, :-1])[1]
    p0, pe = edges[0::2], edges[1::2] - 1
    n = pe - p0 + 1
    keep = n >= min_len
    p0, pe, n = p0[keep], pe[keep], n[keep]
    if p0.size == 0:
        return np.zeros((0, 3))
    lo = np.maximum(0, np.trunc(p0 - 0.25 * n).astype(np.int64))
    hi = np.minimum(f - 1, np.trunc(pe + 0.25 * n).astype(np.int64))
    # Window sums from an exact fixed-point prefix sum. Why: a float prefix-sum difference depends on where the
    # window sits, so two runs with identical scores (a real tie, which soft-NMS breaks "first one on ties", as the
    # frame-by-frame reference does) could differ in the last bit and swap. Integer sums of the scores rounded to
    # 2^-40 are exact, a function of the window's contents only; the rounding moves a mean by < 1e-12.
    prefix = np.concatenate([[0], np.cumsum(np.rint(scores * _SUM_SCALE).astype(np.int64))])
    inner = (prefix[pe + 1] - prefix[p0]) / _SUM_SCALE / n
    n_out = (p0 - lo) + (hi - pe)
    out_sum = ((prefix[p0] - prefix[lo]) + (prefix[hi + 1] - prefix[pe + 1])) / _SUM_SCALE
    outer = np.divide(out_sum, n_out, out=np.zeros_like(out_sum), where=n_out > 0)
    conf = inner - outer + 0.2 * act
    return np.stack([(p0 + 1) / fps, (pe + 2) / fps, conf], axis=1)


@numba.njit(cache=True, nogil=True, error_model="numpy")  # numpy model: 0/0 is nan, not an exception
def _soft_nms_kernel(start: np.ndarray, end: np.ndarray, score: np.ndarray, alpha: float, iou_th: float) -> np.ndarray:
    """Compiled method §9.5 loop: [K] arrays (score is modified) → [K, 3] in emission order.

    One pass per pick over the remaining proposals (kept in input order, so "first on ties" is the lowest index)
    decays them, drops the emitted one and finds the next pick: K²/2 steps in all.
    """
    n = score.shape[0]
    out = np.empty((n, 3))
    if n == 0:
        return out
    remaining = np.arange(n)
    m = n
    i = 0
    for j in range(1, n):
        if score[j] > score[i]:
            i = j
    for k in range(n):
        out[k, 0], out[k, 1], out[k, 2] = start[i], end[i], score[i]
        w, best = 0, -1
        for r in range(m):
            j = remaining[r]
            if j == i:
                continue
            inter = max(0.0, min(end[i], end[j]) - max(start[i], start[j]))
            iou = inter / ((end[i] - start[i]) + (end[j] - start[j]) - inter)
            if iou > iou_th:  # nan (two empty segments) never is
                score[j] *= np.exp(-(iou * iou) / alpha)
            if best < 0 or score[j] > score[best]:  # strict: the first one on ties
                best = j
            remaining[w] = j
            w += 1
        m, i = w, best
    return out


def soft_nms(proposals: np.ndarray, alpha: float = 0.5, iou_th: float = 0.1) -> np.ndarray:
    """Step 5: Gaussian soft-NMS. proposals [K, 3] = (start, end, score) → [K, 3] in emission order.

    Repeatedly emit the highest current score (first one on ties), then multiply the score of every remaining
    proposal with tIoU > iou_th against it by exp(-tIoU²/alpha). Emitted scores are the decayed ones.
    Compiled with numba: the picks are sequential, and a numpy call per pick costs more than the whole pick.
    """
    props = np.asarray(proposals, dtype=np.float64).reshape(-1, 3)
    if not np.isfinite(props[:, 2]).all():
        raise ValueError("soft_nms: proposal scores must be finite")
    return _soft_nms_kernel(props[:, 0].copy(), props[:, 1].copy(), props[:, 2].copy(), float(alpha), float(iou_th))


def detect(
    act_score: np.ndarray,
    seg_score: np.ndarray,
    num_snippets: int,
    *,
    cls_th: float = 0.1,
    act_th: Sequence[float] | np.ndarray = ACT_THRESHOLDS,
    alpha: float = 0.5,
    iou_th: float = 0.1,
    fps: float = 25,
    rate: int = 16,
) -> list[tuple[int, float, float, float]]:
    """method §9 steps 2–5 for one video: act_score [C], seg_score [T', C], L original snippets →
    [(class_index, start_s, end_s, score)], classes ascending, each class in soft-NMS emission order."""
    act_score = np.asarray(act_score, dtype=np.float64)
    seg_score = np.asarray(seg_score, dtype=np.float64)
    if seg_score.ndim != 2 or seg_score.shape[0] == 0 or seg_score.shape[1] != act_score.shape[0]:
        raise ValueError(f"seg_score {seg_score.shape} does not match act_score {act_score.shape} as [T', C] / [C]")
    classes = predicted_classes(act_score, cls_th)
    frames = frame_scores(seg_score[:, classes], rate * int(num_snippets))  # [F, K]
    thresholds = np.asarray(act_th, dtype=np.float64)
    detections = []
    for k, c in enumerate(classes.tolist()):
        kept = soft_nms(oic_proposals(frames[:, k], thresholds, act_score[c], fps=fps), alpha, iou_th)
        detections += [(c, s, e, score) for s, e, score in kept.tolist()]
    return detections


def filter_ambiguous(
    predictions: Mapping[str, list[dict]], ambiguous: Mapping[str, Sequence[tuple[float, float]]]
) -> dict[str, list[dict]]:
    """method §9.7: drop each prediction that strictly overlaps ANY ambiguous segment of its video.

    predictions {video: [{"label", "score", "segment": [s, e]}]}, ambiguous {video: [(s, e)]}. Strict:
    max(a_s, p_s) < min(a_e, p_e), so a prediction that only touches an ambiguous segment is kept.
    """
    filtered = {}
    for video, preds in predictions.items():
        amb = np.asarray(ambiguous.get(video, ()), dtype=np.float64).reshape(-1, 2)
        if not preds or not len(amb):
            filtered[video] = list(preds)
            continue
        seg = np.asarray([p["segment"] for p in preds], dtype=np.float64).reshape(-1, 2)
        overlap = np.maximum(amb[None, :, 0], seg[:, None, 0]) < np.minimum(amb[None, :, 1], seg[:, None, 1])
        filtered[video] = [p for p, drop in zip(preds, overlap.any(axis=1), strict=True) if not drop]
    return filtered


# --- for people, not for mAP ----------------------------------------------------------------------------------------

# What `main.py --video` prints and the pictures draw (the JSON/CSV and the mAP keep every detection): soft-NMS
# (step 5) decays overlapping proposals instead of removing them, so one segment comes back several times with
# ever smaller scores (0.28, 0.04, 0.005, ...). A person wants each found action once.
DISPLAY_MIN_SCORE = 0.2  # confidence floor of the shown detections
DISPLAY_MERGE_TIOU = 0.5  # same-class detections overlapping at least this much are shown once, as the best of them


def display_detections(
    detections: Sequence[tuple[int, float, float, float]],
    min_score: float = DISPLAY_MIN_SCORE,
    merge_tiou: float = DISPLAY_MERGE_TIOU,
) -> tuple[list[tuple[int, float, float, float]], list[int]]:
    """The detections a person reads: score ≥ min_score, and of same-class detections that overlap at tIoU ≥
    merge_tiou only the best (greedy, best score first, the first listed on ties) → (shown, merged), best first;
    merged[i] counts the other detections above the floor that shown[i] stands for.

    detections [(class_index, start_s, end_s, score)] as `detect` returns them. The loop runs once per shown
    detection (a handful per video), each pass vectorised over the rest.
    """
    d = np.asarray(detections, dtype=np.float64).reshape(-1, 4)
    d = d[d[:, 3] >= min_score]
    d = d[np.argsort(-d[:, 3], kind="stable")]
    cls, start, end = d[:, 0], d[:, 1], d[:, 2]
    alive = np.ones(len(d), dtype=bool)
    shown, merged = [], []
    for i in range(len(d)):
        if not alive[i]:
            continue
        alive[i] = False
        inter = np.clip(np.minimum(end, end[i]) - np.maximum(start, start[i]), 0.0, None)
        union = (end - start) + (end[i] - start[i]) - inter
        tiou = np.divide(inter, union, out=np.full_like(inter, np.nan), where=union > 0)  # NaN (two empty) never merges
        same = alive & (cls == cls[i]) & (tiou >= merge_tiou)
        alive &= ~same
        shown.append((int(cls[i]), float(start[i]), float(end[i]), float(d[i, 3])))
        merged.append(int(same.sum()))
    return shown, merged
