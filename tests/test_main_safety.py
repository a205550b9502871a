"""main.py, nothing lost and nothing silent (issue 11): every numeric flag range-checked up front; an unwritable output
folder, a forgotten --resume or a missing resume file refused in one line before any work; stale temporaries of
killed saves removed at start; --skip_bad's list written beside the outputs; and a training run killed in the middle
of a save that resumes to the uninterrupted run's files, byte for byte."""

from __future__ import annotations

import csv
import dataclasses
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import config
import dataset
import demo
import inference
import main
import train
from demo import make_demo
from model import ACRNet
from utils import save_checkpoint

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--num_seg", "8", "--batch_size", "2", "--eval_iter", "1", "--no_progress", "--device", "cpu"]
DENIED, READ_ONLY, FULL = (os.strerror(e) for e in (errno.EACCES, errno.EROFS, errno.ENOSPC))


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    return make_demo(tmp_path_factory.mktemp("data"), seed=0, max_train=3, max_test=2)  # small: CPU time


@pytest.fixture
def no_work(monkeypatch):
    """Reading a split (the first work of every mode) or writing the demo data fails the test."""

    def forbidden(*args, **kwargs):
        raise AssertionError("work started before the checks")

    monkeypatch.setattr(dataset, "load_split", forbidden)
    monkeypatch.setattr(demo, "ensure_demo", forbidden)


@pytest.fixture
def stub_work(monkeypatch):
    """The three kinds of work replaced by no-ops: what runs before them is under test."""
    done = train.RunSummary(steps=0, selected=None, best_on_test=None)
    monkeypatch.setattr(train, "train", lambda cfg, device: done)
    monkeypatch.setattr(inference, "test_checkpoint", lambda cfg, device: None)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err.strip()


def checkpoint(path: Path) -> Path:
    save_checkpoint(ACRNet(20).state_dict(), path, {"classes": [], "data_name": "thumos14", "config": {}})
    return path


# --- every numeric flag: finite and in range, up front ---------------------------------------------------------

RATE = "in [1, 1024] (frames per snippet; post-processing works on rate × L frames)"
BAD_FLAGS = [
    ("num_seg", "0", "at least 1"),
    ("batch_size", "-2", "at least 1"),
    ("num_iter", "0", "at least 1"),
    ("eval_iter", "0", "at least 1"),
    ("rate", "0", "in [1, 1024] (frames per snippet; post-processing works on rate × L frames)"),
    (
        "rate",
        "1025",
        "in [1, 1024] (frames per snippet; post-processing works on rate × L frames)",
    ),  # post-processing's frame-level scores: rate × L per video
    ("stop_at", "0", "at least 1"),
    ("bootstrap", "0", "in [1, 10000] (memory grows with the resamples; a 95 % interval settles long before)"),
    ("bootstrap", "10001", "in [1, 10000] (memory grows with the resamples; a 95 % interval settles long before)"),
    ("workers", "-1", f"in [0, {config.MAX_WORKERS}] (4 × this machine's CPUs, at least 16)"),
    ("workers", str(config.MAX_WORKERS + 1), f"in [0, {config.MAX_WORKERS}] (4 × this machine's CPUs, at least 16)"),
    ("seed", str(2**32), "in [0, 2**32)"),
    ("init_lr", "-1", "a finite number > 0"),  # was a ValueError traceback from Adam
    ("init_lr", "nan", "a finite number > 0"),
    ("weight_decay", "-0.001", "a finite number >= 0"),
    ("weight_decay", "inf", "a finite number >= 0"),
    ("lamda", "nan", "a finite number >= 0"),  # was a NaN loss, a garbage checkpoint and exit 0
    ("cls_th", "1.5", "a finite number in [0, 1]"),
    ("cls_th", "-inf", "a finite number in [0, 1]"),
    ("iou_th", "nan", "a finite number in [0, 1]"),
    ("alpha", "0", "a finite number > 0"),
    ("alpha", "inf", "a finite number > 0"),
    ("fps", "nan", "a finite number > 0"),
    ("fps", "-25", "a finite number > 0"),
    ("val_fraction", "1", "a finite number in [0, 1)"),
    ("val_fraction", "nan", "a finite number in [0, 1)"),
]


