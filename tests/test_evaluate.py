"""Detection mAP (method §10): hand-computed cases, properties, the slow reference, and the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_evaluate import ref_average_precision, ref_detection_map

import evaluate
from evaluate import average_precision_per_class, detection_map

ROOT = Path(__file__).resolve().parents[1]
THUMOS_TIOU = np.linspace(0.1, 0.7, 7)
ANET_TIOU = np.linspace(0.5, 0.95, 10)


def gt(label, s, e):
    return {"label": label, "segment": [s, e]}


def pr(label, s, e, score):
    return {"label": label, "score": score, "segment": [s, e]}


# --- hand-computed cases ---------------------------------------------------------------------------------------


def test_perfect_predictions_give_one():
    ground_truth = {"v1": [gt("A", 0, 10), gt("A", 20, 30)], "v2": [gt("B", 5, 15)]}
    predictions = {"v1": [pr("A", 0, 10, 0.3), pr("A", 20, 30, 0.9)], "v2": [pr("B", 5, 15, 0.1)]}
    np.testing.assert_array_equal(detection_map(ground_truth, predictions, THUMOS_TIOU), np.ones(7))


def test_duplicate_is_a_false_positive():
    # sorted: [0,10] .9 TP (P 1, R .5); duplicate [0,10] .8 FP (P .5, R .5); [20,30] .7 TP (P 2/3, R 1).
    # monotone precision at the recall changes: R .5 → 1, R 1 → 2/3.  AP = .5·1 + .5·2/3 = 5/6
    ground_truth = {"v1": [gt("A", 0, 10), gt("A", 20, 30)]}
    predictions = {"v1": [pr("A", 0, 10, 0.9), pr("A", 0, 10, 0.8), pr("A", 20, 30, 0.7)]}
    np.testing.assert_allclose(detection_map(ground_truth, predictions, [0.5]), [5 / 6], rtol=1e-15)


def test_prediction_in_a_video_without_that_class_and_class_without_predictions():
    # class A: v2 has no A, so [0,10] .9 there is FP (P 0, R 0); then v1's TP (P .5, R 1) → AP = 1·.5
    # class B: no predictions → AP 0.  mAP = (.5 + 0) / 2
    ground_truth = {"v1": [gt("A", 0, 10)], "v2": [gt("B", 0, 10)]}
    predictions = {"v2": [pr("A", 0, 10, 0.9)], "v1": [pr("A", 0, 10, 0.5)]}
    classes, ap = average_precision_per_class(ground_truth, predictions, [0.1, 0.5])
    assert classes == ["A", "B"]
    np.testing.assert_allclose(ap, [[0.5, 0.5], [0.0, 0.0]], rtol=1e-15)
    np.testing.assert_allclose(detection_map(ground_truth, predictions, [0.1, 0.5]), [0.25, 0.25])


@pytest.mark.parametrize("threshold, pred_end", [(0.5, 5.0), (0.7, 7.0), (0.3, 3.0)])
def test_tiou_exactly_at_threshold_counts(threshold, pred_end):
    # GT [0, 10], prediction [0, x]: tIoU = x / 10, exactly the float64 threshold (0.7 is the case a float32
    # evaluator misses: float32(0.7) < 0.7)
    th = THUMOS_TIOU[np.isclose(THUMOS_TIOU, threshold)][0]
    assert pred_end / 10.0 == th  # exact in float64, and equal to numpy.linspace's value
    ground_truth = {"v": [gt("A", 0.0, 10.0)]}
    predictions = {"v": [pr("A", 0.0, pred_end, 0.5)]}
    ap = detection_map(ground_truth, predictions, THUMOS_TIOU)
    np.testing.assert_array_equal(ap, (THUMOS_TIOU <= th).astype(float))  # match up to and including th


def test_score_ties_keep_input_order():
    # two GT; a TP and a FP with equal scores.  TP first: P 1 at R .5 → AP .5.  FP first: P 0 then .5 → AP .25
    ground_truth = {"v1": [gt("A", 0, 10), gt("A", 50, 60)]}
    hit, miss = pr("A", 0, 10, 0.5), pr("A", 100, 110, 0.5)
    assert detection_map(ground_truth, {"v1": [hit, miss]}, [0.5]) == pytest.approx([0.5], abs=1e-15)
    assert detection_map(ground_truth, {"v1": [miss, hit]}, [0.5]) == pytest.approx([0.25], abs=1e-15)
    # across videos: the order of the videos in the predictions is the input order
    ground_truth = {"v1": [gt("A", 0, 10), gt("A", 50, 60)], "v2": []}
    miss_v2 = pr("A", 0, 10, 0.5)
    assert detection_map(ground_truth, {"v1": [hit], "v2": [miss_v2]}, [0.5]) == pytest.approx([0.5], abs=1e-15)
    assert detection_map(ground_truth, {"v2": [miss_v2], "v1": [hit]}, [0.5]) == pytest.approx([0.25], abs=1e-15)


def test_equal_tiou_ground_truth_first_listed_is_taken():
    # [5,15] has tIoU 1/3 with both GT: it takes the first listed, [0,10]; then [0,10] (tIoU 1 with the locked
    # one, 0 with [10,20]) is a FP at 0.3: TP, FP → AP .5 (taking [10,20] first would give 1.0)
    ground_truth = {"v": [gt("A", 0, 10), gt("A", 10, 20)]}
    predictions = {"v": [pr("A", 5, 15, 0.9), pr("A", 0, 10, 0.8)]}
    assert detection_map(ground_truth, predictions, [0.3]) == pytest.approx([0.5], abs=1e-15)


def test_match_takes_the_highest_tiou_unlocked_ground_truth():
    # [0,10] .9 takes GT [0,10] (tIoU 1, not [0,12] at 10/12); then [0,12] .8 takes [0,12] → both TP → AP 1
    ground_truth = {"v": [gt("A", 0, 12), gt("A", 0, 10)]}
    predictions = {"v": [pr("A", 0, 10, 0.9), pr("A", 0, 12, 0.8)]}
    assert detection_map(ground_truth, predictions, [0.9]) == pytest.approx([1.0], abs=1e-15)


def test_unknown_labels_and_videos_are_ignored_and_v_prefix_matches():
    ground_truth = {"abc": [gt("A", 0, 10)], "v_xyz": [gt("A", 20, 30)]}
    predictions = {
        "v_abc": [pr("A", 0, 10, 0.9), pr("Other", 0, 10, 1.0)],
        "xyz": [pr("A", 20, 30, 0.8)],
        "nowhere": [pr("A", 0, 10, 0.95)],
    }
    np.testing.assert_array_equal(detection_map(ground_truth, predictions, ANET_TIOU), np.ones(10))


def test_empty_segments_never_match():
    # ground truth and prediction both [5, 5]: tIoU 0/0 is nan, never ≥ a threshold → a false positive, AP 0
    ground_truth = {"v": [gt("A", 5.0, 5.0), gt("A", 0.0, 2.0)]}
    predictions = {"v": [pr("A", 5.0, 5.0, 0.9), pr("A", 0.0, 2.0, 0.5)]}
    # FP (P 0) then TP (P .5, R .5) → AP = .5·.5
    assert detection_map(ground_truth, predictions, [0.5]) == pytest.approx([0.25], abs=1e-15)
    assert ref_detection_map(ground_truth, predictions, [0.5]) == pytest.approx([0.25], abs=1e-15)


def test_no_predictions_and_no_ground_truth():
    assert detection_map({"v": [gt("A", 0, 1)]}, {}, [0.5]).tolist() == [0.0]
    with pytest.raises(ValueError, match="no action instances"):
        detection_map({"v": []}, {"v": [pr("A", 0, 1, 1.0)]}, [0.5])


# --- against the slow reference --------------------------------------------------------------------------------


def random_dataset(rng: np.random.Generator, n_videos=6, n_classes=3, coarse=True):
    """GT and predictions on a coarse grid (many equal tIoUs and equal scores) or continuous values."""
    labels = [f"c{i}" for i in range(n_classes)]

    def segment():
        if coarse:
            s = float(rng.integers(0, 30))
            return s, s + float(rng.integers(1, 8))
        s = float(rng.uniform(0, 30))
        return s, s + float(rng.uniform(0.2, 8))

    ground_truth, predictions = {}, {}
    for v in range(n_videos):
        ground_truth[f"vid{v}"] = [gt(labels[rng.integers(n_classes)], *segment()) for _ in range(rng.integers(0, 5))]
        scores = rng.integers(1, 6, 12) / 5 if coarse else rng.random(12)
        preds = [pr(labels[rng.integers(n_classes)], *segment(), float(s)) for s in scores[: rng.integers(0, 13)]]
        predictions[f"vid{v}"] = preds
    predictions["not_evaluated"] = [pr("c0", 0.0, 5.0, 0.5)]
    predictions["vid0"] = predictions.get("vid0", []) + [pr("unknown", 0.0, 5.0, 0.99)]
    return ground_truth, predictions


@pytest.mark.parametrize("seed", range(40))
def test_matches_reference(seed):
    rng = np.random.default_rng(seed)
    ground_truth, predictions = random_dataset(rng, n_videos=3 + seed % 7, n_classes=1 + seed % 4, coarse=seed % 2 == 0)
    if not any(ground_truth.values()):
        ground_truth["vid0"].append(gt("c0", 1.0, 4.0))
    thresholds = THUMOS_TIOU if seed % 3 else ANET_TIOU
    classes, ap = average_precision_per_class(ground_truth, predictions, thresholds)
    ref_classes, ref_ap = ref_average_precision(ground_truth, predictions, thresholds)
    assert classes == ref_classes
    np.testing.assert_allclose(ap, np.array(ref_ap).reshape(ap.shape), rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        detection_map(ground_truth, predictions, thresholds), ref_detection_map(ground_truth, predictions, thresholds),
        rtol=0, atol=1e-12,
    )  # fmt: skip


# --- properties --------------------------------------------------------------------------------------------------

segment_st = st.tuples(st.integers(0, 40), st.integers(1, 10)).map(lambda t: [float(t[0]), float(t[0] + t[1])])
gt_st = st.dictionaries(
    st.sampled_from([f"v{i}" for i in range(5)]),
    st.lists(st.tuples(st.sampled_from("AB"), segment_st), max_size=4),
    min_size=1,
)
pred_st = st.lists(
    st.tuples(st.sampled_from([f"v{i}" for i in range(6)]), st.sampled_from("ABC"), segment_st, st.floats(0, 1)),
    max_size=25,
)


def build(gt_rows, pred_rows):
    ground_truth = {v: [gt(label, *seg) for label, seg in rows] for v, rows in gt_rows.items()}
    predictions: dict[str, list] = {}
    for v, label, seg, score in pred_rows:
        predictions.setdefault(v, []).append(pr(label, *seg, score))
    return ground_truth, predictions


@settings(max_examples=60, deadline=None)
@given(gt_st, pred_st)
def test_ap_in_unit_interval(gt_rows, pred_rows):
    ground_truth, predictions = build(gt_rows, pred_rows)
    _, ap = average_precision_per_class(ground_truth, predictions, THUMOS_TIOU)
    assert np.all((ap >= 0) & (ap <= 1 + 1e-12))


@settings(max_examples=60, deadline=None)
@given(gt_st, pred_st, segment_st, st.sampled_from("AB"))
def test_top_scored_perfect_prediction_never_lowers_ap(gt_rows, pred_rows, segment, label):
    # "duplicate-free": the new prediction hits a ground-truth instance that no other prediction can match
    # (it sits in a video of its own), so it cannot displace an existing match
    ground_truth, predictions = build(gt_rows, pred_rows)
    ground_truth["fresh"] = [gt(label, *segment)]
    classes, before = average_precision_per_class(ground_truth, predictions, THUMOS_TIOU)
    top = max((p["score"] for ps in predictions.values() for p in ps), default=0.0) + 1.0
    predictions["fresh"] = [pr(label, *segment, top)]
    classes_after, after = average_precision_per_class(ground_truth, predictions, THUMOS_TIOU)
    assert classes == classes_after
    row = classes.index(label)
    assert np.all(after[row] >= before[row] - 1e-12)
    assert np.all(after[row] > 0)


@settings(max_examples=60, deadline=None)
@given(gt_st, pred_st, st.randoms(use_true_random=False))
def test_permuting_videos_keeps_map_when_scores_are_distinct(gt_rows, pred_rows, random):
    ground_truth, predictions = build(gt_rows, pred_rows)
    scores = [p["score"] for ps in predictions.values() for p in ps]
    if len(set(scores)) < len(scores):
        return  # ties are broken by input order, so permuting may change AP (tested above)
    if not any(ground_truth.values()):
        return
    m = detection_map(ground_truth, predictions, THUMOS_TIOU)
    gt_keys, pred_keys = list(ground_truth), list(predictions)
    random.shuffle(gt_keys)
    random.shuffle(pred_keys)
    shuffled = detection_map({k: ground_truth[k] for k in gt_keys}, {k: predictions[k] for k in pred_keys}, THUMOS_TIOU)
    np.testing.assert_array_equal(m, shuffled)


# --- command line ------------------------------------------------------------------------------------------------


def table_cells(line: str) -> list[str]:
    """Cells of one row of utils.format_table's Markdown table (`| a | b |` → ["a", "b"])."""
    return [c.strip() for c in line.strip().strip("|").split("|")]


