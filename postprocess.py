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


def _fixed_point_prefix(frames: np.ndarray) -> np.ndarray:
    """Frame scores [F, K] → exact prefix sums [F + 1, K] int64 of the scores rounded to 2^-40.

    Why integers: a float prefix-sum difference depends on where the window sits, so two runs with identical scores
    (a real tie, which soft-NMS breaks "first one on ties", as the frame-by-frame reference does) could differ in the
    last bit and swap. Integer window sums are exact, a function of the window's contents only; the rounding moves a
    mean by < 1e-12."""
    if frames.shape[0] >= 2**22:  # keeps the fixed-point prefix sum below 2^62
        raise ValueError(f"{frames.shape[0]} frames is too many for one video (limit 2^22)")
    out = np.zeros((frames.shape[0] + 1, frames.shape[1]), dtype=np.int64)
    np.cumsum(np.rint(frames * _SUM_SCALE).astype(np.int64), axis=0, out=out[1:])
    return out


@numba.njit(cache=True, nogil=True)
def _oic_kernel(
    frames: np.ndarray, prefix: np.ndarray, thresholds: np.ndarray, act: np.ndarray, fps: float, min_len: int
) -> tuple[np.ndarray, np.ndarray]:
    """Step 4 for the K columns of frames [F, K] (prefix [F + 1, K] from _fixed_point_prefix, act [K]) →
    (proposals [P, 3] = (start_s, end_s, confidence), ptr [K + 1]: column k's are rows ptr[k]:ptr[k+1]).

    Column by column, threshold by threshold (as given), runs left to right: the order soft-NMS breaks ties in.
    One walk over the frames per column: with the thresholds sorted, the ones a frame reaches are a prefix of
    them, and only the thresholds crossed between two frames open or close a run (a few per snippet, as frame
    scores are interpolated), instead of a pass per threshold. The arithmetic is the reference's, exact sums."""
    f, k_cols = frames.shape
    n_th = thresholds.shape[0]
    order = np.argsort(thresholds, kind="mergesort")
    th = thresholds[order]
    cap = 1024
    runs = np.empty((cap, 3), dtype=np.int64)  # (column·n_th + threshold as given, p0, pe)
    n_runs = 0
    opened = np.empty(n_th, dtype=np.int64)
    for k in range(k_cols):
        reached = 0  # frame j reaches the thresholds th[:reached]
        for j in range(f + 1):
            m = 0
            if j < f:
                s = frames[j, k]
                m = reached
                while m < n_th and s >= th[m]:
                    m += 1
                while m > 0 and not s >= th[m - 1]:  # `not >=`: a NaN score reaches no threshold
                    m -= 1
            for u in range(reached, m):
                opened[u] = j
            for u in range(m, reached):
                if j - opened[u] >= min_len:
                    if n_runs == cap:
                        cap *= 2
                        grown = np.empty((cap, 3), dtype=np.int64)
                        grown[:n_runs] = runs[:n_runs]
                        runs = grown
                    runs[n_runs, 0], runs[n_runs, 1], runs[n_runs, 2] = k * n_th + order[u], opened[u], j - 1
                    n_runs += 1
            reached = m
    # stable counting sort by (column, threshold as given): each threshold's runs closed left to right stay so
    count = np.zeros(k_cols * n_th + 1, dtype=np.int64)
    for r in range(n_runs):
        count[runs[r, 0] + 1] += 1
    start = np.cumsum(count)
    ptr = start[::n_th].copy()
    out = np.empty((n_runs, 3))
    for r in range(n_runs):
        key, p0, pe = runs[r, 0], runs[r, 1], runs[r, 2]
        k = key // n_th
        row = start[key]
        start[key] += 1
        n = pe - p0 + 1
        lo = max(0, int(np.trunc(p0 - 0.25 * n)))
        hi = min(f - 1, int(np.trunc(pe + 0.25 * n)))
        inner = (prefix[pe + 1, k] - prefix[p0, k]) / _SUM_SCALE / n
        n_out = (p0 - lo) + (hi - pe)
        out_sum = ((prefix[p0, k] - prefix[lo, k]) + (prefix[hi + 1, k] - prefix[pe + 1, k])) / _SUM_SCALE
        outer = out_sum / n_out if n_out > 0 else 0.0
        out[row, 0], out[row, 1], out[row, 2] = (p0 + 1) / fps, (pe + 2) / fps, inner - outer + 0.2 * act[k]
    return out, ptr


def oic_proposals(
    scores: np.ndarray, thresholds: np.ndarray, act: float, *, fps: float = 25, min_len: int = 2
) -> np.ndarray:
    """Step 4 for one class: frame scores [F] → proposals [P, 3] = (start_s, end_s, confidence).

    Order: threshold by threshold (as given), runs left to right — the order soft-NMS breaks ties in."""
    frames = np.ascontiguousarray(scores, dtype=np.float64).reshape(-1, 1)
    thresholds = np.asarray(thresholds, dtype=np.float64).reshape(-1)
    act_k = np.array([act], dtype=np.float64)
    return _oic_kernel(frames, _fixed_point_prefix(frames), thresholds, act_k, float(fps), int(min_len))[0]


