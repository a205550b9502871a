"""ACRNet §3–§5 on the CPU: the row results of model.py (`_Rows`) from one numba kernel, numpy in, numpy out.

Every (video n, class c) pair is a row of T snippets (flat row index n·C + c). The kernel (`_rows_numba`) takes
blocks of LANES rows: each row is sorted on its own, stably and descending (a value-bucket counting sort,
`_sort_block`; an LSD radix sort of the float bits for crowded rows, `_lsd_argsort`), then §3's scan, §4's threshold
and §5's weights and logits walk the sorted positions once for the whole block with its rows as SIMD lanes
(`_scan_block`, `_refine_block`, `_weights_block`), and the results go straight back to snippet order: no sort /
gather / scatter round trips through [N, T, C] tensors. Blocks are spread over torch.get_num_threads() threads in
chunks each thread takes when free (`_run_blocks`). Every comparison is decided as a plain loop in the method's order
decides it (§3 in the input dtype, §4's statistics in float64); docs/model.md has the details and measurements.

Entry points: `row_results` (§3–§5), `cluster_scan` (§3 on rows already sorted: the CUDA path's CPU fallback) and
`logits_grad` (§5's backward pass).
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import torch

_JIT = {"cache": True, "error_model": "numpy"}  # numpy's division (no zero-divisor branch), so the lane loops vectorise
LANES = 32  # rows per block of the CPU kernel: §3–§5's loops over sorted positions k run with the rows as SIMD lanes
CROWDED = 16  # a row with more values in one sort bucket takes the LSD radix sort
NB_PER_T = 2  # sort buckets per value (rounded up to a power of two)
LANE_COUNTS = 256  # up to this many buckets (T ≤ 128), a block's rows are counted together (`_sort_block`)


@numba.njit(**_JIT)
def _scan_block(
    v: np.ndarray, ranks: np.ndarray, inv_ranks: np.ndarray, m: np.ndarray, nl: int
) -> None:  # pragma: no cover
    """§3 steps 2–4 on the rows l < nl of a block: v [T, L], each column a row sorted descending; m [T, L] ← 0/1.
    ranks[k] = k+1 and inv_ranks[k] = 1/(k+1) in v's dtype, so every operation stays in that dtype, IEEE-rounded, in
    the method's order. Branch-free per row (both updates computed, one kept) so the loop over rows vectorises; the
    centres P/W and Q/K are recomputed every step, the values a loop recomputing them on change would hold."""
    t_len = v.shape[0]
    one = ranks[0]
    zero = one - one
    p, w = np.empty(nl, v.dtype), np.empty(nl, v.dtype)  # positive cluster: rank-weighted sum and weight
    q, cnt = np.empty(nl, v.dtype), np.empty(nl, v.dtype)  # negative cluster: plain sum and count
    for l in range(nl):
        p[l], w[l], q[l], cnt[l] = v[0, l], one, v[t_len - 1, l], one
        m[t_len - 1, l] = zero  # the lowest snippet stays negative (T = 1: the top one, set next, is positive)
        m[0, l] = one
    for k in range(1, t_len - 1):
        rk, ik = ranks[k], inv_ranks[k]
        for l in range(nl):
            x, pl, wl, ql, cl = v[k, l], p[l], w[l], q[l], cnt[l]  # (all loads unconditional, else no vectorising)
            pos = abs(x - pl / wl) <= abs(x - ql / cl)  # ties go positive
            p[l] = pl + x / rk if pos else pl  # a true division, as method §3 writes it (not v times 1/(k+1))
            w[l] = wl + ik if pos else wl
            q[l] = ql if pos else ql + x
            cnt[l] = cl if pos else cl + one
            m[k, l] = one if pos else zero


@numba.njit(**_JIT)
def _refine_block(v: np.ndarray, a: np.ndarray, w: np.ndarray, m: np.ndarray, nl: int) -> None:  # pragma: no cover
    """§4 on the rows l < nl of a block, in place: v [T, L] scores sorted descending down each column, a [T, L] logits
    and m [T, L] 0/1 mask in that order; w [T] = 1/(k+2) in float64. ref and the running means m_j are float64, summed
    in sorted order (the decisions of a plain float64 loop); branch-free per row like `_scan_block`."""
    t_len = v.shape[0]
    num, den = np.zeros(nl), np.zeros(nl)
    for k in range(t_len):
        wk = w[k]
        for l in range(nl):
            pos, x, nu, de = m[k, l] > 0, np.float64(a[k, l]), num[l], den[l]
            num[l] = nu + x * wk if pos else nu
            den[l] = de + wk if pos else de
    ref = num
    for l in range(nl):
        ref[l] = num[l] / max(den[l], 1.0)  # Σ a·w·M / max(Σ w·M, 1)
    total, j, big_j = np.zeros(nl), np.zeros(nl), np.zeros(nl)
    for k in range(t_len):
        for l in range(nl):
            pos, x, tl, jl, bl = m[k, l] > 0, np.float64(a[k, l]), total[l], j[l], big_j[l]
            t2, j2 = tl + x, jl + 1.0
            total[l] = t2 if pos else tl
            j[l] = j2 if pos else jl
            big_j[l] = bl + 1.0 if pos & (t2 / j2 >= ref[l]) else bl  # J counts every j with m_j ≥ ref, not a prefix
    for l in range(nl):  # the J-th positive's score s_J; quirk: J = 0 takes s_P, the smallest positive score
        big_j[l] = big_j[l] if big_j[l] > 0 else j[l]
        j[l] = 0.0
    threshold = np.zeros(nl, v.dtype)  # (no positives: 0, and nothing to refine)
    for k in range(t_len):
        for l in range(nl):
            pos, x, jl, th = m[k, l] > 0, v[k, l], j[l], threshold[l]
            j2 = jl + 1.0 if pos else jl
            j[l] = j2
            threshold[l] = x if pos & (j2 == big_j[l]) else th
    for k in range(t_len):
        for l in range(nl):
            mk = m[k, l]
            m[k, l] = mk if v[k, l] >= threshold[l] else mk - mk


@numba.njit(**_JIT)
def _weights_block(
    a: np.ndarray, w: np.ndarray, m: np.ndarray, weight: np.ndarray, act: np.ndarray, bkg: np.ndarray, nl: int
) -> None:  # pragma: no cover (jit)
    """§5 on the rows l < nl of a block: a [T, L] logits and m [T, L] 0/1 mask in sorted order, w [T] = 1/(k+2) in
    float64 → weight [T, L] (w_k / max(Σ w·M, 1) where M = 1, 1 / max(Σ (1 - M), 1) where M = 0), act and bkg [L]
    (Σ a·weight over M = 1 and over M = 0; float64, summed in sorted order)."""
    t_len = a.shape[0]
    pos_w, neg_n = np.zeros(nl), np.zeros(nl)
    for k in range(t_len):
        wk = w[k]
        for l in range(nl):
            pos, pw, nn = m[k, l] > 0, pos_w[l], neg_n[l]
            pos_w[l] = pw + wk if pos else pw
            neg_n[l] = nn if pos else nn + 1.0
    for l in range(nl):
        pos_w[l], neg_n[l] = 1.0 / max(pos_w[l], 1.0), 1.0 / max(neg_n[l], 1.0)
        act[l] = bkg[l] = 0.0
    for k in range(t_len):
        wk = w[k]
        for l in range(nl):
            pos, x, pw, nn, al, bl = m[k, l] > 0, np.float64(a[k, l]), pos_w[l], neg_n[l], act[l], bkg[l]
            wx = wk * pw if pos else nn
            act[l] = al + x * wx if pos else al
            bkg[l] = bl if pos else bl + x * wx
            weight[k, l] = wx


@numba.njit(**_JIT)
def _desc_keys(bits: np.ndarray, sign: np.uint64, full: np.uint64, keys: np.ndarray) -> None:  # pragma: no cover
    """Float bit patterns [T] → uint64 keys [T] whose ascending order is the floats' descending order."""
    for t in range(len(bits)):
        b = np.uint64(bits[t])
        if b == sign:  # -0.0 sorts as +0.0 (they compare equal)
            b = np.uint64(0)
        ascending = b ^ sign if b < sign else b ^ full  # unsigned order of these = the floats' order
        keys[t] = full - ascending


