"""Slow, obviously-correct detection mAP straight from method §10 (plain loops; used by tests and bench.py).

Shared conventions with evaluate.py that the method leaves open: the evaluated videos are the ground truth's keys
(predictions for other videos are ignored); among ground truth with equal tIoU the first listed is tried first;
a NaN tIoU (two empty segments) never matches.
"""

from __future__ import annotations


def ref_tiou(a, b):
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = (a[1] - a[0]) + (b[1] - b[0]) - inter
    return inter / union if union != 0 else float("nan")


def ref_ap_one(preds, gts, threshold):
    """preds [(video, score, segment)] of one class in input order; gts [(video, segment)] → AP at one threshold."""
    if not preds:
        return 0.0
    order = sorted(range(len(preds)), key=lambda i: -preds[i][1])  # Python's sort is stable: ties keep input order
    matched = [False] * len(gts)
    flags = []
    for i in order:
        video, _, seg = preds[i]
        candidates = [(ref_tiou(seg, gts[j][1]), j) for j in range(len(gts)) if gts[j][0] == video]
        candidates = [(t, j) for t, j in candidates if t == t]  # drop NaN
        candidates.sort(key=lambda tj: -tj[0])  # highest tIoU first, stable: first listed on ties
        hit = False
        for t, j in candidates:
            if t < threshold:
                break
            if matched[j]:
                continue
            matched[j] = True
            hit = True
            break
        flags.append(hit)
    tp = fp = 0
    precision, recall = [], []
    for hit in flags:
        tp += hit
        fp += not hit
        precision.append(tp / (tp + fp))
        recall.append(tp / len(gts))
    mprec = [0.0] + precision + [0.0]
    mrec = [0.0] + recall + [1.0]
    for i in range(len(mprec) - 2, -1, -1):
        mprec[i] = max(mprec[i], mprec[i + 1])
    ap = 0.0
    for i in range(1, len(mrec)):
        if mrec[i] != mrec[i - 1]:
            ap += (mrec[i] - mrec[i - 1]) * mprec[i]
    return ap


def ref_average_precision(ground_truth, predictions, thresholds):
    """→ (classes, [[AP per threshold] per class])."""
    classes = sorted({a["label"] for anns in ground_truth.values() for a in anns})
    table = []
    for c in classes:
        gts = [(v, a["segment"]) for v, anns in ground_truth.items() for a in anns if a["label"] == c]
        preds = []
        for v, ps in predictions.items():
            key = v if v in ground_truth else ("v_" + v if "v_" + v in ground_truth else None)
            if key is None and v.startswith("v_") and v[2:] in ground_truth:
                key = v[2:]
            if key is None:
                continue
            preds += [(key, p["score"], p["segment"]) for p in ps if p["label"] == c]
        table.append([ref_ap_one(preds, gts, th) for th in thresholds])
    return classes, table


def ref_detection_map(ground_truth, predictions, thresholds):
    classes, table = ref_average_precision(ground_truth, predictions, thresholds)
    return [sum(row[t] for row in table) / len(classes) for t in range(len(thresholds))]
