"""record.py, the record of a training run: every file's content (per-step CSV, per-class AP, curves, log, config file,
TensorBoard), the same rows after a --stop_at pause or a kill and --resume, the config file's round trip (`--config`
reruns a run bit for bit on CPU) and its one-line errors, --seeds' one record per seed; and utils.Progress, the one
progress display (plain lines where stderr is not a terminal, never a bar in a log file)."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import config
import dataset
import main
import record
import train
import utils
from demo import make_demo
from model import acrnet_loss

ROOT = Path(__file__).resolve().parents[1]
TIOUS = dataset.DATASETS["thumos14"].tiou_thresholds
TINY = ["--num_seg", "8", "--batch_size", "2", "--num_iter", "5", "--eval_iter", "2", "--no_progress"]
TINY += ["--device", "cpu"]
EVALUATED = [2, 4, 5]  # every --eval_iter steps, and the last step
RECORD = ["thumos14_train.csv", "thumos14_per_class.csv", "thumos14_curves.png", "thumos14.log", "thumos14_config.json"]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    return make_demo(tmp_path_factory.mktemp("data"), seed=0, max_train=3, max_test=2)


@pytest.fixture(scope="module")
def run_a(tiny_data, tmp_path_factory) -> Path:
    """One uninterrupted tiny run (5 steps, evaluations at 2, 4, 5): the reference of every test here."""
    save = tmp_path_factory.mktemp("runs") / "a"
    assert main.main(["--data_path", str(tiny_data), *TINY, "--save_path", str(save)]) == 0
    return save


def argv(data: Path, save: Path, *more: str) -> list[str]:
    return ["--data_path", str(data), *TINY, "--save_path", str(save), *more]


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def without_seconds(path: Path) -> list[list[str]]:
    """The per-step CSV's rows less the `seconds` column (the one that differs between two runs)."""
    with open(path, newline="") as f:
        table = list(csv.reader(f))
    assert table[0][-1] == "seconds"
    return [r[:-1] for r in table]


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err.strip()


# --- each file's content -------------------------------------------------------------------------------------------


def test_per_step_csv(run_a):
    """One row per step, in order; the parts add up to the loss; lr follows the cosine schedule; the mean loss since
    each evaluation is the evaluation CSV's `loss`."""
    steps = rows(run_a / "thumos14_train.csv")
    assert list(steps[0]) == record.STEP_COLUMNS
    assert [int(r["step"]) for r in steps] == [1, 2, 3, 4, 5]
    v = {k: np.array([float(r[k]) for r in steps]) for k in record.STEP_COLUMNS}
    np.testing.assert_allclose(v["loss"], v["loss_cls"] + 0.1 * (v["loss_gce_rgb"] + v["loss_gce_flow"]), rtol=1e-6)
    k = np.arange(5)  # the lr of step k+1: after k scheduler steps of CosineAnnealingLR(T_max=5, eta_min=0)
    np.testing.assert_allclose(v["lr"], 1e-4 * (1 + np.cos(np.pi * k / 5)) / 2, rtol=1e-12)
    assert np.all(np.isfinite(v["grad_norm"])) and np.all(v["grad_norm"] > 0) and np.all(v["seconds"] >= 0)
    evaluations = rows(run_a / "thumos14.csv")
    means = [v["loss"][0:2].mean(), v["loss"][2:4].mean(), v["loss"][4:5].mean()]
    np.testing.assert_allclose([float(r["loss"]) for r in evaluations], means, rtol=1e-6)


def test_per_step_values_are_the_steps_own():
    """StepLog.add gets exactly the step's loss parts and the norm of its gradients (computed here independently)."""
    torch.manual_seed(0)
    from model import ACRNet

    net = ACRNet(4)
    x, y = torch.randn(2, 8, 2048), torch.eye(4)[:2]
    loss, parts = acrnet_loss(net(x), y, lamda=0.1)
    loss.backward()
    log = record.StepLog(3, torch.device("cpu"))
    log.add(7, loss.detach(), parts, record.grad_norm(net), 0.5)
    norm = math.sqrt(sum(float((p.grad.double() ** 2).sum()) for p in net.parameters()))
    (row,) = log.take()
    assert row[0] == "7" and row[5] == "0.5" and log.take() == []
    assert [np.float32(c) for c in row[1:5]] == [t.detach().numpy() for t in (loss, *parts.values())]
    assert np.float32(row[6]) == torch.nn.utils.clip_grad_norm_(net.parameters(), math.inf).numpy()  # the usual one
    assert float(row[6]) == pytest.approx(norm, rel=1e-3)  # (float32 sums over 3M-element gradients: ~1e-4 off)