@numba.njit(**_JIT)
def _lsd_argsort(
    row: np.ndarray, order: np.ndarray, keys: np.ndarray, idx: np.ndarray, count: np.ndarray
) -> None:  # pragma: no cover
    """order ← positions of row [T] (contiguous, float32 or float64) sorted descending, stable: an LSD radix sort of
    the float bits as unsigned keys, 8 bits a pass, skipping the bytes in which no two keys differ. keys [2, T] uint64,
    idx [2, T] int64 and count [≥ 256] int64 are scratch (ping-pong rows)."""
    n = len(row)
    sign = np.uint64(1) << np.uint64(8 * row.itemsize - 1)
    full = sign | (sign - np.uint64(1))
    if row.itemsize == 4:  # (the other branch is dead code in each dtype's compilation)
        _desc_keys(row.view(np.uint32), sign, full, keys[0])
    else:
        _desc_keys(row.view(np.uint64), sign, full, keys[0])
    k_or, k_and = np.uint64(0), full
    for t in range(n):
        k_or, k_and = k_or | keys[0, t], k_and & keys[0, t]
        idx[0, t] = t
    diff = k_or ^ k_and  # the bits in which some keys differ
    src = 0
    for shift in range(0, 64, 8):
        s = np.uint64(shift)
        if (diff >> s) & np.uint64(255) == 0:
            continue
        count[:256] = 0
        for t in range(n):
            count[(keys[src, t] >> s) & np.uint64(255)] += 1
        total = 0
        for d in range(256):
            total, count[d] = total + count[d], total
        for t in range(n):
            d = (keys[src, t] >> s) & np.uint64(255)
            keys[1 - src, count[d]] = keys[src, t]
            idx[1 - src, count[d]] = idx[src, t]
            count[d] += 1
        src = 1 - src
    for t in range(n):
        order[t] = idx[src, t]


