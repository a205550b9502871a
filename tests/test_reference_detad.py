"""Hand-computed checks of the DETAD oracle tests/reference_detad.py (spec: /work/shared/DETAD.md, §N and Qn).

The expected numbers of the small cases were worked out by hand from the rules of DETAD.md (derivations in the
comments); property checks (hypothesis) and a THUMOS14 smoke test check the invariants every result must satisfy.
"""

from __future__ import annotations

import json
import math
import random
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_detad import (
    BINS,
    ERROR_TYPES,
    FP_ERROR_TYPES,
    GROUPS,
    average_precision_n,
    bucket_of,
    characteristics,
    diagnose,
    discard_low_precision,
)

TP, DD, WL, LOC, CONF, BG = ERROR_TYPES
NONE_PROFILE = dict.fromkeys(ERROR_TYPES)


def gt_file(db: dict, durations=None) -> dict:
    return {"database": characteristics(db, durations), "taxonomy": [], "version": "test"}


def video(subset: str, duration: float, *anns) -> dict:
    return {
        "subset": subset,
        "duration": duration,
        "annotations": [{"label": l, "segment": [s, e]} for l, s, e in anns],
    }


def pred_file(rows) -> dict:
    """rows [(video, label, start, end, score)] → results grouped by video, videos in order of first appearance."""
    results: dict[str, list] = {}
    for vid, label, s, e, score in rows:
        results.setdefault(vid, []).append({"label": label, "segment": [s, e], "score": score})
    return {"results": results, "version": "test", "external_data": {}}


def profile(**fractions) -> dict:
    """A profile row: the given fractions (by short name), 0 for the other types."""
    short = {"TP": TP, "DD": DD, "WL": WL, "LOC": LOC, "CONF": CONF, "BG": BG}
    return {k: 0.0 for k in ERROR_TYPES} | {short[k]: v for k, v in fractions.items()}


def assert_close(actual, expected, path="result"):
    if isinstance(expected, dict):
        assert isinstance(actual, dict), path
        assert set(actual) == set(expected), f"{path}: keys {sorted(actual)} != {sorted(expected)}"
        for k in expected:
            assert_close(actual[k], expected[k], f"{path}[{k!r}]")
    elif isinstance(expected, list):
        assert len(actual) == len(expected), path
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_close(a, e, f"{path}[{i}]")
    elif expected is None:
        assert actual is None, f"{path}: {actual} != None"
    elif isinstance(expected, str):
        assert actual == expected, path
    else:
        assert actual is not None, f"{path}: None != {expected}"
        assert actual == pytest.approx(expected, rel=1e-12, abs=1e-15), f"{path}: {actual} != {expected}"


def check_structure(out: dict, names: list[str]) -> None:
    """Schema of §9 and the invariants every result must satisfy."""
    assert set(out) == {"dataset", "tiou_thresholds", "average_mAP_N", "false_positive", "sensitivity",
                        "false_negative", "extra"}  # fmt: skip
    prof = out["false_positive"]["profile"]
    assert list(prof) == list(GROUPS)
    for g in GROUPS:
        assert list(prof[g]) == list(ERROR_TYPES)
        values = list(prof[g].values())
        if values[0] is None:
            assert all(v is None for v in values), g  # empty group: all six null
        else:
            assert all(0.0 <= v <= 1.0 for v in values)
            assert sum(values) == pytest.approx(1.0, abs=1e-12), g  # the six types of a group sum to 1
    assert list(out["false_positive"]["average_mAP_N_gain"]) == list(FP_ERROR_TYPES)
    for g in out["false_positive"]["average_mAP_N_gain"].values():
        assert g is not None and g >= -1e-12  # removing false positives cannot lower AP_N
    for analysis in ("sensitivity", "false_negative"):
        assert list(out[analysis]) == names
        for x in names:
            assert list(out[analysis][x]) == list(BINS[out["dataset"]][x][1])
            for v in out[analysis][x].values():
                assert v is None or 0.0 <= v <= 1.0 + 1e-12
    for x in names:  # a bucket has a value in both analyses iff it holds kept GT
        for b in out["sensitivity"][x]:
            assert (out["sensitivity"][x][b] is None) == (out["false_negative"][x][b] is None), (x, b)
    extra = out["extra"]
    for key in (
        "sensitivity_relative_change",
        "false_negative_average_mAP_N",
        "false_positive_all_top10G",
        "num_ground_truth",
        "num_predictions",
        "num_predictions_top10G",
        "average_num_instance_per_class",
    ):
        assert key in extra
    assert extra["num_predictions_top10G"] <= extra["num_predictions"]
    json.dumps(out, allow_nan=False)  # plain JSON: no NaN anywhere


# --- a THUMOS14 case worked out by hand -----------------------------------------------------------------------------

