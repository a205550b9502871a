"""main.py: CLI config and defaults, --act_th parsing, end-to-end train/test on a tiny synthetic set, resume
equivalence, the honest protocol, and one-line errors that overwrite nothing."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import dataset
import main
import train
from demo import make_demo
from model import ACRNet
from utils import InputError, save_checkpoint, set_seed

ROOT = Path(__file__).resolve().parents[1]
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
# Tiny runs: 6 training / 3 test videos (L 15–75), 16 snippets, batch 2.
TINY = ["--num_seg", "16", "--batch_size", "2", "--eval_iter", "1", "--no_progress", "--seed", "3"]
TIOUS = dataset.DATASETS["thumos14"].tiou_thresholds


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    return make_demo(tmp_path_factory.mktemp("data"), seed=0, max_train=6, max_test=3)


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


# --- config ------------------------------------------------------------------------------------------------------


def test_act_th_range_is_numpy_arange_exactly():
    got = main.parse_act_th("0.1:1.0:0.05")
    want = np.arange(0.1, 1.0, 0.05)
    assert len(got) == 18 and np.array_equal(np.asarray(got), want)  # bit-exact, 0.1 … 0.95
    assert main.make_config([]).act_th == want.tolist()  # the default is the same list


@pytest.mark.parametrize("argv", [["0.1", "0.2"], ["0.1,0.2"], ["0.1, 0.2"], ["0.1", "0.2,"]])
def test_act_th_lists(argv):
    assert main.make_config(["--act_th", *argv]).act_th == [0.1, 0.2]


@pytest.mark.parametrize(
    "value", ["abc", "0.1:1.0", "0.1:1.0:0", "0.1:1.0:-0.1", "1.5", "nan", "0.5:0.1:0.1", "__import__('os')", ","]
)
def test_act_th_rejects(value):
    with pytest.raises(InputError, match="--act_th"):
        main.make_config(["--act_th", value])


def test_dataset_defaults_and_overrides():
    th = main.make_config([])
    assert (th.data_name, th.num_seg, th.batch_size, th.alpha, th.pool) == ("thumos14", 750, 32, 0.5, False)
    assert th.seed == 42
    assert (th.num_iter, th.eval_iter, th.init_lr, th.weight_decay, th.lamda) == (2000, 100, 1e-4, 1e-3, 0.1)
    assert (th.cls_th, th.iou_th, th.fps, th.rate) == (0.1, 0.1, 25.0, 16)
    for name in ("activitynet1.2", "activitynet1.3"):
        an = main.make_config(["--data_name", name])
        assert (an.num_seg, an.batch_size, an.alpha, an.pool) == (80, 128, 0.8, True)
    an = main.make_config(["--data_name", "activitynet1.3", "--num_seg", "100", "--alpha", "0.3", "--no-pool"])
    assert (an.num_seg, an.batch_size, an.alpha, an.pool) == (100, 128, 0.3, False)
    assert main.make_config(["--num_segments", "64"]).num_seg == 64  # the authors' README spelling
    demo = main.make_config(["--demo", "--num_iter", "7"])
    assert (demo.data_path, demo.num_seg, demo.batch_size, demo.num_iter, demo.init_lr) == ("demo_data", 48, 8, 7, 3e-4)
    with pytest.raises(InputError, match="--batch_size"):
        main.make_config(["--batch_size", "0"])
    with pytest.raises(InputError, match="--val_fraction"):
        main.make_config(["--val_fraction", "1.0"])
    with pytest.raises(InputError, match="--num_segments: invalid int value"):  # argparse errors: one line too
        main.make_config(["--num_seg", "many"])
    with pytest.raises(InputError, match="invalid choice"):
        main.make_config(["--data_name", "thumos15"])


def test_train_batches_are_a_pure_function_of_step(tiny_data):
    split = dataset.load_split(tiny_data, "thumos14", "train", progress=False)
    feats = dataset.FeatureDataset(split, 16, mode="train")
    stream = train.BatchStream(len(split), 4, 6, seed=5)
    full = train.TrainSteps(feats, stream, first=1, last=6)
    later = train.TrainSteps(feats, train.BatchStream(len(split), 4, 6, seed=5), first=4, last=6)  # a resumed run
    for k in range(3):
        assert all(torch.equal(a, b) for a, b in zip(full[3 + k], later[k], strict=True))
    other = train.TrainSteps(feats, train.BatchStream(len(split), 4, 6, seed=6), first=1, last=1)
    assert not torch.equal(full[0][0], other[0][0])


def test_holdout_split_is_seeded_and_disjoint(tiny_data):
    split = dataset.load_split(tiny_data, "thumos14", "train", progress=False)
    tr, va = train.holdout_split(split, 0.34, seed=1)
    tr2, va2 = train.holdout_split(split, 0.34, seed=1)
    assert va.videos == va2.videos and len(va) == 2 and len(tr) == 4
    assert sorted(tr.videos + va.videos) == sorted(split.videos)
    for part in (tr, va):
        idx = [split.videos.index(v) for v in part.videos]
        assert np.array_equal(part.labels, split.labels[idx])
        assert part.num_snippets == [split.num_snippets[i] for i in idx]
        assert set(part.ground_truth) == set(part.videos)
    with pytest.raises(InputError, match="--val_fraction"):
        train.holdout_split(split, 0.99, seed=1)


def test_rng_state_survives_weights_only_save(tmp_path):
    import random

    set_seed(11)
    state = train.rng_state()
    torch.save(state, tmp_path / "s.pt")
    want = (random.random(), np.random.rand(), torch.rand(()))
    train.set_rng_state(torch.load(tmp_path / "s.pt", weights_only=True))
    assert (random.random(), np.random.rand(), torch.rand(())) == want


# --- end to end --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
def test_train_then_test_gives_the_same_map(tiny_data, tmp_path, device, capsys, monkeypatch):
    save = tmp_path / "run"
    argv = ["--data_path", str(tiny_data), "--save_path", str(save), "--device", device, *TINY]
    assert main.main([*argv, "--num_iter", "2", "--alpha", "0.3", "--act_th", "0.2:0.9:0.1"]) == 0
    rows = read_rows(save / "thumos14.csv")
    assert [r["step"] for r in rows] == ["1", "2"]
    assert list(rows[0])[:3] == ["step", "loss", "test_acc"] and list(rows[0])[-1] == "mAP@AVG"
    assert len(rows[0]) == 3 + 7 + 1  # method §10: 7 THUMOS14 tIoUs + AVG
    assert all(np.isfinite(float(r["loss"])) and 0 <= float(r["mAP@AVG"]) <= 1 for r in rows)
    for name in ("thumos14.pth", "thumos14_last.pt", "thumos14_predictions.json", "thumos14_ground_truth.json"):
        assert (save / name).is_file(), name
    preds = json.loads((save / "thumos14_predictions.json").read_text())
    assert set(preds) == {"version", "results", "external_data"}
    test_split = dataset.load_split(tiny_data, "thumos14", "test", progress=False)
    assert set(preds["results"]) == set(test_split.videos)
    for p in (p for ps in preds["results"].values() for p in ps):
        assert p["label"] in test_split.classes and p["segment"][0] < p["segment"][1]
    gt = json.loads((save / "thumos14_ground_truth.json").read_text())
    assert dataset.read_annotations(save / "thumos14_ground_truth.json").keys() == set(test_split.videos)
    assert gt["database"][test_split.videos[0]]["annotations"] == test_split.ground_truth[test_split.videos[0]]

    # Test mode with the best checkpoint reproduces the best row's numbers exactly.
    best = rows[train.best_index([float(r["mAP@AVG"]) for r in rows])]  # the method §8 rule, as training keeps it
    out = tmp_path / "test"
    result = main.run(
        main.make_config(
            ["--data_path", str(tiny_data), "--save_path", str(out), "--device", device, *TINY]
            + ["--model_file", str(save / "thumos14.pth"), "--save_vis"]
        )
    )
    tested = read_rows(out / "thumos14_test.csv")[0]
    for key in [k for k in best if k.startswith("mAP@")] + ["test_acc"]:
        assert float(tested[key]) == float(best[key]), key
    assert float(tested["mAP@AVG"]) == pytest.approx(result.avg)
    # Only the data flags: the checkpoint's own settings (num_seg 16, alpha 0.3, act_th 0.2…0.8) give the same mAP.
    # Without --save_path a test run writes into outputs/test, beside no training run's files.
    capsys.readouterr()
    monkeypatch.chdir(tmp_path)
    plain = ["--data_path", str(tiny_data), "--device", device, "--no_progress"]
    assert main.main([*plain, "--model_file", str(save / "thumos14.pth")]) == 0
    note = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("note: test settings"))
    assert "num_seg=16" in note and "alpha=0.3" in note and "act_th=0.2,0.3,0.4" in note and "from flags: none" in note
    written = {p.name for p in (tmp_path / "outputs").rglob("*")}
    assert written == {"test", "thumos14_test.csv", "thumos14_test_predictions.json", "thumos14_test_ground_truth.json"}
    again = read_rows(tmp_path / "outputs" / "test" / "thumos14_test.csv")[0]
    assert {k: again[k] for k in tested if k != "step"} == {k: tested[k] for k in tested if k != "step"}
    assert json.loads((out / "thumos14_test_predictions.json").read_text())["results"] == result.predictions
    pictures = {p.name for p in (out / "thumos14_test_vis").iterdir()}  # --save_vis → visualise.save_test_visuals
    assert pictures == {f"{v}.png" for v in test_split.videos} | {"ap_per_class.png", "map_vs_tiou.png"}


def test_video_mode_dispatches_to_localize(monkeypatch, tmp_path):
    import localize

    seen = {}
    monkeypatch.setattr(localize, "run", lambda cfg, header: seen.update(cfg=cfg, header=header) or 0)
    ckpt = tmp_path / "m.pth"  # trained with num_seg 48: --video uses the checkpoint's settings too
    meta = {"classes": dataset.THUMOS14_CLASSES, "data_name": "thumos14", "config": {"num_seg": 48, "pool": False}}
    save_checkpoint(ACRNet(20).state_dict(), ckpt, meta)
    argv = ["--video", "clip.mp4", "--model_file", str(ckpt), "--rgb_weights", "r.pt", "--flow_weights", "f.pt"]
    assert main.main([*argv, "--save_path", str(tmp_path / "out")]) == 0
    cfg = seen["cfg"]
    assert (cfg.video, cfg.model_file, cfg.rgb_weights, cfg.flow_weights) == ("clip.mp4", str(ckpt), "r.pt", "f.pt")
    assert cfg.num_seg == 48
    assert seen["header"] == cfg.summary(), "localize prints the config once its inputs are checked"
    assert not (tmp_path / "out").exists()


def test_resume_matches_an_uninterrupted_run(tiny_data, tmp_path):
    base = ["--data_path", str(tiny_data), "--device", "cpu", *TINY, "--eval_iter", "2", "--num_iter", "3"]
    assert main.main([*base, "--save_path", str(tmp_path / "a")]) == 0
    b = ["--save_path", str(tmp_path / "b")]
    assert main.main([*base, *b, "--stop_at", "1"]) == 0  # paused between evaluations
    assert not (tmp_path / "b" / "thumos14.csv").exists() and (tmp_path / "b" / "thumos14_last.pt").is_file()
    assert main.main([*base, *b, "--resume", "--stop_at", "2"]) == 0  # paused right at an evaluation
    assert [r["step"] for r in read_rows(tmp_path / "b" / "thumos14.csv")] == ["2"]
    assert main.main([*base, *b, "--resume"]) == 0
    a = (tmp_path / "a" / "thumos14.csv").read_text()
    assert a.count("\n") == 3 and a == (tmp_path / "b" / "thumos14.csv").read_text()  # losses and mAPs, bit-exact
    sa = torch.load(tmp_path / "a" / "thumos14.pth", weights_only=True)
    sb = torch.load(tmp_path / "b" / "thumos14.pth", weights_only=True)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    # Resuming with other settings is refused in one line.
    with pytest.raises(InputError, match="--num_iter"):
        main.run(main.make_config([*base[:-1], "8", *b, "--resume"]))


def test_resume_on_other_data_is_refused(tiny_data, tmp_path):
    """A resume must not silently continue on a different training set (e.g. another --annotation_file)."""
    base = ["--data_path", str(tiny_data), "--device", "cpu", *TINY, "--num_iter", "3", "--save_path", str(tmp_path)]
    assert main.main([*base, "--stop_at", "1"]) == 0
    ann = json.loads((tiny_data / "thumos14" / "annotations.json").read_text())
    drop = sorted(v for v, e in ann.items() if e["subset"] == "val")[0]
    del ann[drop]  # one training video fewer
    other = tmp_path / "annotations_other.json"
    other.write_text(json.dumps(ann))
    with pytest.raises(InputError, match="other data"):
        main.run(main.make_config([*base, "--resume", "--annotation_file", str(other)]))
    assert main.main([*base, "--resume"]) == 0  # the same data still resumes


@pytest.mark.parametrize("seed", ["-1", str(2**32)])
def test_out_of_range_seed_is_one_line_input_error(seed):
    with pytest.raises(InputError, match="--seed"):
        main.make_config(["--seed", seed])


def test_honest_protocol_selects_on_validation(tiny_data, tmp_path):
    save = tmp_path / "honest"
    argv = ["--data_path", str(tiny_data), "--save_path", str(save), "--device", "cpu", *TINY]
    assert main.main([*argv, "--num_iter", "1", "--val_fraction", "0.34"]) == 0
    rows = read_rows(save / "thumos14.csv")
    assert list(rows[0])[2] == "val_acc" and len(rows) == 1
    gt = json.loads((save / "thumos14_ground_truth.json").read_text())["database"]
    train = dataset.load_split(tiny_data, "thumos14", "train", progress=False)
    assert len(gt) == 2 and set(gt) <= set(train.videos)  # selection ran on held-out training videos
    test_row = read_rows(save / "thumos14_test.csv")[0]
    assert test_row["step"] == "1"
    results = json.loads((save / "thumos14_test_predictions.json").read_text())["results"]
    assert set(results) == set(dataset.load_split(tiny_data, "thumos14", "test", progress=False).videos)
    # The authors' protocol alongside: the test mAP of every evaluation, logged but never used to select.
    assert list(rows[0])[-9:] == ["test_acc", *(f"test_mAP@{t:.2f}" for t in TIOUS), "test_mAP@AVG"]
    assert rows[0]["test_mAP@AVG"] == test_row["mAP@AVG"]  # one evaluation: the same checkpoint, the same test mAP


def test_seeds_run_each_seed_then_one_table(tiny_data, tmp_path, capsys):
    """--seeds 3,4: seed 3's run is exactly the single run with --seed 3; the table's numbers are the per-seed ones;
    --resume re-reads finished seeds."""
    common = ["--data_path", str(tiny_data), "--device", "cpu", *TINY[:-2], "--num_iter", "1", "--val_fraction", "0.34"]
    assert main.main([*common, "--seed", "3", "--save_path", str(tmp_path / "single")]) == 0
    capsys.readouterr()
    save = tmp_path / "seeds"
    assert main.main([*common, "--seeds", "3,4", "--save_path", str(save)]) == 0
    out = capsys.readouterr().out
    assert (save / "seed3" / "thumos14.csv").read_text() == (tmp_path / "single" / "thumos14.csv").read_text()
    assert (save / "seed3" / "thumos14_test.csv").read_text() == (tmp_path / "single" / "thumos14_test.csv").read_text()
    rows = read_rows(save / "thumos14_seeds.csv")
    assert [(r["seed"], r["protocol"]) for r in rows] == [
        ("3", "best_on_test"), ("3", "held_out"), ("4", "best_on_test"), ("4", "held_out")
    ]  # fmt: skip
    held = [r for r in rows if r["protocol"] == "held_out"]
    assert held[0]["mAP@AVG"] == read_rows(save / "seed3" / "thumos14_test.csv")[0]["mAP@AVG"]
    avg = np.array([100 * float(r["mAP@AVG"]) for r in held])
    table = [line for line in out.splitlines() if line.startswith("| held-out")]
    assert len(table) == 1 and f"{avg.mean():.1f} ± {avg.std(ddof=1):.1f} |" in table[0]
    assert f" {avg.min():.1f}–{avg.max():.1f} |" in out and "test mAP (%) over 2 seeds (3, 4; std: n-1)" in out
    assert main.main([*common, "--seeds", "3,4", "--save_path", str(save), "--resume"]) == 0
    again = capsys.readouterr().out
    assert again.count("(resumed)") == 2 and table[0] in again


def test_model_file_settings_come_from_the_checkpoint_unless_a_flag_is_given(tmp_path, capsys):
    ckpt = tmp_path / "ours.pth"
    stored = {"num_seg": 48, "cls_th": 0.2, "alpha": 0.3, "act_th": [0.2, 0.4], "pool": False, "batch_size": 8}
    save_checkpoint(ACRNet(20).state_dict(), ckpt, {"classes": [], "data_name": "thumos14", "config": stored})
    cfg = main.make_config(["--model_file", str(ckpt)])
    assert (cfg.num_seg, cfg.cls_th, cfg.alpha, cfg.act_th, cfg.iou_th) == (48, 0.2, 0.3, [0.2, 0.4], 0.1)
    assert cfg.batch_size == 32  # a training setting: not taken
    note = capsys.readouterr().out.strip()
    assert note.count("\n") == 0 and "num_seg=48" in note and "thumos14 defaults: iou_th fps rate" in note
    assert cfg.save_path == "outputs/test", "a test run's files go beside no training run's"
    assert main.make_config(["--model_file", str(ckpt), "--save_path", "mine"]).save_path == "mine"
    assert main.make_config(["--model_file", str(ckpt), "--demo"]).save_path == "outputs/demo/test"
    assert main.make_config(["--model_file", str(ckpt), "--video", "v.mp4"]).save_path == "outputs"  # not a test run
    assert main.make_config([]).save_path == "outputs"
    capsys.readouterr()
    cfg = main.make_config(["--model_file", str(ckpt), "--num_seg", "64", "--act_th", "0.5"])
    assert (cfg.num_seg, cfg.act_th, cfg.alpha) == (64, [0.5], 0.3)
    assert "from flags: num_seg=64 act_th=0.5" in capsys.readouterr().out
    # The authors' plain state-dicts carry nothing: the method's defaults of --data_name.
    plain = tmp_path / "authors.pth"
    torch.save(ACRNet(200, pool=True).state_dict(), plain)
    cfg = main.make_config(["--model_file", str(plain), "--data_name", "activitynet1.3"])
    assert (cfg.num_seg, cfg.alpha, cfg.pool) == (80, 0.8, True)
    assert "plain state-dict" in capsys.readouterr().out
    # A checkpoint of another dataset: its dataset without --data_name; nothing of it with another --data_name.
    anet = tmp_path / "anet.pth"
    save_checkpoint(ACRNet(200, pool=True).state_dict(), anet, {"data_name": "activitynet1.3", "config": stored})
    cfg = main.make_config(["--model_file", str(anet)])
    assert (cfg.data_name, cfg.num_seg, cfg.alpha, cfg.pool) == ("activitynet1.3", 48, 0.3, False)
    cfg = main.make_config(["--model_file", str(anet), "--data_name", "thumos14"])
    assert (cfg.data_name, cfg.num_seg, cfg.alpha) == ("thumos14", 750, 0.5)
    bad = tmp_path / "bad.pth"
    save_checkpoint(ACRNet(20).state_dict(), bad, {"data_name": "thumos14", "config": {"num_seg": "many"}})
    with pytest.raises(InputError, match=r'bad\.pth: stored setting config\.num_seg = "many": is not a value of type'):
        main.make_config(["--model_file", str(bad)])


def test_missing_ambiguous_file_is_an_error_unless_no_ambiguous(tiny_data, tmp_path, monkeypatch, capsys):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    (data / "thumos14" / "Ambiguous_test.txt").unlink()
    monkeypatch.setattr(dataset, "SHIPPED_AMBIGUOUS", tmp_path / "no_such_file.txt")
    ckpt = tmp_path / "random.pth"
    classes = dataset.load_split(data, "thumos14", "train", progress=False).classes
    save_checkpoint(ACRNet(len(classes)).state_dict(), ckpt, {"classes": classes, "data_name": "thumos14"})
    argv = ["--data_path", str(data), "--save_path", str(tmp_path / "out"), *TINY, "--model_file", str(ckpt)]
    assert main.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Ambiguous_test.txt" in err[0] and "--no_ambiguous" in err[0], err
    assert main.main([*argv, "--no_ambiguous"]) == 0
    captured = capsys.readouterr()
    assert "WARNING: --no_ambiguous" in captured.err and "ambiguous segments  OFF" in captured.out


def test_reproducible_sets_cudnn_and_restores():
    from utils import reproducible

    cudnn = torch.backends.cudnn
    before = (cudnn.deterministic, cudnn.benchmark, torch.are_deterministic_algorithms_enabled())
    with reproducible(torch.device("cpu")):
        assert cudnn.deterministic and not cudnn.benchmark and torch.are_deterministic_algorithms_enabled()
    with reproducible(torch.device("cuda"), cudnn_benchmark=True):  # flags only: no CUDA needed
        assert not cudnn.deterministic and cudnn.benchmark
    assert (cudnn.deterministic, cudnn.benchmark, torch.are_deterministic_algorithms_enabled()) == before
    assert main.make_config([]).cudnn_benchmark is False and main.make_config(["--cudnn_benchmark"]).cudnn_benchmark


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--seeds", "1,x"], "--seeds"),
        (["--seeds", "1,1"], "distinct"),
        (["--seeds", "1", "--seed", "2"], "not allowed with"),
        (["--seeds", "1", "--video", "a.mp4"], "--seeds"),
        (["--seeds", "1,-3"], "--seed -3"),
    ],
)
def test_seeds_flag_errors(argv, message):
    with pytest.raises(InputError, match=message):
        main.make_config(argv)


# --- bad input ---------------------------------------------------------------------------------------------------


@pytest.fixture
def guarded(tiny_data, tmp_path):
    """A save folder holding earlier outputs; the test asserts they survive a failed run untouched."""
    save = tmp_path / "out"
    save.mkdir()
    for name in ("thumos14_test.csv", "thumos14_test_predictions.json", "thumos14.csv", "thumos14.pth"):
        (save / name).write_text(f"earlier {name}\n")
    return save


def _wrong_classes(path: Path) -> Path:
    save_checkpoint(ACRNet(5).state_dict(), path, {"classes": list("abcde"), "data_name": "x", "config": {}})
    return path


def _corrupt(path: Path) -> Path:
    path.write_bytes(b"PK\x03\x04 this is not a checkpoint")
    return path


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing data", "data folder not found"),
        ("missing annotations", "no annotation file found for thumos14"),
        ("missing annotation file", "nothing.json: annotation file not found (--annotation_file)"),
        ("missing checkpoint", "checkpoint file not found"),
        ("wrong class count", "checkpoint is for 5 classes, but the dataset has"),
        ("corrupt checkpoint", "not a readable PyTorch checkpoint"),
        ("bad act_th", "--act_th"),
        ("resume without file", "no resume file"),
    ],
)
def test_bad_input_is_one_line_and_overwrites_nothing(case, message, tiny_data, tmp_path, guarded, capsys):
    argv = ["--data_path", str(tiny_data), "--save_path", str(guarded), *TINY, "--num_iter", "2"]
    if case == "missing data":
        argv[1] = str(tmp_path / "nowhere")
    elif case == "missing annotations":
        (tmp_path / "bare" / "thumos14" / "features").mkdir(parents=True)
        argv[1] = str(tmp_path / "bare")
    elif case == "missing annotation file":
        argv += ["--annotation_file", str(tmp_path / "nothing.json")]
    elif case == "missing checkpoint":
        argv += ["--model_file", str(tmp_path / "none.pth")]
    elif case == "wrong class count":
        argv += ["--model_file", str(_wrong_classes(tmp_path / "five.pth"))]
    elif case == "corrupt checkpoint":
        argv += ["--model_file", str(_corrupt(tmp_path / "bad.pth"))]
    elif case == "bad act_th":
        argv += ["--act_th", "0.1:oops"]
    elif case == "resume without file":
        argv += ["--resume"]
    before = snapshot(guarded)
    assert main.main(argv) == 2
    out, err = capsys.readouterr()
    err = err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert snapshot(guarded) == before
    if case != "wrong class count":  # found once the split is loaded; the rest is checked before the config dump
        assert "config:" not in out, out


def test_subprocess_exit_code_and_single_line(tiny_data, tmp_path, guarded):
    bad = _wrong_classes(tmp_path / "five.pth")
    argv = ["--data_path", str(tiny_data), "--save_path", str(guarded), "--model_file", str(bad), "--no_progress"]
    before = snapshot(guarded)
    proc = subprocess.run([sys.executable, "main.py", *argv], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    classes = len(dataset.load_split(tiny_data, "thumos14", "test", progress=False).classes)
    assert proc.stderr.strip() == f"error: {bad}: checkpoint is for 5 classes, but the dataset has {classes}"
    assert snapshot(guarded) == before


def test_bad_feature_file_fails_in_one_line_or_is_skipped_with_skip_bad(tiny_data, tmp_path, capsys):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    test_dir = data / "thumos14" / "features" / "test"
    victim = sorted(test_dir.glob("*_rgb.npy"))[0]
    rgb = np.load(victim)
    rgb[0, 0] = np.nan
    np.save(victim, rgb)
    argv = ["--data_path", str(data), "--save_path", str(tmp_path / "out"), *TINY, "--num_iter", "1"]
    assert main.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and victim.name in err[0] and "NaN" in err[0], err
    assert main.main([*argv, "--skip_bad"]) == 0
    out = capsys.readouterr().out
    assert "skipped" in out and (tmp_path / "out" / "thumos14.csv").is_file()
