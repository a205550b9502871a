"""diagnose.py (DETAD's three analyses, vectorised) against the loop transcription tests/reference_detad.py: every
number within rel 1e-12 and the same None placements, on random inputs (hypothesis, seeded numpy), adversarial
ones and THUMOS14's real test annotations; then the command lines (evaluate.py --diagnose, main.py --diagnose)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_detad import characteristics
from reference_detad import diagnose as reference

import diagnose
from dataset import THUMOS14_CLASSES, read_annotations
from utils import InputError

REL = 1e-12


def compare(actual, expected, path="out") -> float:
    """Same structure, same None placements, every number within rel REL → the largest relative difference."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and list(actual) == list(expected), f"{path}: keys differ"
        return max([compare(actual[k], expected[k], f"{path}[{k!r}]") for k in expected], default=0.0)
    if isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), path
        return max(
            [compare(a, e, f"{path}[{i}]") for i, (a, e) in enumerate(zip(actual, expected, strict=True))], default=0.0
        )
    if expected is None or isinstance(expected, str):
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"
        return 0.0
    assert actual is not None and type(actual) is type(expected), f"{path}: {actual!r} vs {expected!r}"
    if actual == expected:
        return 0.0
    diff = abs(actual - expected) / max(abs(actual), abs(expected))
    assert diff <= REL, f"{path}: {actual!r} != {expected!r} (rel {diff:.3g})"
    return diff


def database(videos: dict) -> dict:
    """{vid: (subset, duration, [(label, start, end)])} → the annotations' flat form (dataset.read_annotations)."""
    return {
        v: {"subset": s, "duration": d, "annotations": [{"label": l, "segment": [a, b]} for l, a, b in anns]}
        for v, (s, d, anns) in videos.items()
    }


def results(rows) -> dict:
    """[(video, label, start, end, score)] → {video: [prediction]}, videos in order of first appearance."""
    out: dict[str, list] = {}
    for v, label, s, e, score in rows:
        out.setdefault(v, []).append({"label": label, "score": float(score), "segment": [float(s), float(e)]})
    return out