def test_every_numeric_setting_has_a_range_and_a_case_here():
    """A numeric Config field added without a FLAG_RANGES entry (or without a case above) fails here."""
    numeric = {f.name for f in dataclasses.fields(config.Config) if f.type in ("int", "float", "int | None")}
    assert numeric == set(config.FLAG_RANGES) == {flag for flag, _, _ in BAD_FLAGS}


@pytest.mark.parametrize("flag, value, rule", BAD_FLAGS)
def test_numeric_flag_out_of_range_is_one_line(flag, value, rule, capsys, no_work):
    assert main.main([f"--{flag}={value}", "--save_path", "/nonexistent/never/made"]) == 2
    assert error_line(capsys) == f"error: --{flag} {value}: must be {rule}"


def test_numeric_flag_bounds_are_accepted():
    cfg = main.make_config(
        "--lamda 0 --weight_decay 0 --cls_th 0 --iou_th 1 --val_fraction 0 --stop_at 1 --workers 0 --seed 0 "
        "--num_seg 1 --init_lr 1e-30 --alpha 1e-9".split()
    )
    assert (cfg.lamda, cfg.cls_th, cfg.iou_th, cfg.stop_at, cfg.alpha) == (0.0, 0.0, 1.0, 1, 1e-9)
    assert main.make_config(["--cls_th", "1", "--seed", str(2**32 - 1)]).seed == 2**32 - 1


# --- an output folder that cannot be written: one line, before any work ----------------------------------------


def fail_writes_in(monkeypatch, folder: Path, cause: str) -> None:
    """Writes into `folder` fail: EACCES / EROFS where the first file would be made, ENOSPC when it is flushed."""
    if cause == FULL:

        def fsync(fd):
            raise OSError(errno.ENOSPC, FULL)

        monkeypatch.setattr(os, "fsync", fsync)
        return
    code = errno.EACCES if cause == DENIED else errno.EROFS
    real = tempfile.mkdtemp

    def mkdtemp(*args, dir=None, **kwargs):
        if dir is not None and Path(dir) == folder:
            raise OSError(code, cause)
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)


@pytest.mark.parametrize(
    "mode, cause",
    [("train", DENIED), ("train", READ_ONLY), ("train", FULL), ("model_file", DENIED), ("seeds", READ_ONLY),
     ("demo", DENIED)],
)  # fmt: skip
def test_unwritable_save_path_fails_at_once(mode, cause, tiny_data, tmp_path, monkeypatch, capsys, no_work):
    save = tmp_path / "out"
    argv = ["--data_path", str(tiny_data), "--save_path", str(save), *TINY]
    failing = save
    if mode == "model_file":
        argv += ["--model_file", str(checkpoint(tmp_path / "m.pth"))]
    elif mode == "seeds":
        argv += ["--seeds", "4,5"]
        failing = save / "seed5"  # the last run's folder: checked before the first run starts
    elif mode == "demo":
        argv = ["--demo", "--data_path", str(tmp_path / "demo_data"), "--save_path", str(save), "--no_progress"]
    fail_writes_in(monkeypatch, failing, cause)
    assert main.main(argv) == 2
    assert error_line(capsys) == f"error: {failing}: output folder (--save_path) is not writable: {cause}"
    assert snapshot(save) == {}  # nothing written (the checked folders exist, empty)


# --- stale temporaries of killed saves: removed at start, in every folder a run writes into ---------------------


def stale_temp(folder: Path, name: str, size: int = 2000) -> Path:
    """What a save killed mid-write leaves: `.<name>.<8 random>.tmp/<name>`, half written, unlocked."""
    temp = folder / f".{name}.k1ll3d00.tmp"
    temp.mkdir(parents=True)
    (temp / name).write_bytes(b"x" * size)
    return temp


