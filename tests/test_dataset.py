"""dataset.py: annotation readers on the real files, split protocol, feature validation, sampling (method §7)."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from reference_dataset import ref_labels, ref_segment_bounds, ref_test_indices, ref_train_indices

import dataset as D
from utils import InputError

THUMOS = Path("thumos14")


def _counter(annotations, videos):
    """Multiset of (video, label, start, end) over `videos` (entries or ground-truth lists)."""
    return Counter(
        (v, a["label"], float(a["segment"][0]), float(a["segment"][1]))
        for v in videos
        for a in (annotations[v]["annotations"] if isinstance(annotations[v], dict) else annotations[v])
    )


# --- real annotation files -----------------------------------------------------------------------------------------


def test_thumos14_json_counts_and_splits(real_annotations):
    path = real_annotations / "thumos14" / "annotations.json"
    ann = D.read_annotations(path)
    raw = json.loads(path.read_text())
    assert len(ann) == len(raw) == 413
    assert Counter(e["subset"] for e in ann.values()) == Counter({"val": 200, "test": 213})
    assert ann["video_test_0001292"]["annotations"] == []
    assert sum(len(e["annotations"]) for e in ann.values() if e["subset"] == "val") == 3007
    assert sum(len(e["annotations"]) for e in ann.values() if e["subset"] == "test") == 3358
    assert D.class_names(ann) == D.THUMOS14_CLASSES == sorted(D.THUMOS14_CLASSES)
    assert len(D.THUMOS14_CLASSES) == D.DATASETS["thumos14"].num_classes == 20
    train, dropped_train = D.split_videos(ann, "thumos14", "train")
    test, dropped = D.split_videos(ann, "thumos14", "test")
    assert len(train) == 200 and dropped_train == []
    assert len(test) == 210 and train == sorted(train) and test == sorted(test)
    assert sorted(v for v, _ in dropped) == ["video_test_0000270", "video_test_0001292", "video_test_0001496"]
    assert all(raw[v]["subset"] == "val" for v in train) and all(raw[v]["subset"] == "test" for v in test)
    assert all(ann[v]["duration"] == raw[v]["duration"] for v in ann)


def test_thumos14_official_txt_matches_json(real_annotations):
    ann = D.read_annotations(real_annotations / "thumos14" / "annotations.json")
    official = real_annotations / "thumos14" / "official"
    txt = D.read_annotations(official)  # a folder holding annotations_val/ and annotations_test/
    # the txt files list only videos with instances (video_test_0001292 has only Ambiguous segments)
    with_instances = {v for v, e in ann.items() if e["annotations"]}
    assert set(txt) == with_instances and len(txt) == 412
    for subset in ("val", "test"):
        vids = sorted(v for v in txt if txt[v]["subset"] == subset)
        assert vids == sorted(v for v in with_instances if ann[v]["subset"] == subset)
        assert _counter(txt, vids) == _counter(ann, vids)
    assert all(e["duration"] is None for e in txt.values())
    # one subfolder, and a single class file, read the same way
    test_only = D.read_annotations(official / "annotations_test")
    assert test_only == {v: e for v, e in txt.items() if e["subset"] == "test"}
    one = D.read_annotations(official / "annotations_val" / "Diving_val.txt")
    lines = [ln.split() for ln in (official / "annotations_val" / "Diving_val.txt").read_text().splitlines()]
    assert sum(len(e["annotations"]) for e in one.values()) == sum(1 for p in lines if p)
    assert D.class_names(one) == ["Diving"]
    assert D.class_names(txt) == D.THUMOS14_CLASSES  # Ambiguous is not a class
    # splits from the txt folder equal those from the json on the videos with instances
    assert D.split_videos(txt, "thumos14", "test")[0] == D.split_videos(ann, "thumos14", "test")[0]


def test_read_ambiguous_real(real_annotations):
    path = real_annotations / "thumos14" / "official" / "annotations_test" / "Ambiguous_test.txt"
    amb = D.read_ambiguous(path)
    rows = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    assert sum(map(len, amb.values())) == len(rows) == 99
    assert set(amb) == {r[0] for r in rows}
    assert amb["video_test_0000278"] == [(0.0, 1.4), (95.7, 97.2)]


@pytest.mark.parametrize(("version", "classes", "train", "test"), [("1.2", 100, 4819, 2383), ("1.3", 200, 9649, 4728)])
def test_activitynet_counts(real_annotations, version, classes, train, test):
    path = real_annotations / "activitynet" / f"annotations_{version}.json"
    ann = D.read_annotations(path)
    raw = json.loads(path.read_text())["database"]
    assert len(ann) == len(raw)
    name = f"activitynet{version}"
    assert len(D.class_names(ann)) == classes == D.DATASETS[name].num_classes
    assert len({a["label"] for e in raw.values() for a in e["annotations"]}) == classes
    tr, _ = D.split_videos(ann, name, "train")
    te, dropped = D.split_videos(ann, name, "test")
    assert (len(tr), len(te), dropped) == (train, test, [])
    assert sum(e["subset"] == "training" for e in raw.values()) == train
    assert sum(e["subset"] == "validation" for e in raw.values()) == test


def test_dataset_table():
    assert D.DATASETS["thumos14"].tiou_thresholds == tuple(np.linspace(0.1, 0.7, 7))
    assert D.DATASETS["activitynet1.3"].tiou_thresholds == tuple(np.linspace(0.5, 0.95, 10))
    assert D.DATASETS["thumos14"].feature_dir("train") == "thumos14/features/val"
    assert D.DATASETS["activitynet1.2"].feature_dir("test") == "activitynet/features/validation"
    assert D.DATASETS["activitynet1.2"].annotation_files[0] == "activitynet/annotations_1.2.json"
    with pytest.raises(AttributeError):
        D.DATASETS["thumos14"].num_classes = 3  # frozen


# --- synthetic feature folders -------------------------------------------------------------------------------------


def _write(folder: Path, stem: str, L: int, seed: int, *, flow_L: int | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    np.save(folder / f"{stem}_rgb.npy", rng.standard_normal((L, 1024), dtype=np.float32))
    np.save(folder / f"{stem}_flow.npy", rng.standard_normal((L if flow_L is None else flow_L, 1024), dtype=np.float32))


@pytest.fixture
def thumos(tmp_path, real_annotations):
    """<tmp>/thumos14/{annotations.json, annotations_test/Ambiguous_test.txt, features/{val,test}} with real ids."""
    real = json.loads((real_annotations / "thumos14" / "annotations.json").read_text())
    amb_file = real_annotations / "thumos14" / "official" / "annotations_test" / "Ambiguous_test.txt"
    amb = D.read_ambiguous(amb_file)
    val = sorted(v for v in real if real[v]["subset"] == "val")[:4]
    test = sorted(v for v in real if real[v]["subset"] == "test" and v not in amb)[:2]
    test.append(sorted(v for v in amb if v in real)[0])
    dropped = ["video_test_0000270", "video_test_0001292", "video_test_0001496"]
    lengths = dict(zip(val, [11, 25, 10, 40], strict=True)) | dict(zip(test, [30, 12, 11], strict=True))
    root = tmp_path / "thumos14"
    root.mkdir()
    (root / "annotations.json").write_text(json.dumps({v: real[v] for v in val + test + dropped}))
    (root / "annotations_test").mkdir()
    shutil.copy(amb_file, root / "annotations_test" / "Ambiguous_test.txt")
    for i, v in enumerate(val + test):
        _write(root / "features" / ("val" if v in val else "test"), v, lengths[v], seed=i)
    return {"data": tmp_path, "root": root, "val": val, "test": test, "L": lengths, "real": real, "amb": amb}


def test_load_split_thumos(thumos):
    tr = D.load_split(thumos["data"], "thumos14", "train", progress=False)
    short = thumos["val"][2]
    assert tr.videos == sorted(v for v in thumos["val"] if v != short)
    assert tr.skipped == [(short, "short: 10 snippets (<= 10, method §7.2)")]
    assert tr.num_snippets == [thumos["L"][v] for v in tr.videos]
    assert tr.classes == D.class_names(json.loads((thumos["root"] / "annotations.json").read_text()))
    assert tr.labels.dtype == np.float32 and tr.labels.shape == (len(tr.videos), len(tr.classes))
    np.testing.assert_array_equal(tr.labels, ref_labels(thumos["real"], tr.videos, tr.classes))
    assert tr.rgb_paths[0] == thumos["root"] / "features" / "val" / f"{tr.videos[0]}_rgb.npy"
    assert tr.ground_truth[tr.videos[1]] == thumos["real"][tr.videos[1]]["annotations"]
    assert tr.durations == [thumos["real"][v]["duration"] for v in tr.videos]
    assert tr.ambiguous == {}

    te = D.load_split(thumos["data"], "thumos14", "test", progress=False)
    assert te.videos == sorted(thumos["test"])  # dropped videos need no features
    assert sorted(v for v, r in te.skipped if r.startswith("dropped")) == [
        "video_test_0000270",
        "video_test_0001292",  # has an empty label set
        "video_test_0001496",
    ]
    amb_video = thumos["test"][-1]
    assert te.ambiguous == {amb_video: thumos["amb"][amb_video]}
    assert te.ambiguous_file == thumos["root"] / "annotations_test" / "Ambiguous_test.txt"
    assert "skipped: dropped" in te.summary() and "ambiguous segments" in te.summary()

    # <data_path> may point at the dataset folder itself
    direct = D.load_split(thumos["root"], "thumos14", "test", progress=False)
    assert direct.videos == te.videos and direct.ambiguous == te.ambiguous


def test_class_index_is_sorted_position(thumos):
    tr = D.load_split(thumos["data"], "thumos14", "train", progress=False)
    for row, v in enumerate(tr.videos):
        names = {a["label"] for a in thumos["real"][v]["annotations"]}
        assert {tr.classes[c] for c in np.flatnonzero(tr.labels[row])} == names


def test_thumos_txt_folder_and_ambiguous_fallback(thumos, real_annotations):
    root = thumos["root"]
    (root / "annotations.json").unlink()
    shutil.rmtree(root / "annotations_test")
    shutil.copytree(real_annotations / "thumos14" / "official", root / "official")
    te = D.load_split(thumos["data"], "thumos14", "test", skip_bad=True, progress=False)  # features: 3 of 210
    assert te.annotation_file == root / "official" == D.find_annotation_file(thumos["data"], "thumos14")
    assert te.videos == sorted(thumos["test"])
    assert sum(r == "missing: feature file not found" for _, r in te.skipped) == 207
    assert te.ambiguous_file == root / "official" / "annotations_test" / "Ambiguous_test.txt"
    assert te.durations == [None] * len(te.videos)
    # no official ambiguous file in the data folder → the project's shipped list (if present), else none
    (root / "official" / "annotations_test" / "Ambiguous_test.txt").unlink()
    te = D.load_split(thumos["data"], "thumos14", "test", skip_bad=True, progress=False)
    shipped = Path(D.__file__).resolve().parent / "result" / "ambiguous.txt"
    if shipped.is_file():
        amb_video = thumos["test"][-1]
        assert te.ambiguous_file == shipped and te.ambiguous == {amb_video: thumos["amb"][amb_video]}
    else:
        assert te.ambiguous_file is None and te.ambiguous == {}
    # an explicit annotation file wins over the default locations
    sub = D.read_annotations(root / "official" / "annotations_test")
    one = {v: sub[v] for v in thumos["test"][:1]}
    (root / "mine.json").write_text(json.dumps(one))
    assert D.load_split(root, "thumos14", "test", annotation_file=root / "mine.json", progress=False).videos == list(
        one
    )


def test_load_split_all_real_thumos14_ids(tmp_path, real_annotations):
    """Every real THUMOS14 id with a minimal (L = 11) feature pair: 200 train / 210 test, json == txt folder."""
    real = json.loads((real_annotations / "thumos14" / "annotations.json").read_text())
    root = tmp_path / "thumos14"
    shutil.copytree(real_annotations / "thumos14" / "official", root / "official")
    shutil.copy(real_annotations / "thumos14" / "annotations.json", root / "annotations.json")
    zeros = np.zeros((11, 1024), np.float32)
    for v, e in real.items():
        folder = root / "features" / e["subset"]
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / f"{v}_rgb.npy", zeros)
        np.save(folder / f"{v}_flow.npy", zeros)
    tr = D.load_split(tmp_path, "thumos14", "train", progress=False)
    te = D.load_split(tmp_path, "thumos14", "test", progress=False)
    assert (len(tr), len(te)) == (200, 210) and tr.classes == te.classes == D.THUMOS14_CLASSES
    assert [r for _, r in te.skipped] == ["dropped: annotation errors (method §7.2)"] * 3
    assert set(te.ambiguous) <= set(te.videos) and len(te.ambiguous) == 35  # 37 in the file, 2 are dropped videos
    np.testing.assert_array_equal(tr.labels, ref_labels(real, tr.videos, tr.classes))
    (root / "annotations.json").unlink()  # → the official txt folder
    te_txt = D.load_split(tmp_path, "thumos14", "test", progress=False)
    assert te_txt.annotation_file == root / "official"
    assert te_txt.videos == te.videos and np.array_equal(te_txt.labels, te.labels)
    assert te_txt.ambiguous == te.ambiguous
    for v in te.videos:
        assert _counter(te_txt.ground_truth, [v]) == _counter(te.ground_truth, [v])


@pytest.fixture
def anet(tmp_path):
    """Official-layout ActivityNet file with v_-prefix cases: bare id ↔ v_ file, v_ id ↔ bare file, v_v_ files."""
    db = {
        "abcdefghijk": {"subset": "training", "duration": 7.7, "annotations": [{"label": "B", "segment": [1, 2]}]},
        "v_UmAH95xls": {"subset": "training", "duration": 8.3, "annotations": [{"label": "A", "segment": [0, 3]}]},
        "v_stripme123": {
            "subset": "training",
            "duration": 9.0,
            "annotations": [{"label": "A", "segment": [0, 1]}, {"label": "C", "segment": [2, 3]}],
        },
        "exactmatch1": {"subset": "training", "annotations": [{"label": "C", "segment": [0.5, 1.5]}]},
        "-01K1HxqPB8": {"subset": "validation", "duration": 10.2, "annotations": [{"label": "B", "segment": [0, 7]}]},
        "testonly123": {"subset": "testing", "duration": 7.0, "annotations": []},
    }
    root = tmp_path / "activitynet"
    root.mkdir()
    (root / "annotations_1.2.json").write_text(json.dumps({"version": "VERSION 1.2", "database": db}))
    tr, te = root / "features" / "training", root / "features" / "validation"
    _write(tr, "v_abcdefghijk", 12, 0)
    _write(tr, "v_v_UmAH95xls", 13, 1)
    _write(tr, "stripme123", 14, 2)
    _write(tr, "exactmatch1", 15, 3)
    _write(te, "v_-01K1HxqPB8", 16, 4)
    return {"data": tmp_path, "root": root, "db": db}


def test_v_prefix_both_ways(anet):
    tr = D.load_split(anet["data"], "activitynet1.2", "train", progress=False)
    assert tr.videos == ["exactmatch1", "stripme123", "v_abcdefghijk", "v_v_UmAH95xls"]  # feature stems, sorted
    assert tr.classes == ["A", "B", "C"]
    np.testing.assert_array_equal(tr.labels, [[0, 0, 1], [1, 0, 1], [0, 1, 0], [1, 0, 0]])
    assert tr.ground_truth["v_abcdefghijk"] == [{"label": "B", "segment": [1.0, 2.0]}]
    assert tr.durations == [None, 9.0, 7.7, 8.3]  # L · 16 / 25 s: snippet counts that fit (warn_snippet_counts)
    te = D.load_split(anet["data"], "activitynet1.2", "test", progress=False)
    assert te.videos == ["v_-01K1HxqPB8"] and te.num_snippets == [16] and te.ambiguous == {}
    # ground_truth() matches either form of the id
    ann = D.read_annotations(anet["root"] / "annotations_1.2.json")
    assert D.ground_truth(ann, ["v_-01K1HxqPB8", "-01K1HxqPB8"]) == {
        "v_-01K1HxqPB8": [{"label": "B", "segment": [0.0, 7.0]}],
        "-01K1HxqPB8": [{"label": "B", "segment": [0.0, 7.0]}],
    }
    with pytest.raises(InputError, match="nosuchvideo"):
        D.ground_truth(ann, ["nosuchvideo"])


def test_v_prefix_exact_name_claimed_first(anet):
    db = dict(anet["db"])
    db["v_exactmatch1"] = {"subset": "training", "annotations": [{"label": "A", "segment": [0, 1]}]}
    (anet["root"] / "annotations_1.2.json").write_text(json.dumps({"database": db}))
    # only exactmatch1_*.npy exists: it belongs to "exactmatch1"; "v_exactmatch1" must not share it
    with pytest.raises(InputError, match=r"v_exactmatch1_rgb\.npy: feature file not found"):
        D.load_split(anet["data"], "activitynet1.2", "train", progress=False)
    tr = D.load_split(anet["data"], "activitynet1.2", "train", skip_bad=True, progress=False)
    assert tr.videos.count("exactmatch1") == 1 and ("v_exactmatch1", "missing: feature file not found") in tr.skipped


def test_short_videos_skipped_both_splits(anet):
    _write(anet["root"] / "features" / "training", "exactmatch1", 10, 9)
    _write(anet["root"] / "features" / "validation", "v_-01K1HxqPB8", 11, 9)
    tr = D.load_split(anet["data"], "activitynet1.2", "train", progress=False)
    assert "exactmatch1" not in tr.videos and tr.skipped == [("exactmatch1", "short: 10 snippets (<= 10, method §7.2)")]
    assert D.load_split(anet["data"], "activitynet1.2", "test", progress=False).num_snippets == [11]
    _write(anet["root"] / "features" / "validation", "v_-01K1HxqPB8", 3, 9)
    with pytest.raises(InputError, match="no videos left"):
        D.load_split(anet["data"], "activitynet1.2", "test", progress=False)


# --- bad input: one line naming the file and the problem ------------------------------------------------------------

_STEM = "v_abcdefghijk"


def _corrupt(folder: Path, case: str) -> tuple[str, str]:
    """Damage one file of video `_STEM` → (file name expected in the message, problem expected in it)."""
    rgb, flow = folder / f"{_STEM}_rgb.npy", folder / f"{_STEM}_flow.npy"
    good = np.zeros((12, 1024), np.float32)
    if case == "missing_rgb":
        rgb.unlink()
        flow.unlink()
        return rgb.name, "feature file not found"
    if case == "missing_flow":
        flow.unlink()
        return flow.name, "feature file not found"
    if case == "length":
        np.save(flow, np.zeros((13, 1024), np.float32))
        return flow.name, "13 snippets but"
    if case == "width":
        np.save(rgb, np.zeros((12, 512), np.float32))
        return rgb.name, "width 512, expected 1024"
    if case in ("nan", "inf"):
        good[7, 1000] = np.nan if case == "nan" else -np.inf
        np.save(flow, good)
        return flow.name, "NaN or Inf"
    if case == "garbage":
        rgb.write_bytes(b"\x00garbage\nbytes\n" * 10)
        return rgb.name, "not a readable .npy file"
    if case == "truncated":
        flow.write_bytes(flow.read_bytes()[:1000])
        return flow.name, "not a readable .npy file"
    if case == "ndim1":
        np.save(rgb, np.zeros(1024, np.float32))
        return rgb.name, "1-D array"
    if case == "int":
        np.save(rgb, np.zeros((12, 1024), np.int64))
        return rgb.name, "dtype int64"
    raise AssertionError(case)


BAD_CASES = ["missing_rgb", "missing_flow", "length", "width", "nan", "inf", "garbage", "truncated", "ndim1", "int"]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_feature_file(anet, case):
    folder = anet["root"] / "features" / "training"
    name, problem = _corrupt(folder, case)
    with pytest.raises(InputError) as e:
        D.load_split(anet["data"], "activitynet1.2", "train", progress=False)
    msg = str(e.value)
    assert name in msg and problem in msg and "\n" not in msg, msg
    tr = D.load_split(anet["data"], "activitynet1.2", "train", skip_bad=True, progress=False)
    assert _STEM not in tr.videos and len(tr.videos) == 3
    assert [v for v, _ in tr.skipped] in ([_STEM], ["abcdefghijk"])  # a missing rgb file has no stem yet
    assert "skipped: " in tr.summary()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"a": {"subset": "training", "annotations": [}', "not valid JSON"),
        ('{"a": {"annotations": []}}', "no 'subset'"),
        ('{"a": {"subset": "training", "annotations": [{"label": "x"}]}}', "is not {'label'"),
        ('{"a": {"subset": "training", "annotations": [{"label": "x", "segment": [1]}]}}', "is not {'label'"),
        ('{"a": {"subset": "training", "duration": "long", "annotations": []}}', 'duration "long" is not a number'),
        ("[1, 2]", "expected a JSON object"),
        (b"\xff\xfe\x00binary", "cannot read"),
    ],
)
def test_bad_annotation_json(tmp_path, text, problem):
    path = tmp_path / "annotations_1.2.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(InputError) as e:
        D.read_annotations(path)
    msg = str(e.value)
    assert str(path) in msg and problem in msg and "\n" not in msg, msg


def test_bad_annotation_txt_and_names(tmp_path, anet):
    bad = tmp_path / "Diving_val.txt"
    bad.write_text("video_validation_1 1.0 2.0\nvideo_validation_2 1.0\n")
    with pytest.raises(InputError, match=r"Diving_val\.txt:2: expected 'video start end'"):
        D.read_annotations(bad)
    with pytest.raises(InputError, match=r'Ambiguous_test\.txt:1: video v: segment end "two" is not a number'):
        (tmp_path / "Ambiguous_test.txt").write_text("v 1 two\n")
        D.read_ambiguous(tmp_path / "Ambiguous_test.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no THUMOS14 annotation files"):
        D.read_annotations(tmp_path / "empty")
    with pytest.raises(InputError, match="annotation file not found"):
        D.read_annotations(tmp_path / "nope.json")
    with pytest.raises(InputError, match="'imagenet': unknown dataset; known: thumos14, activitynet1.2"):
        D.load_split(anet["data"], "imagenet", "train")
    with pytest.raises(InputError, match="split 'val'"):
        D.load_split(anet["data"], "activitynet1.2", "val")
    with pytest.raises(InputError, match="nowhere: data folder not found"):
        D.load_split(anet["data"] / "nowhere", "activitynet1.2", "train")
    with pytest.raises(InputError, match="no 'thumos14/' folder"):
        D.load_split(anet["data"], "thumos14", "train")
    with pytest.raises(InputError, match="no annotation file found for activitynet1.3"):
        D.load_split(anet["data"], "activitynet1.3", "train")
    shutil.rmtree(anet["root"] / "features" / "validation")
    with pytest.raises(InputError, match=r"validation: feature folder not found"):
        D.load_split(anet["data"], "activitynet1.2", "test")


# --- sampling (method §7.3) ------------------------------------------------------------------------------------------

SHAPES = [(5, 8), (8, 8), (11, 8), (11, 750), (100, 7), (1000, 750), (11, 1), (1, 1), (12, 80), (7919, 750)]


@pytest.mark.parametrize(("L", "S"), SHAPES)
def test_test_indices_match_reference(L, S):
    got = D.sample_test_indices(L, S)
    assert got.dtype == np.int64 and got.tolist() == ref_test_indices(L, S)
    uni = D.sample_uniform_indices(L, S)
    assert uni.dtype == np.int64 and uni.tolist() == [lo for lo, _ in ref_segment_bounds(L, S)]


@pytest.mark.parametrize(("L", "S"), SHAPES)
def test_train_indices_against_reference(L, S):
    bounds = ref_segment_bounds(L, S)
    draws = np.stack([D.sample_train_indices(L, S, np.random.default_rng(seed)) for seed in range(30)])
    assert draws.dtype == np.int64 and draws.shape == (30, S)
    lo = np.array([b[0] for b in bounds])
    hi = np.array([max(b[1], b[0] + 1) for b in bounds])  # an empty segment picks floor(b_i)
    assert ((draws >= lo) & (draws < hi)).all()  # one pick per segment, inside it
    assert (draws[:, 1:] >= draws[:, :-1]).all() and draws.max() < L
    # the reference with its own random source has exactly the same support per segment
    rng = np.random.default_rng(0)
    ref = ref_train_indices(L, S, lambda a, b: int(rng.integers(a, b)))
    assert all(lo[i] <= r < hi[i] for i, r in enumerate(ref))
    fixed = lo == np.array([b[1] for b in bounds])
    assert (draws[:, fixed] == lo[fixed]).all()
    wide = np.flatnonzero(hi - lo > 1)
    if len(wide):  # random where the segment has room: the 30 draws are not all equal
        assert any(len(np.unique(draws[:, i])) > 1 for i in wide)


def test_train_indices_uniform_within_segment():
    draws = np.concatenate([D.sample_train_indices(40, 10, np.random.default_rng(s)) for s in range(2000)])
    counts = np.bincount(draws, minlength=40)  # every snippet is in a 4-wide segment: 2000/4 = 500 each
    assert counts.min() > 400 and counts.max() < 600


def test_train_indices_deterministic():
    a = D.sample_train_indices(1000, 750, np.random.default_rng(42))
    b = D.sample_train_indices(1000, 750, np.random.default_rng(42))
    c = D.sample_train_indices(1000, 750, np.random.default_rng(43))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


# --- FeatureDataset ------------------------------------------------------------------------------------------------


def _expected(split, v, idx):
    rgb, flow = np.load(split.rgb_paths[v]), np.load(split.flow_paths[v])
    return np.concatenate([rgb[idx], flow[idx]], axis=1)


@pytest.mark.parametrize("in_memory", [False, True])
def test_feature_dataset_items(anet, in_memory):
    tr = D.load_split(anet["data"], "activitynet1.2", "train", progress=False)
    S = 13
    ds = D.FeatureDataset(tr, S, "train", in_memory=in_memory)
    assert len(ds) == 4
    for v in range(len(ds)):
        x, y, video, L = ds[(v, 1000 + v)]
        idx = D.sample_train_indices(L, S, np.random.default_rng(1000 + v))
        assert x.dtype == torch.float32 and x.shape == (S, 2048)
        np.testing.assert_array_equal(x.numpy(), _expected(tr, v, idx))
        assert y.dtype == torch.float32 and y.tolist() == tr.labels[v].tolist()
        assert video == tr.videos[v] and L == tr.num_snippets[v]
    y.zero_()  # items are copies: the split's labels are untouched
    assert tr.labels[-1].sum() > 0
    test = D.FeatureDataset(tr, S, "test", in_memory=in_memory)  # L in 12..15 around S = 13
    for v in range(len(ds)):
        x, _, _, L = test[v]
        np.testing.assert_array_equal(x.numpy(), _expected(tr, v, ref_test_indices(L, S)))
    for sampling in ("all", "uniform"):
        fixed = D.FeatureDataset(tr, S, "train", sampling=sampling, in_memory=in_memory)
        x, _, _, L = fixed[(0, 5)]
        want = list(range(L)) if sampling == "all" else [lo for lo, _ in ref_segment_bounds(L, S)]
        np.testing.assert_array_equal(x.numpy(), _expected(tr, 0, want))


def test_feature_dataset_global_rng_resume(anet):
    tr = D.load_split(anet["data"], "activitynet1.2", "train", progress=False)
    ds = D.FeatureDataset(tr, 5, "train")  # L in 12..15: segments of 2-3 snippets
    torch.manual_seed(42)
    state = torch.get_rng_state()
    first = [ds[i][0] for i in range(4)]
    torch.set_rng_state(state)  # a resumed trainer restores the RNG state it saved
    again = [ds[i][0] for i in range(4)]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    later = [ds[i][0] for i in range(4)]  # the RNG moved on: fresh draws
    assert not all(torch.equal(a, b) for a, b in zip(first, later, strict=True))


def test_feature_dataset_workers_identical(anet):
    """(index, seed) items are a pure function: 2 worker processes give the same batches as the main process."""
    tr = D.load_split(anet["data"], "activitynet1.2", "train", progress=False)
    ds = D.FeatureDataset(tr, 16, "train")
    batches = [[(i % 4, 7 * i + b) for b in range(2)] for i in range(4)]
    main = [torch.stack([ds[it][0] for it in b]) for b in batches]
    loader = torch.utils.data.DataLoader(ds, batch_sampler=batches, num_workers=2)
    for want, (x, y, videos, L) in zip(main, loader, strict=True):
        assert torch.equal(x, want) and y.shape == (2, 3) and len(videos) == 2 and L.dtype == torch.int64


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_feature_dataset_to_device(anet, device):
    """Items batch through a DataLoader (pinned memory on CUDA) and arrive on the device unchanged."""
    tr = D.load_split(anet["data"], "activitynet1.2", "train", progress=False)
    ds = D.FeatureDataset(tr, 8, "train", in_memory=True)
    batch = [(v, 100 + v) for v in range(len(ds))]
    loader = torch.utils.data.DataLoader(ds, batch_sampler=[batch], pin_memory=device == "cuda")
    x, y, videos, L = next(iter(loader))
    x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
    assert x.shape == (4, 8, 2048) and x.device.type == device and list(videos) == tr.videos
    for row, item in enumerate(batch):
        assert torch.equal(x[row].cpu(), ds[item][0]) and torch.equal(y[row].cpu(), ds[item][1])
    assert L.tolist() == tr.num_snippets


def test_feature_dataset_args(anet):
    tr = D.load_split(anet["data"], "activitynet1.2", "train", progress=False)
    for kwargs in ({"mode": "eval"}, {"mode": "train", "sampling": "random"}, {"mode": "train", "num_seg": 0}):
        with pytest.raises(ValueError):
            D.FeatureDataset(tr, **{"num_seg": 8, **kwargs})


def test_ambiguous_label_in_json_is_not_a_class(tmp_path):
    ann = {
        "video_test_0000004": {
            "subset": "test",
            "duration": 30.0,
            "annotations": [
                {"label": "CricketShot", "segment": [1.0, 2.0]},
                {"label": "Ambiguous", "segment": [3.0, 4.0]},
            ],
        }
    }
    path = tmp_path / "annotations.json"
    path.write_text(json.dumps(ann))
    got = D.read_annotations(path)
    assert got["video_test_0000004"]["annotations"] == [{"label": "CricketShot", "segment": [1.0, 2.0]}]
    assert D.class_names(got) == ["CricketShot"]


# --- bad and odd segments, unknown labels, named skips (issue 11) ---------------------------------------------------


@pytest.fixture
def fresh_warnings(monkeypatch):
    """Each test sees its warnings (utils.warn_once prints a message once per process)."""
    import utils

    monkeypatch.setattr(utils, "_WARNED", set())


def _ann_json(tmp_path, segments, duration=10.0, name="annotations.json"):
    entry = {
        "subset": "val",
        "duration": duration,
        "annotations": [{"label": "Diving", "segment": s} for s in segments],
    }
    path = tmp_path / name
    path.write_text(json.dumps({"video_validation_1": entry}))
    return path


@pytest.mark.parametrize(
    ("segments", "duration", "problem"),
    [
        ([[1, 2], [9.0, 3.0]], 10.0, "video 'video_validation_1': Diving segment [9.0, 3.0] ends before it starts"),
        ([[1, 2]], float("nan"), "video 'video_validation_1': duration NaN is not a finite number"),
        ([[1, 2]], -5.0, "video 'video_validation_1': duration -5.0 is not a finite number ≥ 0"),
    ],
)
def test_reversed_segment_or_bad_duration_is_one_line_error(tmp_path, segments, duration, problem):
    path = _ann_json(tmp_path, segments, duration)
    with pytest.raises(InputError) as e:
        D.read_annotations(path)
    assert str(e.value) == f"{path}: {problem}"


def test_non_finite_segment_from_any_reader_is_an_error(tmp_path):
    """check_segments runs on every reader's output (a reader that let NaN through still fails, naming it)."""
    ann = {"v1": {"subset": "val", "duration": None, "annotations": [{"label": "A", "segment": [1.0, float("nan")]}]}}
    with pytest.raises(InputError, match=r"^x\.npy: video 'v1': A segment \[1\.0, nan\] is not finite$"):
        D.check_segments(ann, "x.npy")
    path = tmp_path / "a.json"  # the JSON reader's own check names file, video and entry too
    path.write_text('{"v1": {"subset": "val", "annotations": [{"label": "A", "segment": [1, NaN]}]}}')
    with pytest.raises(
        InputError, match=r"a\.json: video 'v1': annotation 0 \(A\): segment end NaN is not a finite number$"
    ):
        D.read_annotations(path)


