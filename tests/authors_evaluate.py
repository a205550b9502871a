"""The ActivityNet / mmaction2 detection evaluator the authors used, as a pandas-free numpy transcription: the
baseline of bench.py's tail ratio (what a user would otherwise run), not a reference for correctness
(tests/reference_evaluate.py is).

Structure of ActivityNet's `ANETdetection` (Evaluation/eval_detection.py), which mmaction2's
`average_precision_at_temporal_iou` copies:
- `import_ground_truth` / `import_prediction`: a Python loop over videos and their entries into flat columns (the
  pandas DataFrame's); the THUMOS14 Ambiguous filter (method §9.7) as a Python check per imported prediction, the
  way THUMOS-adapted copies of the importer do it;
- `wrapper_compute_average_precision`: per class, the rows of that label;
- `compute_average_precision_detection`: sort by score, then per prediction `segment_iou` against its video's
  ground truth (the `groupby('video-id')` lookup), a tIoU sort, and a Python walk per threshold;
- `interpolated_prec_rec`: a Python loop making precision monotone.
Two changes make it method §10's deterministic metric, so that its mAP can be compared with the project's:
stable sorts (score ties in input order, equal tIoUs in annotation order) instead of `argsort()[::-1]`, and a NaN
tIoU (two empty segments) never matches. Both cost the same as the originals.
"""

from __future__ import annotations

import numpy as np


def segment_iou(target: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    tt1 = np.maximum(target[0], candidates[:, 0])
    tt2 = np.minimum(target[1], candidates[:, 1])
    inter = (tt2 - tt1).clip(0)
    union = (candidates[:, 1] - candidates[:, 0]) + (target[1] - target[0]) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return inter.astype(float) / union


def interpolated_prec_rec(prec: np.ndarray, rec: np.ndarray) -> float:
    mprec = np.hstack([[0], prec, [0]])
    mrec = np.hstack([[0], rec, [1]])
    for i in range(len(mprec) - 1)[::-1]:
        mprec[i] = max(mprec[i], mprec[i + 1])
    idx = np.where(mrec[1::] != mrec[0:-1])[0] + 1
    return float(np.sum((mrec[idx] - mrec[idx - 1]) * mprec[idx]))


def compute_average_precision_detection(gt_video, gt_seg, pred_video, pred_seg, pred_score, tiou_thresholds):
    """One class: ground truth (video ids [G], segments [G, 2]), predictions (ids [P], [P, 2], scores [P]) → AP."""
    ap = np.zeros(len(tiou_thresholds))
    if len(pred_score) == 0:
        return ap
    npos = float(len(gt_video))
    lock_gt = np.ones((len(tiou_thresholds), len(gt_video))) * -1
    sort_idx = np.argsort(-pred_score, kind="stable")
    pred_video, pred_seg = pred_video[sort_idx], pred_seg[sort_idx]
    tp = np.zeros((len(tiou_thresholds), len(sort_idx)))
    fp = np.zeros((len(tiou_thresholds), len(sort_idx)))
    gt_by_video: dict[str, np.ndarray] = {}  # the groupby('video-id')
    for v in dict.fromkeys(gt_video):
        gt_by_video[v] = np.flatnonzero(gt_video == v)
    for idx in range(len(sort_idx)):
        rows = gt_by_video.get(pred_video[idx])
        if rows is None:
            fp[:, idx] = 1
            continue
        tiou_arr = segment_iou(pred_seg[idx], gt_seg[rows])
        tiou_sorted_idx = np.argsort(-tiou_arr, kind="stable")  # NaN last
        for tidx, tiou_thr in enumerate(tiou_thresholds):
            for jdx in tiou_sorted_idx:
                if not tiou_arr[jdx] >= tiou_thr:
                    fp[tidx, idx] = 1
                    break
                if lock_gt[tidx, rows[jdx]] >= 0:
                    continue
                tp[tidx, idx] = 1
                lock_gt[tidx, rows[jdx]] = idx
                break
            if fp[tidx, idx] == 0 and tp[tidx, idx] == 0:
                fp[tidx, idx] = 1
    tp_cumsum = np.cumsum(tp, axis=1).astype(float)
    fp_cumsum = np.cumsum(fp, axis=1).astype(float)
    recall_cumsum = tp_cumsum / npos
    precision_cumsum = tp_cumsum / (tp_cumsum + fp_cumsum)
    for tidx in range(len(tiou_thresholds)):
        ap[tidx] = interpolated_prec_rec(precision_cumsum[tidx, :], recall_cumsum[tidx, :])
    return ap


def import_ground_truth(ground_truth):
    """{video: [{"label", "segment"}]} → columns (video [G], segment [G, 2], label [G]) and the sorted labels."""
    video_lst, seg_lst, label_lst = [], [], []
    for video, anns in ground_truth.items():
        for ann in anns:
            video_lst.append(video)
            seg_lst.append([float(ann["segment"][0]), float(ann["segment"][1])])
            label_lst.append(ann["label"])
    return np.array(video_lst, dtype=object), np.array(seg_lst).reshape(-1, 2), np.array(label_lst, dtype=object)


def import_prediction(predictions, videos, ambiguous=None):
    """{video: [{"label", "score", "segment"}]} → columns, dropping videos not evaluated and, with `ambiguous`
    ({video: [(s, e)]}), the predictions strictly overlapping one of the video's Ambiguous segments."""
    video_lst, seg_lst, label_lst, score_lst = [], [], [], []
    for video, preds in predictions.items():
        if video not in videos:
            continue
        amb = (ambiguous or {}).get(video, [])
        for p in preds:
            s, e = float(p["segment"][0]), float(p["segment"][1])
            if any(max(a_s, s) < min(a_e, e) for a_s, a_e in amb):
                continue
            video_lst.append(video)
            seg_lst.append([s, e])
            label_lst.append(p["label"])
            score_lst.append(float(p["score"]))
    return (
        np.array(video_lst, dtype=object),
        np.array(seg_lst).reshape(-1, 2),
        np.array(label_lst, dtype=object),
        np.array(score_lst, dtype=np.float64),
    )


def authors_detection_map(ground_truth, predictions, tiou_thresholds, ambiguous=None):
    """→ (classes, ap [n_classes, n_thresholds]) as ANETdetection.evaluate computes it (method §10)."""
    gt_video, gt_seg, gt_label = import_ground_truth(ground_truth)
    p_video, p_seg, p_label, p_score = import_prediction(predictions, set(ground_truth), ambiguous)
    classes = sorted(set(gt_label.tolist()))
    ap = np.zeros((len(classes), len(tiou_thresholds)))
    for c, label in enumerate(classes):
        g, p = gt_label == label, p_label == label
        ap[c] = compute_average_precision_detection(
            gt_video[g], gt_seg[g], p_video[p], p_seg[p], p_score[p], np.asarray(tiou_thresholds)
        )
    return classes, ap