@numba.njit(cache=True, nogil=True, inline="always")
def _better(a: int, b: int, score: np.ndarray) -> int:
    """The higher-scored of proposals a and b, the lower index on ties; -1 is 'none'."""
    if a < 0:
        return b
    if b < 0:
        return a
    if score[b] > score[a] or (score[b] == score[a] and b < a):
        return b
    return a


@numba.njit(cache=True, nogil=True, inline="always")
def _refresh(tree: np.ndarray, node: int, changed: int, score: np.ndarray) -> None:
    """Recompute the tournament tree's winners from `node` up after proposal `changed` was decayed or removed;
    stops where a winner and its score are unchanged (then nothing above changes)."""
    while node >= 1:
        w = _better(tree[2 * node], tree[2 * node + 1], score)
        if w == tree[node] and w != changed:
            return
        tree[node] = w
        node //= 2


@numba.njit(cache=True, nogil=True, error_model="numpy")  # numpy model: 0/0 is nan, not an exception
def _soft_nms_kernel(props: np.ndarray, alpha: float, iou_th: float) -> np.ndarray:
    """Compiled method §9.5 on props [K, 3] (start, end, score) → [K, 3] in emission order.

    Only proposals that intersect the pick (positive overlap) can change: any other pair has tIoU 0, whose decay
    exp(-0/alpha) is exactly 1, or NaN (two empty segments), which never decays. So a sweep over the start-sorted
    proposals lists the intersecting pairs once (2 % of the K² pairs on THUMOS14-like inputs), and a tournament tree
    (max score, the lowest index on ties) finds each next pick in log K steps: the emitted sequence and every decay
    are those of the plain K²/2 loop (same tIoU formula, same pick), at a fraction of its cost.
    """
    n = props.shape[0]
    out = np.empty((n, 3))
    if n == 0:
        return out
    start, end, score = props[:, 0].copy(), props[:, 1].copy(), props[:, 2].copy()
    # intersecting pairs (CSR, both directions): j after i in start order intersects i iff start_j < end_i (and j
    # is not empty); scanning forward while start_j < end_i visits just those and the empty ones
    by_start = np.argsort(start, kind="mergesort")
    deg = np.zeros(n + 1, dtype=np.int64)
    for a in range(n):
        i = by_start[a]
        for b in range(a + 1, n):
            j = by_start[b]
            if start[j] >= end[i]:
                break
            if min(end[i], end[j]) - max(start[i], start[j]) > 0.0:
                deg[i + 1] += 1
                deg[j + 1] += 1
    ptr = np.cumsum(deg)
    fill = ptr[:-1].copy()
    nbr = np.empty(ptr[n], dtype=np.int64)
    for a in range(n):
        i = by_start[a]
        for b in range(a + 1, n):
            j = by_start[b]
            if start[j] >= end[i]:
                break
            if min(end[i], end[j]) - max(start[i], start[j]) > 0.0:
                nbr[fill[i]] = j
                fill[i] += 1
                nbr[fill[j]] = i
                fill[j] += 1
    size = 1
    while size < n:
        size *= 2
    tree = np.full(2 * size, -1, dtype=np.int64)  # tree[1] = the best alive proposal; leaf of j at size + j
    tree[size : size + n] = np.arange(n)
    for node in range(size - 1, 0, -1):
        tree[node] = _better(tree[2 * node], tree[2 * node + 1], score)
    alive = np.ones(n, dtype=np.bool_)
    for k in range(n):
        i = tree[1]
        out[k, 0], out[k, 1], out[k, 2] = start[i], end[i], score[i]
        alive[i] = False
        tree[size + i] = -1
        _refresh(tree, (size + i) // 2, i, score)
        for q in range(ptr[i], ptr[i + 1]):
            j = nbr[q]
            if not alive[j]:
                continue
            inter = max(0.0, min(end[i], end[j]) - max(start[i], start[j]))
            iou = inter / ((end[i] - start[i]) + (end[j] - start[j]) - inter)
            if iou > iou_th:
                score[j] *= np.exp(-(iou * iou) / alpha)
                _refresh(tree, (size + j) // 2, j, score)
    return out


def soft_nms(proposals: np.ndarray, alpha: float = 0.5, iou_th: float = 0.1) -> np.ndarray:
    """Step 5: Gaussian soft-NMS. proposals [K, 3] = (start, end, score) → [K, 3] in emission order.

    Repeatedly emit the highest current score (first one on ties), then multiply the score of every remaining
    proposal with tIoU > iou_th against it by exp(-tIoU²/alpha). Emitted scores are the decayed ones.
    Compiled with numba: the picks are sequential, and a numpy call per pick costs more than the whole pick.
    """
    props = np.array(proposals, dtype=np.float64).reshape(-1, 3)
    _check_soft_nms(props, alpha)
    return _soft_nms_kernel(props, float(alpha), float(iou_th))


def _check_soft_nms(props: np.ndarray, alpha: float) -> None:
    """ValueError unless soft-NMS can run on props [K, 3]: finite scores, alpha > 0 (the kernel relies on
    exp(-0/alpha) = 1)."""
    if not np.isfinite(props[:, 2]).all():
        raise ValueError("soft_nms: proposal scores must be finite")
    if not alpha > 0:
        raise ValueError(f"soft_nms: alpha must be > 0, got {alpha}")


@numba.njit(cache=True, nogil=True)
def _soft_nms_blocks(props: np.ndarray, ptr: np.ndarray, alpha: float, iou_th: float) -> np.ndarray:
    """_soft_nms_kernel on each block props[ptr[k]:ptr[k+1]] → [P, 3], the blocks in order."""
    out = np.empty_like(props)
    for k in range(ptr.shape[0] - 1):
        out[ptr[k] : ptr[k + 1]] = _soft_nms_kernel(props[ptr[k] : ptr[k + 1]], alpha, iou_th)
    return out


def detect_arrays(
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
) -> tuple[np.ndarray, np.ndarray]:
    """method §9 steps 2–5 for one video: act_score [C], seg_score [T', C], L original snippets →
    (class_index [D] int64, detections [D, 3] = (start_s, end_s, score)), classes ascending, each class in soft-NMS
    emission order. All predicted classes go through one compiled proposal scan and one soft-NMS call."""
    act_score = np.asarray(act_score, dtype=np.float64)
    seg_score = np.asarray(seg_score, dtype=np.float64)
    if seg_score.ndim != 2 or seg_score.shape[0] == 0 or seg_score.shape[1] != act_score.shape[0]:
        raise ValueError(f"seg_score {seg_score.shape} does not match act_score {act_score.shape} as [T', C] / [C]")
    classes = predicted_classes(act_score, cls_th)
    frames = np.ascontiguousarray(frame_scores(seg_score[:, classes], rate * int(num_snippets)))  # [F, K]
    thresholds = np.asarray(act_th, dtype=np.float64).reshape(-1)
    props, ptr = _oic_kernel(frames, _fixed_point_prefix(frames), thresholds, act_score[classes], float(fps), 2)
    _check_soft_nms(props, alpha)
    kept = _soft_nms_blocks(props, ptr, float(alpha), float(iou_th))
    return np.repeat(classes.astype(np.int64), np.diff(ptr)), kept


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
    """`detect_arrays` as [(class_index, start_s, end_s, score)] (for a person's outputs; the test pass keeps the
    arrays)."""
    cls, kept = detect_arrays(
        act_score, seg_score, num_snippets, cls_th=cls_th, act_th=act_th, alpha=alpha, iou_th=iou_th, fps=fps, rate=rate
    )
    return [(c, s, e, p) for c, (s, e, p) in zip(cls.tolist(), kept.tolist(), strict=True)]


def ambiguous_overlap(
    video: np.ndarray,
    segment: np.ndarray,
    videos: Sequence[str],
    ambiguous: Mapping[str, Sequence[tuple[float, float]]],
) -> np.ndarray:
    """method §9.7 on arrays: [D] bool, True where detection d (of video `videos[video[d]]`, segment [D, 2])
    strictly overlaps ANY ambiguous segment of its video: max(a_s, p_s) < min(a_e, p_e). Vectorised over the
    (detection, ambiguous segment of its video) pairs."""
    counts = np.array([len(ambiguous.get(v, ())) for v in videos], dtype=np.int64)
    amb = np.array([s for v in videos for s in ambiguous.get(v, ())], dtype=np.float64).reshape(-1, 2)
    first = np.concatenate([[0], np.cumsum(counts)])[:-1]
    n_pairs = counts[video]
    det = np.repeat(np.arange(len(video)), n_pairs)
    offset = np.arange(det.size) - np.repeat(np.cumsum(n_pairs) - n_pairs, n_pairs)
    a = amb[first[video[det]] + offset]
    hit = np.maximum(a[:, 0], segment[det, 0]) < np.minimum(a[:, 1], segment[det, 1])
    return np.bincount(det[hit], minlength=len(video)) > 0


def filter_ambiguous(
    predictions: Mapping[str, list[dict]], ambiguous: Mapping[str, Sequence[tuple[float, float]]]
) -> dict[str, list[dict]]:
    """method §9.7: drop each prediction that strictly overlaps ANY ambiguous segment of its video.

    predictions {video: [{"label", "score", "segment": [s, e]}]}, ambiguous {video: [(s, e)]}. Strict:
    max(a_s, p_s) < min(a_e, p_e), so a prediction that only touches an ambiguous segment is kept.
    """
    videos = list(predictions)
    video = np.array([i for i, v in enumerate(videos) for _ in predictions[v]], dtype=np.int64)
    seg = np.array([p["segment"] for v in videos for p in predictions[v]], dtype=np.float64).reshape(-1, 2)
    drop = iter(ambiguous_overlap(video, seg, videos, ambiguous).tolist())
    filtered = {v: [p for p in preds if not next(drop)] for v, preds in predictions.items()}
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
