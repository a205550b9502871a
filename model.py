"""ACRNet: the network (method §2), adaptive clustering (§3), cluster refining (§4), video scores (§5), losses (§6).

Shapes: N videos, T snippets, C classes, D = 1024 channels per modality, H = 4 heads. Tensors are [N, T, ·]
(time-major) at the interface and inside the network too. Only their *memory* layout depends on the device, through
one switch, `LAYOUTS` (a `Layout` per device type, chosen by measurement): on CUDA the activations stay time-major in
memory and the Conv1d layers run as channels-last 2-D convolutions (cuDNN's NHWC kernels); on CPU they are stored
channel-first ([N, D, T] memory under the [N, T, D] view) so oneDNN runs plain Conv1d, whose backward is faster
there. The code path is the same; `conv_time_major` and `conv_memory` are where the two layouts differ.

§3–§5 treat every (video n, class c) pair as a row of T scores, sorted by seg_score, descending, stable. Every step
produces the same row results (`_Rows`, in snippet order): the mask, each snippet's §5 weight, and §5's act and bkg
logits, so the gradient path of §5 is one custom autograd function (`_VideoLogits`) on any device. Two
implementations compute them, one per device, chosen in `_row_results`:
- CPU: one numba kernel in model_cpu.py (`model_cpu.row_results`): each row is sorted on its own, then §3's scan,
  §4's threshold and §5's weights and logits walk the sorted positions once for blocks of rows as SIMD lanes, and
  the results go straight back to snippet order; blocks are spread over torch.get_num_threads() threads.
- CUDA: torch ops on sorted rows [N, C, T] (`_threshold_sorted`) and a Triton kernel for the sequential §3 scan, one
  program per row (`_cluster_sorted`); triton is imported lazily so CPU users without it are unaffected. §4's running
  sums are added in order (`_sequential_cumsum_`), so its float comparisons are decided like a plain loop's.
Both decide every comparison exactly as a plain loop in the method's order does (§3 in the input dtype, §4 in float64).
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import model_cpu

FEATURE_DIM = 1024  # D: per modality (RGB, flow)
NUM_HEADS = 4  # H
EPS = 1e-8  # §6
GCE_Q = 0.7  # §6: q of the generalised cross-entropy


class ACRNetOutput(NamedTuple):
    act_score: Tensor  # [N, C] softmax of the rank-weighted positive logits (§5)
    bkg_score: Tensor  # [N, C] softmax of the mean negative logits (§5)
    seg_score: Tensor  # [N, T, C] (cas_score + aas_score) / 2 (§2.3)
    seg_mask: Tensor  # [N, T, C] refined clustering mask, 0/1 in seg_score's dtype, no gradient (§4)
    aas_rgb: Tensor  # [N, T, 1] RGB actionness in (0, 1)
    aas_flow: Tensor  # [N, T, 1] flow actionness in (0, 1)
    cas: Tensor  # [N, T, C] class logits cas_rgb + cas_flow


# --- memory layout per device (the one switch; same numbers either way) ----------------------------------------------


class Layout(NamedTuple):
    """Where the network's [N, T, ·] activations sit in memory, and how two layout-sensitive ops run, on one device."""

    channels_last_conv: bool  # True: [N, T, D] memory, Conv1d as channels-last conv2d; False: [N, D, T], plain Conv1d
    softmax_on_copy: bool  # softmax(Aᵀ): True: last-axis softmax of a contiguous copy of Aᵀ; False: softmax over -2


# Chosen by measurement (`python bench.py step`; docs/model.md): cuDNN on an H200 wants NHWC convolutions and the
# copied softmax; on CPU oneDNN's k=3 convolution backward runs ~1.8x faster channel-first at T 750.
LAYOUTS: dict[str, Layout] = {"cuda": Layout(True, True), "cpu": Layout(False, False)}


def layout_of(x: Tensor) -> Layout:
    """The layout for x's device type (a device not listed gets the CPU one)."""
    return LAYOUTS.get(x.device.type, LAYOUTS["cpu"])


def conv_memory(x: Tensor) -> Tensor:
    """x [N, T, D] → the same values [N, T, D], stored as this device's convolutions read them (one copy at most)."""
    if layout_of(x).channels_last_conv:
        return x.contiguous()
    return x.transpose(1, 2).contiguous().transpose(1, 2)  # [N, D, T] memory under the [N, T, D] view