@pytest.mark.parametrize("mode", ["train", "seeds", "model_file"])
def test_stale_temporaries_are_removed_at_start(mode, tiny_data, tmp_path, capsys, stub_work):
    save = tmp_path / "out"
    argv = ["--data_path", str(tiny_data), "--save_path", str(save), *TINY]
    folders = [save, save / "thumos14_test_vis"]
    if mode == "seeds":
        argv += ["--seeds", "4,5"]
        folders += [save / "seed4", save / "seed5", save / "seed5" / "thumos14_test_vis"]
    elif mode == "model_file":
        argv += ["--model_file", str(checkpoint(tmp_path / "m.pth"))]
    temps = [stale_temp(f, n) for f in folders for n in ("thumos14_last.pt", "thumos14.pth")]
    (save / "notes.tmp").write_text("a user's file")
    assert main.main(argv) == 0
    assert not any(t.exists() for t in temps) and (save / "notes.tmp").is_file()
    err = capsys.readouterr().err.splitlines()
    assert sorted(err) == sorted(
        f"note: {f}: removed 2 temporary file(s) of interrupted saves (0.0 MB)" for f in folders
    )


def test_an_interrupted_demo_dataset_is_cleaned_before_it_is_written_again(tmp_path, monkeypatch, capsys):
    base = tmp_path / "demo_data" / "thumos14"  # killed while writing: no annotations.json (it is written last)
    temps = [stale_temp(base / "features" / sub, "video_0001_rgb.npy") for sub in ("val", "test")]
    monkeypatch.setattr(demo, "make_demo", lambda root, seed: root)  # (the writing itself: test_dataset)
    demo.ensure_demo(tmp_path / "demo_data")
    assert not any(t.exists() for t in temps)
    assert capsys.readouterr().err.count("temporary file(s) of interrupted saves") == 2


# --- a new run over an earlier one: refused unless --overwrite; --resume needs its file --------------------------

RESUME_HINT = "an earlier run's resume file; pass --resume to continue that run, or --overwrite to start a new run that replaces its files"  # noqa: E501
OUTPUT_HINT = (
    "an earlier run's output; pass --overwrite to start a new run that replaces it, or choose another --save_path"  # noqa: E501
)


@pytest.mark.parametrize(
    "earlier, named, hint",
    [
        (["thumos14_last.pt", "thumos14.pth", "thumos14.csv"], "thumos14_last.pt", RESUME_HINT),
        (["thumos14.pth"], "thumos14.pth", OUTPUT_HINT),  # e.g. killed between the first .pth and resume file
        (["thumos14.csv", "thumos14.pth"], "thumos14.pth", OUTPUT_HINT),
    ],
)
def test_a_new_run_over_an_earlier_one_is_refused(earlier, named, hint, tiny_data, tmp_path, capsys, no_work):
    save = tmp_path / "out"
    save.mkdir()
    for name in earlier:
        (save / name).write_text(f"earlier {name}")
    stale = stale_temp(save, "thumos14.pth")
    before = snapshot(save)
    argv = ["--data_path", str(tiny_data), "--save_path", str(save), *TINY, "--num_iter", "2"]
    assert main.main(argv) == 2
    assert error_line(capsys) == f"error: {save / named}: {hint}"
    assert snapshot(save) == before and stale.exists()  # a refused run touches nothing


def test_seeds_check_every_seed_folder_first(tiny_data, tmp_path, capsys, no_work):
    save = tmp_path / "out"
    (save / "seed5").mkdir(parents=True)
    (save / "seed5" / "thumos14_last.pt").write_text("seed 5's run")
    argv = ["--data_path", str(tiny_data), "--save_path", str(save), *TINY, "--seeds", "4,5"]
    assert main.main(argv) == 2
    assert error_line(capsys) == f"error: {save / 'seed5' / 'thumos14_last.pt'}: {RESUME_HINT}"
    assert not (save / "seed4").exists()  # seed 4 did not start


def test_resume_without_a_resume_file_is_refused_before_any_work(tiny_data, tmp_path, capsys, no_work):
    save = tmp_path / "out"
    argv = ["--data_path", str(tiny_data), "--save_path", str(save), *TINY, "--resume"]
    assert main.main(argv) == 2
    last = save / "thumos14_last.pt"
    assert (
        error_line(capsys)
        == f"error: {last}: no resume file (one is written at a run's first evaluation, step 1, and at a --stop_at "
        "pause); start the run again without --resume"
    )


