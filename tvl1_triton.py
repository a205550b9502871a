"""The Triton backend of `tvl1.tvl1` (CUDA): the same arithmetic as the numba and torch backends, in 4 fused kernels.

`tvl1.py` imports this module only when the Triton backend is chosen (CUDA tensors and triton importable, or
`backend="triton"`), so CPU users never import triton. § numbers are those of docs/tvl1.md.

Kernels (one program per BLOCK pixels of one pair's [H, W] image, flattened row-major; grid (tiles, B)):
  `_resize_kernel` ... §3 corner-origin bilinear resize, 4 taps in order, optionally × f32(1/scaleStep) = 1.25 (§4.1);
                       one launch per pyramid level for all 2B frames, one per level for the 2B flow components.
  `_warp_kernel` ..... §4.2 warpBackward fused with §4.1's centred I1 gradient (computed at each tap from I1, so no
                       gradient arrays exist): 16 Keys a = -0.5 taps with clamped reads, × 1/Σw, then I1wx, I1wy, rho_c.
                       Its first program of each pair also resets that pair's §4.4 schedule for the new warp.
  `_estimate_u_kernel` §4.3 estimateU with the divergence border cases, u in place; at checked iterations one float64
                       partial sum of the squared u change per program (grad = I1wx² + I1wy² is recomputed, the same
                       float32 operations the warp kernel used, so it is not stored).
  `_dual_kernel` ..... §4.3 estimateDualVariables (f32 of the float64 hypot, real divisions), p in place; its first
                       program of each pair then runs §4.4 for that pair on the device: the float64 partials summed in
                       a fixed order, prevError updated (float64, repeated -= scaledEps), the next iteration's flag.

An inner iteration is two launches (estimateU, then the dual update; both Jacobi passes update in place, which is
exact because each reads the other's output only at neighbouring pixels). Per pair the device keeps a flag per
iteration parity (0 stopped, 1 run, 2 run and check), the iteration count and prevError: a kernel reads the flag of
its iteration's parity and the schedule writes the other one, so no program reads what another of the same launch
writes. Stopped pairs' programs return at once, so launches after every pair has stopped change nothing; the host
learns "all stopped" from a non-blocking device→host copy queued every `check_every` iterations and read one
check later, so it never waits for the GPU to drain.

Exactness: launched with `enable_fp_fusion=False` (no FMA contraction: ptxas --fmad=false), real divisions by
`tl.div_rn` (Triton's `/` on float32 is approximate), hypot as f32(sqrt of the float64 a² + b²) like the other
backends (float64 sqrt is IEEE-rounded on NVIDIA GPUs). Every float32 expression keeps the kernels' operation order,
so the flow equals the numba backend's bit for bit wherever the float64 error sums decide the same stopping iteration
(here summed per BLOCK, then over blocks, in a fixed tree order; numba sums row-major). Verified in Triton's
interpreter on CPU (tests/test_tvl1_triton.py); on a GPU by the CUDA-only test there.
"""

from __future__ import annotations

import numpy as np
import torch
import triton
import triton.language as tl

import tvl1

BLOCK = 1024  # pixels per program of the per-iteration kernels (8 per thread at 4 warps)
WARP_BLOCK = 256  # pixels per program of the warp kernel (16 taps × 5 gathers each)
CHECK_EVERY = 8  # inner iterations between "all pairs stopped?" polls
# exact float32: no a·b + c → fma contraction (ptxas --fmad=false, PTX mul.rn/add.rn), and libdevice without
# flush-to-zero (tl.floor would otherwise be cvt.rmi.ftz: floor(-denormal) = -0 instead of -1)
LAUNCH = {"enable_fp_fusion": False, "enable_reflect_ftz": False}


# --- kernels ---------------------------------------------------------------------------------------------------------


@triton.jit
def _pixels(tile, hw, width, block: tl.constexpr):
    """Flattened pixel indices of this program, their mask and (row, column)."""
    offs = tile * block + tl.arange(0, block)
    y = offs // width
    return offs, offs < hw, y, offs - y * width