# --- §2 network ----------------------------------------------------------------------------------------------------


def merge_heads(e: Tensor) -> Tensor:
    """[N, H, T, K] → [N, T, H·K] with the published **quirk** of §2.1 step 5.

    Not a head concatenation: each sample's [H, K, T] block is read out row-major and re-read as [T, H·K], which
    mixes time and channel positions. The released weights were trained with it.
    """
    n, h, t, k = e.shape
    return e.transpose(-1, -2).reshape(n, t, h * k)


class CrossModalAttention(nn.Module):
    """§2.1 multi-head cross-modal attention. (r, f) [N, T, D] → (r', f') [N, T, D]."""

    def __init__(self, dim: int = FEATURE_DIM, heads: int = NUM_HEADS):
        super().__init__()
        k = dim // heads
        self.rgb_proj = nn.Parameter(torch.empty(heads, dim, k))
        self.flow_proj = nn.Parameter(torch.empty(heads, dim, k))
        self.atte = nn.Parameter(torch.empty(heads, k, k))
        nn.init.uniform_(self.rgb_proj, -math.sqrt(dim), math.sqrt(dim))
        nn.init.uniform_(self.flow_proj, -math.sqrt(dim), math.sqrt(dim))
        nn.init.uniform_(self.atte, -math.sqrt(k), math.sqrt(k))

    def forward(self, r: Tensor, f: Tensor) -> tuple[Tensor, Tensor]:
        # contiguous [N, H, T, K] once, so the three batched matmuls below do not each copy a permuted view
        pr = F.normalize(torch.einsum("ntd,hdk->nhtk", r, self.rgb_proj).contiguous(), dim=-1)
        pf = F.normalize(torch.einsum("ntd,hdk->nhtk", f, self.flow_proj).contiguous(), dim=-1)
        a = pr @ self.atte @ pf.transpose(-1, -2)  # [N, H, T, T]: the only cross-modal step
        wr = a.softmax(dim=-1)
        wf = softmax_transposed(a)
        er = F.gelu(wr @ pr)  # quirk: each modality attends over its *own* projected features
        ef = F.gelu(wf @ pf)
        return torch.tanh(merge_heads(er) + r), torch.tanh(merge_heads(ef) + f)


def softmax_transposed(a: Tensor) -> Tensor:
    """softmax(Aᵀ) over the last axis, Aᵀ swapping the last two axes of a [..., T, T] → [..., T, T]."""
    if layout_of(a).softmax_on_copy:  # CUDA: copy + last-axis softmax beats softmax(dim=-2)
        return a.transpose(-1, -2).contiguous().softmax(dim=-1)
    return a.softmax(dim=-2).transpose(-1, -2)  # CPU: no copy, forward or backward


def conv_time_major(conv: nn.Conv1d, x: Tensor) -> Tensor:
    """`conv` applied over T to time-major x [N, T, Cin] → [N, T, Cout]; same numbers as conv(x.transpose(1, 2)).

    Channels-last layout: a 2-D convolution, as [N, T, C] memory *is* channels-last [N, C, 1, T], so cuDNN's NHWC
    kernels read and write it in place instead of transposing to [N, C, T] and back around every layer. Otherwise
    a plain Conv1d on the [N, C, T] view, which is contiguous when x was stored by `conv_memory`.
    """
    if not layout_of(x).channels_last_conv:
        return conv(x.transpose(1, 2)).transpose(1, 2)
    w = conv.weight.unsqueeze(2).contiguous(memory_format=torch.channels_last)  # [Cout, Cin, 1, k]
    y = F.conv2d(x.transpose(1, 2).unsqueeze(2), w, conv.bias, padding=(0, conv.padding[0]))
    return y.squeeze(2).transpose(1, 2)


def run_time_major(layers: nn.Sequential, x: Tensor) -> Tensor:
    """A Conv1d stack (conv / activation / dropout / pool) on time-major x [N, T, C] → [N, T, C']."""
    for layer in layers:
        if isinstance(layer, nn.Conv1d):
            x = conv_time_major(layer, x)
        elif isinstance(layer, nn.AvgPool1d):
            x = layer(x.transpose(1, 2)).transpose(1, 2)
        else:  # elementwise: layout-agnostic
            x = layer(x)
    return x