def test_overwrite_starts_a_new_run_with_a_note(tiny_data, tmp_path, capsys, stub_work):
    save = tmp_path / "out"
    save.mkdir()
    for name in ("thumos14_last.pt", "thumos14.pth", "thumos14.csv"):
        (save / name).write_text(f"earlier {name}")
    argv = ["--data_path", str(tiny_data), "--save_path", str(save), *TINY, "--num_iter", "1", "--overwrite"]
    assert main.main(argv) == 0  # (the run itself replaces the files as it saves: test_main's end-to-end runs)
    note = f"note: {save}: starting a new run (--overwrite): it replaces the earlier run's thumos14_last.pt, thumos14.pth, thumos14.csv"  # noqa: E501
    assert note in capsys.readouterr().out.splitlines()


def test_testing_a_checkpoint_into_a_training_folder_is_allowed(tiny_data, tmp_path, stub_work):
    save = tmp_path / "out"
    save.mkdir()
    (save / "thumos14_last.pt").write_text("a training run's resume file")
    argv = ["--data_path", str(tiny_data), "--save_path", str(save), *TINY]
    assert main.main([*argv, "--model_file", str(checkpoint(tmp_path / "m.pth"))]) == 0  # writes only *_test.*


def test_demo_twice_replaces_its_own_run_only(tiny_data, tmp_path, monkeypatch, capsys, stub_work):
    """`python main.py --demo` twice (the README's command) runs twice; a folder the user names is protected."""
    assert main.make_config(["--demo"]).overwrite and not main.make_config([]).overwrite
    assert not main.make_config(["--demo", "--save_path", "x"]).overwrite
    assert main.make_config(["--demo", "--save_path", "x", "--overwrite"]).overwrite
    monkeypatch.chdir(tmp_path)
    earlier = tmp_path / "outputs" / "demo"  # the demo's folder, holding the first demo's run
    earlier.mkdir(parents=True)
    for name in ("thumos14_last.pt", "thumos14.pth", "thumos14.csv"):
        (earlier / name).write_text(f"earlier {name}")
    small = ["--demo", "--data_path", str(tiny_data), *TINY, "--num_iter", "1"]
    assert main.main(small) == 0
    note = "note: outputs/demo: starting a new run (--overwrite): it replaces the earlier run's thumos14_last.pt, thumos14.pth, thumos14.csv"  # noqa: E501
    assert note in capsys.readouterr().out.splitlines()
    assert main.main([*small, "--resume"]) == 0  # or continue it
    assert "starting a new run" not in capsys.readouterr().out
    assert main.main([*small, "--save_path", "outputs/demo"]) == 2  # named by the user: the usual rule
    assert error_line(capsys) == f"error: outputs/demo/thumos14_last.pt: {RESUME_HINT}"


# --- --skip_bad: the skipped files named in a file beside the outputs --------------------------------------------