# Ground truth (subset "test"; class index A=0, B=1; gt-ids g0…g3):
#   v1 (100 s): g0 A [10,20] (len 10 → M, cov 0.1 → XL, 3 instances → S)
#               g1 B [30,33] (len 3.0 → XS, right-closed edge; cov 0.03 → S; S)
#               g2 A [60,80] (len 20 → XL, cov 0.2 → XL; S)
#   v2 (50 s):  g3 B [5,6]   (len 1 → XS; cov 1/50 = 0.02 → XS, right-closed edge; 1 instance → XS)
#   v3: no annotation; v4: other subset (skipped). N_avg = 4 / 2 = 2, n_A = n_B = 2.
HAND_DB = {
    "v1": video("test", 100.0, ("A", 10, 20), ("B", 30, 33), ("A", 60, 80)),
    "v2": video("test", 50.0, ("B", 5, 6)),
    "v3": video("test", 40.0),
    "v4": video("val", 10.0, ("A", 0, 1)),
}
# Predictions (pid; matching at t = 0.5; type):
#   p0 A [10,20] .9  TP g0                       p5 B [30,33] .4   TP g1
#   p1 A [11,20] .8  g0 locked (tIoU .9) → DD    p6 B [5,6] .35    TP g3
#   p2 B [10,19] .7  max tIoU .9 with A → WL     p7 A [40,45] .3   no A GT in v2; tIoU 0 → BG
#   p3 A [60,68] .6  tIoU .4 with A → LOC        p8 A [0,5] .95    v3 has no GT → BG
#   p4 B [60,66] .5  tIoU .3 with A → CONF       p9 B [0,1] .2     v9 not in the GT → BG
#   "C" label unknown → ignored (Q12).
HAND_PREDS = [
    ("v1", "A", 10, 20, 0.9),
    ("v1", "A", 11, 20, 0.8),
    ("v1", "B", 10, 19, 0.7),
    ("v1", "A", 60, 68, 0.6),
    ("v1", "B", 60, 66, 0.5),
    ("v1", "B", 30, 33, 0.4),
    ("v1", "C", 30, 33, 0.99),
    ("v2", "B", 5, 6, 0.35),
    ("v2", "A", 40, 45, 0.3),
    ("v3", "A", 0, 5, 0.95),
    ("v9", "B", 0, 1, 0.2),
]


def test_hand_computed_thumos14():
    out = diagnose(gt_file(HAND_DB), pred_file(HAND_PREDS), "thumos14", "test")
    check_structure(out, ["coverage", "length", "num-instances"])
    # Class A ranking p8 F, p0 T, p1 F, p3 F, p7 F: P = 0, (.5·2)/(1+1) = .5, 1/3, 1/4, 1/5 → AP_A = .5·.5 = .25.
    # Class B ranking p2 F, p4 F, p5 T, p6 T, p9 F: P = 0, 0, 1/3, 2/4, 2/5 → interpolated .5 at R .5 and 1 → .5.
    expected = {
        "dataset": "thumos14",
        "tiou_thresholds": [0.5],
        "average_mAP_N": 0.375,
        "false_positive": {
            "average_mAP_N": 0.375,  # 5 ≤ 10·2 predictions per class: the limit keeps all
            # Profile ranking per class: A p8 p0 | p1 p3 | p7 ; B p2 p4 | p5 p6 | p9 (groups of n_c = 2)
            "profile": {
                "1G": profile(TP=0.25, WL=0.25, CONF=0.25, BG=0.25),  # p8 BG, p0 TP, p2 WL, p4 CONF
                "2G": profile(TP=0.5, DD=0.25, LOC=0.25),  # p1 DD, p3 LOC, p5 TP, p6 TP
                "3G": profile(BG=1.0),  # p7, p9
                **{g: NONE_PROFILE for g in GROUPS[3:]},  # fewer than 10·G predictions: empty groups
            },
            "average_mAP_N_gain": {
                DD: 0.0,  # A without p1: p8 F, p0 T (P .5), … → .25 unchanged
                WL: 1 / 12,  # B without p2: p4 F, p5 T (P .5), p6 T (P 2/3) → 2/3; (.25 + 2/3)/2 − .375
                LOC: 0.0,  # A without p3: still .25
                CONF: 1 / 12,  # B without p4: same as without p2
                BG: 0.125,  # A: p0 T (P 1) → .5; B: .5 → .5 − .375
            },
        },
        "sensitivity": {
            # length XS {g1, g3} (B): all of B kept → .5; M {g0} (A): P 2/3 at the TP → 2/3;
            # XL {g2} (A): p0 matched g0 ∉ G leaves, no TP → 0.
            "length": {"XS": 0.5, "S": None, "M": 2 / 3, "L": None, "XL": 0.0},
            # coverage XS {g3}: p5 leaves, p2 F p4 F p6 T (P 2/4) → .5; S {g1}: p6 leaves → .5; XL {g0, g2} → .25
            "coverage": {"XS": 0.5, "S": 0.5, "M": None, "L": None, "XL": 0.25},
            # num-instances XS {g3} → .5; S: A {g0, g2} → .25, B {g1} → .5 → mean .375
            "num-instances": {"XS": 0.5, "S": 0.375, "M": None, "L": None},
        },
        # θ = 0.05 discards nothing here (first TPs at P .5 and 1/3); only g2 is missed: S = 4.
        "false_negative": {
            "length": {"XS": 0.0, "S": None, "M": 0.0, "L": None, "XL": 1.0},  # 1 / ((1/4)·4)
            "coverage": {"XS": 0.0, "S": 0.0, "M": None, "L": None, "XL": 0.5},  # 1 / ((2/4)·4)
            "num-instances": {"XS": 0.0, "S": 1 / 3, "M": None, "L": None},  # 1 / ((3/4)·4)
        },
    }
    assert_close({k: v for k, v in out.items() if k != "extra"}, expected)
    extra = out["extra"]
    assert_close(
        extra["sensitivity_relative_change"],
        {
            "length": {"min": 0.0, "max": (2 / 3) / 0.375},
            "coverage": {"min": 0.25 / 0.375, "max": 0.5 / 0.375},
            "num-instances": {"min": 1.0, "max": 0.5 / 0.375},
        },
    )
    assert_close(extra["false_positive_all_top10G"], profile(TP=0.3, DD=0.1, WL=0.1, LOC=0.1, CONF=0.1, BG=0.3))
    assert extra["false_negative_average_mAP_N"] == pytest.approx(0.375)
    assert (extra["num_ground_truth"], extra["num_predictions"], extra["num_predictions_top10G"]) == (4, 10, 10)
    assert extra["num_predictions_ignored"] == 1
    assert extra["average_num_instance_per_class"] == 2.0