def test_step_log_does_not_wait_for_the_device(monkeypatch):
    """No host read of a tensor in a step (on CUDA each would be a host-device sync): item, tolist, float, cpu,
    numpy all fail inside add(); take() reads them (one sync, at an evaluation)."""
    loss, norm = torch.tensor(1.5), torch.tensor(2.0)
    parts = {"cls": torch.tensor(1.0), "gce_rgb": torch.tensor(2.0), "gce_flow": torch.tensor(3.0)}
    log = record.StepLog(2, torch.device("cpu"))
    with monkeypatch.context() as m:
        for name in ("item", "tolist", "__float__", "cpu", "numpy"):
            m.setattr(torch.Tensor, name, lambda *a, **k: pytest.fail("host read in a step"))
        log.add(1, loss, parts, norm, 1e-4)
        log.add(2, loss * 2, parts, norm, 1e-5)
    assert [r[:7] for r in log.take()] == [
        ["1", "1.5", "1.0", "2.0", "3.0", "0.0001", "2.0"], ["2", "3.0", "1.0", "2.0", "3.0", "1e-05", "2.0"]
    ]  # fmt: skip


def test_per_class_csv(run_a, tiny_data):
    """At each evaluation one row per class of the dataset, in its order and naming; over the classes that have
    ground truth, the mean AP at each tIoU is the evaluation CSV's mAP; a class without ground truth is empty."""
    per_class = rows(run_a / "thumos14_per_class.csv")
    assert list(per_class[0]) == ["step", "class", *(f"AP@{t:.2f}" for t in TIOUS), "AP@AVG"]
    test = dataset.load_split(tiny_data, "thumos14", "test", progress=False)
    assert [(int(r["step"]), r["class"]) for r in per_class] == [(s, c) for s in EVALUATED for c in test.classes]
    with_gt = {a["label"] for anns in test.ground_truth.values() for a in anns}
    assert 0 < len(with_gt) < len(test.classes)  # both kinds of row are checked
    for evaluation in rows(run_a / "thumos14.csv"):
        mine = [r for r in per_class if r["step"] == evaluation["step"]]
        assert all((r["class"] in with_gt) == (r["AP@AVG"] != "") for r in mine)
        ap = np.array([[float(r[f"AP@{t:.2f}"]) for t in TIOUS] for r in mine if r["class"] in with_gt])
        np.testing.assert_allclose(ap.mean(axis=0), [float(evaluation[f"mAP@{t:.2f}"]) for t in TIOUS], atol=1e-12)
        avg = [float(r["AP@AVG"]) for r in mine if r["class"] in with_gt]
        np.testing.assert_allclose(np.mean(avg), float(evaluation["mAP@AVG"]), atol=1e-12)


def test_log_file(run_a):
    """What the run printed, from the config line to the final table, one line per evaluation, no progress bar."""
    log = (run_a / "thumos14.log").read_text()
    assert log.startswith("=== ") and "a new run in" in log.splitlines()[0]
    assert log.splitlines()[1].startswith("config: data_path=")
    assert "\r" not in log and "it/s" not in log
    lines = [line for line in log.splitlines() if line.startswith("step ")]
    assert [line.split()[1] for line in lines] == ["2", "4", "5"]
    assert "| test mAP@AVG" in lines[0] and "kept:" in lines[0]
    assert "best test mAP (%) at step" in log and "| @0.1 |" in log
    assert "TensorBoard: tensorboard --logdir " + str(run_a / "tensorboard") in log


def test_config_file(run_a, tiny_data):
    cfg = json.loads((run_a / "thumos14_config.json").read_text())
    assert set(cfg) == {"settings", "data", "environment", "written"}
    fields = {f.name for f in dataclasses.fields(config.Config)}
    assert set(cfg["settings"]) == fields - set(config.INVOCATION_KEYS)
    assert cfg["settings"]["num_seg"] == 8 and cfg["settings"]["save_path"] == str(run_a)
    assert len(cfg["data"]["fingerprint"]) == 64 and cfg["data"]["videos"] == {"train": 3, "test": 2}
    env = cfg["environment"]
    assert env["packages"]["torch"] == torch.__version__ and env["python"] == sys.version.split()[0]
    assert env["git_commit"] is None or len(env["git_commit"].split("+")[0]) == 40