def parse_map_row(out: str, name: str = "mAP") -> list[float]:
    row = next(line for line in out.splitlines() if line.startswith("|") and table_cells(line)[0] == name)
    return [float(x) for x in table_cells(row)[1:]]


def write_json(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj))
    return path


def test_cli_flat_gt_and_results_layout(tmp_path, capsys):
    # THUMOS-style ids: thumos14 protocol guessed, subset "test", dropped video_test_0000270 not evaluated
    ann = {
        "video_test_0000001": {"subset": "test", "duration": 50.0, "annotations": [gt("A", 0, 10), gt("A", 20, 30)]},
        "video_test_0000002": {"subset": "test", "duration": 50.0, "annotations": [gt("B", 0, 10)]},
        "video_test_0000270": {"subset": "test", "duration": 50.0, "annotations": [gt("B", 30, 40)]},
        "video_validation_0000001": {"subset": "val", "duration": 50.0, "annotations": [gt("C", 0, 10)]},
    }
    preds = {
        "results": {
            "video_test_0000001": [pr("A", 0, 10, 0.9), pr("A", 0, 10, 0.8), pr("A", 20, 30, 0.7)],
            "video_test_0000002": [pr("B", 0, 5, 0.6)],  # tIoU 0.5 with [0, 10]
            "video_test_0000270": [pr("B", 30, 40, 0.99)],  # dropped video: ignored
        },
        "version": "x",
    }
    rc = evaluate.main([str(write_json(tmp_path / "gt.json", ann)), str(write_json(tmp_path / "p.json", preds))])
    out = capsys.readouterr()
    assert rc == 0
    assert "thumos14 test: 2 videos, 2 classes" in out.out
    # A: 5/6 at every threshold (duplicate FP); B: 1 up to 0.5, 0 above → mAP = (5/6 + [1,1,1,1,1,0,0]) / 2
    b = np.array([1, 1, 1, 1, 1, 0, 0])
    expected = 100 * (5 / 6 + b) / 2
    assert parse_map_row(out.out) == pytest.approx([*np.round(expected, 2), round(expected.mean(), 2)], abs=0.006)
    assert "note:" in out.err  # the dropped video's predictions are reported as ignored


