"""dataset.py, W-TALC layout: the real annotation folders, the restricted unpickler, one-line errors, and the same
features in both layouts training to bit-identical results through main.py."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import pickle
import shlex
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from wtalc_layout import object_array, save_object_npy, write_wtalc, wtalc_from_authors

import dataset as D
import evaluate
import main
import train
import wtalc as W
from demo import make_demo
from utils import InputError, load_checkpoint

THUMOS = "Thumos14reduced-Annotations"
ANET = "ActivityNet1.2-Annotations"


def _segments(annotations, videos):
    """Multiset of (video, label, start, end)."""
    return Counter((v, a["label"], *a["segment"]) for v in videos for a in annotations[v]["annotations"])


# --- the real annotation folders -------------------------------------------------------------------------------------


def test_real_thumos14_folder_agrees_with_annotations_json(real_annotations):
    names, classlist, ann = W.read_wtalc_folder(real_annotations / "wtalc" / THUMOS)
    assert len(names) == len(ann) == 412 and classlist == D.THUMOS14_CLASSES
    assert Counter(e["subset"] for e in ann.values()) == {"val": 200, "test": 212}  # `validation` → `val`
    real = D.read_annotations(real_annotations / "thumos14" / "annotations.json")
    # The W-TALC folder lacks only video_test_0001292 (its only segments are Ambiguous; dropped by method §7.2 anyway).
    assert set(real) - set(ann) == {"video_test_0001292"} and set(ann) <= set(real)
    for v in ann:  # every segment, label and subset agrees
        assert _segments(ann, [v]) == _segments(real, [v]) and ann[v]["subset"] == real[v]["subset"], v
    # ... but 98 videos list their segments in another order (evaluation: only ties of equal tIoU could notice)
    assert sum(ann[v]["annotations"] != real[v]["annotations"] for v in ann) == 98
    assert sum(len(e["annotations"]) for e in ann.values()) == 3007 + 3358
    # durations are W-TALC's own measurements: within 0.15 s of annotations.json's
    assert max(abs(ann[v]["duration"] - real[v]["duration"]) for v in ann) < 0.15
    train, _ = D.split_videos(ann, "thumos14", "train")
    test, dropped = D.split_videos(ann, "thumos14", "test")
    assert (len(train), len(test)) == (200, 210)
    assert test == D.split_videos(real, "thumos14", "test")[0]
    assert [v for v, _ in dropped] == ["video_test_0000270", "video_test_0001496"]
    assert D.read_annotations(real_annotations / "wtalc" / THUMOS) == ann  # the read_annotations hook


def test_real_activitynet12_folder(real_annotations):
    names, classlist, ann = W.read_wtalc_folder(real_annotations / "wtalc" / ANET)
    assert len(names) == 7202 and len(classlist) == 100 == D.DATASETS["activitynet1.2"].num_classes
    assert Counter(e["subset"] for e in ann.values()) == {"training": 4819, "validation": 2383}
    assert D.class_names(ann) == sorted(classlist)  # every class has instances
    assert all(e["annotations"] for e in ann.values())
    train, _ = D.split_videos(ann, "activitynet1.2", "train")
    test, _ = D.split_videos(ann, "activitynet1.2", "test")
    assert (len(train), len(test)) == (4819, 2383)


def _link_annotations(shared: Path, name: str, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(shared / "wtalc" / f"{name}-Annotations", out / f"{name}-Annotations")
    return out


def test_real_thumos14_folder_loads_as_splits(real_annotations, tmp_path):
    """Every real THUMOS14 video with a minimal (T = 11) feature row: 200 train / 210 test, as the other layout."""
    data = _link_annotations(real_annotations, "Thumos14reduced", tmp_path / "Thumos14reduced")
    names, _, ann = W.read_wtalc_folder(data / THUMOS)
    rows = [np.full((11, 2048), i, np.float32) for i in range(len(names))]
    save_object_npy(data / f"Thumos14reduced{W.WTALC_FEATURES}", object_array(rows), style="numpy")
    tr = D.load_split(data, "thumos14", "train", progress=False)
    te = D.load_split(data, "thumos14", "test", progress=False)
    assert (len(tr), len(te)) == (200, 210) and tr.classes == te.classes == D.THUMOS14_CLASSES
    assert (
        tr.videos == sorted(tr.videos)
        and [r for _, r in te.skipped] == ["dropped: annotation errors (method §7.2)"] * 2
    )
    assert te.ambiguous_file == data / THUMOS / "Ambiguous_test.txt"
    assert set(te.ambiguous) <= set(te.videos) and len(te.ambiguous) == 35  # as the official file gives
    real = D.read_annotations(real_annotations / "thumos14" / "annotations.json")
    assert all(Counter(map(str, te.ground_truth[v])) == Counter(map(str, real[v]["annotations"])) for v in te.videos)
    row = {v: i for i, v in enumerate(names)}
    assert all(float(tr.features[v][0, 0]) == row[v] for v in tr.videos)  # row i is videoname[i]
    assert D.find_annotation_file(data, "thumos14") == data / THUMOS


def test_real_activitynet12_folder_loads_as_splits(real_annotations, tmp_path):
    data = _link_annotations(real_annotations, "ActivityNet1.2", tmp_path / "anet")
    names, _, ann = W.read_wtalc_folder(data / ANET)
    keep = set(sorted(names)[::500])  # 15 videos with T = 11; the others T = 4 (short: skipped)
    rows = [np.zeros((11 if v in keep else 4, 2048), np.float32) for v in names]
    save_object_npy(data / f"ActivityNet1.2{W.WTALC_FEATURES}", object_array(rows), style="numpy")
    for split, subset, n in (("train", "training", 4819), ("test", "validation", 2383)):
        s = D.load_split(data, "activitynet1.2", split, progress=False)
        assert s.videos == sorted(v for v in keep if ann[v]["subset"] == subset)
        assert len(s.videos) + sum(r.startswith("short") for _, r in s.skipped) == n
        assert len(s.classes) == 100 and s.ambiguous == {}


# --- the same features in both layouts: identical training, testing, evaluation ------------------------------------

# A run short enough for a test that still scores above 0.0 % mAP@AVG (method §8 keeps no checkpoint otherwise).
TINY = ["--num_seg", "16", "--batch_size", "4", "--num_iter", "2", "--eval_iter", "2", "--init_lr", "1e-3"]
TINY += ["--no_progress", "--seed", "3"]


@pytest.fixture(scope="module")
def both_layouts(tmp_path_factory):
    """make_demo's synthetic THUMOS14 (20 training videos: all 20 classes; 10 test videos) in both layouts."""
    tmp = tmp_path_factory.mktemp("layouts")
    authors = make_demo(tmp / "authors", seed=0, max_train=20, max_test=10)
    return authors, wtalc_from_authors(authors, tmp / "Thumos14reduced")