def test_reversed_txt_lines_are_errors(tmp_path):
    txt = tmp_path / "LongJump_val.txt"
    txt.write_text("video_validation_1 1.0 2.0\nvideo_validation_2 9.0 3.0\n")
    with pytest.raises(InputError) as e:
        D.read_annotations(txt)
    assert str(e.value) == f"{txt}:2: video video_validation_2: segment [9.0, 3.0] ends before it starts"
    amb = tmp_path / "Ambiguous_test.txt"
    amb.write_text("video_test_1 5 4\n")
    with pytest.raises(InputError, match=r"Ambiguous_test\.txt:1: video video_test_1: segment \[5\.0, 4\.0\] ends"):
        D.read_ambiguous(amb)


def test_odd_segments_are_kept_and_counted_in_one_warning(tmp_path, capsys, fresh_warnings):
    segments = [[1, 2], [3, 3], [-0.5, 1], [5, 5], [9.5, 10.9], [12, 15], [11.5, 11.5]]  # duration 10, slack 1 s
    path = _ann_json(tmp_path, segments)
    ann = D.read_annotations(path)
    assert [a["segment"] for a in ann["video_validation_1"]["annotations"]] == segments  # kept as given
    err = capsys.readouterr().err
    assert err == (
        f"warning: {path}: 5 segments kept as given: 3 have zero length, 2 end over 1 s past their video's duration, "
        "1 start before 0 s (see docs/evaluate.md)\n"
    )  # [11.5, 11.5] is both zero-length and past the end: one segment, two kinds; [9.5, 10.9] is within the slack
    D.read_annotations(path)
    assert capsys.readouterr().err == "", "once per file and process"
    txt = tmp_path / "Diving_val.txt"  # no durations in the txt format: only zero-length and negative starts
    txt.write_text("video_validation_1 3 3\nvideo_validation_1 4 9\n")
    D.read_annotations(txt)
    assert (
        capsys.readouterr().err
        == f"warning: {txt}: 1 segments kept as given: 1 have zero length (see docs/evaluate.md)\n"
    )