def test_data_fingerprint_follows_the_data(tiny_data, tmp_path):
    """The same data elsewhere: the same fingerprint; an annotation or the head of a feature file changed: another."""
    load = lambda root: {s: dataset.load_split(root, "thumos14", s, progress=False) for s in ("train", "test")}  # noqa: E731
    first = record.data_fingerprint(load(tiny_data))
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_data, copy)
    assert record.data_fingerprint(load(copy)) == first
    victim = sorted((copy / "thumos14" / "features" / "val").glob("*_rgb.npy"))[0]
    features = np.load(victim)
    features[0, 0] += 1
    np.save(victim, features)
    changed = record.data_fingerprint(load(copy))
    assert changed != first
    ann = copy / "thumos14" / "annotations.json"
    db = json.loads(ann.read_text())
    video = next(v for v, e in db.items() if e["subset"] == "test" and e["annotations"])
    db[video]["annotations"][0]["segment"][1] += 0.5
    ann.write_text(json.dumps(db))
    assert record.data_fingerprint(load(copy)) not in (first, changed)


def test_curves_picture(run_a):
    png = (run_a / "thumos14_curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    height, width = matplotlib.image.imread(run_a / "thumos14_curves.png").shape[:2]
    assert (width, height) == (1200, 750)


def tensorboard_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_tensorboard_events(run_a):
    scalars = tensorboard_scalars(run_a / "tensorboard")
    steps = rows(run_a / "thumos14_train.csv")
    for name in record.STEP_COLUMNS[1:]:
        assert scalars[f"train/{name}"] == [(int(r["step"]), pytest.approx(float(r[name]), rel=1e-6)) for r in steps]
    evaluations = rows(run_a / "thumos14.csv")
    tags = {"test/mAP@AVG (%)": "mAP@AVG", "test/mAP@0.50 (%)": "mAP@0.50", "test/accuracy (%)": "test_acc"}
    for tag, column in tags.items():
        assert scalars[tag] == [(int(r["step"]), pytest.approx(100 * float(r[column]), abs=1e-4)) for r in evaluations]
    per_class = [t for t in scalars if t.startswith("test AP@AVG per class (%)/")]
    assert per_class and all(len(scalars[t]) == 3 for t in per_class)
    avgs = [float(r["mAP@AVG"]) for r in evaluations]
    kept = [(i, train.best_index(avgs[: i + 1])) for i in range(len(avgs))]
    best = [(EVALUATED[i], pytest.approx(100 * avgs[k], abs=1e-4)) for i, k in kept if k is not None]
    assert best and scalars["best/test mAP@AVG (%)"] == best
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_a / "tensorboard"))
    events.Reload()
    assert set(events.PluginTagToContent("hparams")) >= {"_hparams_/experiment", "_hparams_/session_start_info"}


# --- resume and kill: the uninterrupted run's rows ---------------------------------------------------------------


def assert_same_record(run: Path, reference: Path) -> None:
    assert without_seconds(run / "thumos14_train.csv") == without_seconds(reference / "thumos14_train.csv")
    for name in ("thumos14_per_class.csv", "thumos14.csv"):
        assert (run / name).read_bytes() == (reference / name).read_bytes(), name
    scalars, expected = tensorboard_scalars(run / "tensorboard"), tensorboard_scalars(reference / "tensorboard")
    assert set(scalars) == set(expected)
    for tag in expected:  # each step once (the events a resume repeats are purged), with the same value
        if not tag.endswith("/seconds"):
            assert scalars[tag] == expected[tag], tag


def test_paused_and_resumed_run_writes_the_uninterrupted_record(run_a, tiny_data, tmp_path):
    save = tmp_path / "b"
    assert main.main(argv(tiny_data, save, "--stop_at", "1")) == 0  # before the first evaluation
    assert [r["step"] for r in rows(save / "thumos14_train.csv")] == ["1"]
    assert main.main(argv(tiny_data, save, "--resume", "--stop_at", "3")) == 0  # between two evaluations
    assert main.main(argv(tiny_data, save, "--resume")) == 0
    assert_same_record(save, run_a)
    log = (save / "thumos14.log").read_text()
    assert [line.split(": ")[1] for line in log.splitlines() if line.startswith("=== ")] == [
        f"a new run in {save}", f"resumed in {save}", f"resumed in {save}"
    ]  # fmt: skip
    assert "resumed from" in log