def check(db: dict, preds: dict, dataset: str = "thumos14", subset: str = "test") -> tuple[dict, float]:
    """diagnose.diagnose against the reference (which reads DETAD's layouts, characteristics precomputed from the
    same durations) → (result, largest relative difference)."""
    gt = {"database": characteristics(db), "taxonomy": [], "version": "test"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = reference(gt, {"results": preds, "version": "t", "external_data": {}}, dataset, subset)
    out = diagnose.diagnose(db, preds, dataset, subset)
    json.dumps(out, allow_nan=False)
    return out, compare(out, expected)


# --- random problems ---------------------------------------------------------------------------------------------


def random_problem(rng: np.random.Generator, dataset: str, *, tied: bool, n_videos: int = 8, n_classes: int = 4):
    """Videos of short and long instances (some sharing segments across labels, some empty), predictions jittered
    from the ground truth, random ones, on videos without ground truth and with unknown labels; tied scores drawn
    from 3 values when `tied`. Segments on a 0.5 s grid so that equal tIoUs and bin edges occur."""
    subset = "test" if dataset == "thumos14" else "validation"
    scale = 1.0 if dataset == "thumos14" else 10.0  # ActivityNet's length bins are 10x longer
    labels = [f"c{k}" for k in range(n_classes)]
    videos = {}
    for v in range(n_videos):
        duration = scale * float(rng.choice([50.0, 100.0, 150.0]))
        anns = []
        for _ in range(int(rng.integers(0, 7))):
            s = scale * rng.integers(0, 160) / 2
            e = s + scale * rng.integers(0, 40) / 2  # zero length sometimes (dropped), past the end sometimes
            anns.append((str(rng.choice(labels)), float(s), float(e)))
            if rng.random() < 0.15:  # the same segment under another label (THUMOS14's CliffDiving/Diving)
                anns.append((str(rng.choice(labels)), float(s), float(e)))
        videos[f"v{v}"] = (subset if rng.random() < 0.9 else "other", duration, anns)
    db = database(videos)
    rows = []
    for v, (_, duration, anns) in videos.items():
        for label, s, e in anns:
            for _ in range(int(rng.integers(0, 3))):
                j = rng.integers(-4, 5, 2) * scale / 2
                lab = label if rng.random() < 0.8 else str(rng.choice(labels))
                rows.append((v, lab, s + j[0], max(s + j[0], e + j[1]), 0.0))
        for _ in range(int(rng.integers(0, 4))):
            s = rng.integers(0, 2 * int(duration)) / 2
            rows.append((v, str(rng.choice(labels)), s, s + rng.integers(0, 30) * scale / 2, 0.0))
    rows += [("nogt", str(rng.choice(labels)), 1.0, 5.0, 0.0) for _ in range(int(rng.integers(0, 3)))]
    rows += [("v0", "unknown-label", 1.0, 5.0, 0.0)] * int(rng.integers(0, 2))
    order = rng.permutation(len(rows))
    scores = rng.choice([0.2, 0.5, 0.9], len(rows)) if tied else rng.permutation(len(rows)) / max(len(rows), 1)
    rows = [(*rows[i][:4], float(sc)) for i, sc in zip(order, scores, strict=True)]
    return db, results(rows), subset


@pytest.mark.parametrize("dataset", ["thumos14", "activitynet"])
@pytest.mark.parametrize("tied", [False, True])
def test_seeded_random_problems_agree_with_the_reference(dataset, tied):
    worst, n = 0.0, 0
    for seed in range(25):
        rng = np.random.default_rng([seed, tied, dataset == "thumos14"])
        db, preds, subset = random_problem(rng, dataset, tied=tied, n_videos=int(rng.integers(1, 12)))
        if not any(a for e in db.values() if e["subset"] == subset for a in e["annotations"]):
            with pytest.raises(InputError, match="no ground-truth instances"):
                diagnose.diagnose(db, preds, dataset, subset)
            continue
        out, diff = check(db, preds, dataset, subset)
        worst, n = max(worst, diff), n + 1
        assert out["extra"]["num_predictions"] > 0 or not preds
    assert n >= 15 and worst <= REL  # most draws have ground truth


segment = st.tuples(st.integers(0, 40), st.integers(0, 12)).map(lambda se: (se[0] / 2, (se[0] + se[1]) / 2))


@st.composite
def small_problem(draw):
    """1–3 videos, 1–3 classes, few instances (zero-length ones too) and predictions (tied scores likely, on
    videos without ground truth too)."""
    labels = "ABC"[: draw(st.integers(1, 3))]
    videos = {}
    for i in range(draw(st.integers(1, 3))):
        anns = draw(st.lists(st.tuples(st.sampled_from(labels), segment), max_size=5))
        videos[f"v{i}"] = ("test", draw(st.sampled_from([20.0, 25.0, 100.0])), [(l, s, e) for l, (s, e) in anns])
    preds = draw(st.lists(st.tuples(st.sampled_from(["v0", "v1", "v2", "vX"]), st.sampled_from(labels), segment,
                                    st.integers(0, 4)), max_size=25))  # fmt: skip
    return database(videos), results([(v, l, s, e, sc / 4) for v, l, (s, e), sc in preds])


@settings(max_examples=150, deadline=None)
@given(problem=small_problem(), dataset=st.sampled_from(["thumos14", "activitynet"]))
def test_hypothesis_small_problems_agree_with_the_reference(problem, dataset):
    db, preds = problem
    subset = "test" if dataset == "thumos14" else "validation"
    db = {v: {**e, "subset": subset} for v, e in db.items()}
    if not any(e["annotations"] for e in db.values()):
        with pytest.raises(InputError):
            diagnose.diagnose(db, preds, dataset, subset)
        return
    check(db, preds, dataset, subset)


# --- adversarial cases -----------------------------------------------------------------------------------------------

TWO_VIDEOS = {
    "a": ("test", 100.0, [("A", 10, 20), ("B", 10, 20), ("A", 30, 33), ("B", 60, 62)]),
    "b": ("test", 50.0, [("A", 5, 6), ("A", 20, 32)]),
    "empty": ("test", 30.0, []),
}


def test_tied_scores_everywhere():
    rows = [(v, l, s + d, e + d, 0.5) for v, (_, _, anns) in TWO_VIDEOS.items() for l, s, e in anns for d in (0, 1)]
    rows += [("a", "A", 10, 20, 0.5), ("a", "B", 10, 20, 0.5), ("empty", "A", 0, 3, 0.5)]
    out, _ = check(database(TWO_VIDEOS), results(rows))
    assert out["false_positive"]["profile"]["1G"]["True Positive"] is not None


def test_a_class_without_predictions_and_a_video_without_ground_truth():
    rows = [("a", "A", 10, 20, 0.9), ("a", "A", 30, 33, 0.8), ("empty", "A", 1, 9, 0.95), ("empty", "A", 2, 9, 0.7),
            ("elsewhere", "A", 1, 2, 0.6)]  # fmt: skip
    out, _ = check(database(TWO_VIDEOS), results(rows))  # class B has no prediction: AP_N 0
    assert out["extra"]["mAP_N"][0] < 1.0
    assert out["false_positive"]["profile"]["1G"]["Background Err"] > 0  # the GT-less videos' predictions


def test_fewer_than_ten_g_predictions_and_the_top10g_cut():
    few = [("a", "A", 10, 20, 0.9), ("b", "A", 5, 6, 0.3)]
    out, _ = check(database(TWO_VIDEOS), results(few))
    assert out["false_positive"]["profile"]["10G"] == dict.fromkeys(diagnose.ERROR_TYPES)
    many = [("b", "A", i, i + 2, 1.0 - i / 100) for i in range(50)] + [("a", "B", 60, 62, 0.5)] * 30
    out, _ = check(database(TWO_VIDEOS), results(many))  # A: 4 GT → 40 kept; B: 2 GT → 20 kept (tied at the cut)
    assert out["extra"]["num_predictions_top10G"] == 60


def test_instances_on_bin_edges():
    # lengths 3, 6, 12, 18 s and coverages 0.02, 0.04, 0.08, 0.12, 1 on a 150 s video; videos of 1, 40, 80, 81 instances
    edges = {"e": ("test", 150.0, [("A", 0, 3), ("A", 10, 16), ("A", 20, 32), ("B", 40, 58), ("B", 0, 150)])}
    edges["f"] = ("test", 50.0, [("A", 0, 1), ("B", 2, 4), ("A", 5, 8), ("B", 10, 14), ("A", 20, 50)])
    edges["g"] = ("test", 1000.0, [("A", 10 * i, 10 * i + 3) for i in range(40)])
    edges["h"] = ("test", 1000.0, [("B", 10 * i, 10 * i + 3) for i in range(81)])
    edges["i"] = ("test", 1000.0, [("A", 500, 506)])
    edges["j"] = ("test", 1000.0, [("A", 10 * i, 10 * i + 6) for i in range(80)])
    rows = [(v, l, s, e + 0.5, 0.01 * k) for k, (v, (_, _, anns)) in enumerate(edges.items()) for l, s, e in anns]
    db = database(edges)
    out, _ = check(db, results(rows))
    filled = {x: [b for b, v in out["sensitivity"][x].items() if v is not None] for x in out["sensitivity"]}
    assert filled["num-instances"] == ["XS", "S", "M", "L"]
    values = np.array([0.0, 3.0, 3.0 + 1e-9, 18.0, np.inf, -1e-9, np.nan])
    assert diagnose.bucket_index(values, diagnose.BINS["thumos14"]["length"][0]).tolist() == [0, 0, 1, 3, 4, -1, -1]


def test_empty_predictions_and_tiny_durations():
    check(database(TWO_VIDEOS), {})
    check(database(TWO_VIDEOS), {"a": [], "b": []})
    tiny = {"t": ("test", 0.004, [("A", 0.0, 0.001), ("A", 0.001, 0.002), ("B", 0.0015, 0.004)])}
    rows = [("t", "A", 0.0, 0.001, 0.9), ("t", "A", 0.0005, 0.0015, 0.8), ("t", "B", 0.0, 0.004, 0.7)]
    check(database(tiny), results(rows))


def check_stored(db: dict, preds: dict, dataset: str = "thumos14", subset: str = "test") -> dict:
    """As `check`, for annotations that store some characteristics (DETAD's file): the reference gets the computed
    characteristics overridden by the stored ones."""
    gt = {"database": characteristics(db), "taxonomy": [], "version": "t"}
    for v, entry in db.items():
        for a, own in zip(gt["database"][v]["annotations"], entry["annotations"], strict=True):
            a.update({k: own[k] for k in diagnose.BINS[dataset] if k in own})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = reference(gt, {"results": preds, "version": "t", "external_data": {}}, dataset, subset)
    out = diagnose.diagnose(db, preds, dataset, subset)
    compare(out, expected)
    return out


def test_equal_tiou_matches_the_later_instance():
    """Two instances of one class with the same tIoU to a prediction: the later one (in file order) is matched —
    told apart by their stored lengths (another bin each), which the sensitivity and false negatives see."""
    db = database({"v": ("test", 100.0, [("A", 0, 10), ("A", 0, 10), ("A", 40, 50)])})
    db["v"]["annotations"][0]["length"] = 2.0  # XS
    db["v"]["annotations"][1]["length"] = 20.0  # XL
    out = check_stored(db, results([("v", "A", 0, 10, 0.9), ("v", "A", 40, 50, 0.8)]))
    assert out["false_negative"]["length"]["XS"] == 1.0 and out["false_negative"]["length"]["XL"] == 0.0
    db["v"]["annotations"][1]["segment"] = [2, 12]  # [1, 11]: tIoU 9/11 with both
    out = check_stored(db, results([("v", "A", 1, 11, 0.9)]))
    assert out["false_negative"]["length"]["XS"] == 1.0


@pytest.mark.parametrize(("n_fp", "discarded"), [(19, True), (18, False)])
def test_false_negative_discard_at_precision_exactly_theta(n_fp, discarded):
    """N_avg 1: a true positive after 19 false positives has normalized precision 1/20 = 0.05 <= θ: discarded."""
    db = database({"v": ("test", 100.0, [("A", 0, 10)])})
    rows = [("v", "A", 50 + i, 51 + i, 1.0 - 0.01 * i) for i in range(n_fp)] + [("v", "A", 0, 10, 0.5)]
    out, _ = check(db, results(rows))
    assert out["false_negative"]["length"]["M"] == (1.0 if discarded else 0.0)


def test_dropped_instances_out_of_bins_and_stored_characteristics():
    """Coverage > 1 and zero-length instances are dropped (their class stays); stored DETAD fields win over the
    computed ones; a stored value outside the bins leaves the instance out of that characteristic (warning)."""
    db = database({"v": ("test", 10.0, [("A", 0, 5), ("B", 0, 20), ("A", 6, 6), ("A", 8, 9), ("A", 1, 2)])})
    anns = db["v"]["annotations"]
    anns[3]["length"] = -1.0  # below the first length edge
    anns[4]["coverage"] = 0.5  # stored, not 0.1
    preds = results([("v", "A", 0, 5, 0.9), ("v", "A", 8, 9, 0.8), ("v", "B", 0, 20, 0.7), ("v", "A", 1, 2, 0.6)])
    out = check_stored(db, preds)
    assert out["extra"]["num_out_of_edges"]["length"] == 1
    assert (out["extra"]["num_dropped_coverage"], out["extra"]["num_dropped_segment"]) == (1, 1)
    assert out["average_mAP_N"] is None  # B: predictions, no kept ground truth → NaN (as DETAD)


def test_activitynet_testing_reads_the_stored_context_characteristics():
    db = database({"y": ("testing", 100.0, [("A", 0, 20), ("B", 30, 90), ("A", 40, 41)])})
    for a, (size, dist, agree) in zip(db["y"]["annotations"], [(0, 0, 0.2), (6, 3, 1.0), (2, 1, 0.61)], strict=True):
        a.update({"context-size": size, "context-distance": dist, "agreement": agree})
    gt = {"database": characteristics(db), "taxonomy": [], "version": "t"}
    preds = results([("y", "A", 0, 20, 0.9), ("y", "B", 30, 80, 0.8), ("y", "A", 30, 80, 0.7)])
    expected = reference(gt, {"results": preds, "version": "t", "external_data": {}}, "activitynet", "testing")
    out = diagnose.diagnose(db, preds, "activitynet", "testing")
    compare(out, expected)
    assert list(out["sensitivity"]) == ["context-size", "context-distance", "agreement", "coverage", "length",
                                        "num-instances"]  # fmt: skip
    del db["y"]["annotations"][1]["agreement"]
    with pytest.raises(InputError, match="'agreement'"):
        diagnose.diagnose(db, preds, "activitynet", "testing")


def test_settings_and_input_errors():
    db = database({"v": ("validation", None, [("A", 0, 5)])})
    with pytest.raises(InputError, match="has no duration"):
        diagnose.diagnose(db, {}, "activitynet", "validation", source="gt.json")
    with pytest.raises(InputError, match="'validation' and 'testing'"):
        diagnose.diagnose(db, {}, "activitynet", "training")
    with pytest.raises(InputError, match="unknown dataset"):
        diagnose.diagnose(db, {}, "kinetics", "validation")
    with pytest.raises(InputError, match="no ground-truth instances in subset 'test'"):
        diagnose.diagnose(db, {}, "thumos14", "test")
    db["v"]["annotations"][0]["coverage"] = 0.1  # a stored coverage needs no duration
    assert diagnose.diagnose(db, {}, "activitynet", "validation")["average_mAP_N"] == 0.0
    assert diagnose.detad_dataset(None, database({"v": ("test", 1.0, [("Diving", 0, 1)])})) == "thumos14"
    assert diagnose.detad_dataset(None, database({"v": ("test", 1.0, [("Diving", 0, 1), ("X", 0, 1)])})) == (
        "activitynet"
    )
    assert diagnose.detad_dataset("activitynet1.3", {}) == "activitynet"


# --- real annotations ------------------------------------------------------------------------------------------------


def thumos14_predictions(db: dict, seed: int = 0, copies: int = 1) -> dict:
    """Synthetic predictions on THUMOS14's test videos: each instance jittered (`copies` times), random false
    positives of three classes, distinct scores."""
    rng = np.random.default_rng(seed)
    rows = []
    for vid, entry in db.items():
        if entry["subset"] != "test":
            continue
        for ann in entry["annotations"]:
            s, e = ann["segment"]
            for _ in range(copies):
                j = rng.normal(0, 0.3 * (e - s), 2)
                rows.append((vid, ann["label"], s + j[0], max(s + j[0], e + j[1])))
            if rng.random() < 0.5:
                start = rng.uniform(0, entry["duration"])
                rows.append((vid, str(rng.choice(THUMOS14_CLASSES)), start, start + rng.uniform(0.5, 10)))
    scores = rng.permutation(len(rows)) / len(rows)
    return results([(*r, sc) for r, sc in zip(rows, scores, strict=True)])


def test_thumos14_real_annotations_agree_with_the_reference(real_annotations):
    db = read_annotations(real_annotations / "thumos14" / "annotations.json")
    preds = thumos14_predictions(db)
    out, _ = check(db, preds)
    assert out["extra"]["num_ground_truth"] == 3358 and out["extra"]["average_num_instance_per_class"] == 167.9
    assert 0.0 < out["average_mAP_N"] < 1.0


def test_activitynet_real_annotations_subset_agrees_with_the_reference(real_annotations):
    db = read_annotations(real_annotations / "activitynet" / "annotations_1.3.json")
    db = dict(list(((v, e) for v, e in db.items() if e["subset"] == "validation"))[:150])
    rng = np.random.default_rng(1)
    rows = []
    for vid, entry in db.items():
        for ann in entry["annotations"]:
            s, e = ann["segment"]
            for _ in range(2):
                j = rng.normal(0, 0.2 * (e - s), 2)
                rows.append((vid, ann["label"], s + j[0], max(s + j[0], e + j[1])))
        for _ in range(3):
            start = rng.uniform(0, entry["duration"])
            rows.append((vid, entry["annotations"][0]["label"] if entry["annotations"] else "x", start, start + 20))
    scores = rng.permutation(len(rows)) / len(rows)
    out, _ = check(db, results([(*r, sc) for r, sc in zip(rows, scores, strict=True)]), "activitynet", "validation")
    assert out["extra"]["num_ground_truth"] > 150


# --- command lines ---------------------------------------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n"


def test_evaluate_diagnose_writes_the_json_tables_and_figures(real_annotations, tmp_path, capsys):
    import evaluate

    gt_path = real_annotations / "thumos14" / "annotations.json"
    db = read_annotations(gt_path)
    preds = thumos14_predictions(db)
    preds["video_test_0000270"] = [{"label": "Diving", "score": 0.5, "segment": [1.0, 2.0]}]  # dropped: ignored
    preds["video_validation_0000051"] = [{"label": "Diving", "score": 0.5, "segment": [1.0, 2.0]}]  # another subset
    pred_path = tmp_path / "p.json"
    pred_path.write_text(json.dumps({"results": preds}))
    out_dir = tmp_path / "diag"
    assert evaluate.main([str(gt_path), str(pred_path), "--diagnose", str(out_dir)]) == 0
    printed = capsys.readouterr().out
    assert "false-positive profile" in printed and "| num-instances  |" in printed and "diagnosis →" in printed
    written = json.loads((out_dir / "diagnosis.json").read_text())
    dropped = set(evaluate.DATASETS["thumos14"].dropped_test)
    evaluated = {v: e for v, e in db.items() if e["subset"] == "test" and v not in dropped}
    assert written == diagnose.diagnose(
        evaluated, {v: p for v, p in preds.items() if v in evaluated}, "thumos14", "test"
    )
    for name in diagnose.FIGURES:
        data = (out_dir / name).read_bytes()
        assert data.startswith(PNG) and 10_000 < len(data) < 150_000, name
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(["diagnosis.json", *diagnose.FIGURES])  # no temps


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--gt_txt"], "has no duration, which the diagnosis needs"),
        (["--dataset", "activitynet", "--subset", "test"], "--subset test: the diagnosis has ActivityNet settings"),
        (["--out_file"], "--diagnose is a file, not a folder"),
        (["--two_files"], "--diagnose diagnoses one predictions file, not 2: run it once per file"),
    ],
)
def test_evaluate_diagnose_errors_are_one_line(extra, message, real_annotations, tmp_path, capsys):
    import evaluate

    gt = real_annotations / "thumos14" / "annotations.json"
    out = tmp_path / "diag"
    if "--gt_txt" in extra:
        gt, extra = real_annotations / "thumos14" / "official" / "annotations_test", []
    if "--out_file" in extra:
        out.write_text("x")
        extra = []
    pred = tmp_path / "p.json"
    pred.write_text(json.dumps({"video_test_0000004": [{"label": "CricketShot", "score": 1, "segment": [1, 2]}]}))
    preds = [str(pred), str(pred)] if "--two_files" in extra else [str(pred)]
    extra = [] if "--two_files" in extra else extra
    assert evaluate.main([str(gt), *preds, "--diagnose", str(out), *extra]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith(("warning", "note"))]
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not out.is_dir() or not any(out.iterdir())