@triton.jit
def _resize_kernel(src, dst, yi1, yi2, ya0, ya1, xi1, xi2, xa0, xa1, h, w, height, width, factor,
                   SCALE: tl.constexpr, block: tl.constexpr):  # fmt: skip
    """§3: src [N, h, w] → dst [N, height, width] with `tvl1.resize_coeffs` per axis; × factor after if SCALE."""
    n = tl.program_id(1).to(tl.int64)
    offs, m, y, x = _pixels(tl.program_id(0), height * width, width, block)
    r1, r2 = tl.load(yi1 + y, mask=m, other=0), tl.load(yi2 + y, mask=m, other=0)
    wy0, wy1 = tl.load(ya0 + y, mask=m, other=0.0), tl.load(ya1 + y, mask=m, other=0.0)
    c1, c2 = tl.load(xi1 + x, mask=m, other=0), tl.load(xi2 + x, mask=m, other=0)
    wx0, wx1 = tl.load(xa0 + x, mask=m, other=0.0), tl.load(xa1 + x, mask=m, other=0.0)
    s = src + n * h * w
    acc = tl.load(s + r1 * w + c1, mask=m, other=0.0) * (wx0 * wy0)
    acc = acc + tl.load(s + r1 * w + c2, mask=m, other=0.0) * (wx1 * wy0)
    acc = acc + tl.load(s + r2 * w + c1, mask=m, other=0.0) * (wx0 * wy1)
    acc = acc + tl.load(s + r2 * w + c2, mask=m, other=0.0) * (wx1 * wy1)
    if SCALE:
        acc = acc * factor
    tl.store(dst + n * height * width + offs, acc, mask=m)


@triton.jit
def _cubic(t):
    """Keys cubic, a = -0.5 (§4.2, K:89-104), float32."""
    t = tl.abs(t)
    inner = t * t * (1.5 * t - 2.5) + 1.0
    outer = t * (t * (-0.5 * t + 2.5) - 4.0) + 2.0
    return tl.where(t <= 1.0, inner, tl.where(t < 2.0, outer, 0.0))


@triton.jit
def _warp_kernel(img0, img1, u, data, prev_err, count, flags, height, width, first_flag, block: tl.constexpr):
    """§4.2 for pair b: img0, img1 [B, H, W], u [B, 2, H, W] → data [B, 3, H, W] = (I1wx, I1wy, rho_c).

    Taps floor(w) - 1 … floor(w) + 2 per axis (docs/tvl1.md's range ± taps of weight 0), reads clamped, accumulated
    row-major; the I1 gradient at a tap is §4.1's 0.5·(right - left), 0.5·(below - above) with clamped neighbours.
    """
    tile = tl.program_id(0)
    b = tl.program_id(1).to(tl.int64)
    hw = height * width
    offs, m, y, x = _pixels(tile, hw, width, block)
    u1 = tl.load(u + 2 * b * hw + offs, mask=m, other=0.0)
    u2 = tl.load(u + (2 * b + 1) * hw + offs, mask=m, other=0.0)
    wx = x.to(tl.float32) + u1
    wy = y.to(tl.float32) + u2
    fx = tl.floor(wx)
    fy = tl.floor(wy)
    i1 = img1 + b * hw
    s = tl.zeros([block], tl.float32)
    sx = tl.zeros([block], tl.float32)
    sy = tl.zeros([block], tl.float32)
    ws = tl.zeros([block], tl.float32)
    for j in tl.static_range(4):
        cy = fy + (j - 1)  # an integer-valued float: exact
        ky = _cubic(wy - cy)
        r = tl.minimum(tl.maximum(cy, 0.0), height - 1).to(tl.int32)  # the texture's clamp, then an exact cast
        row, below, above = (
            i1 + r * width,
            i1 + tl.minimum(r + 1, height - 1) * width,
            i1 + tl.maximum(r - 1, 0) * width,
        )
        for i in tl.static_range(4):
            cx = fx + (i - 1)
            wt = _cubic(wx - cx) * ky
            c = tl.minimum(tl.maximum(cx, 0.0), width - 1).to(tl.int32)
            v = tl.load(row + c)
            gx = 0.5 * (tl.load(row + tl.minimum(c + 1, width - 1)) - tl.load(row + tl.maximum(c - 1, 0)))
            gy = 0.5 * (tl.load(below + c) - tl.load(above + c))
            s = s + wt * v
            sx = sx + wt * gx
            sy = sy + wt * gy
            ws = ws + wt
    coeff = tl.div_rn(1.0, ws)
    vw, vx, vy = s * coeff, sx * coeff, sy * coeff
    i0 = tl.load(img0 + b * hw + offs, mask=m, other=0.0)
    out = data + 3 * b * hw + offs
    tl.store(out, vx, mask=m)
    tl.store(out + hw, vy, mask=m)
    tl.store(out + 2 * hw, vw - vx * u1 - vy * u2 - i0, mask=m)
    if tile == 0:  # §4.4: error = DBL_MAX, prevError = 0, n = 0 at every warp; flag of iteration 0
        tl.store(prev_err + b, 0.0)
        tl.store(count + b, 0)
        tl.store(flags + 2 * b, first_flag)