def test_real_files_odd_segments(real_annotations, capsys, fresh_warnings):
    """The official files' known flaws are kept (published protocol) and counted: THUMOS14's 30 segments that start
    after their video's end, ActivityNet's zero-length ones (its sub-second overruns of the rounded durations are
    within the slack)."""
    thumos = real_annotations / "thumos14" / "annotations.json"
    ann = D.read_annotations(thumos)
    past = [(v, a["segment"]) for v, e in ann.items() for a in e["annotations"] if a["segment"][1] > e["duration"] + 1]
    assert len(past) == 30 and all(s >= ann[v]["duration"] for v, (s, _) in past)
    assert sum(v == "video_test_0000270" for v, _ in past) == 22
    assert capsys.readouterr().err == (
        f"warning: {thumos}: 30 segments kept as given: 30 end over 1 s past their video's duration "
        "(see docs/evaluate.md)\n"
    )
    for version, zero in (("1.2", 10), ("1.3", 12)):
        path = real_annotations / "activitynet" / f"annotations_{version}.json"
        D.read_annotations(path)
        assert capsys.readouterr().err == (
            f"warning: {path}: {zero} segments kept as given: {zero} have zero length (see docs/evaluate.md)\n"
        )
    D.read_annotations(real_annotations / "thumos14" / "official")
    assert capsys.readouterr().err == ""