def test_main_diagnose_needs_model_file():
    import main

    with pytest.raises(InputError, match="--diagnose diagnoses a checkpoint's test run: give --model_file"):
        main.make_config(["--diagnose"])


def test_main_model_file_diagnose_matches_evaluate_on_the_written_files(tmp_path, capsys):
    """A checkpoint's test run with --diagnose writes <save_path>/thumos14_test_diagnosis/ — the same diagnosis as
    evaluate.py --diagnose on the run's own predictions and ground-truth files (which now carry the durations)."""
    import evaluate
    import main
    from demo import make_demo
    from model import ACRNet
    from utils import save_checkpoint

    data = make_demo(tmp_path / "data", seed=0, max_train=6, max_test=4)
    ckpt = tmp_path / "random.pth"
    classes = sorted({a["label"] for e in read_annotations(data / "thumos14" / "annotations.json").values()
                      for a in e["annotations"]})  # fmt: skip
    save_checkpoint(ACRNet(len(classes)).state_dict(), ckpt, {"classes": classes, "data_name": "thumos14"})
    save = tmp_path / "out"
    argv = ["--data_path", str(data), "--save_path", str(save), "--num_seg", "16", "--no_progress",
            "--model_file", str(ckpt), "--diagnose"]  # fmt: skip
    assert main.main(argv) == 0
    assert "false-positive profile" in capsys.readouterr().out
    folder = save / "thumos14_test_diagnosis"
    ours = json.loads((folder / "diagnosis.json").read_text())
    assert all((folder / name).read_bytes().startswith(PNG) for name in diagnose.FIGURES)
    again = tmp_path / "again"
    gt, pred = save / "thumos14_test_ground_truth.json", save / "thumos14_test_predictions.json"
    assert evaluate.main([str(gt), str(pred), "--diagnose", str(again)]) == 0
    assert json.loads((again / "diagnosis.json").read_text()) == ours
    assert ours["extra"]["num_predictions"] > 0