def test_skip_bad_writes_the_skipped_list(tiny_data, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    features = data / "thumos14" / "features"
    victim = sorted((features / "test").glob("*_rgb.npy"))[0]
    rgb = np.load(victim)
    rgb[3, 7] = np.nan
    np.save(victim, rgb)
    missing = sorted((features / "val").glob("*_flow.npy"))[1]
    missing.unlink()
    save = tmp_path / "out"
    cfg = main.make_config(["--data_path", str(data), "--save_path", str(save), *TINY, "--skip_bad"])
    for split, stem in (("train", missing.name[: -len("_flow.npy")]), ("test", victim.name[: -len("_rgb.npy")])):
        loaded = inference.load_checked_split(cfg, split)  # what training and --model_file load through
        assert [v for v, _ in loaded.skipped] == [stem]
        listed = save / f"thumos14_{split}_skipped.txt"
        assert listed.read_text().splitlines() == [f"{v}\t{r}" for v, r in loaded.skipped]
        out = capsys.readouterr().out.splitlines()
        assert out[-2:] == [f"skipped videos (all 1 in {listed}):", f"  {stem}  {loaded.skipped[0][1]}"]
    np.save(victim, np.nan_to_num(rgb))  # repaired
    inference.load_checked_split(cfg, "test")
    assert (save / "thumos14_test_skipped.txt").read_text() == ""  # rewritten: no stale names from the last run


# --- kill -9 in the middle of a save, then --resume: the uninterrupted run's files ------------------------------

KILL_DURING_RESUME_SAVE = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    import torch
    sys.path.insert(0, {root!r})
    import main
    real_save = torch.save

    def save(obj, f, *args, **kwargs):  # the resume file's save: half of its bytes on disk, then SIGKILL
        real_save(obj, f, *args, **kwargs)
        if Path(f).name == "thumos14_last.pt":
            os.truncate(f, os.path.getsize(f) // 2)
            os.kill(os.getpid(), signal.SIGKILL)

    torch.save = save
    sys.exit(main.main(sys.argv[1:]))
    """
)


def assert_same(a, b, where: str = "") -> None:
    """Two loaded resume files hold the same values (their bytes may differ: pickle shares equal strings by
    identity, and a resumed optimizer's keys are new string objects)."""
    assert type(a) is type(b), where
    if isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            assert_same(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b), where
    else:
        assert a == b, where


def test_killed_during_a_save_then_resumed_gives_the_uninterrupted_run(tiny_data, tmp_path, capsys):
    """A run paused at step 1 (--stop_at), resumed, and killed (SIGKILL) in the middle of writing its resume file at
    step 2's evaluation; then resumed again: the stale temporary is removed and every file equals the uninterrupted
    run's (CSV, checkpoint, predictions byte for byte; the resume file value for value)."""
    save = tmp_path / "run"  # both runs write here (checkpoints store the config, --save_path included)
    argv = ["--data_path", str(tiny_data), *TINY, "--num_iter", "2", "--eval_iter", "2", "--save_path", str(save)]
    assert main.main(argv) == 0
    reference = save.rename(tmp_path / "uninterrupted")
    assert main.main([*argv, "--stop_at", "1"]) == 0
    child = KILL_DURING_RESUME_SAVE.format(root=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", child, *argv, "--resume"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    (temp,) = save.glob(".thumos14_last.pt.*.tmp")  # the killed save's temporary, half written
    assert 0 < (temp / "thumos14_last.pt").stat().st_size < (reference / "thumos14_last.pt").stat().st_size
    assert torch.load(save / "thumos14_last.pt", weights_only=True)["step"] == 1  # the previous one, intact
    with open(save / "thumos14.csv") as f:
        assert [r["step"] for r in csv.DictReader(f)] == ["2"]  # step 2's row was written before the kill
    capsys.readouterr()
    assert main.main(argv) == 2  # forgetting --resume is refused, and removes nothing
    assert error_line(capsys) == f"error: {save / 'thumos14_last.pt'}: {RESUME_HINT}" and temp.exists()
    assert main.main([*argv, "--resume"]) == 0
    captured = capsys.readouterr()
    assert not temp.exists() and f"note: {save}: removed 1 temporary file(s) of interrupted saves (" in captured.err
    assert f"resumed from {save / 'thumos14_last.pt'} at step 1" in captured.out
    names = sorted(p.name for p in reference.iterdir())
    assert sorted(p.name for p in save.iterdir()) == names
    # The record's log, config file (a date), TensorBoard events and per-step seconds differ: tests/test_record.py
    dated = {"thumos14_last.pt", "thumos14.log", "thumos14_config.json", "thumos14_train.csv", "tensorboard"}
    for name in names:
        if name not in dated:
            assert (save / name).read_bytes() == (reference / name).read_bytes(), name
    steps = lambda folder: [r[:-1] for r in csv.reader(open(folder / "thumos14_train.csv"))]  # noqa: E731, SIM115
    assert steps(save) == steps(reference)  # (the last column: seconds)
    load = lambda folder: torch.load(folder / "thumos14_last.pt", weights_only=True)  # noqa: E731
    assert_same(load(save), load(reference))


# --- issue 20: one run per folder, names from data, --device, memory and count bounds -----------------------------


def test_a_second_run_into_a_held_folder_is_one_line(tiny_data, tmp_path, capsys):
    """Every mode that writes into --save_path holds it for its life: a second run into it is one line naming the
    holder (exit 2) before any work; once the holder is killed (SIGKILL) the next run proceeds."""
    from folder_holder import held, holder

    save = tmp_path / "out"
    save.mkdir()
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "clip.mp4").write_bytes(b"not decoded before the folder is held")
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"")
    model = str(checkpoint(tmp_path / "m.pth"))
    data = ["--data_path", str(tiny_data), *TINY, "--num_iter", "1", "--save_path", str(save)]
    child = held(holder(save))
    try:
        line = f"error: {save}: in use by another run (pid {child.pid} on "
        modes = {
            "train": data,
            "seeds": [*data, "--seeds", "1,2"],
            "resume": [*data, "--resume"],
            "model_file": [*data, "--model_file", model],
            "video": [*data, "--model_file", model, "--video", str(videos), "--rgb_weights", str(weights),
                      "--flow_weights", str(weights)],
            "demo": ["--demo", *TINY, "--save_path", str(save)],
        }  # fmt: skip
        for mode, argv in modes.items():
            assert main.main(argv) == 2, mode
            err = error_line(capsys)
            assert err.startswith(line) and err.endswith(
                f": main.py --save_path {save}); wait for it to end, or choose another --save_path"
            ), (mode, err)
        proc = subprocess.run([sys.executable, str(ROOT / "main.py"), *data], capture_output=True, text=True)
        assert proc.returncode == 2 and proc.stdout == "" and proc.stderr.startswith(line), proc
        assert proc.stderr.count("\n") == 1
    finally:
        child.kill()  # SIGKILL: no chance to let go; the kernel drops its lock
        child.wait()
    assert main.main(data) == 0  # proceeds, and removes the killed run's holder file
    assert not [p for p in save.iterdir() if p.name.startswith(".acrnet.")]


def test_device_choices_are_one_line(tiny_data, tmp_path, monkeypatch, capsys, no_work):
    choices = "choose cpu, cuda, cuda:N (N = a GPU index) or auto (CUDA if there is a GPU, else cpu)"
    model = str(checkpoint(tmp_path / "m.pth"))
    for argv in (
        ["--data_path", str(tiny_data)],
        ["--data_path", str(tiny_data), "--model_file", model],
        ["--model_file", model, "--video", str(tmp_path / "clip.mp4")],
    ):
        assert main.main([*argv, "--device", "foo"]) == 2
        assert error_line(capsys) == f"error: --device foo: not a device; {choices}"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for argv in (["--data_path", str(tiny_data)], ["--model_file", model, "--video", str(tmp_path / "clip.mp4")]):
        assert main.main([*argv, "--device", "cuda:0"]) == 2
        no_gpu = "error: --device cuda:0: this machine has no CUDA GPU (PyTorch sees none); use --device cpu or auto"
        assert error_line(capsys) == no_gpu


def test_a_batch_that_cannot_fit_is_refused_before_any_data(tiny_data, tmp_path, capsys, no_work):
    base = ["--data_path", str(tiny_data), "--save_path", str(tmp_path / "out"), "--device", "cpu"]
    avail, what = train.available_memory(torch.device("cpu"))
    assert main.main([*base, "--num_seg", "100000", "--batch_size", "32"]) == 2
    need = train.step_memory(32, 100000)
    assert need > 3e13  # ~30 TB: features [32, 100000, 2048] and 32 attention maps of 100000² snippet pairs
    expected = (
        f"error: --num_seg 100000 --batch_size 32: a training step needs about {train.format_bytes(need)} (features "
        "[32, 100000, 2048] float32 and the network's activations: ~80 kB per snippet and ~96 B per pair of snippets "
        "of a video), but cpu has "
    )
    err = error_line(capsys)
    assert err.startswith(expected) and err.endswith(f" ({what}); lower --num_seg or --batch_size"), err
    assert main.main([*base, "--num_iter", str(10**12), "--batch_size", "32", "--num_seg", "8"]) == 2
    assert error_line(capsys).startswith(
        f"error: --num_iter {10**12} --batch_size 32: the batch stream lists batch_size × num_iter = {32 * 10**12} "
        f"videos ({train.format_bytes(16 * 32 * 10**12)}), but the machine has "
    )
    assert not (tmp_path / "out").exists()


def test_step_memory_estimate_and_limit(monkeypatch):
    """The estimate is linear in B, quadratic in T; the authors' THUMOS14 setting (B 32, T 750, ~4 GB: measured peak
    3.3 GB above the process's own on CPU) passes where that much is free and is refused where it is not."""
    assert train.step_memory(32, 750) == 32 * 750 * 80_000 + 32 * 750**2 * 96 + 400_000_000
    assert train.step_memory(2, 10) - train.step_memory(1, 10) == 10 * 80_000 + 100 * 96
    cfg = main.make_config(["--device", "cpu"])
    monkeypatch.setattr(train, "available_memory", lambda device: (8 * 10**9, "test memory"))
    train.check_memory(cfg, torch.device("cpu"))
    monkeypatch.setattr(train, "available_memory", lambda device: (3 * 10**9, "test memory"))
    with pytest.raises(main.InputError, match=r"needs about 4\.0 GB .*, but cpu has 3\.0 GB \(test memory\); lower"):
        train.check_memory(cfg, torch.device("cpu"))


def test_counts_without_a_bound_are_capped(tmp_path, capsys, no_work):
    rule = "at most 1000 (post-processing time and memory grow with the count; the method uses 18: 0.1:1.0:0.05)"
    assert main.main(["--act_th", "0:1:1e-9"]) == 2
    assert error_line(capsys) == f"error: --act_th '0:1:1e-9': 1000000000 thresholds, {rule}"
    settings = tmp_path / "s.json"
    settings.write_text(json.dumps({"act_th": [0.5] * 1001}))
    assert main.main(["--config", str(settings)]) == 2
    assert error_line(capsys) == f"error: --act_th: 1001 thresholds, {rule}"
    assert main.main(["--seeds", ",".join(map(str, range(101)))]) == 2
    assert error_line(capsys) == "error: --seeds: 101 seeds, at most 100 (one training run and folder each)"


def test_video_names_that_cannot_be_file_names(tiny_data, tmp_path, capsys):
    """A name read from data becomes a file name only through utils.safe_file_name: a W-TALC videoname.npy entry
    ../../../../<elsewhere>/pwned once made --save_vis write <elsewhere>/pwned.png. Each path is refused in one line
    naming the entry and its source, and nothing is written outside the output folder."""
    from wtalc_layout import wtalc_from_authors

    import localize
    import visualise

    elsewhere = tmp_path / "elsewhere"
    hostile = ["../../../../../../../.." + str(elsewhere / "x" / "pwned"), "a\x00b"]
    why = {hostile[0]: "it holds a path separator, / or \\", hostile[1]: "it holds a NUL or other control character"}
    model = str(checkpoint(tmp_path / "m.pth"))
    for k, name in enumerate(hostile):
        data = wtalc_from_authors(tiny_data, tmp_path / f"wtalc{k}")
        names_file = data / "Thumos14reduced-Annotations" / "videoname.npy"
        names = list(np.load(names_file))
        test_video = json.loads((tiny_data / "thumos14" / "annotations.json").read_text())
        first_test = next(v for v, e in sorted(test_video.items()) if e["subset"] == "test")
        names[names.index(first_test.encode())] = name.encode()
        np.save(names_file, np.array(names))
        save = tmp_path / f"out{k}"
        argv = ["--data_path", str(data), "--model_file", model, "--save_vis", "--save_path", str(save), *TINY]
        assert main.main(argv) == 2
        err = error_line(capsys)
        assert err == f"error: {names_file}: video name {ascii(name)}: cannot be a file name ({why[name]})", err
    # The other places a name becomes a path: --save_vis pictures, --video outputs and feature cache, frame folders.
    for name in hostile:
        with pytest.raises(main.InputError, match=r"^ann\.json: video name .*: cannot be a file name"):
            visualise.save_test_visuals(
                tmp_path / "vis", {name: {}}, {}, [], np.zeros((0, 1)), [0.5], source="ann.json"
            )
        with pytest.raises(main.InputError, match=r"^--video: video name .*: cannot be a file name"):
            localize.feature_paths(tmp_path / "cache", name)
    assert not (tmp_path / "vis").exists() and not (tmp_path / "cache").exists()
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "a\nb.mp4").write_bytes(b"")
    with pytest.raises(main.InputError, match=r"video file name 'a\\nb': cannot be a file name"):
        localize.find_videos(videos)
    with pytest.raises(main.InputError, match=r"video file name 'a\\nb': cannot be a file name"):
        localize.find_videos(videos / "a\nb.mp4")
    assert not elsewhere.exists()