@numba.njit(**_JIT)
def _bucket_digits(u: np.ndarray, nl: int, dig: np.ndarray) -> int:  # pragma: no cover (jit)
    """dig[t, l] ← the sort bucket of u[t, l] within its row, for the rows (columns) l < nl of u [T, L]: nb equal-width
    buckets over the row's range, highest values in bucket 0, nb = `_n_buckets(T)`. Returns nb.

    Monotone (a larger value never gets a higher bucket, equal values share one; every step rounds monotonically), so
    sorting inside buckets sorts the row. ±inf and huge or tiny ranges collapse the buckets into one or two (0·inf and
    inf − inf give NaN, sent to bucket 0), which stays monotone; such rows end up in the LSD radix sort as crowded."""
    t_len = u.shape[0]
    nb = _n_buckets(t_len)
    hi, lo = np.empty(nl, u.dtype), np.empty(nl, u.dtype)
    for l in range(nl):
        hi[l], lo[l] = u[0, l], u[0, l]
    for t in range(1, t_len):
        for l in range(nl):
            x, h, o = u[t, l], hi[l], lo[l]
            hi[l] = x if x > h else h
            lo[l] = x if x < o else o
    scale = np.empty(nl)
    for l in range(nl):
        span = np.float64(hi[l]) - np.float64(lo[l])
        scale[l] = nb / span if span > 0 else 0.0
    top = nb - 1.0
    for t in range(t_len):
        for l in range(nl):
            y = (np.float64(hi[l]) - np.float64(u[t, l])) * scale[l]
            y = y if y >= 0.0 else 0.0  # (NaN → 0)
            dig[t, l] = np.int32(y if y < top else top)
    return nb


@numba.njit(**_JIT)
def _n_buckets(t_len: int) -> int:  # pragma: no cover (jit)
    """Sort buckets for a row of T values: the power of two ≥ NB_PER_T·T, at least 16."""
    nb = 16
    while nb < NB_PER_T * t_len:
        nb *= 2
    return nb