def _state_hash(path: Path) -> str:
    sd, _ = load_checkpoint(path)
    h = hashlib.sha256()
    for k in sorted(sd):
        h.update(k.encode() + sd[k].numpy().tobytes())
    return h.hexdigest()


def _read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_both_layouts_give_the_same_split(both_layouts):
    authors, wtalc = both_layouts
    for split in ("train", "test"):
        a = D.load_split(authors, "thumos14", split, progress=False)
        w = D.load_split(wtalc, "thumos14", split, progress=False)
        assert a.classes == w.classes == D.THUMOS14_CLASSES
        assert (a.videos, a.num_snippets, a.ground_truth, a.ambiguous) == (
            w.videos,
            w.num_snippets,
            w.ground_truth,
            w.ambiguous,
        )
        assert np.array_equal(a.labels, w.labels) and w.rgb_paths[0].name.endswith(W.WTALC_FEATURES)
        for mode in ("train", "test"):
            fa, fw = D.FeatureDataset(a, 16, mode), D.FeatureDataset(w, 16, mode, in_memory=True)
            for v in range(len(a)):
                xa, ya, va, la = fa[(v, 7 + v)]
                xw, yw, vw, lw = fw[(v, 7 + v)]
                assert torch.equal(xa, xw) and torch.equal(ya, yw) and (va, la) == (vw, lw)
                assert xw.dtype == torch.float32 and xw.is_contiguous()


