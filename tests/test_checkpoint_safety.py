"""Damaged and malformed checkpoints (issue 20): a flipped bit is a checksum mismatch, a NaN tensor is refused by its
key, every field of a resume file and of a checkpoint's metadata is checked (one line naming file and field, exit 2);
the authors' plain state-dicts and files written before the checksum still load. Also: what Ctrl-C before the first
resume file says to run (and that it works), and a resumed run whose kept checkpoint is gone."""

from __future__ import annotations

import shutil
import struct
import zipfile
from pathlib import Path

import pytest
import torch

import dataset
import main
import train
import utils
from demo import make_demo
from model import ACRNet
from utils import InputError, checksum, load_checkpoint, save_checkpoint

TINY = ["--num_seg", "8", "--batch_size", "2", "--no_progress", "--device", "cpu"]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    return make_demo(tmp_path_factory.mktemp("data"), seed=0, max_train=3, max_test=2)


@pytest.fixture(scope="module")
def finished_run(tiny_data, tmp_path_factory) -> tuple[list[str], Path]:
    """(argv, folder) of a finished 2-step run (an evaluation at each step)."""
    save = tmp_path_factory.mktemp("run") / "out"
    argv = ["--data_path", str(tiny_data), *TINY, "--num_iter", "2", "--eval_iter", "1", "--save_path", str(save)]
    assert main.main(argv) == 0
    return argv, save


@pytest.fixture
def run_copy(finished_run, tmp_path) -> tuple[list[str], Path]:
    argv, save = finished_run
    copy = tmp_path / "out"
    shutil.copytree(save, copy)
    return [*argv[:-1], str(copy)], copy


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err.strip()