def test_cli_activitynet_database_bare_predictions_per_class(tmp_path, capsys):
    ann = {
        "version": "1.3",
        "database": {
            "abc": {"subset": "validation", "duration": 60.0, "annotations": [gt("Run", 0, 10)]},
            "def": {"subset": "validation", "duration": 60.0, "annotations": [gt("Jump", 10, 20)]},
            "ghi": {"subset": "training", "duration": 60.0, "annotations": [gt("Swim", 10, 20)]},
        },
    }
    preds = {"v_abc": [pr("Run", 0, 10, 0.5)], "v_def": [pr("Jump", 10, 17, 0.5)]}  # Jump: tIoU 0.7
    rc = evaluate.main(
        [str(write_json(tmp_path / "gt.json", ann)), str(write_json(tmp_path / "p.json", preds)), "--per_class"]
    )
    out = capsys.readouterr().out
    assert rc == 0 and "activitynet validation: 2 videos, 2 classes" in out
    jump = (ANET_TIOU <= 0.7).astype(float)
    assert parse_map_row(out, "Run") == pytest.approx([100.0] * 10 + [100.0])
    assert parse_map_row(out, "Jump") == pytest.approx([*(100 * jump), 100 * jump.mean()], abs=0.006)
    assert parse_map_row(out) == pytest.approx([*(50 + 50 * jump), 50 + 50 * jump.mean()], abs=0.006)


