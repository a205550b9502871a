import json

import numpy as np
import pytest

from utils import atomic_json_dump, atomic_np_save, atomic_path


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "out.json"
    atomic_json_dump({"a": 1}, target)
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half-written")
            raise RuntimeError("crash")
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # no temporary left behind


def test_atomic_np_save_exact_name(tmp_path):
    target = tmp_path / "v_rgb.npy"
    atomic_np_save(np.arange(6, dtype=np.float32).reshape(3, 2), target)
    assert np.load(target).shape == (3, 2)
    assert [p.name for p in tmp_path.iterdir()] == ["v_rgb.npy"]


def test_checkpoint_metadata_round_trip_and_plain_load(tmp_path):
    import torch

    from utils import InputError, load_checkpoint, save_checkpoint

    net = torch.nn.Module()
    net.cas_rgb_encoder = torch.nn.Sequential(torch.nn.Conv1d(4, 4, 1), torch.nn.ReLU(), torch.nn.Conv1d(4, 3, 1))
    meta = {"classes": ["a", "b", "c"], "data_name": "thumos14", "config": {"init_lr": 1e-4}}
    save_checkpoint(net.state_dict(), tmp_path / "m.pth", meta)
    sd, got = load_checkpoint(tmp_path / "m.pth", num_classes=3)
    assert got == meta
    net.load_state_dict(torch.load(tmp_path / "m.pth", weights_only=True), strict=True)  # still a plain state-dict
    torch.save(net.state_dict(), tmp_path / "plain.pth")
    assert load_checkpoint(tmp_path / "plain.pth")[1] is None
    with pytest.raises(InputError, match=r"m\.pth: checkpoint is for 3 classes, but the dataset has 20"):
        load_checkpoint(tmp_path / "m.pth", num_classes=20)
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match=r"bad\.pth: not a readable PyTorch checkpoint"):
        load_checkpoint(tmp_path / "bad.pth")
    with pytest.raises(InputError, match="not found"):
        load_checkpoint(tmp_path / "missing.pth")


def test_atomic_write_has_default_permissions(tmp_path):
    import os

    target = tmp_path / "out.json"
    atomic_json_dump({"a": 1}, target)
    plain = tmp_path / "plain.json"
    plain.write_text("{}")
    assert os.stat(target).st_mode & 0o777 == os.stat(plain).st_mode & 0o777


def test_run_cli_exit_codes(capsys):
    from utils import InputError, run_cli

    def bad():
        raise InputError("data/x.npy: width 512, expected 1024")

    def interrupted():
        raise KeyboardInterrupt

    assert run_cli(lambda: 1) == 1 and run_cli(lambda: None) == 0
    assert run_cli(bad) == 2
    assert capsys.readouterr().err == "error: data/x.npy: width 512, expected 1024\n"
    assert run_cli(interrupted, interrupted="run it again") == 130
    assert capsys.readouterr().err.strip() == "interrupted; run it again"
    with pytest.raises(KeyboardInterrupt):
        run_cli(interrupted)


def test_format_table_is_an_aligned_markdown_table():
    from utils import format_table

    text = format_table(["class", "AP"], [["Diving", "75.45"], ["LongJump", "3.1"]], title="t")
    assert text.splitlines() == [
        "t",
        "| class    |    AP |",
        "|----------|------:|",
        "| Diving   | 75.45 |",
        "| LongJump |   3.1 |",
    ]
    assert format_table(["a", "b"], [], align="rl").splitlines()[1] == "|----:|-----|"  # min width 3
    with pytest.raises(ValueError, match="2 columns"):
        format_table(["a", "b"], [["only one"]])
    with pytest.raises(ValueError, match="2 columns"):
        format_table(["a", "b"], [], align="lx")