def test_both_layouts_train_to_identical_results(both_layouts, tmp_path):
    """One seed on CPU: the same CSV, checkpoint weights, predictions and ground truth, bit for bit; a --model_file
    test pass on the W-TALC layout reproduces them; evaluate.py reads the annotation folder as ground truth."""
    authors, wtalc = both_layouts
    runs = {}
    for name, data in (("authors", authors), ("wtalc", wtalc)):
        save = tmp_path / name
        assert main.main(["--data_path", str(data), "--save_path", str(save), "--device", "cpu", *TINY]) == 0
        runs[name] = save
    a, w = runs["authors"], runs["wtalc"]
    for f in ("thumos14.csv", "thumos14_predictions.json", "thumos14_ground_truth.json"):
        assert (a / f).read_bytes() == (w / f).read_bytes(), f
    assert _state_hash(a / "thumos14.pth") == _state_hash(w / "thumos14.pth")
    test_preds = a / "thumos14_predictions.json"

    # --model_file on the W-TALC layout with the authors'-layout checkpoint: the same test numbers.
    out = tmp_path / "tested"
    argv = ["--data_path", str(wtalc), "--save_path", str(out), "--model_file", str(a / "thumos14.pth"), *TINY]
    assert main.main(argv) == 0
    assert _read_csv(out / "thumos14_test.csv")[1][2:] == _read_csv(a / "thumos14.csv")[1][2:]  # acc, mAPs
    tested = json.loads((out / "thumos14_test_predictions.json").read_text())
    assert tested["results"] == json.loads(test_preds.read_text())["results"]

    # evaluate.py with the W-TALC annotation folder as ground truth == with annotations.json
    kw = {"ambiguous": wtalc / "Thumos14reduced-Annotations" / "Ambiguous_test.txt"}
    via_folder = evaluate.evaluate_files(wtalc / "Thumos14reduced-Annotations", test_preds, **kw)
    via_json = evaluate.evaluate_files(authors / "thumos14" / "annotations.json", test_preds, **kw)
    assert via_folder == via_json and via_folder.startswith("thumos14 test: 10 videos")


@pytest.mark.parametrize("style", ["py2", "numpy", "protocol5"])
def test_pickle_styles_read_alike(tmp_path, style):
    """Python 2 protocol 2 (the public files), np.save's protocol 3, protocol 5: the same arrays and annotations."""
    rng = np.random.default_rng(0)
    rows = [rng.standard_normal((t, 2048)).astype(np.float32) for t in (12, 0, 300)]
    path = tmp_path / "x.npy"
    save_object_npy(path, object_array(rows), style)
    got = W.read_npy(path)
    assert got.dtype == object and got.shape == (3,)
    for want, x in zip(rows, got, strict=True):
        assert x.dtype == np.float32 and x.shape == want.shape and np.array_equal(x, want)
    labels = [[b"Diving", "CliffDiving"], []]  # Python 2 str arrives as bytes; Python 3 str as str
    save_object_npy(path, object_array(labels), style)
    assert [[W._wtalc_text(x, path, "label") for x in v] for v in W.read_npy(path)] == [["Diving", "CliffDiving"], []]


def test_python3_protocol2_bytes_via_codecs(tmp_path):
    """Python 3 writing protocol 2 spells bytes as _codecs.encode(str, 'latin1') (ActivityNet's labels_all.npy)."""
    path = tmp_path / "x.npy"
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "|O", "fortran_order": False, "shape": (2,)})
        pickle.dump(object_array([np.arange(5, dtype=np.float64), [b"\xff\x00a", 1.5]]), f, protocol=2)
    got = W.read_npy(path)
    assert np.array_equal(got[0], np.arange(5)) and got[1] == [b"\xff\x00a", 1.5]