# --- ActivityNet: 10 thresholds, the cumulative sensitivity filter (Q7) ------------------------------------------


def test_activitynet_ten_thresholds_and_cumulative_sensitivity_filter():
    # One class, one video (100 s): ga [0,28] (len 28 → XS, cov .28 → S), gb [0,32] (len 32 → S, cov .32 → S);
    # 2 instances → S. N_avg = 2. Thresholds .5 .55 … .95 (np.linspace).
    db = {"x": video("validation", 100.0, ("A", 0, 28), ("A", 0, 32))}
    # p0 [0,17] .9: tIoU ga 17/28 = .607, gb 17/32 = .531 → matches ga at t ≤ .6, FP (LOC) at the 7 others.
    # p1 [0,29] .8: tIoU ga 28/29 = .966, gb 29/32 = .906 → at t ≤ .6 ga is locked → gb; at t ≥ .65 → ga.
    preds = [("x", "A", 0, 17, 0.9), ("x", "A", 0, 29, 0.8)]
    out = diagnose(gt_file(db), pred_file(preds), "activitynet", "validation")
    check_structure(out, ["coverage", "length", "num-instances"])
    assert out["tiou_thresholds"] == np.linspace(0.5, 0.95, 10).tolist()
    # t ≤ .6: T T → AP 1; t ≥ .65: F, T (R .5, P 1/(1+1)) → .25. (3·1 + 7·.25)/10 = .475
    assert out["average_mAP_N"] == pytest.approx(0.475, rel=1e-12)
    assert out["false_positive"]["average_mAP_N"] == pytest.approx(0.475, rel=1e-12)
    # 1G = {p0, p1}: TP 3·2 + 7 = 13 → 1.3 / 2; LOC 7 → .7 / 2
    assert_close(out["false_positive"]["profile"]["1G"], profile(TP=0.65, LOC=0.35))
    assert all(out["false_positive"]["profile"][g] == NONE_PROFILE for g in GROUPS[1:])
    # without LOC at t ≥ .65: p1 alone, P 1 at R .5 → .5; (3 + 7·.5)/10 − .475 = .175
    assert_close(out["false_positive"]["average_mAP_N_gain"], {DD: 0.0, WL: 0.0, LOC: 0.175, CONF: 0.0, BG: 0.0})
    # length XS {ga}: p1 leaves (matched gb at t ≤ .6) although it matches ga at t ≥ .65 (cumulative filter, Q7);
    # p0 TP at t ≤ .6 (P 1) → 3/10. S {gb}: p0 leaves (ga), p1 leaves (ga at t ≥ .65) → no prediction → 0.
    assert_close(out["sensitivity"]["length"], {"XS": 0.3, "S": 0.0, "M": None, "L": None, "XL": None})
    assert_close(out["sensitivity"]["coverage"], {"XS": None, "S": 0.475, "M": None, "L": None, "XL": None})
    assert_close(out["sensitivity"]["num-instances"], {"XS": None, "S": 0.475, "M": None, "L": None})
    # FN: gb unmatched at the 7 thresholds ≥ .65 → length S: 7·1/10; coverage S: 7·(1 / ((2/2)·2))/10 = .35
    assert_close(out["false_negative"]["length"], {"XS": 0.0, "S": 0.7, "M": None, "L": None, "XL": None})
    assert_close(out["false_negative"]["coverage"], {"XS": None, "S": 0.35, "M": None, "L": None, "XL": None})
    assert_close(out["false_negative"]["num-instances"], {"XS": None, "S": 0.35, "M": None, "L": None})
    assert_close(out["extra"]["sensitivity_relative_change"]["length"], {"min": 0.0, "max": 0.3 / 0.475})


