"""Slow, obviously-correct ACRNet reference written from method §2–§6: loops over videos, classes, snippets, heads.

Float conventions (the model documents the same ones):
- §3 clustering runs in the input dtype: numpy scalars of that dtype (np.float32 for float32 input).
- §4 statistics run in Python floats (float64), summed in sorted order.
- §5 and §6 run in Python floats; they are compared with a tolerance.
Arrays in and out are numpy, [N, T, C] like the model.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

EPS = 1e-8


def stable_desc_order(row) -> list[int]:
    """Positions of `row` sorted by value descending; equal values keep their temporal order (Python's sort is
    stable)."""
    return sorted(range(len(row)), key=lambda t: -row[t])


def cluster_row(row: np.ndarray) -> list[int]:
    """§3 for one row of T scores (numpy array; arithmetic in its dtype) → 0/1 mask per snippet."""
    dt = row.dtype.type
    T = len(row)
    idx = stable_desc_order(row)
    v = [row[i] for i in idx]  # numpy scalars of dtype dt
    mask = [0] * T
    mask[idx[0]] = 1
    P, W = v[0], dt(1)
    Q, K = v[T - 1], dt(1)
    for k in range(1, T - 1):
        pc = P / W
        nc = Q / K
        if abs(v[k] - pc) <= abs(v[k] - nc):
            W = W + dt(1) / dt(k + 1)
            P = P + v[k] / dt(k + 1)
            mask[idx[k]] = 1
        else:
            K = K + dt(1)
            Q = Q + v[k]
    return mask


def temporal_clustering(seg_score: np.ndarray) -> np.ndarray:
    """§3: [N, T, C] → 0/1 mask [N, T, C]."""
    N, T, C = seg_score.shape
    out = np.zeros(seg_score.shape, dtype=seg_score.dtype)
    for n in range(N):
        for c in range(C):
            m = cluster_row(seg_score[n, :, c])
            for t in range(T):
                out[n, t, c] = m[t]
    return out


def refine_row(s: np.ndarray, m: np.ndarray, a: np.ndarray) -> list[int]:
    """§4 for one (n, c): scores s, mask m, logits a (length T) → refined 0/1 mask."""
    T = len(s)
    idx = stable_desc_order(s)
    num = 0.0
    den = 0.0
    for k, t in enumerate(idx):
        w = 1.0 / (k + 2)
        num += float(a[t]) * w * float(m[t])
        den += w * float(m[t])
    ref = num / max(den, 1.0)
    pos_logits = [float(a[t]) for t in idx if m[t] == 1]
    pos_scores = [s[t] for t in idx if m[t] == 1]
    if not pos_logits:
        threshold = 0.0
    else:
        J = 0
        total = 0.0
        for j, logit in enumerate(pos_logits, start=1):
            total += logit
            if total / j >= ref:
                J += 1
        threshold = pos_scores[J - 1] if J >= 1 else pos_scores[-1]
    return [int(m[t] == 1 and s[t] >= threshold) for t in range(T)]


def refine_mask(seg_score: np.ndarray, mask: np.ndarray, cas: np.ndarray) -> np.ndarray:
    """§4: [N, T, C] each → refined mask [N, T, C] (seg_score's dtype)."""
    N, T, C = seg_score.shape
    out = np.zeros(seg_score.shape, dtype=seg_score.dtype)
    for n in range(N):
        for c in range(C):
            r = refine_row(seg_score[n, :, c], mask[n, :, c], cas[n, :, c])
            for t in range(T):
                out[n, t, c] = r[t]
    return out


def softmax(xs: list[float]) -> list[float]:
    top = max(xs)
    e = [math.exp(x - top) for x in xs]
    return [v / sum(e) for v in e]


def video_scores(seg_score: np.ndarray, mask: np.ndarray, cas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """§5: → (act_score, bkg_score) [N, C] float64."""
    N, T, C = seg_score.shape
    act = np.zeros((N, C))
    bkg = np.zeros((N, C))
    for n in range(N):
        act_row, bkg_row = [], []
        for c in range(C):
            idx = stable_desc_order(seg_score[n, :, c])
            num = den = bnum = bden = 0.0
            for k, t in enumerate(idx):
                w = 1.0 / (k + 2)
                mk = float(mask[n, t, c])
                num += float(cas[n, t, c]) * w * mk
                den += w * mk
                bnum += float(cas[n, t, c]) * (1 - mk)
                bden += 1 - mk
            act_row.append(num / max(den, 1.0))
            bkg_row.append(bnum / max(bden, 1.0))
        act[n] = softmax(act_row)
        bkg[n] = softmax(bkg_row)
    return act, bkg


def cls_loss(act_score: np.ndarray, bkg_score: np.ndarray, label: np.ndarray) -> float:
    N, C = act_score.shape
    first = second = 0.0
    for n in range(N):
        s = sum(-label[n, c] * math.log(max(act_score[n, c], EPS)) for c in range(C))
        first += s / max(sum(label[n]), 1)
        for c in range(C):
            second += -math.log(max(1 - bkg_score[n, c], EPS))
    return first / N + second / (N * C)


def gce_loss(aas: np.ndarray, seg_mask: np.ndarray, label: np.ndarray, q: float = 0.7) -> float:
    """aas [N, T]."""
    N, T, C = seg_mask.shape
    pos = neg = 0.0
    for n in range(N):
        g = [min(sum(float(seg_mask[n, t, c]) for c in range(C) if label[n, c] == 1), 1.0) for t in range(T)]
        a = [float(aas[n, t]) for t in range(T)]
        pos += sum(g[t] * (1 - max(a[t], EPS) ** q) / q for t in range(T)) / max(sum(g), 1)
        neg += sum((1 - g[t]) * (1 - max(1 - a[t], EPS) ** q) / q for t in range(T)) / max(sum(1 - x for x in g), 1)
    return pos / N + neg / N


def heads_and_scores(seg_score: np.ndarray, cas: np.ndarray) -> dict[str, np.ndarray]:
    """§3–§5 chained, as in the forward pass."""
    mask = temporal_clustering(seg_score)
    refined = refine_mask(seg_score, mask, cas)
    act, bkg = video_scores(seg_score, refined, cas)
    return {"mask": mask, "seg_mask": refined, "act_score": act, "bkg_score": bkg}


# --- §2 network, spelled out ------------------------------------------------------------------------------------


def merge_heads_loop(e: torch.Tensor) -> torch.Tensor:
    """§2.1 step 5 by index: e [N, H, T, K] → [N, T, H·K]. Flat order is h, then k, then t; re-read as [T, D]."""
    N, H, T, K = e.shape
    D = H * K
    out = torch.empty(N, T, D, dtype=e.dtype)
    for n in range(N):
        flat = []
        for h in range(H):
            for k in range(K):
                for t in range(T):
                    flat.append(e[n, h, t, k])
        for i in range(T):
            for j in range(D):
                out[n, i, j] = flat[i * D + j]
    return out


def cross_modal_attention(r: torch.Tensor, f: torch.Tensor, rgb_proj, flow_proj, atte):
    """§2.1 per video and head. r, f [N, T, D] → (r', f') [N, T, D]."""
    N, T, D = r.shape
    H = rgb_proj.shape[0]
    r_out, f_out = [], []
    for n in range(N):
        er, ef = [], []
        for h in range(H):
            pr = F.normalize(r[n] @ rgb_proj[h], dim=-1)  # [T, K]
            pf = F.normalize(f[n] @ flow_proj[h], dim=-1)
            A = pr @ atte[h] @ pf.T  # [T, T]
            wr = torch.softmax(A, dim=1)
            wf = torch.softmax(A.T, dim=1)
            er.append(F.gelu(wr @ pr))  # own features: Wr multiplies Pr
            ef.append(F.gelu(wf @ pf))
        mr = merge_heads_loop(torch.stack(er)[None])[0]
        mf = merge_heads_loop(torch.stack(ef)[None])[0]
        r_out.append(torch.tanh(mr + r[n]))
        f_out.append(torch.tanh(mf + f[n]))
    return torch.stack(r_out), torch.stack(f_out)


def avg_pool13(y: torch.Tensor) -> torch.Tensor:
    """Window 13, stride 1, zero padding 6 counted in the mean: y [N, K, T] → [N, K, T]."""
    N, K, T = y.shape
    out = torch.zeros_like(y)
    for t in range(T):
        for u in range(t - 6, t + 7):
            if 0 <= u < T:
                out[:, :, t] += y[:, :, u]
    return out / 13


def conv1d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Conv1d with 'same' zero padding, by explicit taps: x [N, Cin, T], weight [Cout, Cin, k]."""
    k = weight.shape[-1]
    pad = k // 2
    N, _, T = x.shape
    xp = F.pad(x, (pad, pad))
    out = bias[None, :, None].expand(N, -1, T).clone()
    for j in range(k):
        out = out + torch.einsum("oi,nit->not", weight[:, :, j], xp[:, :, j : j + T])
    return out


def forward(sd: dict[str, torch.Tensor], x: torch.Tensor, pool: bool) -> dict[str, torch.Tensor]:
    """§2 network in eval mode (dropout off) from a state-dict. x [N, T, 2048] → cas, aas_rgb, aas_flow, seg_score."""
    r, f = x[..., :1024], x[..., 1024:]
    r2, f2 = cross_modal_attention(r, f, sd["mca.rgb_proj"], sd["mca.flow_proj"], sd["mca.atte"])
    r2, f2 = r2.transpose(1, 2), f2.transpose(1, 2)  # [N, D, T]

    def bwa(prefix, base, ref):
        channel = F.leaky_relu(conv1d(base.mean(-1, keepdim=True), sd[f"{prefix}.conv.0.weight"],
                                      sd[f"{prefix}.conv.0.bias"]), 0.2)  # fmt: skip
        bit = F.leaky_relu(conv1d(ref, sd[f"{prefix}.attn.0.weight"], sd[f"{prefix}.attn.0.bias"]), 0.2)
        return torch.sigmoid(bit * channel) * base

    rb, fb = bwa("rgb_bwa", r2, f2), bwa("flow_bwa", f2, r2)

    def head(prefix, z):
        h = torch.relu(conv1d(z, sd[f"{prefix}.0.weight"], sd[f"{prefix}.0.bias"]))
        y = conv1d(h, sd[f"{prefix}.2.weight"], sd[f"{prefix}.2.bias"])
        return avg_pool13(y) if pool else y

    cas = (head("cas_rgb_encoder", rb) + head("cas_flow_encoder", fb)).transpose(1, 2)
    aas_rgb = torch.sigmoid(head("aas_rgb_encoder", rb)).transpose(1, 2)
    aas_flow = torch.sigmoid(head("aas_flow_encoder", fb)).transpose(1, 2)
    seg = (torch.softmax(cas, dim=-1) + (aas_rgb + aas_flow) / 2) / 2
    return {"cas": cas, "aas_rgb": aas_rgb, "aas_flow": aas_flow, "seg_score": seg}