@triton.jit
def _divergence(p1, p2, p1_left, p2_above, x):
    """§4.3 divergence (K:187-207) with the border cases' association order; the neighbours are 0 off the image."""
    return tl.where(x == 0, (p1 + p2) - p2_above, (p1 - p1_left) + (p2 - p2_above))


@triton.jit
def _estimate_u_kernel(u, p, data, partials, flags, parity, height, width, l_t, theta, n_part: tl.constexpr,
                       block: tl.constexpr):  # fmt: skip
    """§4.3 estimateU of pair b if its flag runs: u [B, 2, H, W] in place from p [B, 4, H, W] (p11, p12, p21, p22) and
    data; flag 2 also writes this program's float64 Σ err to partials [B, n_part]."""
    tile = tl.program_id(0)
    b = tl.program_id(1).to(tl.int64)
    flag = tl.load(flags + 2 * b + parity)
    if flag != 0:
        hw = height * width
        offs, m, y, x = _pixels(tile, hw, width, block)
        left, up = m & (x > 0), m & (y > 0)
        pb = p + 4 * b * hw + offs
        p11, p12 = tl.load(pb, mask=m, other=0.0), tl.load(pb + hw, mask=m, other=0.0)
        p21, p22 = tl.load(pb + 2 * hw, mask=m, other=0.0), tl.load(pb + 3 * hw, mask=m, other=0.0)
        p11l, p21l = tl.load(pb - 1, mask=left, other=0.0), tl.load(pb + 2 * hw - 1, mask=left, other=0.0)
        p12u, p22u = tl.load(pb + hw - width, mask=up, other=0.0), tl.load(pb + 3 * hw - width, mask=up, other=0.0)
        div1 = _divergence(p11, p12, p11l, p12u, x)
        div2 = _divergence(p21, p22, p21l, p22u, x)
        db = data + 3 * b * hw + offs
        a, c, rho_c = (
            tl.load(db, mask=m, other=0.0),
            tl.load(db + hw, mask=m, other=0.0),
            tl.load(db + 2 * hw, mask=m, other=0.0),
        )
        grad = a * a + c * c  # as the warp kernel computed it
        ub = u + 2 * b * hw + offs
        u1o, u2o = tl.load(ub, mask=m, other=0.0), tl.load(ub + hw, mask=m, other=0.0)
        rho = rho_c + (a * u1o + c * u2o)
        nl_t = -l_t
        c1 = rho < nl_t * grad
        c2 = rho > l_t * grad
        c3 = grad > 1.1920928955078125e-07  # FLT_EPSILON
        fi = tl.div_rn(-rho, tl.where(c3, grad, 1.0))  # used only where c3
        d1 = tl.where(c1, l_t * a, tl.where(c2, nl_t * a, tl.where(c3, fi * a, 0.0)))
        d2 = tl.where(c1, l_t * c, tl.where(c2, nl_t * c, tl.where(c3, fi * c, 0.0)))
        u1n = (u1o + d1) + theta * div1
        u2n = (u2o + d2) + theta * div2
        tl.store(ub, u1n, mask=m)
        tl.store(ub + hw, u2n, mask=m)
        if flag == 2:
            err = (u1o - u1n) * (u1o - u1n) + (u2o - u2n) * (u2o - u2n)
            tl.store(partials + b * n_part + tile, tl.sum(tl.where(m, err.to(tl.float64), 0.0)))


@triton.jit
def _hypot32(a, b):
    """f32 of the float64 hypot, as the numba and torch backends (glibc's hypotf)."""
    a64, b64 = a.to(tl.float64), b.to(tl.float64)
    return tl.sqrt(a64 * a64 + b64 * b64).to(tl.float32)


