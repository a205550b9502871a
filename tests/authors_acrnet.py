"""The authors' ACRNet written the way their code does it (method §2–§6): the baseline of bench.py's speed ratios.

This is not a reference for correctness (tests/reference_model.py is) but for speed: what a user would otherwise
run. It follows the structure the method (docs/method.md) describes for the published code:
- §2 channel-first: the input is permuted to [N, 2048, T] once; every layer is a plain `nn.Conv1d` on [N, D, T];
  the cross-modal attention permutes to [N, T, D], takes softmax(Aᵀ) on the transposed view, and permutes back.
- §3 clustering: one stable sort, then a Python loop over the T sorted positions, each step a few tensor ops on all
  (video, class) rows at once.
- §4 refining: one sort of the batch, then a Python loop over classes and, inside it, over the videos of the batch,
  with a few tensor ops on each row (weighted sums, boolean indexing, cumsum, an `int()` of J): `refine_mask`.
  A leaner reading, `refine_mask_by_class`, loops over classes only, each step tensor ops on all the videos at once;
  the authors' own code was timed between the two (bench.py model prints both).
- §5 video scores: a sort, gathers and weighted sums over the batch; §6 losses as written in docs/method.md.
The state-dict names are method §2.5's, so one state-dict loads into this and into model.ACRNet.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

D, H, EPS, Q = 1024, 4, 1e-8, 0.7


class CrossModalAttention(nn.Module):
    def __init__(self, dim: int = D, heads: int = H):
        super().__init__()
        k = dim // heads
        self.rgb_proj = nn.Parameter(torch.empty(heads, dim, k).uniform_(-math.sqrt(dim), math.sqrt(dim)))
        self.flow_proj = nn.Parameter(torch.empty(heads, dim, k).uniform_(-math.sqrt(dim), math.sqrt(dim)))
        self.atte = nn.Parameter(torch.empty(heads, k, k).uniform_(-math.sqrt(k), math.sqrt(k)))

    def forward(self, rgb: Tensor, flow: Tensor) -> tuple[Tensor, Tensor]:
        """rgb, flow [N, D, T] → [N, D, T]."""
        r, f = rgb.permute(0, 2, 1), flow.permute(0, 2, 1)  # [N, T, D]
        n, t, d = r.shape
        pr = F.normalize(torch.matmul(r.unsqueeze(1), self.rgb_proj), dim=-1)  # [N, H, T, K]
        pf = F.normalize(torch.matmul(f.unsqueeze(1), self.flow_proj), dim=-1)
        a = torch.matmul(torch.matmul(pr, self.atte), pf.transpose(-1, -2))  # [N, H, T, T]
        wr = F.softmax(a, dim=-1)
        wf = F.softmax(a.transpose(-1, -2), dim=-1)
        er = F.gelu(torch.matmul(wr, pr)).transpose(-1, -2).reshape(n, t, d)  # the §2.1 head-merge quirk
        ef = F.gelu(torch.matmul(wf, pf)).transpose(-1, -2).reshape(n, t, d)
        return torch.tanh(er + r).permute(0, 2, 1), torch.tanh(ef + f).permute(0, 2, 1)


class BackgroundWeightedAttention(nn.Module):
    def __init__(self, dim: int = D):
        super().__init__()
        self.attn = nn.Sequential(nn.Conv1d(dim, dim, 3, padding=1), nn.LeakyReLU(0.2), nn.Dropout(0.5))
        self.conv = nn.Sequential(nn.Conv1d(dim, dim, 3, padding=1), nn.LeakyReLU(0.2), nn.Dropout(0.5))

    def forward(self, base: Tensor, ref: Tensor) -> Tensor:
        """base, ref [N, D, T] → [N, D, T]."""
        channel = self.conv(base.mean(dim=-1, keepdim=True))  # [N, D, 1]
        return torch.sigmoid(self.attn(ref) * channel) * base


def _head(hidden: int, out: int, kernel: int, pool: bool) -> nn.Sequential:
    layers = [nn.Conv1d(D, hidden, kernel, padding=kernel // 2), nn.ReLU(), nn.Conv1d(hidden, out, 1)]
    if pool:
        layers.append(nn.AvgPool1d(13, stride=1, padding=6, count_include_pad=True))
    return nn.Sequential(*layers)


class AuthorsACRNet(nn.Module):
    """forward(x [N, T, 2048]) → dict of act_score, bkg_score [N, C]; seg_score, seg_mask, cas [N, T, C];
    aas_rgb, aas_flow [N, T, 1]."""

    def __init__(self, num_classes: int, pool: bool = False):
        super().__init__()
        self.mca = CrossModalAttention()
        self.rgb_bwa = BackgroundWeightedAttention()
        self.flow_bwa = BackgroundWeightedAttention()
        self.cas_rgb_encoder = _head(D, num_classes, 3, pool)
        self.cas_flow_encoder = _head(D, num_classes, 3, pool)
        self.aas_rgb_encoder = _head(512, 1, 1, pool)
        self.aas_flow_encoder = _head(512, 1, 1, pool)
        for m in self.modules():
            if isinstance(m, nn.Conv1d):
                nn.init.kaiming_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        x = x.permute(0, 2, 1)  # [N, 2048, T]
        r, f = self.mca(x[:, :D], x[:, D:])
        r_out, f_out = self.rgb_bwa(r, f), self.flow_bwa(f, r)
        cas = (self.cas_rgb_encoder(r_out) + self.cas_flow_encoder(f_out)).permute(0, 2, 1)  # [N, T, C]
        aas_rgb = torch.sigmoid(self.aas_rgb_encoder(r_out)).permute(0, 2, 1)  # [N, T, 1]
        aas_flow = torch.sigmoid(self.aas_flow_encoder(f_out)).permute(0, 2, 1)
        seg_score = (F.softmax(cas, dim=-1) + (aas_rgb + aas_flow) / 2) / 2
        mask = refine_mask(seg_score, temporal_clustering(seg_score), cas)
        act_score, bkg_score = video_scores(seg_score, mask, cas)
        return {"act_score": act_score, "bkg_score": bkg_score, "seg_score": seg_score, "seg_mask": mask,
                "aas_rgb": aas_rgb, "aas_flow": aas_flow, "cas": cas}  # fmt: skip


@torch.no_grad()
def temporal_clustering(seg_score: Tensor) -> Tensor:
    """§3 as a T-step loop of tensor ops over all (video, class) rows: [N, T, C] → 0/1 mask [N, T, C]."""
    t = seg_score.shape[1]
    vals, idx = seg_score.sort(dim=1, descending=True, stable=True)
    sorted_mask = torch.zeros_like(vals)
    sorted_mask[:, 0] = 1
    p, w = vals[:, 0].clone(), torch.ones_like(vals[:, 0])
    q, cnt = vals[:, -1].clone(), torch.ones_like(vals[:, 0])
    for k in range(1, t - 1):
        v = vals[:, k]
        pos = (v - p / w).abs() <= (v - q / cnt).abs()
        w = torch.where(pos, w + 1 / (k + 1), w)
        p = torch.where(pos, p + v / (k + 1), p)
        q = torch.where(pos, q, q + v)
        cnt = torch.where(pos, cnt, cnt + 1)
        sorted_mask[:, k] = pos.to(vals.dtype)
    return torch.zeros_like(seg_score).scatter_(1, idx, sorted_mask)


@torch.no_grad()
def refine_mask(seg_score: Tensor, mask: Tensor, cas: Tensor) -> Tensor:
    """§4 as a Python loop over classes and videos, tensor ops per (video, class) row: [N, T, C] → [N, T, C]."""
    n, t, c = seg_score.shape
    vals, idx = seg_score.sort(dim=1, descending=True, stable=True)
    sorted_mask, sorted_cas = mask.gather(1, idx), cas.gather(1, idx)
    w = 1 / torch.arange(2, t + 2, dtype=seg_score.dtype, device=seg_score.device)
    refined = torch.zeros_like(mask)
    for j in range(c):
        for i in range(n):
            m, a = sorted_mask[i, :, j], sorted_cas[i, :, j]
            wm = w * m
            ref = (a * wm).sum() / wm.sum().clamp(min=1)
            pos = m > 0
            a_pos, s_pos = a[pos], vals[i, :, j][pos]
            if len(a_pos) == 0:
                continue
            means = a_pos.cumsum(0) / torch.arange(1, len(a_pos) + 1, device=a.device)
            big_j = int((means >= ref).sum())
            threshold = s_pos[big_j - 1] if big_j >= 1 else s_pos[-1]
            refined[i, :, j] = mask[i, :, j] * (seg_score[i, :, j] >= threshold)
    return refined


@torch.no_grad()
def refine_mask_by_class(seg_score: Tensor, mask: Tensor, cas: Tensor) -> Tensor:
    """§4 as a Python loop over classes, tensor ops on the [N, T] rows of all videos at once: [N, T, C] → [N, T, C].

    The same numbers as `refine_mask`: the running sums over the positives are a cumsum of the logits with zeros at
    the negatives (adding zeros leaves each partial sum unchanged), divided by the running count of positives."""
    t = seg_score.shape[1]
    vals, idx = seg_score.sort(dim=1, descending=True, stable=True)
    sorted_mask, sorted_cas = mask.gather(1, idx), cas.gather(1, idx)
    w = 1 / torch.arange(2, t + 2, dtype=seg_score.dtype, device=seg_score.device)
    refined = torch.zeros_like(mask)
    for j in range(seg_score.shape[2]):
        m, a, s = sorted_mask[:, :, j], sorted_cas[:, :, j], vals[:, :, j]  # [N, T]
        wm = w * m
        ref = (a * wm).sum(1, keepdim=True) / wm.sum(1, keepdim=True).clamp(min=1)  # [N, 1]
        count = m.cumsum(1)  # j of the positive at each position
        means = (a * m).cumsum(1) / count.clamp(min=1)
        big_j = ((means >= ref) & (m > 0)).sum(1, keepdim=True)
        num_pos = count[:, -1:]
        target = torch.where(big_j >= 1, big_j.to(count.dtype), num_pos)  # J = 0 takes s_P, the last positive
        at = (count < target).sum(1, keepdim=True).clamp(max=t - 1)  # the first position where the count reaches it
        threshold = s.gather(1, at)
        refined[:, :, j] = mask[:, :, j] * (seg_score[:, :, j] >= threshold)  # (no positives: the mask stays 0)
    return refined


def video_scores(seg_score: Tensor, mask: Tensor, cas: Tensor) -> tuple[Tensor, Tensor]:
    """§5: [N, T, C] each → (act_score, bkg_score) [N, C]."""
    t = seg_score.shape[1]
    _, idx = seg_score.sort(dim=1, descending=True, stable=True)
    m, a = mask.gather(1, idx), cas.gather(1, idx)
    w = (1 / torch.arange(2, t + 2, dtype=cas.dtype, device=cas.device)).view(1, t, 1)
    act = (a * w * m).sum(1) / (w * m).sum(1).clamp(min=1)
    bkg = (a * (1 - m)).sum(1) / (1 - m).sum(1).clamp(min=1)
    return F.softmax(act, dim=-1), F.softmax(bkg, dim=-1)


def cls_loss(act_score: Tensor, bkg_score: Tensor, label: Tensor) -> Tensor:
    act = -(label * torch.log(act_score.clamp(min=EPS))).sum(-1) / label.sum(-1).clamp(min=1)
    bkg = -torch.log((1 - bkg_score).clamp(min=EPS))
    return act.mean() + bkg.mean()


def gce_loss(aas: Tensor, seg_mask: Tensor, label: Tensor) -> Tensor:
    """aas [N, T, 1], seg_mask [N, T, C], label [N, C] → scalar."""
    g = (seg_mask * label.unsqueeze(1)).sum(-1).clamp(max=1)  # [N, T]
    a = aas.squeeze(-1)
    pos = (g * (1 - a.clamp(min=EPS) ** Q) / Q).sum(-1) / g.sum(-1).clamp(min=1)
    neg = ((1 - g) * (1 - (1 - a).clamp(min=EPS) ** Q) / Q).sum(-1) / (1 - g).sum(-1).clamp(min=1)
    return pos.mean() + neg.mean()


def total_loss(out: dict[str, Tensor], label: Tensor, lamda: float = 0.1) -> Tensor:
    """§6: L_cls + lamda·(L_gce(aas_rgb) + L_gce(aas_flow))."""
    cls = cls_loss(out["act_score"], out["bkg_score"], label)
    return cls + lamda * (
        gce_loss(out["aas_rgb"], out["seg_mask"], label) + gce_loss(out["aas_flow"], out["seg_mask"], label)
    )
