"""Slow, obviously-correct feature extraction from method §12.5–7: the whole video in memory, one snippet at a time."""

from __future__ import annotations

import numpy as np
import torch

from i3d import InceptionI3d, to_i3d_input


@torch.no_grad()
def snippet_features_reference(frames: np.ndarray, net: InceptionI3d) -> np.ndarray:
    """uint8 frames [n_f, H, W, C] → float32 [n_f // 16, 1024]: snippet i is frames [16i, 16i + 16), run alone."""
    feats = []
    for i in range(len(frames) // 16):
        x = to_i3d_input(frames[16 * i : 16 * i + 16])[None]  # [1, C, 16, 224, 224]
        feats.append(net.extract_features(x)[0].numpy())
    return np.stack(feats).astype(np.float32) if feats else np.zeros((0, 1024), np.float32)


def random_i3d(in_channels: int, seed: int = 0) -> InceptionI3d:
    """An I3D with random weights that keep the signal's scale through its 57 conv units (He-normal convolutions,
    random BN statistics), so features are O(1) and differ between inputs. PyTorch's default init shrinks the
    activations layer by layer and leaves features of ~1e-5 that hardly depend on the input."""
    g = torch.Generator().manual_seed(seed)
    net = InceptionI3d(in_channels)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Conv3d):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2 / fan_in) ** 0.5)
            elif isinstance(m, torch.nn.BatchNorm3d):
                m.weight.copy_(1 + 0.1 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(1 + torch.rand(m.running_var.shape, generator=g))
    return net.eval()