@triton.jit
def _dual_kernel(u, p, partials, prev_err, count, flags, scaled_eps, parity, height, width, taut, iterations, n_tiles,
                 above_max, eps_pos, n_part: tl.constexpr, block: tl.constexpr):  # fmt: skip
    """§4.3 estimateDualVariables of pair b if its flag runs (p in place from the new u), then (first program) §4.4."""
    tile = tl.program_id(0)
    b = tl.program_id(1).to(tl.int64)
    flag = tl.load(flags + 2 * b + parity)
    if flag != 0:
        hw = height * width
        offs, m, y, x = _pixels(tile, hw, width, block)
        right = offs + tl.where(x < width - 1, 1, 0)  # the last column/row differences itself: 0
        below = offs + tl.where(y < height - 1, width, 0)
        ub = u + 2 * b * hw
        u1, u2 = tl.load(ub + offs, mask=m, other=0.0), tl.load(ub + hw + offs, mask=m, other=0.0)
        u1x = tl.load(ub + right, mask=m, other=0.0) - u1
        u1y = tl.load(ub + below, mask=m, other=0.0) - u1
        u2x = tl.load(ub + hw + right, mask=m, other=0.0) - u2
        u2y = tl.load(ub + hw + below, mask=m, other=0.0) - u2
        ng1 = 1.0 + taut * _hypot32(u1x, u1y)
        ng2 = 1.0 + taut * _hypot32(u2x, u2y)
        pb = p + 4 * b * hw + offs
        tl.store(pb, tl.div_rn(tl.load(pb, mask=m, other=0.0) + taut * u1x, ng1), mask=m)
        tl.store(pb + hw, tl.div_rn(tl.load(pb + hw, mask=m, other=0.0) + taut * u1y, ng1), mask=m)
        tl.store(pb + 2 * hw, tl.div_rn(tl.load(pb + 2 * hw, mask=m, other=0.0) + taut * u2x, ng2), mask=m)
        tl.store(pb + 3 * hw, tl.div_rn(tl.load(pb + 3 * hw, mask=m, other=0.0) + taut * u2y, ng2), mask=m)
    if tile == 0:  # §4.4 for pair b, exactly tvl1._tvl1_pair_numba's loop step; a stopped pair keeps its state
        live = flag != 0
        n_old = tl.load(count + b)
        n = n_old + 1
        prev = tl.load(prev_err + b)
        eps = tl.load(scaled_eps)
        k = tl.arange(0, n_part)
        error = tl.sum(tl.load(partials + b * n_part + k, mask=k < n_tiles, other=0.0))  # a fixed order
        checked = flag == 2
        prev_new = tl.where(checked, error, prev - eps)
        above = tl.where(checked, error > eps, above_max != 0)  # unchecked: error = DBL_MAX
        calc = (eps_pos != 0) & ((n & 1) == 1) & (prev_new < eps)
        nxt = tl.where(above & (n < iterations), tl.where(calc, 2, 1), 0)
        tl.store(flags + 2 * b + 1 - parity, tl.where(live, nxt, 0))
        tl.store(count + b, tl.where(live, n, n_old))
        tl.store(prev_err + b, tl.where(live, prev_new, prev))


# --- host ------------------------------------------------------------------------------------------------------------


def tvl1_triton(a: torch.Tensor, b: torch.Tensor, sizes, scale_step: float, consts):
    """float32 [B, H, W] (CUDA, or CPU under TRITON_INTERPRET=1) → (flow [B, 2, H, W], iterations [B, levels, warps]).

    The structure of `tvl1._tvl1_torch`; the per-level loop and the per-iteration launches are Python.
    """
    l_t, taut, theta, epsilon, warps, iterations = consts
    dev, batch = a.device, len(a)
    plan = {k: [_coeffs(c, dev) for c in v] for k, v in tvl1._level_plan(sizes, scale_step).items()}
    pyr = [torch.cat([a, b]).contiguous()]  # [2B, H, W]: prev frames, then next frames
    for s in range(1, len(sizes)):
        pyr.append(resize(pyr[-1], plan["down_y"][s - 1], plan["down_x"][s - 1], sizes[s]))
    iters = torch.zeros((batch, len(sizes), warps), dtype=torch.int32, device=dev)
    u = torch.zeros((batch, 2, *sizes[-1]), dtype=torch.float32, device=dev)
    prev_err = torch.zeros(batch, dtype=torch.float64, device=dev)
    count = torch.zeros(batch, dtype=torch.int32, device=dev)
    flags = torch.zeros((batch, 2), dtype=torch.int32, device=dev)
    state = (prev_err, count, flags)
    for s in range(len(sizes) - 1, -1, -1):
        h, w = sizes[s]
        p = torch.zeros((batch, 4, h, w), dtype=torch.float32, device=dev)  # §4.1: reset per level
        data = torch.empty((batch, 3, h, w), dtype=torch.float32, device=dev)
        scaled_eps = epsilon * epsilon * (h * w)  # double, as C:310
        eps_t = torch.tensor([scaled_eps], dtype=torch.float64, device=dev)
        above_max = int(tvl1.DBL_MAX > scaled_eps)  # what an unchecked iteration's `error > scaledEps` gives
        first = above_max if iterations > 0 else 0  # iteration 0 runs, unchecked (n even)
        for wi in range(warps):
            warp(pyr[s][:batch], pyr[s][batch:], u, data, state, first)
            loop = (u, p, data, state, eps_t, above_max, epsilon > 0, iterations)
            inner_loop(*loop, l_t, taut, theta)
            iters[:, s, wi] = count
        if s > 0:  # §4.1: to the finer level's size, × f32(1/scale_step) = 1.25
            cy, cx = plan["up_y"][s - 1], plan["up_x"][s - 1]
            up = resize(u.view(2 * batch, h, w), cy, cx, sizes[s - 1], float(tvl1._up_factor(scale_step)))
            u = up.view(batch, 2, *sizes[s - 1])
    return u, iters.cpu().numpy()