def test_unknown_label_warns_naming_it(thumos, capsys, fresh_warnings):
    path = thumos["root"] / "annotations.json"
    ann = json.loads(path.read_text())
    video = thumos["val"][1]
    ann[video]["annotations"][0]["label"] = "LongJumpp"  # a typo
    path.write_text(json.dumps(ann))
    tr = D.load_split(thumos["data"], "thumos14", "train", progress=False)
    assert "LongJumpp" in tr.classes  # still a class (a custom list is allowed), but not silently
    err = [line for line in capsys.readouterr().err.splitlines() if "LongJumpp" in line]
    n = len(D.class_names(ann))
    assert err == [
        f"warning: {path}: label 'LongJumpp' (1 video(s), e.g. {video}) is not one of THUMOS14's 20 classes; "
        f"it becomes a class of its own ({n} classes)"
    ]
    D.load_split(thumos["data"], "thumos14", "test", progress=False)
    assert "LongJumpp" not in capsys.readouterr().err  # once


def test_activitynet_class_count_warns(anet, capsys, fresh_warnings):
    D.load_split(anet["data"], "activitynet1.2", "train", progress=False)
    path = anet["root"] / "annotations_1.2.json"
    assert capsys.readouterr().err == (
        f"warning: {path}: 3 classes, but activitynet1.2 has 100; in training but not validation: 'A', 'C'\n"
    )