def test_activitynet_testing_has_six_characteristics_and_rejects_other_subsets():
    db = {"y": video("testing", 100.0, ("A", 0, 20))}
    gt = gt_file(db)
    ann = gt["database"]["y"]["annotations"][0]
    ann.update({"context-size": 0, "context-distance": 0, "agreement": 0.2})  # buckets "0", "Inf", XW (edge .2)
    out = diagnose(gt, pred_file([("y", "A", 0, 20, 1.0)]), "activitynet", "testing")
    names = ["context-size", "context-distance", "agreement", "coverage", "length", "num-instances"]
    check_structure(out, names)
    filled = {x: [b for b, v in out["sensitivity"][x].items() if v is not None] for x in names}
    assert filled == {"context-size": ["0"], "context-distance": ["Inf"], "agreement": ["XW"],
                      "coverage": ["XS"], "length": ["XS"], "num-instances": ["XS"]}  # fmt: skip
    assert all(out["sensitivity"][x][filled[x][0]] == 1.0 for x in names)
    with pytest.raises(ValueError, match="subset"):
        diagnose(gt, pred_file([]), "activitynet", "training")
    with pytest.raises(ValueError, match="dataset"):
        diagnose(gt, pred_file([]), "kinetics", "testing")


# --- θ = 0.05 (§4.4, Q10) ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n_fp", "discarded"), [(19, True), (18, False)])
def test_fn_theta_discard_boundary_and_locked_gt(n_fp, discarded):
    # One class, one GT [0,10]: N_avg = 1. n_fp FPs rank first, then the TP at P = 1/(1+n_fp): with 19 FPs
    # P = 1/20 = 0.05 <= θ → discarded (inclusive); with 18, 1/19 > 0.05 → kept. A duplicate TP follows: the GT
    # stays locked after the discard (Q10), so it is an FP in both cases.
    db = {"v": video("test", 100.0, ("A", 0, 10))}
    preds = [("v", "A", 50 + i, 51 + i, 1.0 - 0.01 * i) for i in range(n_fp)]
    preds += [("v", "A", 0, 10, 0.5), ("v", "A", 0, 10, 0.4)]
    out = diagnose(gt_file(db), pred_file(preds), "thumos14", "test")
    check_structure(out, ["coverage", "length", "num-instances"])
    assert out["average_mAP_N"] == pytest.approx(1 / (1 + n_fp), rel=1e-12)  # θ = 0: nothing discarded
    fn = out["extra"]["false_negative_average_mAP_N"]
    assert fn == (0.0 if discarded else pytest.approx(1 / (1 + n_fp), rel=1e-12))
    assert out["false_negative"]["length"]["M"] == (1.0 if discarded else 0.0)
    # FP analysis: top 10·1 are all FPs (tIoU 0 with the GT → Background) → AP 0; groups of 1: all Background
    assert out["extra"]["num_predictions_top10G"] == 10
    assert out["false_positive"]["average_mAP_N"] == 0.0
    assert all(out["false_positive"]["profile"][g] == profile(BG=1.0) for g in GROUPS)


# --- quirks and tie rules ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("first", "expected_type"), [("CliffDiving", WL), ("Diving", DD)])
def test_q3_identical_cliffdiving_diving_segments_follow_gt_order(first, expected_type):
    second = "Diving" if first == "CliffDiving" else "CliffDiving"
    db = {"v": video("test", 100.0, (first, 10, 20), (second, 10, 20))}
    preds = [("v", "Diving", 10, 20, 0.9), ("v", "Diving", 10, 20, 0.8)]
    out = diagnose(gt_file(db), pred_file(preds), "thumos14", "test")
    check_structure(out, ["coverage", "length", "num-instances"])
    prof = out["false_positive"]["profile"]
    assert prof["1G"] == profile(TP=1.0)  # n_Diving = 1: p0 TP
    assert prof["2G"] == profile(**{"WL" if expected_type == WL else "DD": 1.0})  # p1: first maximal tIoU GT
    # CliffDiving has no prediction: AP 0 (Q6, no KeyError). Diving: R 1, P 1·1/(1·1 + 0) → 1. Mean .5.
    assert out["average_mAP_N"] == 0.5
    assert out["sensitivity"]["length"]["M"] == 0.5  # nanmean(Diving 1, CliffDiving 0)
    assert out["false_negative"]["length"]["M"] == 0.5  # CliffDiving's GT missed: 1 / ((1/2)·2)