def _coeffs(axis: tuple[np.ndarray, ...], dev: torch.device) -> tuple[torch.Tensor, ...]:
    """`tvl1.resize_coeffs` output on the device: indices as int32, weights float32."""
    i1, i2, a0, a1 = axis
    return tuple(torch.from_numpy(c).to(dev) for c in (i1.astype(np.int32), i2.astype(np.int32), a0, a1))


def resize(src: torch.Tensor, cy, cx, size: tuple[int, int], factor: float | None = None) -> torch.Tensor:
    """§3 resize of contiguous [N, h, w] to [N, *size] with per-axis device coefficients (`_coeffs`), × factor (a
    float32 value) if given."""
    n, h, w = src.shape
    out = torch.empty((n, *size), dtype=torch.float32, device=src.device)
    grid = (triton.cdiv(size[0] * size[1], BLOCK), n)
    scale = factor is not None
    _resize_kernel[grid](src, out, *cy, *cx, h, w, *size, float(factor or 1.0), SCALE=scale, block=BLOCK, **LAUNCH)
    return out


def warp(img0: torch.Tensor, img1: torch.Tensor, u: torch.Tensor, data: torch.Tensor, state, first_flag: int) -> None:
    """§4.2 for all pairs: img0, img1 [B, H, W], u [B, 2, H, W] → data [B, 3, H, W]; resets the §4.4 state."""
    batch, h, w = img0.shape
    grid = (triton.cdiv(h * w, WARP_BLOCK), batch)
    _warp_kernel[grid](img0, img1, u, data, *state, h, w, first_flag, block=WARP_BLOCK, **LAUNCH)


def inner_loop(u, p, data, state, eps_t, above_max, eps_pos, iterations, l_t, taut, theta) -> None:
    """§4.3–4.4 for all pairs until every pair has stopped (or `iterations`), u and p in place."""
    prev_err, count, flags = state
    batch, _, h, w = u.shape
    n_tiles = triton.cdiv(h * w, BLOCK)
    n_part = triton.next_power_of_2(n_tiles)
    partials = torch.zeros((batch, n_part), dtype=torch.float64, device=u.device)
    grid = (n_tiles, batch)
    f32 = (float(l_t), float(taut), float(theta))  # exact float32 values
    polls: list = []
    for it in range(iterations):
        parity = it & 1
        _estimate_u_kernel[grid](u, p, data, partials, flags, parity, h, w, f32[0], f32[2], n_part=n_part,
                                 block=BLOCK, **LAUNCH)  # fmt: skip
        _dual_kernel[grid](u, p, partials, prev_err, count, flags, eps_t, parity, h, w, f32[1], iterations, n_tiles,
                           above_max, int(eps_pos), n_part=n_part, block=BLOCK, **LAUNCH)  # fmt: skip
        if (it + 1) % CHECK_EVERY == 0 and it + 1 < iterations and _stopped(flags[:, parity ^ 1], polls):
            break


def _stopped(next_flags: torch.Tensor, polls: list) -> bool:
    """Queue a read of "is any pair still running" and answer from the previous one, so the GPU never waits for the
    host: the answer is one check late, and the launches in between are no-ops (the same on CPU, where it is tested)."""
    alive = next_flags.amax()
    event = None
    if alive.is_cuda:
        host = torch.empty((), dtype=alive.dtype, pin_memory=True)
        host.copy_(alive, non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        alive = host
    polls.append((event, alive))
    if len(polls) < 2:
        return False
    event, alive = polls.pop(0)
    if event is not None:
        event.synchronize()
    return int(alive) == 0