def test_cli_thumos_txt_folder_ambiguous_and_tiou(tmp_path, capsys):
    folder = tmp_path / "annotations_test"
    folder.mkdir()
    (folder / "HighJump_test.txt").write_text("video_test_0000010 1.0 3.0\nvideo_test_0000010  10.0 12.0\n")
    (folder / "Diving_test.txt").write_text("video_test_0000011 5.0 9.0\n")
    (folder / "Ambiguous_test.txt").write_text("video_test_0000010 4.0 6.0\nvideo_test_0000011 20.0 21.0\n")
    preds = {
        "video_test_0000010": [
            pr("HighJump", 4.5, 5.5, 0.95),  # overlaps an ambiguous segment: dropped with --ambiguous
            pr("HighJump", 1.0, 3.0, 0.9),
            pr("HighJump", 10.0, 12.0, 0.8),
        ],
        "video_test_0000011": [pr("Diving", 5.0, 9.0, 0.7), pr("Diving", 21.0, 22.0, 0.6)],  # 2nd touches: kept
    }
    p = str(write_json(tmp_path / "p.json", preds))
    assert evaluate.main([str(tmp_path), p, "--tiou", "0.5", "--per_class"]) == 0
    out = capsys.readouterr().out
    # without the filter, HighJump: FP, TP, TP → P 0, .5, 2/3 at R 0, .5, 1 → AP = .5·2/3 + .5·2/3 = 2/3
    assert parse_map_row(out, "HighJump")[0] == pytest.approx(100 * 2 / 3, abs=0.006)
    amb = str(folder / "Ambiguous_test.txt")
    assert evaluate.main([str(tmp_path), p, "--tiou", "0.5", "--per_class", "--ambiguous", amb]) == 0
    out = capsys.readouterr().out
    assert parse_map_row(out, "HighJump") == [100.0, 100.0] and parse_map_row(out, "Diving") == [100.0, 100.0]
    assert "ambiguous filter: " + amb in out