def test_evaluate_diagnose_reads_a_detad_augmented_file(tmp_path, capsys):
    """DETAD's own layout (database / taxonomy / version; characteristics stored per instance, no durations): the
    stored values are used, and the result is the reference's on that file."""
    import evaluate

    rng = np.random.default_rng(5)
    db = {f"video_test_{i:07d}": {"subset": "test", "annotations": []} for i in range(6)}
    for i, entry in enumerate(db.values()):
        for k in range(i % 3 + 1):
            s = float(rng.integers(0, 80))
            entry["annotations"].append({
                "label": THUMOS14_CLASSES[(i + k) % 4], "segment": [s, s + float(rng.integers(1, 25))],
                "length": float(rng.uniform(0, 30)), "coverage": float(rng.uniform(0, 0.12)), "num-instances": k + 1,
            })  # fmt: skip
    gt = {"database": db, "taxonomy": [], "version": "DETAD"}
    rows = [(v, a["label"], a["segment"][0] + 1, a["segment"][1], float(rng.random()))
            for v, e in db.items() for a in e["annotations"]]  # fmt: skip
    preds = {"results": results(rows), "version": "t", "external_data": {}}
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "p.json").write_text(json.dumps(preds))
    argv = [str(tmp_path / "gt.json"), str(tmp_path / "p.json"), "--diagnose", str(tmp_path / "d")]
    assert evaluate.main([*argv, "--dataset", "thumos14"]) == 0
    written = json.loads((tmp_path / "d" / "diagnosis.json").read_text())
    compare(written, reference(gt, preds, "thumos14", "test"))
    db["video_test_0000000"]["annotations"][0]["coverage"] = "wide"
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    capsys.readouterr()
    assert evaluate.main(argv) == 2
    assert "'coverage' is not a number" in capsys.readouterr().err