# --- safety: a crafted pickle is refused and never runs --------------------------------------------------------------


class _System:
    def __init__(self, marker: Path):
        self.command = f"touch {shlex.quote(str(marker))}"

    def __reduce__(self):
        return (os.system, (self.command,))


class _Exec:
    def __init__(self, marker: Path):
        self.code = f"open({str(marker)!r}, 'w').write('ran')"

    def __reduce__(self):
        return (exec, (self.code,))


@pytest.mark.parametrize("payload", [_System, _Exec])
@pytest.mark.parametrize("where", ["features", "labels"])
def test_crafted_pickle_is_refused_and_never_runs(tmp_path, payload, where):
    marker = tmp_path / "pwned"
    data = _tiny_wtalc(tmp_path / "data")
    target = data / f"Thumos14reduced{W.WTALC_FEATURES}" if where == "features" else data / THUMOS / "labels.npy"
    evil = object_array([payload(marker), np.zeros((12, 2048), np.float32)])
    np.save(target, evil, allow_pickle=True)  # what a malicious download would hold
    with pytest.raises(InputError) as e:
        D.load_split(data, "thumos14", "train", progress=False)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{target}: refused to unpickle "), msg
    assert (f"{os.system.__module__}.system" if payload is _System else "builtins.exec") in msg
    assert not marker.exists()
    if where == "labels":
        with pytest.raises(InputError, match="refused to unpickle"):
            D.read_annotations(data / THUMOS)
        assert not marker.exists()
    # the payload is live: a plain unpickler would have run it (so the test above can fail)
    with open(target, "rb") as f:
        np.lib.format.read_magic(f)
        np.lib.format.read_array_header_1_0(f)
        pickle.load(f)
    assert marker.exists()


def test_restricted_unpickler_refuses_other_reconstructions(tmp_path):
    path = tmp_path / "x.npy"
    for obj, refused in ((object_array([Path("a")]), "pathlib"), (object_array([{1, 2}, range(3)]), "builtins.range")):
        np.save(path, obj, allow_pickle=True)
        with pytest.raises(InputError, match=f"refused to unpickle {refused}"):
            W.read_npy(path)


# --- bad input: one line naming the file and the problem -------------------------------------------------------------


def _tiny_wtalc(folder: Path, **change) -> Path:
    """A small THUMOS14 W-TALC folder: 3 validation and 2 test videos (T 11–30), all 20 classes listed."""
    rng = np.random.default_rng(1)
    videos = {}
    for i, (v, sub) in enumerate(
        [("video_validation_0000051", "validation"), ("video_validation_0000002", "validation")]
        + [("video_validation_0000010", "validation"), ("video_test_0000004", "test"), ("video_test_0000270", "test")]
    ):
        c = D.THUMOS14_CLASSES[i]
        videos[v] = {
            "subset": sub,
            "features": rng.standard_normal((11 + 5 * i, 2048)).astype(np.float32),
            "labels": [c, c],
            "segments": [[1.0, 2.5], [3.0, 4.0]],
            "duration": 30.0,
        }
    for v, fields in change.get("videos", {}).items():
        videos[v].update(fields)
    return write_wtalc(
        folder, change.get("name", "Thumos14reduced"), videos, change.get("classlist", D.THUMOS14_CLASSES)
    )