def flip_64_bytes(path: Path) -> str:
    """Write 64 bytes of 0xff into the middle of the largest tensor record of a torch zip (stored uncompressed: the
    record's data start at its local header's offset + 30 + name and extra lengths) → the member's name."""
    with zipfile.ZipFile(path) as z:
        info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
        assert info.compress_type == zipfile.ZIP_STORED and info.file_size > 256
    with open(path, "r+b") as f:
        f.seek(info.header_offset)
        header = f.read(30)
        name_len, extra_len = struct.unpack("<HH", header[26:30])
        f.seek(info.header_offset + 30 + name_len + extra_len + info.file_size // 2)
        f.write(b"\xff" * 64)
    return info.filename


def plain_state_dict(c: int = 20) -> dict[str, torch.Tensor]:
    """The authors' format: a plain dict of tensors, no metadata (as tests/test_model.py builds one)."""
    torch.manual_seed(0)
    return {k: v.clone() for k, v in ACRNet(c).state_dict().items()}


# --- checksum and finiteness: checkpoints --------------------------------------------------------------------------


def test_checksum_is_a_function_of_the_content():
    a = {"w": torch.arange(6.0).reshape(2, 3), "meta": {"step": 3, "lr": [1e-4, 0.5]}}
    b = {"meta": {"lr": [1e-4, 0.5], "step": 3}, "w": torch.arange(6.0).reshape(2, 3)}  # key order does not matter
    assert checksum(a) == checksum(b) == checksum({"w": a["w"].t().contiguous().t(), "meta": a["meta"]})
    for other in (
        {"w": torch.arange(6.0).reshape(3, 2), "meta": a["meta"]},  # same bytes, other shape
        {"w": torch.arange(6).reshape(2, 3), "meta": a["meta"]},  # other dtype
        {"w": a["w"], "meta": {"step": 4, "lr": [1e-4, 0.5]}},
        {"v": a["w"], "meta": a["meta"]},
    ):
        assert checksum(other) != checksum(a)
    c = a["w"].clone()
    c.reshape(-1).view(torch.uint8)[5] ^= 1  # one flipped bit
    assert checksum({"w": c, "meta": a["meta"]}) != checksum(a)


def test_flipped_bytes_in_a_checkpoint_are_a_checksum_mismatch(tmp_path, capsys):
    path = tmp_path / "m.pth"
    save_checkpoint(ACRNet(20).state_dict(), path, {"classes": [], "data_name": "thumos14", "config": {}})
    load_checkpoint(path)  # intact: loads
    flip_64_bytes(path)
    torch.load(path, weights_only=True)  # still a readable zip: only the checksum tells
    message = f"{path}: checksum mismatch (the file is damaged; use another copy, or an earlier checkpoint of the run)"
    with pytest.raises(InputError) as e:
        load_checkpoint(path)
    assert str(e.value) == message
    assert main.main(["--model_file", str(path), "--save_path", str(tmp_path / "never")]) == 2
    assert error_line(capsys) == f"error: {message}"


def test_a_nan_tensor_in_a_plain_state_dict_is_refused_by_key(tiny_data, tmp_path, capsys):
    sd = plain_state_dict()
    path = tmp_path / "authors.pth"
    torch.save(sd, path)
    assert load_checkpoint(path)[1] is None  # the authors' format loads (no checksum to check)
    sd["mca.atte"].view(-1)[:16] = float("nan")
    sd["mca.atte"].view(-1)[100] = -float("inf")
    torch.save(sd, path)
    n = sd["mca.atte"].numel()
    message = (
        f"{path}: tensor 'mca.atte' holds 17 NaN or infinite value(s) of {n} (a damaged file, or a run that diverged)"
    )
    with pytest.raises(InputError) as e:
        load_checkpoint(path)
    assert str(e.value) == message
    argv = ["--data_path", str(tiny_data), "--model_file", str(path), "--save_path", str(tmp_path / "x"), *TINY]
    assert main.main(argv) == 2
    assert error_line(capsys) == f"error: {message}"


def test_flipped_bytes_in_a_plain_state_dict_are_refused_as_not_finite(tmp_path):
    path = tmp_path / "authors.pth"
    torch.save(plain_state_dict(), path)
    member = flip_64_bytes(path)  # 0xffffffff is a float32 NaN
    with pytest.raises(InputError, match=r"authors\.pth: tensor '.+' holds 16 NaN or infinite value"):
        load_checkpoint(path)
    assert member


def test_authors_state_dict_and_a_checkpoint_without_checksum_still_load(tmp_path, capsys):
    sd = plain_state_dict()
    torch.save(sd, tmp_path / "authors.pth")
    got, meta = load_checkpoint(tmp_path / "authors.pth", num_classes=20)
    assert meta is None and all(torch.equal(got[k], v) for k, v in sd.items())
    assert capsys.readouterr().out == ""  # no note: the authors' files never had a checksum
    # Written by this project before the checksum existed: the metadata entry without "sha256".
    old = ACRNet(20).state_dict()
    old._metadata[""]["acrnet"] = {"classes": [], "data_name": "thumos14", "config": {"alpha": 0.3}, "step": 5}
    torch.save(old, tmp_path / "old.pth")
    _, meta = load_checkpoint(tmp_path / "old.pth")
    _, meta = load_checkpoint(tmp_path / "old.pth")
    assert meta == {"classes": [], "data_name": "thumos14", "config": {"alpha": 0.3}, "step": 5}
    note = f"note: {tmp_path / 'old.pth'}: written before checkpoints carried a checksum; its tensors are checked to be finite only"  # noqa: E501
    assert capsys.readouterr().out.splitlines() == [note]  # once per file


def _with_meta(meta: object) -> dict[str, torch.Tensor]:
    sd = ACRNet(20).state_dict()
    sd._metadata[""]["acrnet"] = meta
    return sd


BAD_META = [
    (
        lambda: _with_meta({"classes": "abc"}),
        "metadata field 'classes': expected a list of class names, found str 'abc'",
    ),
    (
        lambda: _with_meta({"classes": [1, 2]}),
        "metadata field 'classes': expected a list of class names, found list [1, 2]",
    ),  # noqa: E501
    (
        lambda: _with_meta({"data_name": 5}),
        "metadata field 'data_name': expected a dataset name (a string), found int 5",
    ),
    (lambda: _with_meta({"config": [1]}), "metadata field 'config': expected a mapping of settings, found list [1]"),
    (lambda: _with_meta({"step": -1}), "metadata field 'step': expected a step number (an integer >= 0), found int -1"),
    (
        lambda: _with_meta({"step": "3"}),
        "metadata field 'step': expected a step number (an integer >= 0), found str '3'",
    ),
    (lambda: _with_meta({"sha256": 5}), "metadata field 'sha256': expected a SHA-256 hex digest, found int 5"),
    (lambda: _with_meta({"sha256": "abc"}), "field sha256: expected a SHA-256 hex digest, found str 'abc'"),
    (
        lambda: _with_meta({"epoch": 3}),
        "metadata: unknown field 'epoch' (the fields are classes, data_name, config, step, sha256)",
    ),  # noqa: E501
    (
        lambda: _with_meta([1]),
        "metadata: expected a mapping of classes, data_name, config, step, sha256, found list [1]",
    ),
    (lambda: {**plain_state_dict(), "extra": 3}, "entry 'extra' is int 3, not a tensor (not an ACRNet state-dict)"),
]


@pytest.mark.parametrize("make, message", BAD_META)
def test_checkpoint_metadata_of_the_wrong_types_is_one_line(make, message, tmp_path, capsys):
    path = tmp_path / "m.pth"
    torch.save(make(), path)
    with pytest.raises(InputError) as e:
        load_checkpoint(path)
    assert str(e.value) == f"{path}: {message}"
    assert main.main(["--model_file", str(path), "--save_path", str(tmp_path / "never")]) == 2
    assert error_line(capsys) == f"error: {path}: {message}"


@pytest.mark.parametrize(
    "stored, message",
    [
        (
            {"alpha": 0},
            "config.alpha = 0: must be a finite number > 0 (a --alpha flag replaces the checkpoint's value)",
        ),
        (
            {"num_seg": 2.5},
            "config.num_seg = 2.5: is not a value of type int (a --num_seg flag replaces the checkpoint's value)",
        ),
        (
            {"act_th": [0.5, 2.0]},
            "config.act_th = [0.5, 2.0]: must lie in [0, 1] (scores are clipped) (a --act_th flag replaces the checkpoint's value)",  # noqa: E501
        ),
        (
            {"pool": "yes"},
            'config.pool = "yes": is not a value of type bool (a --pool flag replaces the checkpoint\'s value)',
        ),
    ],
)
def test_a_bad_stored_setting_names_the_checkpoint_and_a_flag_replaces_it(stored, message, tmp_path, capsys):
    path = tmp_path / "m.pth"
    save_checkpoint(ACRNet(20).state_dict(), path, {"classes": [], "data_name": "thumos14", "config": stored})
    assert main.main(["--model_file", str(path), "--save_path", str(tmp_path / "never")]) == 2
    assert error_line(capsys) == f"error: {path}: stored setting {message}"
    key = next(iter(stored))
    flag = ["--pool"] if key == "pool" else [f"--{key}", "0.5" if key != "num_seg" else "16"]
    assert main.make_config(["--model_file", str(path), *flag])  # the flag's value, the stored one unused


# --- the resume file ---------------------------------------------------------------------------------------------


def rewrite(path: Path, change, keep_checksum: bool = True) -> None:
    """Load the resume file, apply `change` to it, save it with its checksum recomputed (a file our code could have
    written: only the structure check can tell), or without one."""
    state = torch.load(path, weights_only=True)
    state.pop("sha256", None)
    change(state)
    if keep_checksum and isinstance(state, dict):
        state["sha256"] = checksum(state)
    torch.save(state, path)


def _sgd(state):
    net = ACRNet(3)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    state["optimizer"] = opt.state_dict()


def _set(*keys_and_value):
    *keys, value = keys_and_value

    def change(state):
        target = state
        for key in keys[:-1]:
            target = target[key]
        if value is KeyError:
            del target[keys[-1]]
        else:
            target[keys[-1]] = value(target[keys[-1]]) if callable(value) else value

    return change


COLUMNS = 2 + len(dataset.DATASETS["thumos14"].tiou_thresholds) + 2  # step, loss, acc, mAP per tIoU, mAP@AVG
BAD_RESUME = [
    ("no config", _set("config", KeyError), "field 'config' is missing (not a complete resume file)"),
    ("unknown key", _set("extra", 1), "unknown field 'extra' (not a resume file of this version)"),
    (
        "config unknown setting",
        _set("config", "foo", 1),
        "field 'config.foo': unknown setting (the resume file's settings are data_name, ",
    ),  # noqa: E501
    ("config missing setting", _set("config", "alpha", KeyError), "field 'config.alpha': missing"),
    ("config not a dict", _set("config", [1]), "field 'config': expected a mapping of settings, found list [1]"),
    (
        "config odd value",
        _set("config", "alpha", torch.ones(2)),
        "field 'config.alpha': expected a setting's value, found Tensor",
    ),  # noqa: E501
    (
        "model key missing",
        _set("model", "mca.atte", KeyError),
        "field 'model': does not fit this run (Error(s) in loading state_dict for ACRNet: Missing key(s) in state_dict: \"mca.atte\"",  # noqa: E501
    ),
    ("model not tensors", _set("model", "mca.atte", 3), "field 'model': expected a state-dict (a mapping of tensors)"),
    ("step -5", _set("step", -5), "field 'step': -5, expected an integer in 1..2 (--num_iter)"),
    ("step float", _set("step", 2.0), "field 'step': 2.0, expected an integer in 1..2 (--num_iter)"),
    ("rows not a list", _set("rows", 3), "field 'rows': expected a list of evaluation rows, found int 3"),
    (
        "row too short",
        _set("rows", 0, [1, 2.0]),
        f"field 'rows[0]': expected {COLUMNS} finite numbers (an evaluation row), found list [1, 2.0]",
    ),  # noqa: E501
    (
        "row NaN",
        _set("rows", 1, 1, float("nan")),
        f"field 'rows[1]': expected {COLUMNS} finite numbers (an evaluation row), found list [2, nan",
    ),  # noqa: E501
    ("row step", _set("rows", 1, 0, 1), "field 'rows[1]': step 1 is not an evaluation step in 2..2"),
    ("loss_sum", _set("loss_sum", 0.5), "field 'loss_sum': expected a scalar float tensor, found float 0.5"),
    ("loss_count", _set("loss_count", -1), "field 'loss_count': -1, expected an integer in 0..2 (the step)"),
    ("NaN weight", _set("model", "mca.atte", lambda t: t * float("nan")), "tensor 'model.mca.atte' holds "),
    (
        "another optimizer",
        _sgd,
        "field 'optimizer.param_groups.0': unknown entry 'momentum' (not the state of this run's optimizer)",
    ),  # noqa: E501
    (
        "adam state shape",
        _set("optimizer", "state", 0, "exp_avg", torch.zeros(3)),
        "field 'optimizer.state.0.exp_avg': expected a float tensor of shape (",
    ),  # noqa: E501
    (
        "adam params",
        _set("optimizer", "param_groups", 0, "params", [0, 1]),
        "field 'optimizer.param_groups.0.params': expected [0, 1, 2, ",
    ),  # noqa: E501
    (
        "adam lr",
        _set("optimizer", "param_groups", 0, "lr", "fast"),
        "field 'optimizer.param_groups.0.lr': expected a number, found str 'fast'",
    ),  # noqa: E501
    (
        "scheduler entry",
        _set("scheduler", "optimizer", None),
        "field 'scheduler': unknown entry 'optimizer' (not the state of this run's scheduler)",
    ),  # noqa: E501
    ("scheduler epoch", _set("scheduler", "last_epoch", 1), "field 'scheduler.last_epoch': 1, expected the step, 2"),
    (
        "rng missing",
        _set("rng", "torch", KeyError),
        "field 'rng': expected the python, numpy and torch RNG states (and cuda)",
    ),  # noqa: E501
    (
        "rng python",
        _set("rng", "python", [3, [1, 2], None]),
        "field 'rng.python': not a state of Python's random module",
    ),  # noqa: E501
    (
        "rng numpy",
        _set("rng", "numpy", "key", torch.zeros(5, dtype=torch.int64)),
        "field 'rng.numpy': not a state of NumPy's random generator",
    ),  # noqa: E501
    (
        "rng torch",
        _set("rng", "torch", torch.zeros(7, dtype=torch.uint8)),
        "field 'rng.torch': not a state of PyTorch's CPU generator",
    ),  # noqa: E501
    ("version", _set("version", 1), "not a resume file of this version (version 1, this version reads 2)"),
]


@pytest.mark.parametrize("case, change, message", BAD_RESUME, ids=[c[0] for c in BAD_RESUME])
def test_a_malformed_resume_file_is_one_line_naming_the_field(case, change, message, run_copy, capsys):
    argv, save = run_copy
    last = save / "thumos14_last.pt"
    rewrite(last, change)
    capsys.readouterr()
    assert main.main([*argv, "--resume"]) == 2
    assert error_line(capsys).startswith(f"error: {last}: {message}")


def test_a_resume_file_that_is_not_a_dict(run_copy, capsys):
    argv, save = run_copy
    torch.save([1, 2], save / "thumos14_last.pt")
    assert main.main([*argv, "--resume"]) == 2
    last = save / "thumos14_last.pt"
    assert (
        error_line(capsys)
        == f"error: {last}: not a resume file of this version (version list [1, 2], this version reads 2)"
    )  # noqa: E501


def test_flipped_bytes_in_a_resume_file_are_a_checksum_mismatch(run_copy, capsys):
    argv, save = run_copy
    last = save / "thumos14_last.pt"
    flip_64_bytes(last)
    assert main.main([*argv, "--resume"]) == 2
    assert error_line(capsys) == (
        f"error: {last}: checksum mismatch (the file is damaged; use another copy, or an earlier checkpoint of the run)"
    )


def test_a_resume_file_without_checksum_resumes_with_a_note(run_copy, capsys):
    argv, save = run_copy
    last = save / "thumos14_last.pt"
    rewrite(last, lambda state: None, keep_checksum=False)
    capsys.readouterr()
    assert main.main([*argv, "--resume"]) == 0
    note = f"note: {last}: written before checkpoints carried a checksum; its tensors are checked to be finite only"
    assert note in capsys.readouterr().out.splitlines()


# --- Ctrl-C before the first resume file; a resumed run whose kept checkpoint is gone ------------------------------


def _interrupt_at(monkeypatch, where: str) -> None:
    if where == "step 1":
        orig = train.train_step

        def step(state, *args, **kwargs):
            if state.step == 1:
                raise KeyboardInterrupt
            return orig(state, *args, **kwargs)

        monkeypatch.setattr(train, "train_step", step)
    else:  # after the first evaluation's checkpoint and CSV, before its resume file

        def save(self, *args, **kwargs):
            raise KeyboardInterrupt

        monkeypatch.setattr(train.TrainState, "save", save)


@pytest.mark.parametrize(
    "where, hint, again",
    [
        ("step 1", "no resume file yet (the first is written at step 2's evaluation): run the same command again", []),
        (
            "first save",
            "no resume file yet, but outputs of the interrupted run: run the same command with --overwrite",
            ["--overwrite"],
        ),
    ],
)
def test_ctrl_c_before_the_first_resume_file_says_what_works(
    where, hint, again, tiny_data, tmp_path, monkeypatch, capsys
):  # noqa: E501
    save = tmp_path / "out"
    argv = ["--data_path", str(tiny_data), *TINY, "--num_iter", "2", "--eval_iter", "2", "--save_path", str(save)]
    with monkeypatch.context() as m:
        _interrupt_at(m, where)
        assert main.main(argv) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"interrupted; {hint}"
    last = save / "thumos14_last.pt"
    assert main.main([*argv, "--resume"]) == 2  # what the old hint said: refused, and the message says what works
    start = "start the run again " + (
        "with --overwrite instead of --resume (it replaces the interrupted run's outputs)"
        if again
        else "without --resume"
    )
    written = "one is written at a run's first evaluation, step 2, and at a --stop_at pause"
    assert error_line(capsys) == f"error: {last}: no resume file ({written}); {start}"
    assert main.main([*argv, *again]) == 0  # what the hint says works
    assert "interrupted" not in capsys.readouterr().err


def test_ctrl_c_with_a_resume_file_says_resume(tiny_data, tmp_path, monkeypatch, capsys):
    save = tmp_path / "out"
    argv = ["--data_path", str(tiny_data), *TINY, "--num_iter", "3", "--eval_iter", "1", "--save_path", str(save)]
    with monkeypatch.context() as m:
        _interrupt_at(m, "step 1")
        assert main.main(argv) == 130
    config_file = save / "thumos14_config.json"
    hint = (
        "continue: the same command with --resume added (from the last evaluation or --stop_at pause; the run's "
        f"settings are also in {config_file}, for --config)"
    )
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"interrupted; {hint}"
    assert main.main([*argv, "--resume"]) == 0  # what the hint says works
    capsys.readouterr()
    assert main.main([*argv, "--resume", "--num_iter", "5"]) == 2  # another setting: the message names the file
    err = capsys.readouterr().err.strip()
    rerun = f"use the same settings to resume (they are in {config_file}: python main.py --config FILE --resume)"
    assert err.endswith(rerun)
    # A test or --video run has nothing to resume; nor a command stopped before its config was made.
    for cfg in (main.Config(model_file="x.pth"), None):
        assert main.interrupted_hint(cfg, 0) == "nothing to resume: run the command again"


def test_resuming_a_finished_run_whose_checkpoint_is_gone_does_not_claim_it(run_copy, capsys):
    argv, save = run_copy
    for p in save.iterdir():
        if p.is_file() and p.name != "thumos14_last.pt":
            p.unlink()
    capsys.readouterr()
    assert main.main([*argv, "--resume"]) == 0
    out, err = capsys.readouterr()
    best = save / "thumos14.pth"
    assert f"(checkpoint {best})" not in out and f"(its checkpoint {best} is missing)" in out
    assert f"warning: {best}: missing; the checkpoint kept at step " in err
    assert not best.exists()


def test_utils_describe_is_short():
    assert utils.describe("x" * 100).endswith("...") and len(utils.describe("x" * 100)) < 60


def test_nan_i3d_weights_are_refused_by_key(tmp_path):
    from i3d import InceptionI3d, load_i3d

    sd = InceptionI3d(2, num_classes=400).state_dict()
    sd["logits.conv3d.weight"].view(-1)[:3] = float("nan")
    torch.save(sd, tmp_path / "flow.pt")
    with pytest.raises(InputError, match=r"flow\.pt: tensor 'logits\.conv3d\.weight' holds 3 NaN or infinite value"):
        load_i3d(tmp_path / "flow.pt", 2)