def test_q2_tied_tiou_in_matching_takes_the_later_gt():
    # p [0,10] has tIoU 5/10 = 10/20 = .5 with g0 [0,5] (len 5 → S) and g1 [0,20] (len 20 → XL), both >= .5.
    # §4.3 visits GT by argsort()[::-1]; its stable emulation (Q2) puts the later GT first → p matches g1.
    db = {"v": video("test", 100.0, ("A", 0, 5), ("A", 0, 20))}
    out = diagnose(gt_file(db), pred_file([("v", "A", 0, 10, 0.9)]), "thumos14", "test")
    assert out["average_mAP_N"] == 0.5  # R .5, P (.5·1)/(.5·1 + 0) = 1
    assert out["sensitivity"]["length"]["XL"] == 1.0 and out["sensitivity"]["length"]["S"] == 0.0
    assert out["false_negative"]["length"]["XL"] == 0.0 and out["false_negative"]["length"]["S"] == 1.0


def test_q2_tied_scores_matching_later_id_profile_earlier_id():
    # Two identical predictions with the same score on the one GT: matching ranks the later id first (TP), so
    # the earlier is a Double Detection; the profile ranks the earlier id first, so 1G = {p0 DD}, 2G = {p1 TP}.
    db = {"v": video("test", 100.0, ("A", 10, 20))}
    preds = [("v", "A", 10, 20, 0.5), ("v", "A", 10, 20, 0.5)]
    out = diagnose(gt_file(db), pred_file(preds), "thumos14", "test")
    assert out["false_positive"]["profile"]["1G"] == profile(DD=1.0)
    assert out["false_positive"]["profile"]["2G"] == profile(TP=1.0)
    assert out["extra"]["false_positive_all_top10G"] == profile(TP=0.5, DD=0.5)


def test_q2_tied_scores_at_the_top10g_cut_keep_the_earlier_id():
    # n = 1 → the limit keeps 10 of 11 equal-score predictions: ids 0–9 (all FPs in v2, which has no GT), not
    # id 10, the only TP. All-prediction matching ranks id 10 first → AP 1 (N_avg 1); the sensitivity ranking
    # puts it last, after 10 FPs → P = 1/(1 + 10).
    db = {"v1": video("test", 100.0, ("A", 10, 20)), "v2": video("test", 100.0)}
    preds = [("v2", "A", i, i + 1, 0.5) for i in range(10)] + [("v1", "A", 10, 20, 0.5)]
    out = diagnose(gt_file(db), pred_file(preds), "thumos14", "test")
    check_structure(out, ["coverage", "length", "num-instances"])
    assert out["extra"]["num_predictions_top10G"] == 10
    assert out["average_mAP_N"] == 1.0
    assert out["false_positive"]["average_mAP_N"] == 0.0
    assert all(out["false_positive"]["profile"][g] == profile(BG=1.0) for g in GROUPS)
    assert out["sensitivity"]["length"]["M"] == pytest.approx(1 / 11, rel=1e-12)
    assert_close(out["extra"]["sensitivity_relative_change"]["length"], {"min": 1 / 11, "max": 1 / 11})


def test_q1_every_fp_in_a_video_without_kept_gt_is_background():
    # v_b has no GT; its FPs overlap v_a's GT exactly — DETAD would type all but the first against v_a's cached
    # GT (Double Detection). Here all three are Background.
    db = {"v_a": video("test", 100.0, ("A", 10, 20)), "v_b": video("test", 100.0)}
    preds = [("v_a", "A", 10, 20, 0.95)] + [("v_b", "A", 10 + i, 20, 0.9 - 0.1 * i) for i in range(3)]
    out = diagnose(gt_file(db), pred_file(preds), "thumos14", "test")
    assert out["extra"]["false_positive_all_top10G"] == profile(TP=0.25, BG=0.75)