@numba.njit(**_JIT)
def _sort_block(u: np.ndarray, nl: int, order: np.ndarray, v: np.ndarray, scratch: tuple) -> None:  # pragma: no cover
    """The rows (columns) l < nl of u [T, L]: order[l] [T] ← the positions of u[:, l] sorted by value descending, stable
    (equal values keep their temporal order; -0.0 ties +0.0), v[:, l] ← the sorted values.

    A counting sort of each row on its buckets (`_bucket_digits`), then an insertion sort inside buckets; a row with
    a bucket of more than CROWDED values takes `_lsd_argsort` instead. Short rows (≤ LANE_COUNTS buckets) are counted
    interleaved, in one [buckets, L] table (lane-inner loops: the prefix sums vectorise); longer rows one at a time,
    as a [buckets, L] table would no longer fit in cache. scratch = `_sort_scratch(T, u)`."""
    dig, count, sv, keys, idx, row = scratch
    t_len = u.shape[0]
    nb = _bucket_digits(u, nl, dig)
    most = np.zeros(nl, np.int32)  # each row's fullest bucket
    if nb <= LANE_COUNTS:
        cnt = count[: nb * LANES].reshape(nb, LANES)
        for d in range(nb):
            for l in range(nl):
                cnt[d, l] = 0
        for t in range(t_len):
            for l in range(nl):
                cnt[dig[t, l], l] += 1
        total = np.zeros(nl, np.int32)
        for d in range(nb):  # bucket starts
            for l in range(nl):
                c, tl, mx = cnt[d, l], total[l], most[l]
                cnt[d, l] = tl
                total[l] = tl + c
                most[l] = c if c > mx else mx
        for t in range(t_len):  # bucket by bucket, in temporal order inside each
            for l in range(nl):
                d = dig[t, l]
                p = cnt[d, l]
                cnt[d, l] = p + 1
                sv[l, p], order[l, p] = u[t, l], t
    else:
        cnt = count[:nb]
        for l in range(nl):
            for d in range(nb):
                cnt[d] = 0
            for t in range(t_len):
                cnt[dig[t, l]] += 1
            total, mx = 0, 0
            for d in range(nb):
                c = cnt[d]
                cnt[d] = total
                total += c
                mx = max(mx, c)
            most[l] = mx
            s, o = sv[l], order[l]
            for t in range(t_len):
                d = dig[t, l]
                p = cnt[d]
                cnt[d] = p + 1
                s[p], o[p] = u[t, l], t
    for l in range(nl):
        s, o = sv[l], order[l]
        if most[l] > CROWDED:
            for t in range(t_len):
                row[t] = u[t, l]
            _lsd_argsort(row, o, keys, idx, count)
            for k in range(t_len):
                s[k] = row[o[k]]
        else:  # moves stay inside a bucket (an earlier bucket's values are ≥); equal values never pass each other
            for t in range(1, t_len):
                x = s[t]
                if s[t - 1] < x:
                    i, j = o[t], t
                    while j > 0 and s[j - 1] < x:
                        s[j], o[j] = s[j - 1], o[j - 1]
                        j -= 1
                    s[j], o[j] = x, i
        for k in range(t_len):
            v[k, l] = s[k]


@numba.njit(**_JIT)
def _sort_scratch(t_len: int, like: np.ndarray) -> tuple:  # pragma: no cover (jit)
    """The scratch of `_sort_block` for blocks of [T, LANES] values of like's dtype."""
    nb = _n_buckets(t_len)
    return (
        np.empty((t_len, LANES), np.int32),  # bucket of each value
        np.empty(max(256, nb * LANES if nb <= LANE_COUNTS else nb), np.int32),  # bucket counts; the LSD sort's too
        np.empty((LANES, t_len), like.dtype),  # sorted values, one row per lane
        np.empty((2, t_len), np.uint64),  # LSD sort: keys
        np.empty((2, t_len), np.int64),  # LSD sort: positions
        np.empty(t_len, like.dtype),  # LSD sort: the row
    )