def test_cli_real_thumos_annotations_perfect_predictions(real_annotations, tmp_path, capsys):
    ann_path = real_annotations / "thumos14" / "annotations.json"
    ann = json.loads(ann_path.read_text())
    preds = {v: [{**a, "score": 1.0} for a in e["annotations"]] for v, e in ann.items() if e["subset"] == "test"}
    rc = evaluate.main([str(ann_path), str(write_json(tmp_path / "p.json", preds)), "--dataset", "thumos14"])
    out = capsys.readouterr().out
    assert rc == 0 and "thumos14 test: 210 videos, 20 classes" in out
    assert parse_map_row(out) == [100.0] * 8


@pytest.mark.parametrize(
    "content, problem",
    [
        ('{"results": {"v": [', "not valid JSON"),
        ('{"results": {"v": [{"label": "A", "score": "high", "segment": [0, 1]}]}}', "prediction 0"),
        ('{"v": {"label": "A"}}', "expected a list of predictions"),
        ("[1, 2]", "expected {'results'"),
    ],
)
def test_cli_malformed_predictions_one_line_exit_2(tmp_path, capsys, content, problem):
    ann = {"video_test_0000001": {"subset": "test", "annotations": [gt("A", 0, 10)]}}
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    assert evaluate.main([str(write_json(tmp_path / "gt.json", ann)), str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {bad}: ") and problem in err


def test_cli_subprocess_exit_code_and_bad_ground_truth(tmp_path):
    bad = tmp_path / "gt.json"
    bad.write_text("{not json")
    res = subprocess.run(
        [sys.executable, str(ROOT / "evaluate.py"), str(bad), str(bad)], capture_output=True, text=True, cwd=tmp_path
    )
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.startswith(f"error: {bad}: not valid JSON") and res.stderr.count("\n") == 1


# --- bad and odd segments in files (issue 11) ----------------------------------------------------------------------


@pytest.fixture
def fresh_warnings(monkeypatch):
    import utils

    monkeypatch.setattr(utils, "_WARNED", set())


def test_cli_reversed_segments_are_one_line_errors(tmp_path, capsys):
    ann = {"video_test_0000001": {"subset": "test", "duration": 30.0, "annotations": [gt("A", 0, 10)]}}
    good = write_json(tmp_path / "gt.json", ann)
    preds = write_json(tmp_path / "p.json", {"video_test_0000001": [pr("A", 0, 10, 0.9), pr("A", 9.0, 3.0, 0.5)]})
    assert evaluate.main([str(good), str(preds)]) == 2
    assert capsys.readouterr().err == (
        f"error: {preds}: video 'video_test_0000001' prediction 1: segment [9.0, 3.0] ends before it starts\n"
    )
    ann["video_test_0000001"]["annotations"].append(gt("A", 9.0, 3.0))  # this one used to lower mAP silently
    bad = write_json(tmp_path / "gt_bad.json", ann)
    ok = write_json(tmp_path / "p_ok.json", {"video_test_0000001": [pr("A", 0, 10, 0.9)]})
    assert evaluate.main([str(bad), str(ok)]) == 2
    assert capsys.readouterr().err == (
        f"error: {bad}: video 'video_test_0000001': A segment [9.0, 3.0] ends before it starts\n"
    )


def test_cli_odd_segments_warn_once_and_score_as_published(tmp_path, capsys, fresh_warnings):
    """Zero-length and out-of-duration ground truth is kept (it counts, and can never be matched: recall < 1);
    zero-length predictions are kept as false positives; one warning line per file says how many."""
    ann = {
        "video_test_0000001": {
            "subset": "test",
            "duration": 30.0,
            "annotations": [gt("A", 0, 10), gt("A", 20, 20), gt("A", 40, 45)],  # zero length; past the end
        }
    }
    gt_path = write_json(tmp_path / "gt.json", ann)
    preds = [pr("A", 0, 10, 0.9), pr("A", 20, 20, 0.8), pr("A", 40, 45, 0.7), pr("A", -1, 5, 0.1)]
    p_path = write_json(tmp_path / "p.json", {"video_test_0000001": preds})
    assert evaluate.main([str(gt_path), str(p_path), "--tiou", "0.5"]) == 0
    out, err = capsys.readouterr()
    assert err.splitlines() == [
        f"warning: {gt_path}: 2 segments kept as given: 1 have zero length, 1 end over 1 s past their video's "
        "duration (see docs/evaluate.md)",
        f"warning: {p_path}: 2 predictions kept as given: 1 have zero length, 1 start before 0 s "
        "(see docs/evaluate.md)",
    ]
    # TP [0,10], FP [20,20] (0/0 never matches), TP [40,45] (matched like any other), FP → P 1, .5, 2/3 at R 1/3, 2/3
    expected = (1 / 3) * 1 + (1 / 3) * (2 / 3)
    assert parse_map_row(out) == pytest.approx([100 * expected] * 2, abs=0.006)
    gt_list = {"video_test_0000001": ann["video_test_0000001"]["annotations"]}
    p_list = {"video_test_0000001": [{**p, "segment": list(map(float, p["segment"]))} for p in preds]}
    assert detection_map(gt_list, p_list, [0.5]) == pytest.approx([expected], abs=1e-12)


# --- the array path (evaluate.Detections / match / class_ap) -------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_detections_round_trip_and_array_path_match_reference(seed):
    rng = np.random.default_rng(50 + seed)
    ground_truth, predictions = random_dataset(rng, n_videos=2 + seed, n_classes=2 + seed % 3, coarse=True)
    if not any(ground_truth.values()):
        ground_truth["vid0"].append(gt("c0", 1.0, 4.0))
    if seed % 2:  # all-equal scores: the order is the input order everywhere
        predictions = {v: [dict(p, score=0.5) for p in ps] for v, ps in predictions.items()}
    predictions["empty"] = []
    det = evaluate.Detections.from_dict(predictions)
    assert det.as_dict() == predictions
    m = evaluate.match(ground_truth, det, THUMOS_TIOU)
    classes, ref = ref_average_precision(ground_truth, predictions, THUMOS_TIOU)
    assert m.classes == classes and m.tp.shape == (len(m.video), 7)
    np.testing.assert_allclose(evaluate.class_ap(m), np.array(ref).reshape(-1, 7), rtol=0, atol=1e-12)
    # the blocks cut the sorted rows where class, score or video changes, and cover them exactly
    assert m.blocks[0] == 0 and m.blocks[-1] == len(m.video) and np.all(np.diff(m.blocks) > 0)


def test_empty_detections_give_zero_ap():
    det = evaluate.Detections.from_dict({})
    assert det.as_dict() == {} and len(det.score) == 0
    m = evaluate.match({"v": [gt("A", 0, 1)], "w": []}, det, THUMOS_TIOU)
    assert evaluate.class_ap(m).tolist() == [[0.0] * 7]