KILL_BEFORE_THE_RESUME_FILE = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, {root!r})
    import main, train
    real_save = train.TrainState.save

    def save(self, path, cfg, data):  # step 4's evaluation: the record is written, then SIGKILL before the resume file
        if self.step == 4:
            os.kill(os.getpid(), signal.SIGKILL)
        real_save(self, path, cfg, data)

    train.TrainState.save = save
    sys.exit(main.main(sys.argv[1:]))
    """
)


def test_killed_run_leaves_whole_rows_and_resumes_to_the_uninterrupted_record(run_a, tiny_data, tmp_path):
    """Killed (SIGKILL) after step 4's record was written but before its resume file: the CSVs hold whole rows up
    to step 4; --resume continues from step 2, drops the rows past it, and ends with the uninterrupted run's record."""
    save = tmp_path / "killed"
    child = KILL_BEFORE_THE_RESUME_FILE.format(root=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-c", child, *argv(tiny_data, save)], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    for name in ("thumos14_train.csv", "thumos14_per_class.csv"):
        text = (save / name).read_text()
        assert text.endswith("\n") and len({len(r) for r in csv.reader(io.StringIO(text))}) == 1
    assert [r["step"] for r in rows(save / "thumos14_train.csv")] == ["1", "2", "3", "4"]
    assert torch.load(save / "thumos14_last.pt", weights_only=True)["step"] == 2
    assert main.main(argv(tiny_data, save, "--resume")) == 0
    assert_same_record(save, run_a)


# --- the config file: a run again, and its errors ------------------------------------------------------------------


def test_config_file_reruns_the_run_bit_for_bit(run_a, tmp_path, capsys):
    again = tmp_path / "again"
    assert main.main(["--config", str(run_a / "thumos14_config.json"), "--save_path", str(again)]) == 0
    assert (again / "thumos14.csv").read_bytes() == (run_a / "thumos14.csv").read_bytes()
    assert (again / "thumos14_per_class.csv").read_bytes() == (run_a / "thumos14_per_class.csv").read_bytes()
    assert without_seconds(again / "thumos14_train.csv") == without_seconds(run_a / "thumos14_train.csv")
    first, second = (json.loads((f / "thumos14_config.json").read_text()) for f in (run_a, again))
    assert {**first["settings"], "save_path": ""} == {**second["settings"], "save_path": ""}
    assert first["data"] == second["data"]


def test_yaml_settings_and_flags_over_them(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("data_name: activitynet1.3\ninit_lr: 3e-4\nnum_iter: 40\nact_th: 0.1:0.3:0.1\npool: false\n")
    cfg = main.make_config(["--config", str(path), "--num_iter", "7"])
    assert (cfg.data_name, cfg.init_lr, cfg.num_iter, cfg.pool) == ("activitynet1.3", 3e-4, 7, False)
    assert cfg.act_th == np.arange(0.1, 0.3, 0.1).tolist() and cfg.num_seg == 80  # the dataset's default
    assert main.make_config(["--config", str(path), "--act_th", "0.5"]).act_th == [0.5]


@pytest.mark.parametrize(
    "text, message",
    [
        ("num_segs: 8\n", "unknown setting 'num_segs' (did you mean 'num_seg'?)"),
        ("zzz: 1\n", "unknown setting 'zzz' (the settings are data_path, data_name, "),
        ("num_seg: 8.5\n", "setting num_seg: 8.5 is not a value of type int"),
        ("pool: 'yes'\n", 'setting pool: "yes" is not a value of type bool'),
        ("data_name: x\n", 'setting data_name: "x" is not one of thumos14, activitynet1.2, activitynet1.3'),
        ("init_lr: -1.0\n", "--init_lr -1: must be a finite number > 0"),
        ("init_lr: abc\n", 'setting init_lr: "abc" is not a value of type float'),
        ("- 1\n- 2\n", "expected a mapping of settings (setting: value)"),
        ("num_seg: 8\npool: true\nnum_seg: 9\n", "key 'num_seg' appears twice in one mapping (line 3)"),
        ("a: [1\n", "not valid YAML (expected ',' or ']', but got '<stream end>' at line 2 column 1)"),
    ],
)
def test_a_bad_settings_file_is_one_line(text, message, tmp_path, capsys):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    assert main.main(["--config", str(path), "--save_path", str(tmp_path / "never")]) == 2
    assert error_line(capsys).startswith(f"error: {path}: {message}")
    assert not (tmp_path / "never").exists()


def test_a_bad_json_settings_file_is_one_line(tmp_path, capsys):
    path = tmp_path / "thumos14_config.json"
    path.write_text(json.dumps({"settings": {"num_seg": 8, "learning_rate": 1e-4}, "data": {}}))
    assert main.main(["--config", str(path)]) == 2
    known = ", ".join(f.name for f in dataclasses.fields(config.Config))
    assert error_line(capsys) == f"error: {path}: unknown setting 'learning_rate' (the settings are {known})"
    assert main.main(["--config", str(tmp_path / "missing.json")]) == 2
    assert error_line(capsys) == f"error: {tmp_path / 'missing.json'}: file not found"


def test_seeds_write_one_record_per_seed(tiny_data, tmp_path):
    save = tmp_path / "seeds"
    assert main.main([*argv(tiny_data, save, "--num_iter", "2", "--seeds", "3,4")]) == 0
    for seed in (3, 4):
        folder = save / f"seed{seed}"
        assert all((folder / name).is_file() for name in RECORD) and any((folder / "tensorboard").iterdir())
        assert json.loads((folder / "thumos14_config.json").read_text())["settings"]["seed"] == seed
        assert [r["step"] for r in rows(folder / "thumos14_train.csv")] == ["1", "2"]
    assert (save / "seed3" / "thumos14_train.csv").read_text() != (save / "seed4" / "thumos14_train.csv").read_text()


# --- utils.Progress: a bar on a terminal, plain lines elsewhere, never a bar in a log ------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_without_a_terminal_prints_plain_lines(monkeypatch, capsys):
    monkeypatch.setattr(utils, "PROGRESS_EVERY", 0.0)  # a line at every update
    assert list(utils.Progress(["a", "b", "c", "d"], desc="check test features")) == ["a", "b", "c", "d"]
    err = capsys.readouterr().err
    assert "\r" not in err and "\x1b" not in err
    lines = err.splitlines()
    counts = ["1/4 (25 %)", "2/4 (50 %)", "3/4 (75 %)", "4/4 (100 %)", "4/4 (100 %)"]  # the last: the task's end
    assert [line.split(", ")[0] for line in lines] == [f"check test features: {c}" for c in counts]
    assert all(line.endswith(" s") for line in lines)
    with utils.Progress(total=3 << 20, desc="read x.npy", unit="B", unit_scale=True) as bar:
        bar.update(1 << 20)
    assert capsys.readouterr().err.splitlines()[0].startswith("read x.npy: 1.05MB/3.15MB (33 %), ")


def test_progress_is_quiet_when_disabled_or_short(monkeypatch, capsys):
    assert list(utils.Progress(range(3), desc="x", enabled=False)) == [0, 1, 2]
    monkeypatch.setattr(utils, "PROGRESS_EVERY", 0.0)
    bar = utils.Progress(range(3), desc="x", enabled=False)
    bar.update(2)
    bar.close()
    assert capsys.readouterr() == ("", "")
    monkeypatch.setattr(utils, "PROGRESS_EVERY", 1e9)  # a task shorter than the interval prints nothing
    assert list(utils.Progress(range(3), desc="x")) == [0, 1, 2]
    assert capsys.readouterr().err == ""


def test_progress_on_a_terminal_is_a_bar_and_its_log_gets_lines(monkeypatch, tmp_path):
    monkeypatch.setattr(utils, "PROGRESS_EVERY", 0.0)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    log_path = tmp_path / "run.log"
    with utils.log_output(log_path, append=False):
        print("a line the run prints")
        bar = utils.Progress(range(3), desc="train", unit="step")
        for _ in bar:
            bar.write("a message above the bar")
    assert "\r" in terminal.getvalue() and "train" in terminal.getvalue()  # tqdm's bar
    log = log_path.read_text()
    assert "\r" not in log and "it/s" not in log and "step/s" not in log
    assert log.splitlines()[0] == "a line the run prints" and log.count("a message above the bar") == 3
    assert [line.split(",")[0] for line in log.splitlines() if line.startswith("train:")] == [
        "train: 1/3 (33 %)", "train: 2/3 (67 %)", "train: 3/3 (100 %)", "train: 3/3 (100 %)"
    ]  # fmt: skip
    assert sys.stderr is terminal  # restored
    with utils.log_output(log_path, append=True):
        print("appended")
    assert log_path.read_text() == log + "appended\n"