@numba.njit(nogil=True, **_JIT)
def _rows_numba(
    seg: np.ndarray,
    cas: np.ndarray,
    mask: np.ndarray,
    refine: bool,
    out: np.ndarray,
    logits: np.ndarray,
    first: int,
    end: int,
) -> None:  # pragma: no cover (jit)
    """§3–§5 for the (video n, class c) rows in blocks first..end-1 of LANES rows (flat row index n·C + c), on the CPU.
    seg [N, T, C]; cas [N, C, T]; mask [N, C, T], or empty ([0, 0, 0]) to cluster (§3). Fills those rows of
    out [2, N, C, T] with the mask (§3's, or `mask`; refined by §4 if `refine`) and each snippet's §5 weight
    (w_k / max(Σ w·M, 1) where M = 1, 1 / max(Σ (1 - M), 1) where M = 0), and of logits [2, N, C] with §5's act and bkg
    (Σ of cas · weight, split by M).

    Each row of a block is sorted on its own (`_sort_block`), then the sequential loops of §3, §4 and §5 walk the
    sorted positions k once for the whole block, its rows as SIMD lanes ([T, LANES] arrays, one row per column), and
    the results go back to snippet order row by row. Releases the GIL: threads run disjoint blocks (`_run_blocks`)."""
    n_vid, t_len, n_cls = seg.shape
    n_rows, cluster = n_vid * n_cls, mask.size == 0
    ranks = np.arange(1, t_len + 1).astype(seg.dtype)  # k+1 in seg's dtype (§3 runs in it)
    inv_ranks = ranks[0] / ranks  # 1/(k+1), IEEE-rounded in seg's dtype
    w = 1.0 / np.arange(2, t_len + 2)  # 1/(k+2), float64
    block = np.empty((5, t_len, LANES), seg.dtype)
    u, v, a, m, weight = block[0], block[1], block[2], block[3], block[4]  # as read; sorted: scores, logits, mask
    order = np.empty((LANES, t_len), np.int64)
    act, bkg = np.empty(LANES), np.empty(LANES)
    scratch = _sort_scratch(t_len, seg)
    for r0 in range(first * LANES, min(end * LANES, n_rows), LANES):
        nl = min(LANES, n_rows - r0)
        l = 0
        while l < nl:  # the block's rows as columns, a run of consecutive classes of one video at a time
            n, c = divmod(r0 + l, n_cls)
            run = min(nl - l, n_cls - c)
            for t in range(t_len):  # (loops, not a slice assignment: the same code, a third of the compile time)
                for j in range(run):
                    u[t, l + j] = seg[n, t, c + j]
            l += run
        _sort_block(u, nl, order, v, scratch)
        for l in range(nl):
            n, c = divmod(r0 + l, n_cls)
            o, a_row = order[l], cas[n, c]
            for k in range(t_len):
                a[k, l] = a_row[o[k]]
            if not cluster:
                m_row = mask[n, c]
                for k in range(t_len):
                    m[k, l] = m_row[o[k]]
        if cluster:
            _scan_block(v, ranks, inv_ranks, m, nl)
        if refine:
            _refine_block(v, a, w, m, nl)
        _weights_block(a, w, m, weight, act, bkg, nl)
        for l in range(nl):  # back to snippet order
            n, c = divmod(r0 + l, n_cls)
            o, m_out, w_out = order[l], out[0, n, c], out[1, n, c]
            for k in range(t_len):
                m_out[o[k]], w_out[o[k]] = m[k, l], weight[k, l]
            logits[0, n, c], logits[1, n, c] = act[l], bkg[l]


CHUNK_VALUES = 1 << 16  # row values (T per row) in one piece of work handed to a thread by `_run_blocks` (~1 ms)


def _run_blocks(kernel: Callable[[int, int], None], n_blocks: int, per_chunk: int) -> None:
    """kernel(first, end) over blocks 0..n_blocks-1, per_chunk blocks at a time, on torch.get_num_threads() threads
    (this one and pool threads). Each thread takes the next chunk when done with its last, so a thread that loses its
    core (to another process, or to an idle OpenMP thread of PyTorch's spinning after a parallel op) just does fewer
    chunks: two threads are never much slower than one, which equal static halves would be."""
    chunks = range(0, n_blocks, per_chunk)
    threads = min(torch.get_num_threads(), len(chunks))
    if threads <= 1:
        kernel(0, n_blocks)
        return
    lock, todo = threading.Lock(), iter(chunks)

    def work() -> None:
        while True:
            with lock:
                first = next(todo, None)
            if first is None:
                return
            kernel(first, min(first + per_chunk, n_blocks))

    helpers = [_thread_pool(os.getpid()).submit(work) for _ in range(threads - 1)]
    work()
    for h in helpers:
        h.result()