def test_skip_bad_names_the_skipped_videos(anet, tmp_path):
    folder = anet["root"] / "features" / "training"
    _corrupt(folder, "width")
    (folder / "stripme123_flow.npy").unlink()
    tr = D.load_split(anet["data"], "activitynet1.2", "train", skip_bad=True, progress=False)
    rgb, flow = folder / f"{_STEM}_rgb.npy", folder / "stripme123_flow.npy"
    lines = tr.summary().splitlines()
    assert lines[-3:] == [
        "skipped videos:",
        f"  stripme123  missing: {flow}: feature file not found",
        f"  {_STEM}  bad: {rgb}: width 512, expected 1024",
    ]
    assert "skipped: bad" in tr.summary() and "skipped: missing" in tr.summary()
    assert tr.summary(limit=1).splitlines()[-1] == "  … 1 more"
    listed = tmp_path / "skipped.tsv"
    tr.write_skipped(listed)
    assert tr.summary(skipped_file=listed, limit=1).splitlines()[-3::2] == [
        f"skipped videos (all 2 in {listed}):",
        f"  … 1 more in {listed}",
    ]
    assert listed.read_text().splitlines() == [f"{v}\t{r}" for v, r in tr.skipped] and len(tr.skipped) == 2


@pytest.mark.parametrize("video", ["../../evil_video", "a\\b", "..", "v\x00x"])
def test_a_video_id_that_is_a_path_is_refused_not_looked_up(anet, video):
    db = dict(anet["db"])
    db[video] = {"subset": "training", "annotations": [{"label": "A", "segment": [0, 1]}]}
    source = anet["root"] / "annotations_1.2.json"
    source.write_text(json.dumps({"database": db}))
    with pytest.raises(InputError) as err:
        D.load_split(anet["data"], "activitynet1.2", "train", skip_bad=True, progress=False)
    assert str(err.value) == f"{source}: video name {ascii(video)}: cannot be a file name " + (
        "(it holds a path separator, / or \\)"
        if "/" in video or "\\" in video
        else ".. names a folder)"
        if video == ".."
        else "(it holds a NUL or other control character)"
    ).replace(".. names", "(.. names")