def test_tiny_wtalc_loads(tmp_path):
    data = _tiny_wtalc(tmp_path)
    tr = D.load_split(data, "thumos14", "train", progress=False)
    assert tr.videos == ["video_validation_0000002", "video_validation_0000010", "video_validation_0000051"]
    assert tr.num_snippets == [16, 21, 11] and tr.labels.sum() == 3
    assert tr.ground_truth["video_validation_0000002"] == [
        {"label": "BasketballDunk", "segment": [1.0, 2.5]},
        {"label": "BasketballDunk", "segment": [3.0, 4.0]},
    ]
    te = D.load_split(data, "thumos14", "test", progress=False)
    assert te.videos == ["video_test_0000004"] and te.skipped[0][0] == "video_test_0000270"
    # no Ambiguous_test.txt in the folder: the shipped THUMOS14 list, as for the other layout
    assert te.ambiguous_file == D.SHIPPED_AMBIGUOUS
    # --val_fraction's holdout subsets keep the in-memory features (keyed by video, not by position)
    part, held = train.holdout_split(tr, 0.34, seed=0)
    for sub in (part, held):
        for v, video in enumerate(sub.videos):
            x, *_ = D.FeatureDataset(sub, 4, "test")[v]
            assert torch.equal(x, torch.from_numpy(tr.features[video][D.sample_test_indices(sub.num_snippets[v], 4)]))


def test_annotation_file_overrides_the_folder(tmp_path):
    """--annotation_file gives subsets, labels and classes; names and row order still come from videoname.npy."""
    data = _tiny_wtalc(tmp_path / "data")
    mine = {
        "video_validation_0000010": {"subset": "val", "annotations": [{"label": "Diving", "segment": [5.0, 6.0]}]},
        "video_validation_0000051": {"subset": "val", "annotations": [{"label": "LongJump", "segment": [1.0, 2.0]}]},
        "video_validation_9999999": {"subset": "val", "annotations": [{"label": "Diving", "segment": [1.0, 2.0]}]},
    }
    (tmp_path / "mine.json").write_text(json.dumps(mine))
    with pytest.raises(InputError, match="video_validation_9999999 is not listed"):
        D.load_split(data, "thumos14", "train", annotation_file=tmp_path / "mine.json", progress=False)
    tr = D.load_split(data, "thumos14", "train", annotation_file=tmp_path / "mine.json", skip_bad=True, progress=False)
    assert tr.videos == ["video_validation_0000010", "video_validation_0000051"] and tr.classes == [
        "Diving",
        "LongJump",
    ]
    assert tr.num_snippets == [21, 11] and tr.labels.tolist() == [[1, 0], [0, 1]]
    assert tr.annotation_file == tmp_path / "mine.json" and tr.skipped[0][0] == "video_validation_9999999"


def _bad(tmp_path: Path, case: str) -> tuple[Path, str, str]:
    """(data_path, data_name, expected message part) for one broken W-TALC folder."""
    data = tmp_path / "data"
    ann = data / THUMOS
    joint = data / f"Thumos14reduced{W.WTALC_FEATURES}"
    v0 = "video_validation_0000051"
    if case == "no_folder":
        _tiny_wtalc(data)
        shutil.rmtree(ann)
        return data, "thumos14", f"{ann}: annotation folder not found"
    if case == "other_dataset_file":
        _tiny_wtalc(data)
        return data, "activitynet1.2", "holds Thumos14reduced-I3D-JOINTFeatures.npy (another dataset's W-TALC features)"
    if case == "other_dataset_folder":
        _tiny_wtalc(data, name="MyFeatures")
        return data, "activitynet1.2", "classlist.npy: 20 classes, but activitynet1.2 has 100"
    if case == "missing_file":
        _tiny_wtalc(data)
        (ann / "segments.npy").unlink()
        return data, "thumos14", "segments.npy: file not found"
    if case == "count":
        _tiny_wtalc(data)
        rows = W.read_npy(joint)
        save_object_npy(joint, rows[:-1])
        return data, "thumos14", f"{joint}: 4 videos, but {ann / 'videoname.npy'} lists 5"
    if case == "subset_count":
        _tiny_wtalc(data)
        np.save(ann / "subset.npy", np.array([b"validation"] * 4))
        return data, "thumos14", "subset.npy: 4 entries, but videoname.npy lists 5 videos"
    if case == "unknown_label":
        _tiny_wtalc(data, videos={v0: {"labels": ["Diving", "Juggling"]}})
        return data, "thumos14", f"labels.npy: video {v0}: label 'Juggling' is not in classlist.npy"
    if case == "label_segment_count":
        _tiny_wtalc(data, videos={v0: {"labels": ["Diving"]}})
        return data, "thumos14", "1 labels, but segments.npy has 2 segments"
    if case == "bad_segment":
        _tiny_wtalc(data, videos={v0: {"segments": [[1.0, float("nan")], [2.0, 3.0]]}})
        return data, "thumos14", "segment [1.0, nan] is not [start, end]"
    if case == "truncated":
        _tiny_wtalc(data)
        joint.write_bytes(joint.read_bytes()[:5000])
        return data, "thumos14", f"{joint}: not a readable .npy file"
    rows = {
        "width": np.zeros((12, 1024), np.float32),
        "ndim": np.zeros(2048, np.float32),
        "int": np.zeros((12, 2048), np.int64),
        "nan": np.where(np.arange(2048) == 7, np.nan, 0).astype(np.float32)[None].repeat(12, 0),
        "list": [[0.0] * 2048] * 12,
    }[case]
    _tiny_wtalc(data, videos={v0: {"features": rows}})
    problem = {
        "width": "width 1024, expected 2048",
        "ndim": "1-D array of shape (2048,)",
        "int": "dtype int64",
        "nan": "contains NaN or Inf",
        "list": "a list, expected a float array",
    }[case]
    return data, "thumos14", f"{joint}: video {v0} (row 0): {problem}"