def test_error_type_thresholds_are_inclusive():
    # v1: A [0,10]; v2: B [0,10]; N_avg = 1. In v1 (typing against A [0,10]; t = 0.5, min_tiou_thr = 0.1):
    #   A [0,10] .9 TP; A [0,5] .8 τ = .5 >= t, GT locked → DD; A [9,10] .7 τ = .1 → LOC; A [9.5,10] .6 τ .05 → BG;
    #   B [9,10] .5 τ .1, other label → CONF; B [0,5] .4 τ .5, other label → WL (B's GT is in v2: FPs).
    db = {"v1": video("test", 100.0, ("A", 0, 10)), "v2": video("test", 100.0, ("B", 0, 10))}
    preds = [("v1", "A", 0, 10, 0.9), ("v1", "A", 0, 5, 0.8), ("v1", "A", 9, 10, 0.7), ("v1", "A", 9.5, 10, 0.6),
             ("v1", "B", 9, 10, 0.5), ("v1", "B", 0, 5, 0.4)]  # fmt: skip
    out = diagnose(gt_file(db), pred_file(preds), "thumos14", "test")
    check_structure(out, ["coverage", "length", "num-instances"])
    sixth = 1 / 6
    assert_close(out["extra"]["false_positive_all_top10G"], profile(TP=sixth, DD=sixth, WL=sixth, LOC=sixth,
                                                                   CONF=sixth, BG=sixth))  # fmt: skip
    prof = out["false_positive"]["profile"]  # groups of 1: A TP DD LOC BG; B CONF WL
    assert_close(
        prof,
        {"1G": profile(TP=0.5, CONF=0.5), "2G": profile(DD=0.5, WL=0.5), "3G": profile(LOC=1.0),
         "4G": profile(BG=1.0), **{g: NONE_PROFILE for g in GROUPS[4:]}},
    )  # fmt: skip
    # gains: A is already perfect (TP first); B has no TP → AP 0 whatever is removed
    assert out["false_positive"]["average_mAP_N_gain"] == dict.fromkeys(FP_ERROR_TYPES, 0.0)


def test_average_number_of_instances_is_a_true_division():
    # 3 kept GT / 2 classes → N_avg = 1.5 (the pre-2021 code floored it to 1). A: FP then TP (R .5):
    # P = (.5·1.5) / (.5·1.5 + 1) = 3/7 → AP_A = .5·3/7 = 3/14; B has no prediction → 0. mAP_N = 3/28.
    db = {"v": video("test", 100.0, ("A", 0, 10), ("A", 20, 30), ("B", 40, 50))}
    preds = [("v", "A", 60, 70, 0.9), ("v", "A", 0, 10, 0.8)]
    out = diagnose(gt_file(db), pred_file(preds), "thumos14", "test")
    assert out["extra"]["average_num_instance_per_class"] == 1.5
    assert out["average_mAP_N"] == pytest.approx(3 / 28, rel=1e-12)
    # FN: the A GT [20,30] and B's GT are missed; all three are length M (10 s): 2 / ((3/3)·3)
    assert out["false_negative"]["length"]["M"] == pytest.approx(2 / 3, rel=1e-12)


def test_drops_gt_id_gaps_and_a_class_left_without_gt():
    # v (10 s): g0 A [0,5] cov .5; g1 B [0,20] cov 2 > 1 → dropped; g2 A [6,6] start = end → dropped; g3 A [8,9].
    # All four count in num-instances (4 → S). B stays in the class index (Q4): N_avg = 2 kept / 2 classes = 1.
    db = {"v": video("test", 10.0, ("A", 0, 5), ("B", 0, 20), ("A", 6, 6), ("A", 8, 9))}
    gt = gt_file(db)
    preds = [("v", "A", 0, 5, 0.9), ("v", "A", 8, 9, 0.8), ("v", "B", 0, 20, 0.7)]
    out = diagnose(gt, pred_file(preds), "thumos14", "test")
    check_structure(out, ["coverage", "length", "num-instances"])
    extra = out["extra"]
    assert (extra["num_ground_truth"], extra["num_dropped_coverage"], extra["num_dropped_segment"]) == (2, 1, 1)
    assert extra["average_num_instance_per_class"] == 1.0
    # B: predictions but no kept GT → AP NaN → null (Q4); the FP analysis's limit drops B's prediction → AP 0.
    assert out["average_mAP_N"] is None and extra["false_negative_average_mAP_N"] is None
    assert out["false_positive"]["average_mAP_N"] == 0.5  # A: P 1 at R .5 and 1 → 1; B: 0
    assert extra["num_predictions_top10G"] == 2
    assert extra["sensitivity_relative_change"]["length"] == {"min": None, "max": None}
    # g3 (gt-id 3 after the gap) is matched by p1: length XS {g3} → 1, S {g0} → 1; nothing missed.
    assert out["sensitivity"]["length"] == {"XS": 1.0, "S": 1.0, "M": None, "L": None, "XL": None}
    assert out["false_negative"]["length"] == {"XS": 0.0, "S": 0.0, "M": None, "L": None, "XL": None}
    assert out["false_negative"]["num-instances"] == {"XS": None, "S": 0.0, "M": None, "L": None}
    # a NaN coverage is dropped by the coverage step too
    gt["database"]["v"]["annotations"][3]["coverage"] = float("nan")
    out = diagnose(gt, pred_file(preds), "thumos14", "test")
    assert (out["extra"]["num_ground_truth"], out["extra"]["num_dropped_coverage"]) == (1, 2)