@functools.cache
def _thread_pool(pid: int) -> ThreadPoolExecutor:
    """This process's pool for `_run_blocks` (a forked child, e.g. a DataLoader worker, gets its own: pid)."""
    return ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="acrnet-rows")


@numba.njit(**_JIT)
def _cluster_scan_numba(vals: np.ndarray, ranks: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover (jit)
    """`_scan_block` over the rows of vals [R, T] (sorted descending) into out [R, T], LANES rows at a time."""
    inv_ranks = ranks[0] / ranks
    v, m = np.empty((vals.shape[1], LANES), vals.dtype), np.empty((vals.shape[1], LANES), vals.dtype)
    for r0 in range(0, vals.shape[0], LANES):
        nl = min(LANES, vals.shape[0] - r0)
        for k in range(vals.shape[1]):
            for l in range(nl):
                v[k, l] = vals[r0 + l, k]
        _scan_block(v, ranks, inv_ranks, m, nl)
        for l in range(nl):
            for k in range(vals.shape[1]):
                out[r0 + l, k] = m[k, l]


@numba.njit(**_JIT)
def _logits_grad_numba(
    mask: np.ndarray, weight: np.ndarray, g_act: np.ndarray, g_bkg: np.ndarray, out: np.ndarray
) -> None:  # pragma: no cover (jit)
    """out[n, c, t] = weight · (g_act[n, c] where mask > 0, else g_bkg[n, c]). mask, weight, out [N, C, T]."""
    for n in range(mask.shape[0]):
        for c in range(mask.shape[1]):
            m, w, o, ga, gb = mask[n, c], weight[n, c], out[n, c], g_act[n, c], g_bkg[n, c]
            for t in range(len(o)):  # (row views, branch-free: vectorises)
                o[t] = w[t] * (ga if m[t] > 0 else gb)


def row_results(
    seg: np.ndarray, cas: np.ndarray | None, mask: np.ndarray | None, refine: bool
) -> tuple[np.ndarray, np.ndarray]:
    """§3–§5 for every row. seg [N, T, C] contiguous; cas and mask as rows [N, C, T] in seg's dtype, or None (no
    logits; cluster by §3) → (out [2, N, C, T]: the mask, refined by §4 if `refine`, and each snippet's §5 weight;
    logits [2, N, C]: §5's act and bkg, zeros when cas is None)."""
    n, t, c = seg.shape
    out = np.empty((2, n, c, t), dtype=seg.dtype)
    logits = np.zeros((2, n, c), dtype=seg.dtype)  # (T = 0: empty sums)
    if out.size:
        kernel = functools.partial(
            _rows_numba,
            seg,
            out[1] if cas is None else cas,  # (out[1]: a placeholder, logits unused)
            np.empty((0, 0, 0), seg.dtype) if mask is None else mask,  # (empty: cluster)
            refine,
            out,
            logits,
        )
        _run_blocks(kernel, -(-n * c // LANES), max(1, CHUNK_VALUES // (LANES * t)))
    return out, logits


def cluster_scan(rows: np.ndarray) -> np.ndarray:
    """§3's scan: rows [R, T] contiguous, each sorted descending → 0/1 mask [R, T] in sorted order, rows' dtype."""
    out = np.zeros_like(rows)
    if out.size:
        _cluster_scan_numba(rows, np.arange(1, rows.shape[1] + 1, dtype=rows.dtype), out)
    return out


def logits_grad(mask: np.ndarray, weight: np.ndarray, g_act: np.ndarray, g_bkg: np.ndarray) -> np.ndarray:
    """§5's backward: mask, weight [N, C, T] contiguous; g_act, g_bkg [N, C] → d loss / d cas [N, C, T] = weight ·
    (g_act where mask = 1, g_bkg where 0). One thread: memory-bound, and a second thread here competed with PyTorch's
    own (the torch part of the step got slower)."""
    out = np.empty(mask.shape, dtype=np.result_type(weight.dtype, g_act.dtype))
    _logits_grad_numba(mask, weight, g_act, g_bkg, out)
    return out