ROW_CASES = ["width", "ndim", "int", "nan", "list"]
CASES = ["no_folder", "other_dataset_file", "other_dataset_folder", "missing_file", "count", "subset_count"]
CASES += ["unknown_label", "label_segment_count", "bad_segment", "truncated", *ROW_CASES]


@pytest.mark.parametrize("case", CASES)
def test_bad_wtalc_input_is_one_line(tmp_path, case):
    data, name, expected = _bad(tmp_path, case)
    with pytest.raises(InputError) as e:
        D.load_split(data, name, "train", progress=False)
    msg = str(e.value)
    assert expected in msg and "\n" not in msg, msg
    if case in ROW_CASES:  # --skip_bad skips and lists the video instead
        tr = D.load_split(data, name, "train", skip_bad=True, progress=False)
        assert "video_validation_0000051" not in tr.videos and len(tr) == 2
        assert [v for v, r in tr.skipped if r.startswith("bad: ")] == ["video_validation_0000051"]


def test_several_feature_files_pick_the_dataset(tmp_path):
    data = _tiny_wtalc(tmp_path)
    shutil.copy(data / f"Thumos14reduced{W.WTALC_FEATURES}", data / f"ActivityNet1.2{W.WTALC_FEATURES}")
    assert D.find_wtalc_layout(data, "thumos14") == (data / f"Thumos14reduced{W.WTALC_FEATURES}", data / THUMOS)
    with pytest.raises(InputError, match="ActivityNet1.2-Annotations: annotation folder not found"):
        D.find_wtalc_layout(data, "activitynet1.2")
    assert D.find_wtalc_layout(tmp_path / "nowhere", "thumos14") is None


def test_evaluate_guesses_activitynet_for_wtalc_ids(tmp_path):
    """W-TALC ActivityNet ids are video_<n>: evaluate.py must not take them for THUMOS14."""
    videos = {
        f"video_{i}": {
            "subset": sub,
            "features": np.zeros((0, 2048), np.float32),
            "labels": ["A"],
            "segments": [[0, 5]],
            "duration": 9,
        }
        for i, sub in enumerate(["training", "validation"])
    }
    data = write_wtalc(tmp_path, "ActivityNet1.2", videos, ["A"])
    preds = tmp_path / "p.json"
    preds.write_text(json.dumps({"results": {"video_1": [{"label": "A", "score": 0.9, "segment": [0, 5]}]}}))
    report = evaluate.evaluate_files(data / ANET, preds)
    assert report.startswith("activitynet validation: 1 videos") and "100.00" in report