def _conv_block(dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv1d(dim, dim, 3, padding=1), nn.LeakyReLU(0.2), nn.Dropout(0.5))


class BackgroundWeightedAttention(nn.Module):
    """§2.2: output = sigmoid(attn(Q) · conv(mean_T(B))) · B. B, Q [N, T, D] (time-major) → [N, T, D]."""

    def __init__(self, dim: int = FEATURE_DIM):
        super().__init__()
        self.attn = _conv_block(dim)
        self.conv = _conv_block(dim)

    def forward(self, base: Tensor, ref: Tensor) -> Tensor:
        channel = self.conv(base.mean(dim=1).unsqueeze(-1)).transpose(1, 2)  # length-1 sequence → [N, 1, D]
        return torch.sigmoid(run_time_major(self.attn, ref) * channel) * base


def _head(dim: int, hidden: int, out: int, kernel: int, pool: bool) -> nn.Sequential:
    layers = [nn.Conv1d(dim, hidden, kernel, padding=kernel // 2), nn.ReLU(), nn.Conv1d(hidden, out, 1)]
    if pool:  # ActivityNet: parameter-free, so state-dict keys are unchanged
        layers.append(nn.AvgPool1d(13, stride=1, padding=6, count_include_pad=True))
    return nn.Sequential(*layers)


class ACRNet(nn.Module):
    """ACRNet (method §2–§5). `pool=True` is the ActivityNet variant (temporal average pool ending each head).

    forward(x [N, T, 2048], RGB in channels 0..1023, flow in 1024..2047) → ACRNetOutput. The layers are the
    method's Conv1d modules (state-dict names of §2.5); they run time-major ([N, T, D]) through `run_time_major`.
    """

    def __init__(self, num_classes: int, pool: bool = False):
        super().__init__()
        d = FEATURE_DIM
        self.num_classes, self.pool = num_classes, pool
        self.mca = CrossModalAttention(d, NUM_HEADS)
        self.rgb_bwa = BackgroundWeightedAttention(d)
        self.flow_bwa = BackgroundWeightedAttention(d)
        self.cas_rgb_encoder = _head(d, d, num_classes, 3, pool)
        self.cas_flow_encoder = _head(d, d, num_classes, 3, pool)
        self.aas_rgb_encoder = _head(d, 512, 1, 1, pool)
        self.aas_flow_encoder = _head(d, 512, 1, 1, pool)
        for m in self.modules():  # §2.4 (nn.Conv1d's own default is kaiming_uniform_ with a=sqrt(5))
            if isinstance(m, nn.Conv1d):
                nn.init.kaiming_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> ACRNetOutput:
        if x.dim() != 3 or x.shape[-1] != 2 * FEATURE_DIM:
            raise ValueError(f"ACRNet input must be [N, T, {2 * FEATURE_DIM}], got {list(x.shape)}")
        r, f = self.mca(x[..., :FEATURE_DIM], x[..., FEATURE_DIM:])  # [N, T, D] each
        r, f = conv_memory(r), conv_memory(f)  # every layer below reads them: store them once as the convs want
        r_out = self.rgb_bwa(r, f)  # both blocks read the §2.1 outputs, not each other's
        f_out = self.flow_bwa(f, r)
        cas = run_time_major(self.cas_rgb_encoder, r_out) + run_time_major(self.cas_flow_encoder, f_out)  # [N, T, C]
        aas_rgb = torch.sigmoid(run_time_major(self.aas_rgb_encoder, r_out))  # [N, T, 1]
        aas_flow = torch.sigmoid(run_time_major(self.aas_flow_encoder, f_out))
        seg_score = (cas.softmax(dim=-1) + (aas_rgb + aas_flow) / 2) / 2

        mask, act_score, bkg_score = clustered_scores(seg_score, cas)
        return ACRNetOutput(act_score, bkg_score, seg_score, mask, aas_rgb, aas_flow, cas)


# --- §3–§5: every (video n, class c) pair is a row of T snippets, sorted by seg_score (descending, stable) ------------


def _rows(x: Tensor) -> Tensor:
    """[N, T, C] → [N, C, T] contiguous: one row of T snippets per (video, class)."""
    return x.detach().transpose(1, 2).contiguous()


class _Rows(NamedTuple):
    """§3–§5 row results, [N, T, C] in snippet order unless noted, seg_score's dtype, no gradient."""

    mask: Tensor  # 0/1: §3's clusters (or the given mask), refined by §4 when asked
    weight: Tensor  # §5 weight of each logit: w_k / max(Σ w·M, 1) in act where M = 1, 1 / max(Σ (1-M), 1) in bkg
    logits: Tensor  # [2, N, C]: act and bkg, the weighted sums of cas (when cas was given)


def _rows_cpu(seg: Tensor, cas: Tensor | None, mask: Tensor | None, refine: bool) -> _Rows:
    """model_cpu's kernel on [N, T, C] tensors; mask and weight come back stored [N, C, T], as the CPU net's cas."""
    seg = seg.detach().contiguous()
    cas_rows = None if cas is None else _rows(cas).to(seg.dtype).numpy()
    mask_rows = None if mask is None else _rows(mask).to(seg.dtype).numpy()
    out, logits = model_cpu.row_results(seg.numpy(), cas_rows, mask_rows, refine)
    mask_weight = torch.from_numpy(out).transpose(-1, -2)
    return _Rows(mask_weight[0], mask_weight[1], torch.from_numpy(logits))


@torch.no_grad()
def sort_rows(seg_score: Tensor) -> tuple[Tensor, Tensor]:
    """seg_score [N, T, C] → (values, indices) [N, C, T]: each (n, c) row sorted descending, stable."""
    return torch.sort(_rows(seg_score), dim=-1, descending=True, stable=True)


@functools.cache
def _cluster_kernel_triton():
    """Build the Triton scan kernel on first use (so TRITON_INTERPRET is read then, and triton stays optional)."""
    import triton
    import triton.language as tl

    @triton.jit
    def cluster_kernel(vals_ptr, out_ptr, T, IS_FP64: tl.constexpr):
        # One program per row of a contiguous [R, T] tensor; the loop over k is sequential (as in model_cpu).
        row = vals_ptr + tl.program_id(0).to(tl.int64) * T
        out = out_ptr + tl.program_id(0).to(tl.int64) * T
        dtype = vals_ptr.dtype.element_ty
        one = tl.full((), 1.0, dtype)
        tl.store(out, one)
        p = tl.load(row)
        w = one
        q = tl.load(row + T - 1)
        cnt = one
        k = T * 0 + 1  # a while loop, not range(): Triton's interpreter cannot use a runtime bound in range()
        while k < T - 1:
            v = tl.load(row + k)
            rank = tl.cast(k + 1, dtype)
            if IS_FP64:  # fp64 `/` is IEEE div.rn
                pc, nc, dp, dw = p / w, q / cnt, v / rank, one / rank
            else:  # fp32 `/` may lower to an approximate divide: ask for the IEEE-rounded one
                pc, nc = tl.div_rn(p, w), tl.div_rn(q, cnt)
                dp, dw = tl.div_rn(v, rank), tl.div_rn(one, rank)
            pos = tl.abs(v - pc) <= tl.abs(v - nc)
            p = tl.where(pos, p + dp, p)
            w = tl.where(pos, w + dw, w)
            q = tl.where(pos, q, q + v)
            cnt = tl.where(pos, cnt, cnt + one)
            tl.store(out + k, tl.where(pos, one, one - one))
            k += 1

    return cluster_kernel


def _cluster_scan_triton(vals: Tensor) -> Tensor:
    """Triton version of `model_cpu.cluster_scan`: vals [R, T] contiguous, rows sorted → mask [R, T]."""
    out = torch.zeros_like(vals)
    if out.numel():
        kernel = _cluster_kernel_triton()
        kernel[(vals.shape[0],)](vals, out, vals.shape[1], IS_FP64=vals.dtype == torch.float64, num_warps=1)
    return out


def _cluster_sorted(vals: Tensor) -> Tensor:
    """§3 scan: vals [..., T] rows sorted descending → 0/1 mask [..., T] in sorted order, vals' dtype."""
    if vals.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"seg_score must be float32 or float64, got {vals.dtype}")
    rows = vals.reshape(math.prod(vals.shape[:-1]), vals.shape[-1]).contiguous()  # not -1: T = 0 must work
    if rows.is_cuda:
        out = _cluster_scan_triton(rows)
    else:  # the CUDA path's torch ops, run on the CPU (tests)
        out = torch.from_numpy(model_cpu.cluster_scan(rows.numpy()))
    return out.view(vals.shape)


def _unsort(x: Tensor, idx: Tensor) -> Tensor:
    """Rows in sorted order [..., N, C, T] → original snippet order, as [..., N, T, C]."""
    return torch.zeros_like(x).scatter_(-1, idx.expand_as(x), x).transpose(-1, -2)


def _rank_weights(t: int, like: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    """w_k = 1/(k+2) for sorted position k = 0..T-1, on like's device."""
    return 1.0 / torch.arange(2, t + 2, dtype=dtype or like.dtype, device=like.device)


def _sequential_cumsum_(x: Tensor) -> Tensor:
    """In-place inclusive cumsum over the last axis, added strictly left to right on CPU and CUDA.

    On CUDA, PyTorch scans the innermost axis as a parallel tree but any other axis one column per thread, in
    order; a trailing axis of size 1 routes it to the in-order kernel, so sums equal a plain loop's bit for bit.
    """
    return x.unsqueeze(-1).cumsum_(-2).squeeze(-1)


def _threshold_sorted(vals: Tensor, m: Tensor, a: Tensor) -> Tensor:
    """§4 steps 2–3 on sorted rows: scores vals, 0/1 mask m, logits a, all [N, C, T] → threshold [N, C, 1].

    The logit statistics are float64 with in-order sums for both input dtypes, so the test m_j ≥ ref is decided
    as a float64 loop decides it (float32 would flip it on near-ties at 1e-7).
    """
    t = vals.shape[-1]
    sums = torch.empty((3, *m.shape), dtype=torch.float64, device=m.device)
    torch.mul(a, m, out=sums[2])  # logits of the positives, 0 elsewhere (exact: m is 0/1)
    w = _rank_weights(t, m, torch.float64)
    torch.mul(sums[2], w, out=sums[0])
    torch.mul(m, w, out=sums[1])
    _sequential_cumsum_(sums)
    ref = sums[0, ..., -1:] / sums[1, ..., -1:].clamp(min=1)  # Σ a·w·M / max(Σ w·M, 1), [N, C, 1]
    count = m.cumsum(-1)  # j of the positive at each position: exact small integers, non-decreasing
    means = sums[2].div_(count)  # running mean m_j where m = 1 (0/0 = NaN before the first positive: never ≥)
    big_j = (means >= ref).logical_and_(m > 0).sum(-1, keepdim=True)  # J: every j with m_j ≥ ref, not a prefix
    num_pos = count[..., -1:]  # P
    j_eff = torch.where(big_j >= 1, big_j.to(count.dtype), num_pos)  # quirk: J = 0 takes s_P, the smallest positive
    at = torch.searchsorted(count, j_eff).clamp(max=t - 1)  # sorted position of the J-th positive: count hits J
    return torch.where(num_pos > 0, vals.gather(-1, at), 0.0)  # no positives: threshold 0


def _rows_torch(seg: Tensor, cas: Tensor | None, mask: Tensor | None, refine: bool) -> _Rows:
    """`_rows_cpu` in torch ops on sorted rows, with the Triton §3 scan on CUDA (the CPU runs it in numba: tests)."""
    vals, idx = sort_rows(seg)  # [N, C, T]
    m = _cluster_sorted(vals) if mask is None else _rows(mask).to(vals.dtype).gather(-1, idx)
    a = (vals if cas is None else _rows(cas).to(vals.dtype)).gather(-1, idx)  # (vals: a placeholder, logits unused)
    if refine:
        m = m * (vals >= _threshold_sorted(vals, m, a))
    wm = _rank_weights(m.shape[-1], m) * m
    neg = 1 - m
    w_act, w_bkg = wm / wm.sum(-1, keepdim=True).clamp(min=1), neg / neg.sum(-1, keepdim=True).clamp(min=1)
    logits = torch.stack([(a * w_act).sum(-1), (a * w_bkg).sum(-1)])
    mask_weight = _unsort(torch.stack([m, w_act + w_bkg]), idx)  # w_act and w_bkg never overlap
    return _Rows(mask_weight[0], mask_weight[1], logits)


@torch.no_grad()
def _row_results(seg: Tensor, cas: Tensor | None = None, mask: Tensor | None = None, refine: bool = True) -> _Rows:
    """§3 (or the given mask), §4 if `refine`, §5's weights and logits, for (seg_score, cas, mask) [N, T, C]."""
    if seg.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"seg_score must be float32 or float64, got {seg.dtype}")
    if refine and cas is None:
        raise ValueError("§4 refining needs cas")
    if seg.is_cuda and _has_triton():
        return _rows_torch(seg, cas, mask, refine)
    if seg.is_cuda:  # no triton (e.g. Windows): run on the CPU; costs a device→host sync
        rows = _rows_cpu(seg.cpu(), *(None if x is None else x.cpu() for x in (cas, mask)), refine)
        return _Rows(*(x.to(seg.device) for x in rows))
    return _rows_cpu(seg, cas, mask, refine)


@functools.cache
def _has_triton() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


class _VideoLogits(torch.autograd.Function):
    """§5's act and bkg logits [N, C] as a function of cas [N, T, C], given the no-gradient row results: the values
    come with the rows (`_Rows.logits`); d act / d cas = weight where M = 1 and d bkg / d cas = weight where M = 0,
    so the forward pass adds no work and the backward pass is one pass over [N, T, C] (`_logits_grad`)."""

    @staticmethod
    def forward(ctx, cas: Tensor, rows_mask: Tensor, rows_weight: Tensor, logits: Tensor) -> tuple[Tensor, Tensor]:
        ctx.save_for_backward(rows_mask, rows_weight)
        return logits[0].to(cas.dtype, copy=True), logits[1].to(cas.dtype, copy=True)

    @staticmethod
    def backward(ctx, g_act: Tensor, g_bkg: Tensor) -> tuple[Tensor, None, None, None]:
        mask, weight = ctx.saved_tensors
        return _logits_grad(mask, weight, g_act, g_bkg), None, None, None


def _logits_grad(mask: Tensor, weight: Tensor, g_act: Tensor, g_bkg: Tensor) -> Tensor:
    """d loss / d cas [N, T, C] = weight · (g_act where mask = 1, g_bkg where 0); mask, weight [N, T, C], g_* [N, C]."""
    if mask.is_cuda:
        return _logits_grad_torch(mask, weight, g_act, g_bkg)
    # CPU: one numba pass over the [N, C, T]-stored mask and weight, 3x faster than the two torch ops
    m, w = mask.transpose(1, 2).contiguous().numpy(), weight.transpose(1, 2).contiguous().numpy()
    grad = model_cpu.logits_grad(m, w, g_act.contiguous().numpy(), g_bkg.contiguous().numpy())
    return torch.from_numpy(grad).transpose(1, 2)


def _logits_grad_torch(mask: Tensor, weight: Tensor, g_act: Tensor, g_bkg: Tensor) -> Tensor:
    """`_logits_grad` in torch ops (CUDA). lerp with weight 0 or 1 returns an end point exactly."""
    return torch.lerp(g_bkg.unsqueeze(1), g_act.unsqueeze(1), mask).mul_(weight)


def _video_scores(cas: Tensor, rows: _Rows) -> tuple[Tensor, Tensor]:
    """§5 from the row results: cas [N, T, C] (gradient flows to it) → (act_score, bkg_score) [N, C]."""
    act, bkg = _VideoLogits.apply(cas, rows.mask, rows.weight, rows.logits)
    return act.softmax(dim=-1), bkg.softmax(dim=-1)


def temporal_clustering(seg_score: Tensor) -> Tensor:
    """§3: seg_score [N, T, C] → mask [N, T, C] (1 = positive/action, 0 = negative), in seg_score's dtype.

    The sequential arithmetic runs in seg_score's dtype in the method's order (pc = P/W, nc = Q/K, P += v/(k+1),
    W += 1/(k+1), IEEE-rounded divisions), so float32 and float64 masks equal a plain loop in that dtype exactly.
    """
    return _row_results(seg_score, refine=False).mask


def refine_mask(seg_score: Tensor, mask: Tensor, cas: Tensor) -> Tensor:
    """§4: (seg_score, mask, cas) [N, T, C] → refined mask [N, T, C] = mask · [seg_score ≥ threshold[n, c]]."""
    return _row_results(seg_score, cas, mask).mask


def video_scores(seg_score: Tensor, mask: Tensor, cas: Tensor) -> tuple[Tensor, Tensor]:
    """§5: (seg_score, refined mask, cas) [N, T, C] → (act_score, bkg_score) [N, C]. Gradient flows through cas."""
    return _video_scores(cas, _row_results(seg_score, cas, mask, refine=False))


def clustered_scores(seg_score: Tensor, cas: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """§3–§5 in one pass over the rows, as the forward pass runs them: (seg_score, cas) [N, T, C] → (refined mask
    [N, T, C], act_score [N, C], bkg_score [N, C]). Same results as temporal_clustering → refine_mask → video_scores."""
    rows = _row_results(seg_score, cas)
    return (rows.mask, *_video_scores(cas, rows))


# --- §6 losses -----------------------------------------------------------------------------------------------------


def cls_loss(act_score: Tensor, bkg_score: Tensor, label: Tensor) -> Tensor:
    """§6 classification loss. act_score, bkg_score [N, C]; label [N, C] multi-hot (0/1) → scalar."""
    y = label.to(act_score.dtype)
    act = -(y * act_score.clamp(min=EPS).log()).sum(-1) / y.sum(-1).clamp(min=1)
    bkg = -(1 - bkg_score).clamp(min=EPS).log()
    return act.mean() + bkg.mean()


def gce_loss(aas: Tensor, seg_mask: Tensor, label: Tensor, q: float = GCE_Q) -> Tensor:
    """§6 generalised cross-entropy of one actionness stream against the refined mask → scalar.

    aas [N, T, 1] (as ACRNet returns it) or [N, T]; seg_mask [N, T, C] 0/1; label [N, C] multi-hot (0/1).
    """
    return _gce(aas, _pseudo_labels(seg_mask, label, aas.dtype), q)


def _pseudo_labels(seg_mask: Tensor, label: Tensor, dtype: torch.dtype) -> Tensor:
    """g[n, t] = min(Σ_c label[n, c]·mask[n, t, c], 1): snippet t is an action of one of the video's classes. [N, T]

    One batched [1, C] × [C, T] product per video: the model's masks are stored [N, C, T] (2x faster than the einsum
    over the [N, T, C] view at N128 T80 C200); the sums are small integers, exact in any order."""
    y = label.to(dtype).unsqueeze(1)  # [N, 1, C]
    return torch.bmm(y, seg_mask.detach().to(dtype).transpose(1, 2)).squeeze(1).clamp(max=1)


def _gce(aas: Tensor, g: Tensor, q: float) -> Tensor:
    if aas.dim() == 3:
        if aas.shape[-1] != 1:
            raise ValueError(f"aas must be [N, T, 1] or [N, T], got {list(aas.shape)}")
        aas = aas.squeeze(-1)
    pos = (g * (1 - aas.clamp(min=EPS) ** q) / q).sum(1) / g.sum(1).clamp(min=1)
    neg = ((1 - g) * (1 - (1 - aas).clamp(min=EPS) ** q) / q).sum(1) / (1 - g).sum(1).clamp(min=1)
    return pos.mean() + neg.mean()


def acrnet_loss(out: ACRNetOutput, label: Tensor, lamda: float = 0.1) -> tuple[Tensor, dict[str, Tensor]]:
    """§6 total: L_cls + lamda·(L_gce(aas_rgb) + L_gce(aas_flow)) → (total, detached parts for logging)."""
    cls = cls_loss(out.act_score, out.bkg_score, label)
    g = _pseudo_labels(out.seg_mask, label, out.aas_rgb.dtype)  # shared by both streams
    gce_rgb = _gce(out.aas_rgb, g, GCE_Q)
    gce_flow = _gce(out.aas_flow, g, GCE_Q)
    total = cls + lamda * (gce_rgb + gce_flow)
    return total, {"cls": cls.detach(), "gce_rgb": gce_rgb.detach(), "gce_flow": gce_flow.detach()}
