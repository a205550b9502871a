"""Post-processing (method §9) against the slow loop reference in tests/reference_postprocess.py."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from reference_postprocess import (
    ref_detect,
    ref_display_detections,
    ref_filter_ambiguous,
    ref_frame_scores,
    ref_proposals,
    ref_soft_nms,
)
from scipy.interpolate import interp1d

import dataset
import postprocess
from postprocess import ACT_THRESHOLDS, detect, filter_ambiguous, frame_scores, predicted_classes, soft_nms

DEFAULTS = dict(cls_th=0.1, act_th=ACT_THRESHOLDS, alpha=0.5, iou_th=0.1, fps=25, rate=16)


def smooth_curves(rng: np.random.Generator, t: int, c: int) -> np.ndarray:
    """[t, c] smooth CAS-like curves: a few Gaussian bumps on a low floor, slightly outside [0, 1] in places."""
    x = np.arange(t)[:, None]
    out = rng.uniform(-0.05, 0.1, (1, c)) + 0.02 * rng.standard_normal((t, c))
    for _ in range(4):
        centre, width, height = rng.uniform(0, t, c), rng.uniform(0.5, t / 4 + 1, c), rng.uniform(0.2, 1.1, c)
        out = out + height * np.exp(-0.5 * ((x - centre) / width) ** 2)
    return out


def assert_same_detections(fast, slow, atol=1e-9):
    assert len(fast) == len(slow)
    for f, s in zip(fast, slow, strict=True):
        assert f[:3] == s[:3]  # class and segment: exact (same integer frame / fps)
        assert f[3] == pytest.approx(s[3], abs=atol, rel=0)


def run_both(act, seg, L, **kw):
    opts = {**DEFAULTS, **kw}
    gaps: list[float] = []
    slow = ref_detect(act, seg, L, gaps=gaps, **opts)
    fast = detect(act, seg, L, **opts)
    return fast, slow, gaps


@pytest.mark.parametrize("seed", range(6))
def test_detect_matches_reference_on_random_curves(seed):
    rng = np.random.default_rng(seed)
    c = 4
    t = [2, 3, 11, 40, 60, 75][seed]
    L = t if seed % 2 else t + int(rng.integers(0, 40))  # T' = min(L, S): equal, or sampled down from L
    act = rng.uniform(0, 0.3, c)
    seg = smooth_curves(rng, t, c)
    fast, slow, gaps = run_both(act, seg, L)
    assert slow, "the random curves should produce detections"
    # the inputs must not contain near-ties (distinct scores closer than the 1e-9 tolerance), else the exact-order
    # comparison below would be testing rounding, not the algorithm
    assert all(g > 1e-9 for g in gaps)
    assert_same_detections(fast, slow)
    classes = [d[0] for d in fast]
    assert classes == sorted(classes) and set(classes) == set(predicted_classes(act, 0.1).tolist())


def test_detect_custom_thresholds_and_options_pass_through():
    rng = np.random.default_rng(7)
    seg, act = smooth_curves(rng, 30, 3), np.array([0.5, 0.05, 0.7])
    opts = dict(act_th=np.array([0.3, 0.3, 0.62]), alpha=0.8, iou_th=0.3, fps=30, rate=8, cls_th=0.4)
    fast, slow, gaps = run_both(act, seg, 45, **opts)
    assert all(g > 1e-9 for g in gaps)
    assert_same_detections(fast, slow)
    assert {d[0] for d in fast} == {0, 2}


def test_frame_scores_bit_identical_to_interp1d():
    rng = np.random.default_rng(0)
    for t, L in [(2, 2), (2, 13), (5, 7), (37, 37), (37, 100)]:
        seg = rng.uniform(-0.5, 1.5, (t, 3))
        f = 16 * L
        x = np.arange(f) * t / f
        expected = np.clip(interp1d(np.arange(t), seg, kind="linear", axis=0, fill_value="extrapolate")(x), 0, 1)
        assert np.array_equal(frame_scores(seg, f), expected)


def test_single_snippet_is_a_constant_curve():
    # T' = 1: interp1d needs two points; one point fixes no slope, so the curve is constant (documented choice)
    assert np.array_equal(frame_scores(np.array([[0.4, 1.7]]), 5), np.tile([0.4, 1.0], (5, 1)))
    assert ref_frame_scores([1.7], 5) == [1.0] * 5
    fast, slow, _ = run_both(np.array([0.3, 0.05]), np.array([[0.42, 0.9]]), 1)
    assert_same_detections(fast, slow)
    # one run over all 16 frames at thresholds 0.1 .. 0.4 (7 of them): identical proposals, emitted in turn
    assert len(fast) == 7 and all(d[:3] == (0, 1 / 25, 17 / 25) for d in fast)
    assert fast[0][3] == pytest.approx(0.42 + 0.2 * 0.3, abs=1e-12)
    assert fast[1][3] == pytest.approx(fast[0][3] * math.exp(-1 / 0.5), abs=1e-12)


def test_two_snippets_extrapolate_past_the_last_point():
    seg = np.array([[0.2], [0.5]])
    frames = frame_scores(seg, 32)[:, 0]
    assert frames[-1] == pytest.approx(0.2 + 0.3 * 31 * 2 / 32)  # x = 1.9375 > 1: extrapolated, not held
    fast, slow, gaps = run_both(np.array([0.6]), seg, 2)
    assert_same_detections(fast, slow)


def test_scores_all_zero_give_no_detections():
    assert detect(np.array([0.9, 0.1]), np.zeros((20, 2)), 20) == []


def test_scores_all_one_one_run_touching_both_ends():
    act = np.array([0.05, 0.5, 0.02])
    fast, slow, _ = run_both(act, np.ones((11, 3)), 11)
    assert_same_detections(fast, slow)
    f = 16 * 11
    assert len(fast) == 18 and all(d[:3] == (1, 1 / 25, (f + 1) / 25) for d in fast)
    # no outer frames (the run fills the video): confidence 1 - 0 + 0.2·act, then decayed by exp(-1/alpha) each
    expected = 1 + 0.2 * 0.5
    for d in fast:
        assert d[3] == pytest.approx(expected, abs=1e-12)
        expected *= math.exp(-1 / 0.5)


@pytest.mark.parametrize("value", [0.0, 0.3, float(ACT_THRESHOLDS[3]), 1.0])
def test_all_equal_scores(value):
    act = np.full(3, 0.2)
    fast, slow, _ = run_both(act, np.full((12, 3), value), 12)
    assert_same_detections(fast, slow)
    n_th = int((ACT_THRESHOLDS <= value).sum())  # a score equal to a threshold counts (≥)
    assert len(fast) == 3 * n_th


def test_single_predicted_class_is_the_argmax():
    rng = np.random.default_rng(3)
    act = np.array([0.01, 0.09, 0.05])
    fast, slow, gaps = run_both(act, smooth_curves(rng, 25, 3), 25)
    assert all(g > 1e-9 for g in gaps)
    assert_same_detections(fast, slow)
    assert {d[0] for d in fast} == {1}


def test_predicted_classes():
    assert predicted_classes(np.array([0.1, 0.05, 0.3]), 0.1).tolist() == [0, 2]  # ≥ cls_th
    assert predicted_classes(np.array([0.01, 0.05, 0.03]), 0.1).tolist() == [1]
    assert predicted_classes(np.array([0.05, 0.05]), 0.1).tolist() == [0]  # argmax: first on ties


def test_runs_touching_both_ends_and_outer_windows_clipped():
    # high at both ends, low in the middle: runs start at frame 0 and end at frame F-1
    seg = np.array([[0.9], [0.8], [0.1], [0.05], [0.1], [0.7], [0.95]])
    fast, slow, gaps = run_both(np.array([0.4]), seg, 7)
    assert_same_detections(fast, slow)
    starts, ends = {d[1] for d in fast}, {d[2] for d in fast}
    assert 1 / 25 in starts and (16 * 7 + 1) / 25 in ends


def test_identical_bumps_at_different_positions_tie_exactly():
    # Two identical bumps: their proposals are real ties, which soft-NMS must break by order ("first one on
    # ties"). The confidences must be bit-equal however far apart the bumps sit, as in the frame-by-frame sums
    # of the reference; a float prefix-sum difference would not guarantee it.
    bump = [0.0, 0.3, 0.71, 0.93, 0.52, 0.2, 0.0]
    for gap in [3, 17, 101, 400]:
        col = np.array([0.0] * 5 + bump + [0.0] * gap + bump + [0.0] * 9)
        fast, slow, _ = run_both(np.array([0.35]), col[:, None], col.size)
        assert_same_detections(fast, slow, atol=1e-12)
        # the two bumps' best proposals come first, bit-equal, the left one first
        assert fast[0][3] == fast[1][3] and fast[0][1] < fast[1][1]
        assert fast[0][2] - fast[0][1] == pytest.approx(fast[1][2] - fast[1][1])


def test_oic_proposals_match_reference_directly():
    rng = np.random.default_rng(11)
    scores = np.clip(smooth_curves(rng, 300, 1)[:, 0], 0, 1)
    fast = postprocess.oic_proposals(scores, ACT_THRESHOLDS, 0.37, fps=25)
    slow = np.array(ref_proposals(scores.tolist(), ACT_THRESHOLDS.tolist(), 0.37, 25))
    assert fast.shape == slow.shape and np.array_equal(fast[:, :2], slow[:, :2])
    np.testing.assert_allclose(fast[:, 2], slow[:, 2], rtol=0, atol=1e-12)


# --- soft-NMS --------------------------------------------------------------------------------------------------


def random_proposals(rng, k):
    s = rng.uniform(0, 100, k)
    return np.stack([s, s + rng.uniform(0.1, 20, k), rng.uniform(-0.5, 1.2, k)], axis=1)


@pytest.mark.parametrize("k", [0, 1, 2, 7, 150])
def test_soft_nms_matches_loop(k):
    rng = np.random.default_rng(k)
    props = random_proposals(rng, k)
    gaps: list[float] = []
    slow = np.array(ref_soft_nms(props.tolist(), 0.5, 0.1, gaps)).reshape(-1, 3)
    fast = soft_nms(props, 0.5, 0.1)
    assert fast.shape == (k, 3)
    assert all(g > 1e-9 for g in gaps)
    assert np.array_equal(fast[:, :2], slow[:, :2])
    np.testing.assert_allclose(fast[:, 2], slow[:, 2], rtol=1e-12, atol=0)


def test_soft_nms_ties_first_one_wins():
    # equal scores, disjoint segments (no decay): emitted in input order
    props = np.array([[0, 1, 0.5], [2, 3, 0.5], [4, 5, 0.9], [6, 7, 0.5]])
    assert soft_nms(props).tolist() == [[4, 5, 0.9], [0, 1, 0.5], [2, 3, 0.5], [6, 7, 0.5]]


def test_soft_nms_identical_duplicates_decay_in_turn():
    props = np.array([[1.0, 3.0, 0.8]] * 3 + [[10.0, 11.0, 0.3]])
    out = soft_nms(props, alpha=0.5, iou_th=0.1)
    d = math.exp(-1 / 0.5)  # tIoU 1 with the emitted copy
    # 0.8·d ≈ 0.108 < 0.3: the other proposal is emitted between the copies
    np.testing.assert_allclose(out, [[1, 3, 0.8], [10, 11, 0.3], [1, 3, 0.8 * d], [1, 3, 0.8 * d * d]], rtol=1e-15)


def test_soft_nms_iou_at_threshold_is_not_decayed():
    # tIoU exactly 0.5 (inter 1, union 2) with iou_th 0.5: "> iou_th" → no decay
    out = soft_nms(np.array([[0.0, 2.0, 0.9], [1.0, 2.0, 0.5]]), alpha=0.5, iou_th=0.5)
    assert out.tolist() == [[0.0, 2.0, 0.9], [1.0, 2.0, 0.5]]


# --- ambiguous filter ------------------------------------------------------------------------------------------


def pred(s, e, score=0.5, label="A"):
    return {"label": label, "score": score, "segment": [s, e]}


def test_filter_ambiguous_strict_overlap_and_all_segments():
    preds = {
        "v1": [pred(0, 1), pred(1, 2), pred(2.5, 3.5), pred(9, 10), pred(4, 4.0001), pred(12, 20)],
        "v2": [pred(0, 5)],
        "v3": [],
    }
    amb = {"v1": [(2, 3), (10, 12), (4, 5)], "other": [(0, 100)]}
    out = filter_ambiguous(preds, amb)
    # [1,2] touches [2,3] and [9,10] touches [10,12]: kept; [2.5,3.5] overlaps the first segment, [4,4.0001] the
    # third (every segment applies, not only the last), [12,20] only touches [10,12]: kept
    assert out["v1"] == [pred(0, 1), pred(1, 2), pred(9, 10), pred(12, 20)]
    assert out["v2"] == [pred(0, 5)] and out["v3"] == []
    assert out == ref_filter_ambiguous(preds, amb)


def test_filter_ambiguous_random_against_reference():
    rng = np.random.default_rng(2)
    preds = {
        f"v{i}": [pred(float(s), float(s + rng.integers(1, 5)), float(rng.random())) for s in rng.integers(0, 30, 20)]
        for i in range(5)
    }
    amb = {f"v{i}": [(float(a), float(a + rng.integers(0, 4))) for a in rng.integers(0, 30, 3)] for i in range(4)}
    assert filter_ambiguous(preds, amb) == ref_filter_ambiguous(preds, amb)


def test_read_ambiguous_on_shipped_file(real_annotations):
    shipped = Path(__file__).resolve().parents[1] / "result" / "ambiguous.txt"
    official = real_annotations / "thumos14/official/annotations_test/Ambiguous_test.txt"
    assert shipped.read_bytes() == official.read_bytes()
    assert postprocess.read_ambiguous is dataset.read_ambiguous
    amb = postprocess.read_ambiguous(shipped)
    lines = [line.split() for line in shipped.read_text().splitlines() if line.strip()]
    assert sum(map(len, amb.values())) == len(lines)
    assert amb["video_test_0000278"] == [(0.0, 1.4), (95.7, 97.2)]
    assert all(s <= e for segs in amb.values() for s, e in segs)


def test_soft_nms_empty_segments_do_not_decay():
    # two empty segments at one instant: tIoU 0/0 is nan, which is not > iou_th (no exception, no decay)
    out = soft_nms(np.array([[1.0, 1.0, 0.4], [1.0, 1.0, 0.5], [0.0, 2.0, 0.3]]))
    assert out.tolist() == [[1.0, 1.0, 0.5], [1.0, 1.0, 0.4], [0.0, 2.0, 0.3]]


# --- what a person reads (display_detections) --------------------------------------------------------------------


def detections_like_soft_nms(rng: np.random.Generator, k: int, classes: int) -> list[tuple[int, float, float, float]]:
    """k detections of a few segments each repeated with decayed scores (what soft-NMS emits), plus ties."""
    base = rng.integers(0, max(k // 3, 1), k)
    starts = np.round(rng.uniform(0, 30, k), 1)[base]
    ends = starts + np.round(rng.uniform(0, 8, k), 1)[base]  # some zero-length
    scores = np.round(rng.uniform(-0.2, 1.0, k), 2) * rng.choice([1.0, 0.3, 0.01], k)  # rounding makes ties
    cls = rng.integers(0, classes, k)
    return [(int(c), float(s), float(e), float(p)) for c, s, e, p in zip(cls, starts, ends, scores, strict=True)]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(("min_score", "merge_tiou"), [(0.2, 0.5), (0.0, 0.0), (-1.0, 1.0), (0.5, 0.1)])
def test_display_detections_matches_reference(seed, min_score, merge_tiou):
    rng = np.random.default_rng(seed)
    dets = detections_like_soft_nms(rng, [0, 1, 2, 11, 60, 300][seed], 1 + seed % 3)
    shown, merged = postprocess.display_detections(dets, min_score, merge_tiou)
    ref_shown, ref_merged = ref_display_detections(dets, min_score, merge_tiou)
    assert shown == ref_shown and merged == ref_merged
    assert len(shown) + sum(merged) == sum(d[3] >= min_score for d in dets)  # every detection above the floor once


def test_display_detections_decays_of_one_segment_show_once():
    # soft-NMS output of a 2 s clip: one segment at 0.28, its decays, and a disjoint one of another class
    dets = [(5, 0.04, 1.32, 0.28), (5, 0.04, 1.32, 0.04), (5, 0.04, 1.32, 0.3 * 0.0007), (2, 0.5, 1.0, 0.25)]
    assert postprocess.display_detections(dets, 0.0, 0.5) == ([dets[0], dets[3]], [2, 0])
    assert postprocess.display_detections(dets) == ([dets[0], dets[3]], [0, 0])  # the floor 0.2 drops the decays
    assert postprocess.display_detections([]) == ([], [])
    # ties: the first listed is shown; at exactly merge_tiou the other is merged; another class never is
    tied = [(0, 0.0, 2.0, 0.5), (0, 1.0, 2.0, 0.5), (1, 0.0, 2.0, 0.5)]
    assert postprocess.display_detections(tied, 0.2, 0.5) == ([tied[0], tied[2]], [1, 0])


# --- the authors' per-proposal post-processing (bench.py's baseline) and the array forms --------------------------


@pytest.mark.parametrize("seed", range(5))
def test_authors_postprocess_gives_the_reference_detections(seed):
    from authors_postprocess import authors_detect

    rng = np.random.default_rng(100 + seed)
    t = [1, 2, 11, 40, 75][seed]
    act = rng.uniform(0, 0.3, 3)
    seg = smooth_curves(rng, t, 3) if seed else np.array([[0.42, 0.9, 0.1]])
    gaps: list[float] = []
    slow = ref_detect(act, seg, t + seed, gaps=gaps, **DEFAULTS)
    assert all(g > 1e-9 for g in gaps)
    assert_same_detections(authors_detect(act, seg, t + seed, **DEFAULTS), slow)


def adversarial_proposals(rng: np.random.Generator, k: int) -> np.ndarray:
    """Proposals on a coarse grid: identical duplicates, nested runs, touching and empty segments, tied scores."""
    s = rng.integers(0, 12, k).astype(float)
    e = s + rng.integers(0, 6, k)
    return np.stack([s, e, rng.integers(0, 4, k) / 4], axis=1)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize(("alpha", "iou_th"), [(0.5, 0.1), (0.8, 0.0), (0.3, 0.7)])
def test_soft_nms_bit_identical_to_the_all_pairs_loop_on_ties(seed, alpha, iou_th):
    # the compiled kernel visits only intersecting pairs; a plain all-pairs loop with the same float operations
    # must give the same emitted rows bit for bit (ties everywhere: the pick order is the whole test)
    rng = np.random.default_rng(seed)
    props = adversarial_proposals(rng, [0, 1, 2, 11, 40, 97, 150, 300][seed])
    remaining = [list(p) for p in props]
    expected = []
    while remaining:
        best = max(range(len(remaining)), key=lambda i: (remaining[i][2], -i))
        pick = remaining.pop(best)
        expected.append(pick)
        for p in remaining:
            inter = max(0.0, min(pick[1], p[1]) - max(pick[0], p[0]))
            union = (pick[1] - pick[0]) + (p[1] - p[0]) - inter
            iou = inter / union if union else math.nan
            if iou > iou_th:
                p[2] *= math.exp(-(iou * iou) / alpha)
    assert soft_nms(props, alpha, iou_th).tolist() == expected


def test_soft_nms_rejects_a_non_positive_alpha():
    with pytest.raises(ValueError, match="alpha"):
        soft_nms(np.array([[0.0, 1.0, 0.5]]), alpha=0.0)


@pytest.mark.parametrize("seed", range(4))
def test_detect_arrays_is_detect(seed):
    rng = np.random.default_rng(seed)
    act, seg = rng.uniform(0, 0.3, 4), smooth_curves(rng, [1, 2, 11, 60][seed], 4)
    cls, kept = postprocess.detect_arrays(act, seg, 30, **DEFAULTS)
    assert cls.dtype == np.int64 and kept.shape == (len(cls), 3)
    assert [(c, s, e, p) for c, (s, e, p) in zip(cls.tolist(), kept.tolist(), strict=True)] == detect(
        act, seg, 30, **DEFAULTS
    )


def test_ambiguous_overlap_against_reference():
    rng = np.random.default_rng(5)
    videos = ["a", "b", "c", "d"]
    video = rng.integers(0, 4, 60)
    seg = np.sort(rng.integers(0, 20, (60, 2)), axis=1).astype(float)
    amb = {"a": [(2.0, 5.0), (9.0, 9.0)], "b": [(0.0, 20.0)], "d": [(5.0, 6.0), (6.0, 8.0), (1.0, 3.0)], "x": [(0, 9)]}
    got = postprocess.ambiguous_overlap(video, seg, videos, amb)
    want = [any(max(a, s) < min(b, e) for a, b in amb.get(videos[v], [])) for v, (s, e) in zip(video, seg, strict=True)]
    assert got.tolist() == want
    assert postprocess.ambiguous_overlap(np.zeros(0, np.int64), np.zeros((0, 2)), videos, amb).tolist() == []


def test_oic_proposals_unsorted_and_repeated_thresholds_keep_the_given_order():
    # the compiled scan sorts the thresholds to walk the frames once; the output must stay in the order given
    rng = np.random.default_rng(12)
    scores = np.clip(smooth_curves(rng, 200, 1)[:, 0], 0, 1)
    for th in ([0.7, 0.2, 0.45, 0.2, 0.9, 0.05], [0.5], [0.3, 0.3]):
        fast = postprocess.oic_proposals(scores, np.array(th), 0.2, fps=30)
        slow = np.array(ref_proposals(scores.tolist(), th, 0.2, 30)).reshape(-1, 3)
        assert fast.shape == slow.shape and np.array_equal(fast[:, :2], slow[:, :2])
        np.testing.assert_allclose(fast[:, 2], slow[:, 2], rtol=0, atol=1e-12)