def test_q13_value_outside_the_edges_is_left_out_with_a_warning():
    db = {"v": video("test", 100.0, ("A", 0, 10), ("A", 20, 30))}
    gt = gt_file(db)
    gt["database"]["v"]["annotations"][0]["length"] = -1.0  # below the first length edge (0)
    with pytest.warns(UserWarning, match="1 ground-truth instance"):
        out = diagnose(gt, pred_file([("v", "A", 20, 30, 0.9)]), "thumos14", "test")
    assert out["extra"]["num_out_of_edges"] == {"coverage": 0, "length": 1, "num-instances": 0}
    assert out["sensitivity"]["length"] == {"XS": None, "S": None, "M": 1.0, "L": None, "XL": None}
    assert out["false_negative"]["length"] == {"XS": None, "S": None, "M": 0.0, "L": None, "XL": None}
    assert out["false_negative"]["coverage"]["XL"] == 0.5  # both .1 → XL; g0 missed: 1 / ((2/2)·2)


def test_q12_prediction_validation():
    gt = gt_file({"v": video("test", 100.0, ("A", 0, 10))})
    with pytest.raises(ValueError, match="reversed"):
        diagnose(gt, pred_file([("v", "A", 10, 5, 0.9)]), "thumos14", "test")
    with pytest.raises(ValueError):
        diagnose(gt, pred_file([("v", "A", 0, 5, float("nan"))]), "thumos14", "test")
    with pytest.raises(ValueError, match="external_data"):
        diagnose(gt, {"results": {}, "version": "x"}, "thumos14", "test")
    with pytest.raises(ValueError, match="taxonomy"):
        diagnose({"database": {}, "version": "x"}, pred_file([]), "thumos14", "test")
    # zero-length and unknown-label predictions: the first is kept (FP), the second ignored
    out = diagnose(gt, pred_file([("v", "A", 3, 3, 0.9), ("v", "Z", 0, 10, 0.8)]), "thumos14", "test")
    assert (out["extra"]["num_predictions"], out["extra"]["num_predictions_ignored"]) == (1, 1)
    assert out["extra"]["false_positive_all_top10G"] == profile(BG=1.0)  # tIoU 0 with [0,10]


def test_no_prediction_at_all():
    db = {"v1": video("test", 100.0, ("A", 0, 10), ("B", 20, 30)), "v2": video("test", 50.0)}
    out = diagnose(gt_file(db), pred_file([]), "thumos14", "test")
    check_structure(out, ["coverage", "length", "num-instances"])
    assert out["average_mAP_N"] == 0.0 and out["false_positive"]["average_mAP_N"] == 0.0
    assert all(out["false_positive"]["profile"][g] == NONE_PROFILE for g in GROUPS)
    assert out["extra"]["false_positive_all_top10G"] == NONE_PROFILE
    assert out["sensitivity"]["length"]["M"] == 0.0 and out["false_negative"]["length"]["M"] == 1.0


# --- characteristics (§2) ------------------------------------------------------------------------------------------


def test_characteristics():
    db = {
        "a": video("test", 10.0, ("A", 1, 4), ("B", 2, 2.5)),
        "b": {"subset": "test", "annotations": []},  # no annotation: no duration needed
    }
    out = characteristics(db)
    assert "length" not in db["a"]["annotations"][0]  # the input is not modified
    a0, a1 = out["a"]["annotations"]
    assert (a0["length"], a0["coverage"], a0["num-instances"]) == (3.0, 0.3, 2)
    assert (a1["length"], a1["coverage"], a1["num-instances"]) == (0.5, 0.05, 2)
    out = characteristics(db, durations={"a": 20.0})
    assert out["a"]["annotations"][0]["coverage"] == 0.15


def test_bucket_edges_are_right_closed_with_the_lowest_included():
    edges, labels = BINS["thumos14"]["length"]
    got = [bucket_of(v, edges, labels) for v in (0.0, 3.0, 3.0000001, 6.0, 12.0, 18.0, 18.5, math.inf, -0.1)]
    assert got == ["XS", "XS", "S", "S", "M", "L", "XL", "XL", None]
    edges, labels = BINS["thumos14"]["num-instances"]
    assert [bucket_of(v, edges, labels) for v in (1, 2, 40, 41, 80, 81)] == ["XS", "S", "S", "M", "M", "L"]
    edges, labels = BINS["activitynet"]["num-instances"]
    assert [bucket_of(v, edges, labels) for v in (1, 4, 5, 8, 9)] == ["XS", "S", "M", "M", "L"]
    edges, labels = BINS["activitynet"]["coverage"]
    assert [bucket_of(v, edges, labels) for v in (0.6, 0.6000000000000001, 0.61, 1.0, 1.01, math.nan)] == [
        "M", "M", "L", "XL", None, None]  # fmt: skip


# --- properties ----------------------------------------------------------------------------------------------------

flags_strategy = st.lists(st.booleans(), max_size=25)


