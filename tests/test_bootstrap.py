"""Bootstrap intervals (bootstrap.py) against a slow oracle: each resample built literally as ground-truth and
prediction dicts with the drawn videos copied under new names, scored by the reference evaluator."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from reference_evaluate import ref_average_precision

import bootstrap
import evaluate
from evaluate import Detections, class_ap, match

THUMOS_TIOU = np.linspace(0.1, 0.7, 7)


def gt(label, s, e):
    return {"label": label, "segment": [s, e]}


def pr(label, s, e, score):
    return {"label": label, "score": score, "segment": [s, e]}


def oracle_map(ground_truth, predictions, counts, thresholds):
    """One resample, literally: video v drawn counts[v] times → copies "v#k" with their own ground truth and
    predictions (a prediction file's videos in its order, each one's copies together), the reference evaluator.
    → (classes, AP per class) or None when the resample has no ground truth."""
    drawn = dict(zip(ground_truth, counts, strict=True))
    gt_b = {f"{v}#{k}": anns for v, anns in ground_truth.items() for k in range(drawn[v])}
    pred_b = {f"{v}#{k}": ps for v, ps in predictions.items() if v in drawn for k in range(drawn[v])}
    if not any(gt_b.values()):
        return None
    return ref_average_precision(gt_b, pred_b, thresholds)


def random_case(rng: np.random.Generator, n_videos: int, coarse: bool):
    """Coarse grids make score ties within and across videos, equal tIoUs and duplicates; one video has no ground
    truth, one no predictions, one prediction file video is not evaluated."""
    labels = ["a", "b", "c"]

    def seg():
        if coarse:
            s = float(rng.integers(0, 20))
            return s, s + float(rng.integers(1, 6))
        s = float(rng.uniform(0, 20))
        return s, s + float(rng.uniform(0.5, 6))

    ground_truth = {
        f"v{i}": [gt(labels[rng.integers(3)], *seg()) for _ in range(rng.integers(1, 4))] for i in range(n_videos)
    }
    ground_truth["v0"] = []  # no ground truth: its predictions are false positives in every copy
    predictions = {}
    for v in reversed(list(ground_truth)):  # another order than the ground truth's
        scores = rng.integers(1, 4, 8) / 4 if coarse else rng.random(8)
        predictions[v] = [pr(labels[rng.integers(3)], *seg(), float(p)) for p in scores[: rng.integers(0, 9)]]
        if v == "v1":
            predictions[v] = []
        if v == "v2" and predictions[v]:
            predictions[v].append(dict(predictions[v][0]))  # an exact duplicate
    predictions["other"] = [pr("a", 0.0, 3.0, 0.9)]
    return ground_truth, predictions


def check_against_oracle(ground_truth, predictions, counts, thresholds=THUMOS_TIOU):
    m = match(ground_truth, Detections.from_dict(predictions), thresholds)
    ap = class_ap(m, counts)  # [B, C, n_th]
    maps = bootstrap.resampled_maps(m, counts)
    for b, row in enumerate(counts):
        expected = oracle_map(ground_truth, predictions, row, thresholds)
        if expected is None:
            assert np.isnan(maps[b]).all()
            continue
        classes, table = expected
        present = [m.classes.index(c) for c in classes]
        assert np.isnan(np.delete(ap[b], present, axis=0)).all()  # classes absent from the resample: NaN
        np.testing.assert_allclose(ap[b, present], np.array(table), rtol=0, atol=1e-12)
        np.testing.assert_allclose(maps[b], np.mean(table, axis=0), rtol=0, atol=1e-12)


@pytest.mark.parametrize("seed", range(12))
def test_resamples_match_the_literal_oracle(seed):
    rng = np.random.default_rng(seed)
    ground_truth, predictions = random_case(rng, 4 + seed % 5, coarse=seed % 3 != 2)
    counts = bootstrap.resample_counts(len(ground_truth), 6, seed)
    counts[0] = 1  # the plain evaluation is resample "all ones"
    counts[1] = 0
    counts[1, 0], counts[1, 2] = 2, len(ground_truth) - 2  # heavy duplication; the video without ground truth twice
    check_against_oracle(ground_truth, predictions, counts)


def test_no_ground_truth_drawn_and_empty_predictions():
    ground_truth = {"v0": [], "v1": [gt("a", 0.0, 2.0)], "v2": [gt("b", 1.0, 3.0), gt("a", 5.0, 6.0)]}
    predictions = {"v0": [pr("a", 0.0, 2.0, 0.5)], "v1": [], "v2": [pr("b", 1.0, 3.0, 0.5), pr("a", 5.0, 6.0, 0.5)]}
    counts = np.array([[3, 0, 0], [0, 3, 0], [1, 1, 1], [2, 0, 1], [0, 0, 3]])
    check_against_oracle(ground_truth, predictions, counts)
    assert np.isnan(bootstrap.resampled_maps(match(ground_truth, Detections.from_dict({}), [0.5]), counts)[0]).all()
    check_against_oracle(ground_truth, {}, counts)  # no predictions at all: AP 0 where a class is present


def test_resample_counts_are_seeded_draws_of_v_videos():
    a, b = bootstrap.resample_counts(210, 50, 0), bootstrap.resample_counts(210, 50, 0)
    assert np.array_equal(a, b) and not np.array_equal(a, bootstrap.resample_counts(210, 50, 1))
    assert a.shape == (50, 210) and (a.sum(axis=1) == 210).all() and a.min() >= 0


def test_percentile_interval_and_comparison():
    samples = np.arange(1, 101, dtype=float)[:, None]
    low, high = bootstrap.percentile_interval(samples)
    assert (low[0], high[0]) == pytest.approx((np.percentile(samples, 2.5), np.percentile(samples, 97.5)))
    res = np.array([[0.5, 0.4], [0.45, 0.46], [0.5, 0.5], [0.6, 0.3]])  # differences 0.1, -0.01, 0, 0.3
    (c,) = bootstrap.compare(["A", "B"], np.array([0.5, 0.4]), res)
    assert (c.a, c.b, c.difference) == ("A", "B", pytest.approx(0.1))
    assert c.flip_share == 0.5  # -0.01 and 0 do not keep A ahead
    assert math.isnan(bootstrap.compare(["A", "B"], np.array([0.4, 0.4]), res)[0].flip_share)


def test_cli_two_methods_bootstrap_table_and_json(tmp_path, capsys):
    rng = np.random.default_rng(3)
    ground_truth, predictions = random_case(rng, 30, coarse=False)
    database = {v: {"subset": "validation", "annotations": anns} for v, anns in ground_truth.items()}
    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps({"database": database}))
    worse = {
        v: [dict(p, score=p["score"] * 0.5 if i % 2 else p["score"]) for i, p in enumerate(ps)]
        for v, ps in predictions.items()
    }
    a, b = tmp_path / "A.json", tmp_path / "B.json"
    a.write_text(json.dumps({"results": predictions}))
    b.write_text(json.dumps(worse))
    out = tmp_path / "ci.json"
    argv = [
        str(gt_path),
        str(a),
        str(b),
        "--tiou",
        "0.3",
        "0.5",
        "--bootstrap",
        "200",
        "--seed",
        "7",
        "--out",
        str(out),
    ]
    assert evaluate.main(argv) == 0
    text = capsys.readouterr().out
    assert "200 resamples of the 30 test videos (seed 7)" in text and "| A − B" in text and "order flips" in text
    record = json.loads(out.read_text())
    assert [m["name"] for m in record["methods"]] == ["A", "B"] and record["bootstrap"]["resamples"] == 200
    # the JSON's numbers are those of the library on the same seed
    m = match(ground_truth, Detections.from_dict(predictions), [0.3, 0.5])
    samples = bootstrap.resampled_maps(m, bootstrap.resample_counts(30, 200, 7))
    low, high = bootstrap.percentile_interval(samples)
    np.testing.assert_allclose(record["methods"][0]["interval"]["low"][:2], low, rtol=0, atol=1e-15)
    np.testing.assert_allclose(record["methods"][0]["interval"]["high"][:2], high, rtol=0, atol=1e-15)
    assert record["methods"][0]["map"] == pytest.approx(evaluate.detection_map(ground_truth, predictions, [0.3, 0.5]))
    (c,) = record["comparisons"]
    assert c["interval"][0] <= c["difference"] <= c["interval"][1] and 0 <= c["flip_share"] <= 1


def test_cli_bad_bootstrap_count_is_one_line(tmp_path, capsys):
    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps({"database": {"v": {"subset": "validation", "annotations": [gt("a", 0, 1)]}}}))
    p = tmp_path / "p.json"
    p.write_text(json.dumps({"v": []}))
    for n in ("0", "10001", "100000000"):
        assert evaluate.main([str(gt_path), str(p), "--bootstrap", n]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        rule = "in [1, 10000] (memory grows with the resamples; a 95 % interval settles long before)"
        assert err == [f"error: --bootstrap {n}: give the number of resamples, {rule}"]
    assert evaluate.main([str(gt_path), str(p), "--out", str(tmp_path / "nowhere" / "ci.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: --out {tmp_path / 'nowhere' / 'ci.json'}: its folder {tmp_path / 'nowhere'} does not exist"]
    assert not (tmp_path / "nowhere").exists()
    assert evaluate.main([str(gt_path), str(p), "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == f"error: --out {tmp_path}: is a folder, not a file"


def test_main_bootstrap_flag_and_interval_table():
    import config
    import inference
    import main
    from utils import InputError

    parse = main.build_parser().parse_args
    assert parse(["--bootstrap"]).bootstrap == 1000 and parse(["--bootstrap", "50"]).bootstrap == 50
    assert main.make_config([]).bootstrap is None
    with pytest.raises(InputError, match=r"--bootstrap 0: must be in \[1, 10000\]"):
        config.validate(config.Config(bootstrap=0, model_file="x.pth"))
    for cfg in (config.Config(bootstrap=1000), config.Config(bootstrap=9, model_file="x.pth", video="v.mp4")):
        with pytest.raises(InputError, match=r"^--bootstrap gives intervals of a checkpoint's test mAP: give --model"):
            config.validate(cfg)  # a training run would ignore it
    config.validate(config.Config(bootstrap=9, model_file="x.pth"))
    rng = np.random.default_rng(1)
    ground_truth, predictions = random_case(rng, 12, coarse=False)
    m = match(ground_truth, Detections.from_dict(predictions), THUMOS_TIOU)
    table = inference.interval_table(m, 300, "thumos14 test mAP (%)")
    samples = bootstrap.resampled_maps(m, bootstrap.resample_counts(12, 300, 0))
    low, high = bootstrap.percentile_interval(samples.mean(axis=1, keepdims=True))
    lines = table.splitlines()
    assert lines[0] == "thumos14 test mAP (%): 95 % intervals, 300 resamples of the 12 test videos (seed 0)"
    assert lines[-1].strip("| ").split(" | ")[-1] == f"{100 * low[0]:.1f}–{100 * high[0]:.1f}"