@settings(max_examples=200, deadline=None)
@given(flags=flags_strategy, extra_gt=st.integers(0, 5), n_avg=st.floats(0.5, 200.0))
def test_removing_false_positives_cannot_lower_ap(flags, extra_gt, n_avg):
    npos = sum(flags) + extra_gt
    if npos == 0:
        return
    ap = average_precision_n(flags, npos, n_avg)
    assert 0.0 <= ap <= 1.0
    rng = random.Random(len(flags) * 31 + extra_gt)
    some_removed = [f for f in flags if f or rng.random() < 0.5]
    assert average_precision_n(some_removed, npos, n_avg) >= ap - 1e-15
    assert average_precision_n([f for f in flags if f], npos, n_avg) >= ap - 1e-15


@settings(max_examples=200, deadline=None)
@given(row=st.lists(st.one_of(st.none(), st.integers(0, 50)), max_size=25), extra=st.integers(0, 5),
       n_avg=st.floats(0.01, 200.0))  # fmt: skip
def test_theta_zero_discard_is_a_no_op(row, extra, n_avg):
    npos = sum(m is not None for m in row) + extra
    assert discard_low_precision(row, npos, n_avg, 0.0) == row
    kept = discard_low_precision(row, npos, n_avg, 0.05)
    assert all(k is None or k == m for k, m in zip(kept, row, strict=True))  # only TP → FP


segment = st.tuples(st.integers(0, 40), st.integers(0, 12)).map(lambda se: (se[0], se[0] + se[1]))


@st.composite
def small_problem(draw):
    """2–3 videos, 2 classes, a few GT (some zero-length, dropped) and predictions (some on a GT-less video)."""
    videos = {}
    for i in range(draw(st.integers(2, 3))):
        anns = draw(st.lists(st.tuples(st.sampled_from("AB"), segment), max_size=4))
        videos[f"v{i}"] = video("test", 60.0, *[(l, s, e) for l, (s, e) in anns])
    preds = draw(st.lists(st.tuples(st.sampled_from(["v0", "v1", "v2", "vX"]), st.sampled_from("AB"), segment,
                                    st.integers(0, 6)), max_size=12))  # fmt: skip
    return videos, [(v, l, s, e, sc / 6) for v, l, (s, e), sc in preds]


@settings(max_examples=60, deadline=None)
@given(problem=small_problem())
def test_properties_on_random_small_problems(problem):
    videos, preds = problem
    gt = gt_file(videos)
    labels = {a["label"] for v in gt["database"].values() for a in v["annotations"]}
    if not labels:
        with pytest.raises(ValueError):
            diagnose(gt, pred_file(preds), "thumos14", "test")
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = diagnose(gt, pred_file(preds), "thumos14", "test")
    check_structure(out, ["coverage", "length", "num-instances"])
    extra = out["extra"]
    for x in ("coverage", "length", "num-instances"):
        filled = [v for v in out["sensitivity"][x].values() if v is not None]
        assert bool(filled) == (extra["num_ground_truth"] > 0)
    if extra["num_ground_truth"] > 0 and extra["num_predictions_top10G"] > 0:
        assert extra["false_positive_all_top10G"][TP] is not None


# --- smoke test on THUMOS14 test ground truth ----------------------------------------------------------------------


def test_smoke_thumos14_test(real_annotations):
    db = json.loads((real_annotations / "thumos14" / "annotations.json").read_text())
    gt = gt_file(db)
    rng = np.random.default_rng(0)
    rows = []
    for vid, entry in db.items():
        if entry["subset"] != "test":
            continue
        for ann in entry["annotations"]:
            s, e = ann["segment"]
            length = e - s
            j = rng.normal(0, 0.3 * length, 2)
            rows.append((vid, ann["label"], s + j[0], max(s + j[0], e + j[1]), 0.0))
            if rng.random() < 0.5:
                label = rng.choice(["BaseballPitch", "Diving", "Billiards"])
                start = rng.uniform(0, entry["duration"])
                rows.append((vid, str(label), start, start + rng.uniform(0.5, 10), 0.0))
    scores = rng.permutation(len(rows)) / len(rows)  # distinct scores
    rows = [(v, l, float(s), float(e), float(sc)) for (v, l, s, e, _), sc in zip(rows, scores, strict=True)]
    out = diagnose(gt, pred_file(rows), "thumos14", "test")
    check_structure(out, ["coverage", "length", "num-instances"])
    extra = out["extra"]
    assert extra["num_ground_truth"] == 3358 and extra["average_num_instance_per_class"] == 167.9  # §1.4
    assert extra["num_predictions"] == len(rows)
    assert 0.0 < out["average_mAP_N"] < 1.0
    assert out["false_positive"]["profile"]["1G"][TP] > out["false_positive"]["profile"]["2G"][TP]
    assert sum(extra["false_positive_all_top10G"].values()) == pytest.approx(1.0)
    for x, buckets in out["sensitivity"].items():
        values = [v / out["average_mAP_N"] for v in buckets.values() if v is not None]
        assert extra["sensitivity_relative_change"][x]["min"] == pytest.approx(min(values), rel=1e-12)
        assert extra["sensitivity_relative_change"][x]["max"] == pytest.approx(max(values), rel=1e-12)
