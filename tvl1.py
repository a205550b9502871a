"""TV-L1 optical flow exactly as OpenCV's CUDA class computes it (`cv::cuda::OpticalFlowDual_TVL1`), batched.

`tvl1(prev, next) -> flow` is the algorithm of `docs/tvl1.md` (the authority; § numbers below are its
sections), with the parameters denseFlow_GPU used (method §12.3) as defaults. Three implementations of the same
arithmetic, chosen by the input's device (`backend=` overrides):

- CPU: numba kernels (`_tvl1_pair_numba`; the pairs of a batch run on Python threads, the kernels release the GIL).
  Each inner iteration is one fused sweep over the rows: row y's estimateU, then row y-1's dual update (which needs
  the new u of rows y-1 and y only), so the two Jacobi passes of §4.3 run in one pass over memory, same results.
- CUDA: fused Triton kernels (tvl1_triton.py, imported only then): one launch per pyramid level's resize, one per
  warp (§4.2 with the I1 gradient), two per inner iteration (estimateU, then the dual update with §4.4's schedule
  step on the device); the host polls a "still running" flag every few iterations, one poll late, so the GPU's
  queue never drains.
- `backend="torch"` (any device; CUDA's fallback without triton): full-tensor torch ops over [B, ...]
  (`_tvl1_torch`), the readable version. The stopping schedule stays on the host in float64 like OpenCV's; the only
  host-device syncs are the error sums at the iterations that check (as in OpenCV: `cuda::sum` + download).
  Finished pairs are dropped from the working batch.

All are float32 everywhere the CUDA kernels are, with no fused multiply-adds and the operation order of the
kernels, so they agree with each other bit for bit (tests/test_tvl1.py, tests/test_tvl1_triton.py) and with the
per-pixel reference tests/reference_tvl1.py. What OpenCV's binary may do differently is listed in docs/tvl1.md §8:
nvcc's FMA contraction, `hypotf`'s last bit (here: f32 of the double-precision hypot, what glibc's hypotf computes)
and the GPU's summation order of the stopping error (here: float64; row-major in numba, torch's order, or per
Triton program then over programs in a fixed tree order).

Map to docs/tvl1.md:
  §1 parameters, float32 constants ........ `_constants` (l_t = f32(λθ), taut = f32(τ/θ), θ = f32(0.3))
  §2 input: uint8 or float on 0..255 ....... `tvl1` (no /255, no smoothing)
  §3 pyramid sizes, cvRound, the <16 rule .. `pyramid_sizes`
  §3 corner-origin bilinear resize ......... `resize_coeffs`, `_resize_numba`, `_resize_torch`
  §4.1 flow upsampling × f32(1/scaleStep) = 1.25 (`_up_factor`), p reset per level, centred I1 gradient per level
  §4.2 backward warp, Keys a = -0.5, clamped reads, reciprocal normalisation, grad and rho_c
                                             `_cubic*`, `_warp_numba`, `_warp_torch`
  §4.3 estimateU (threshold cases in order, divergence border cases), estimateDualVariables (forward differences,
       hypot, real divisions) ............. `_sweep_numba`, `_estimate_u_torch`, `_dual_torch`
  §4.4 odd-iteration stopping schedule, float64 sums, repeated prevError -= scaledEps, per pair
                                             `_tvl1_pair_numba`, `_inner_loop_torch`
  (the same sections on CUDA) .............. tvl1_triton.py
  §5 output: channel 0 = u1 = x, channel 1 = u2 = y, I1(x + u1, y + u2) ≈ I0(x, y)

Quirks kept: the duals are reset per level, not per warp; the upsampled flow is scaled by 1/scaleStep = 1.25, not by
the true size ratio; the resize is corner-origin (no half-pixel centres); border reads are clamped and the warp never
masks out-of-image positions. One quirk cannot live in a pure function: when a level would be smaller than 16 px the
CUDA class lowers its member `nscales_` for good, so later `calc` calls on the same object use fewer levels. Here
every call applies the <16 rule afresh; denseFlow_GPU makes one object per video, whose frames all have one size, so
every pair of a video gets the same levels either way.

Float inputs are taken as already on the 0..255 scale (OpenCV's CUDA class would multiply CV_32F input by 255).
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import torch

FLT_EPSILON = np.float32(np.finfo(np.float32).eps)  # 1.1920929e-07, the threshold of §4.3's third case
DBL_MAX = float(np.finfo(np.float64).max)  # the "no error measured" value of §4.4
MIN_LEVEL_SIZE = 16  # §3: a level narrower or lower than this is not built


# --- §1 parameters, §3 pyramid -----------------------------------------------------------------------------------


def _constants(tau: float, lambda_: float, theta: float) -> tuple[np.float32, np.float32, np.float32]:
    """(l_t, taut, theta) as the host code casts them (§1): f32 of the double products/quotients."""
    return np.float32(lambda_ * theta), np.float32(tau / theta), np.float32(theta)


def pyramid_sizes(height: int, width: int, nscales: int = 5, scale_step: float = 0.8) -> list[tuple[int, int]]:
    """(H_s, W_s) of the levels used, finest first (§3).

    Each level is cvRound(previous · scale_step) (computed in double; Python's round is cvRound's half-to-even), and
    the first level with a side < 16 and all below it are dropped. 341×256 → 273×205 → 218×164 → 174×131 → 139×105.
    """
    sizes = [(int(height), int(width))]
    for _ in range(1, nscales):
        h, w = sizes[-1]
        h, w = round(h * scale_step), round(w * scale_step)
        if w < MIN_LEVEL_SIZE or h < MIN_LEVEL_SIZE:
            break
        sizes.append((h, w))
    return sizes


def resize_coeffs(src: int, dst: int, k: np.float32) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One axis of the CUDA bilinear resize (§3): → (i1 int64 [dst], i2 clamped int64 [dst], a0, a1 float32 [dst]).

    Output index X reads source i1 = floor(sx) and i2 = min(i1 + 1, src - 1) with sx = f32(X)·k, corner origin (no
    half-pixel offsets); the weights a0 = f32(i1 + 1 - sx) and a1 = f32(sx - i1) use the unclamped i1 + 1.
    """
    sx = np.arange(dst, dtype=np.float32) * np.float32(k)
    i1 = np.floor(sx).astype(np.int64)
    a0 = (i1 + 1).astype(np.float32) - sx
    a1 = sx - i1.astype(np.float32)
    return np.minimum(i1, src - 1), np.minimum(i1 + 1, src - 1), a0, a1


def _up_factor(scale_step: float) -> np.float32:
    """§4.1: the upsampled flow is multiplied by f32(1/scaleStep) (1.25 for 0.8), not by the true size ratio."""
    return np.float32(1.0 / scale_step)


def _resize_k(src: int, dst: int, scale: float | None) -> np.float32:
    """The kernel's step k = f32(1/f) (§3): f = the user's factor, or dst/src (double) when a size is asked for."""
    f = scale if scale is not None else dst / src
    return np.float32(1.0 / f)


def _level_plan(sizes: list[tuple[int, int]], scale_step: float) -> dict[str, np.ndarray]:
    """Resize coefficients of every pyramid step (down: factor scale_step) and flow upsampling (up: to a dsize)."""
    plan: dict[str, list] = {k: [] for k in ("down_y", "down_x", "up_y", "up_x")}
    for (h0, w0), (h1, w1) in zip(sizes[:-1], sizes[1:], strict=False):
        plan["down_y"].append(resize_coeffs(h0, h1, _resize_k(h0, h1, scale_step)))
        plan["down_x"].append(resize_coeffs(w0, w1, _resize_k(w0, w1, scale_step)))
        plan["up_y"].append(resize_coeffs(h1, h0, _resize_k(h1, h0, None)))
        plan["up_x"].append(resize_coeffs(w1, w0, _resize_k(w1, w0, None)))
    return plan


# --- the public function ----------------------------------------------------------------------------------------


@torch.no_grad()
def tvl1(
    prev: torch.Tensor | np.ndarray,
    next: torch.Tensor | np.ndarray,  # noqa: A002 — the field's name for the second frame
    *,
    tau: float = 0.25,
    lambda_: float = 0.15,
    theta: float = 0.3,
    nscales: int = 5,
    warps: int = 5,
    epsilon: float = 0.01,
    iterations: int = 300,
    scale_step: float = 0.8,
    backend: str = "auto",
    threads: int | None = None,
    return_iterations: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, np.ndarray]:
    """TV-L1 flow prev → next, as OpenCV's CUDA `OpticalFlowDual_TVL1` with these parameters computes it.

    prev, next: uint8 or float (values on 0..255) [B, H, W] or [H, W], torch (any device) or numpy.
    → float32 flow [B, 2, H, W] (or [2, H, W]) on the input's device: channel 0 = u1 = x (+right), channel 1 = u2 =
    y (+down), in pixels, such that next(x + u1, y + u2) ≈ prev(x, y). Every pair has its own stopping schedule.
    backend: "auto" (numba on CPU; triton on CUDA when importable, else torch), "numba" (CPU tensors), "torch" (any
    device; the readable tensor-op version) or "triton" (CUDA tensors; CPU only under TRITON_INTERPRET=1, for tests).
    threads: CPU threads of the numba backend, one pair each (default: all cores).
    return_iterations=True also returns the inner iterations run per warp, int32 [B, levels, warps] (or
    [levels, warps]); level 0 = full resolution, the levels are those `pyramid_sizes` keeps.
    """
    a, b = torch.as_tensor(prev), torch.as_tensor(next)
    if a.shape != b.shape or a.dim() not in (2, 3) or 0 in a.shape:
        raise ValueError(f"tvl1: prev and next must be [B, H, W] or [H, W] of one shape, got {a.shape}, {b.shape}")
    if a.device != b.device:
        raise ValueError(f"tvl1: prev on {a.device}, next on {b.device}")
    if not (a.dtype == torch.uint8 or a.is_floating_point()) or b.dtype != a.dtype:
        raise ValueError(f"tvl1: expected uint8 or float frames, got {a.dtype}, {b.dtype}")
    if nscales < 1 or warps < 1 or iterations < 0:
        raise ValueError(f"tvl1: nscales {nscales}, warps {warps}, iterations {iterations}: out of range")
    unbatched = a.dim() == 2
    a, b = (a[None].float(), b[None].float()) if unbatched else (a.float(), b.float())
    backend = _auto_backend(a.device) if backend == "auto" else backend
    sizes = pyramid_sizes(a.shape[1], a.shape[2], nscales, scale_step)
    consts = (*_constants(tau, lambda_, theta), float(epsilon), int(warps), int(iterations))
    if backend == "numba":
        if a.device.type != "cpu":
            raise ValueError(f"tvl1: backend 'numba' needs CPU tensors, got {a.device}")
        flow, iters = _tvl1_numba(a, b, sizes, scale_step, consts, threads)
    elif backend == "torch":
        flow, iters = _tvl1_torch(a, b, sizes, scale_step, consts)
    elif backend == "triton":
        if a.device.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
            raise ValueError(f"tvl1: backend 'triton' needs CUDA tensors (or TRITON_INTERPRET=1), got {a.device}")
        import tvl1_triton  # lazily: CPU users need no triton

        flow, iters = tvl1_triton.tvl1_triton(a.contiguous(), b.contiguous(), sizes, scale_step, consts)
    else:
        raise ValueError(f"tvl1: unknown backend {backend!r} (auto, numba, torch, triton)")
    flow, iters = (flow[0], iters[0]) if unbatched else (flow, iters)
    return (flow, iters) if return_iterations else flow


def _auto_backend(device: torch.device) -> str:
    """numba on CPU; on CUDA the fused Triton kernels when triton imports, else the torch ops."""
    if device.type == "cpu":
        return "numba"
    if device.type == "cuda":
        try:
            import triton  # noqa: F401

            return "triton"
        except ImportError:
            pass
    return "torch"


# --- CPU: numba ---------------------------------------------------------------------------------------------------
# Every literal is an np.float32 and no fastmath is set, so LLVM keeps float32 rounding and the operation order (no
# FMA contraction, no reassociation). error_model="numpy": no division-by-zero checks (none can occur).

_jit = numba.njit(cache=True, nogil=True, error_model="numpy")
F0, F05, F1, F15, F2, F25, F4 = (np.float32(v) for v in (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 4.0))


def _tvl1_numba(a: torch.Tensor, b: torch.Tensor, sizes, scale_step: float, consts, threads: int | None):
    """[B, H, W] float32 CPU tensors → (flow [B, 2, H, W], iterations [B, levels, warps]), one pair per thread.

    The kernels release the GIL, so plain Python threads run pairs in parallel (no numba threading layer to compile).
    """
    l_t, taut, theta, epsilon, warps, iterations = consts
    i0, i1 = a.contiguous().numpy(), b.contiguous().numpy()
    coeffs, offsets = _flat_plan(_level_plan(sizes, scale_step))
    flow = np.empty((len(i0), 2, *i0.shape[1:]), np.float32)
    iters = np.zeros((len(i0), len(sizes), warps), np.int32)
    args = (
        np.asarray(sizes, np.int64),
        *coeffs,
        offsets,
        l_t,
        taut,
        theta,
        epsilon,
        iterations,
        _up_factor(scale_step),
    )

    def pair(k: int) -> None:
        _tvl1_pair_numba(i0[k], i1[k], args, flow[k], iters[k])

    threads = min(threads or available_cores(), len(i0))
    if threads > 1:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(pair, range(len(i0))))
    else:
        for k in range(len(i0)):
            pair(k)
    return torch.from_numpy(flow), iters


def available_cores() -> int:
    """CPUs this process may run on (the affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _flat_plan(plan: dict[str, list]) -> tuple[list[np.ndarray], np.ndarray]:
    """`_level_plan` as 4 concatenated arrays (row i1, row i2, col i1, col i2 / row a0, a1, col a0, a1 — each with the
    down steps first, then the up steps) and the start of every step's coefficients, int64 [steps, 4]
    (down rows, down cols, up rows, up cols)."""
    parts: list[list[np.ndarray]] = [[], [], [], [], [], [], [], []]
    offsets = np.zeros((max(len(plan["down_y"]), 1), 4), np.int64)
    starts = [0, 0]  # rows, cols
    for col, key in enumerate(("down_y", "down_x", "up_y", "up_x")):
        axis = col % 2
        for step, (i1, i2, a0, a1) in enumerate(plan[key]):
            offsets[step, col] = starts[axis]
            starts[axis] += len(i1)
            for j, arr in enumerate((i1, i2, a0, a1)):
                parts[2 * j + axis].append(arr)
    dtypes = [np.int64] * 4 + [np.float32] * 4
    flat = [np.concatenate(p).astype(t) if p else np.zeros(0, t) for p, t in zip(parts, dtypes, strict=True)]
    return flat, offsets


@_jit
def _axes(args, step, col):
    """Resize coefficients (rows, cols) of pyramid step `step`: col 0 = down (level step → step+1), 2 = up."""
    sizes, yi1, xi1, yi2, xi2, ya0, xa0, ya1, xa1, offsets = args[:10]
    level = step + 1 if col == 0 else step
    h, w = sizes[level, 0], sizes[level, 1]
    oy, ox = offsets[step, col], offsets[step, col + 1]
    cy = (yi1[oy : oy + h], yi2[oy : oy + h], ya0[oy : oy + h], ya1[oy : oy + h])
    cx = (xi1[ox : ox + w], xi2[ox : ox + w], xa0[ox : ox + w], xa1[ox : ox + w])
    return cy, cx


@_jit
def _tvl1_pair_numba(i0, i1, args, flow, iters):
    """§3–§5 for one pair: i0, i1 [H, W] → flow [2, H, W], iters [levels, warps] (inner iterations per warp)."""
    sizes = args[0]
    l_t, taut, theta, epsilon, iterations, up = args[10:]
    levels = sizes.shape[0]
    warps = iters.shape[1]
    pyr0 = [i0]
    pyr1 = [i1]
    for s in range(1, levels):  # §3: each level from the previous one
        cy, cx = _axes(args, s - 1, 0)
        pyr0.append(_resize_numba(pyr0[s - 1], cy, cx))
        pyr1.append(_resize_numba(pyr1[s - 1], cy, cx))
    u1 = np.zeros((sizes[levels - 1, 0], sizes[levels - 1, 1]), np.float32)
    u2 = np.zeros_like(u1)
    for s in range(levels - 1, -1, -1):
        h, w = sizes[s, 0], sizes[s, 1]
        img0, img1 = pyr0[s], pyr1[s]
        i1x, i1y = _centred_gradient_numba(img1)
        p11 = np.zeros((h, w), np.float32)  # §4.1: duals reset at every level, kept across warps
        p12 = np.zeros((h, w), np.float32)
        p21 = np.zeros((h, w), np.float32)
        p22 = np.zeros((h, w), np.float32)
        i1wx = np.empty((h, w), np.float32)
        i1wy = np.empty((h, w), np.float32)
        grad = np.empty((h, w), np.float32)
        rho_c = np.empty((h, w), np.float32)
        scaled_eps = epsilon * epsilon * (h * w)  # double, as C:310
        for wi in range(warps):
            _warp_numba(img0, img1, i1x, i1y, u1, u2, i1wx, i1wy, grad, rho_c)
            error = DBL_MAX  # §4.4: reset at every warp
            prev_error = 0.0
            n = 0
            while error > scaled_eps and n < iterations:
                calc = epsilon > 0 and (n & 1) == 1 and prev_error < scaled_eps
                e = _sweep_numba(i1wx, i1wy, grad, rho_c, u1, u2, p11, p12, p21, p22, l_t, taut, theta, calc)
                if calc:
                    error = e
                    prev_error = e
                else:
                    error = DBL_MAX
                    prev_error -= scaled_eps
                n += 1
            iters[s, wi] = n
        if s > 0:  # §4.1: resize to the finer level's size, then ×(1/scale_step)
            cy, cx = _axes(args, s - 1, 2)
            u1 = _resize_numba(u1, cy, cx) * up
            u2 = _resize_numba(u2, cy, cx) * up
    flow[0] = u1
    flow[1] = u2


@_jit
def _resize_numba(src, cy, cx):
    """§3 bilinear resize of src [h, w] with per-axis coefficients (resize_coeffs) → [len(cy[0]), len(cx[0])]."""
    y1, y2, ay0, ay1 = cy
    x1, x2, ax0, ax1 = cx
    out = np.empty((y1.shape[0], x1.shape[0]), np.float32)
    for y in range(out.shape[0]):
        r1, r2, wy0, wy1 = y1[y], y2[y], ay0[y], ay1[y]
        for x in range(out.shape[1]):
            c1, c2, wx0, wx1 = x1[x], x2[x], ax0[x], ax1[x]
            acc = src[r1, c1] * (wx0 * wy0)
            acc = acc + src[r1, c2] * (wx1 * wy0)
            acc = acc + src[r2, c1] * (wx0 * wy1)
            acc = acc + src[r2, c2] * (wx1 * wy1)
            out[y, x] = acc
    return out


@_jit
def _centred_gradient_numba(img):
    """§4.1: I1x = 0.5·(I(y, min(x+1, W-1)) - I(y, max(x-1, 0))), I1y likewise along y."""
    h, w = img.shape
    gx = np.empty((h, w), np.float32)
    gy = np.empty((h, w), np.float32)
    for y in range(h):
        for x in range(w):
            gx[y, x] = F05 * (img[y, min(x + 1, w - 1)] - img[y, max(x - 1, 0)])
            gy[y, x] = F05 * (img[min(y + 1, h - 1), x] - img[max(y - 1, 0), x])
    return gx, gy


@_jit
def _cubic_numba(t):
    """Keys cubic, a = -0.5 (§4.2, K:89-104), float32."""
    t = abs(t)
    if t <= F1:
        return t * t * (F15 * t - F25) + F1
    if t < F2:
        return t * (t * (-F05 * t + F25) - F4) + F2
    return F0


@_jit
def _warp_numba(img0, img1, i1x, i1y, u1, u2, i1wx, i1wy, grad, rho_c):
    """§4.2 warpBackward (K:106-164) → I1wx, I1wy, grad, rho_c in place.

    Taps floor(w)-1 … floor(w)+2 per axis: docs/tvl1.md's ceil(w-2) … floor(w+2) plus or minus taps of weight exactly 0,
    which change no sum. Reads clamped to the image, accumulated in row-major tap order, then × 1/wsum.
    """
    h, w = img0.shape
    for y in range(h):
        for x in range(w):
            u1v, u2v = u1[y, x], u2[y, x]
            wx = np.float32(x) + u1v
            wy = np.float32(y) + u2v
            fx, fy = math.floor(wx), math.floor(wy)
            cx0, cx1, cx2, cx3 = _clamp(fx - 1, w), _clamp(fx, w), _clamp(fx + 1, w), _clamp(fx + 2, w)
            kx0 = _cubic_numba(wx - np.float32(fx - 1))
            kx1 = _cubic_numba(wx - np.float32(fx))
            kx2 = _cubic_numba(wx - np.float32(fx + 1))
            kx3 = _cubic_numba(wx - np.float32(fx + 2))
            s = sx = sy = ws = F0
            for j in range(4):
                cy = fy - 1 + j
                ky = _cubic_numba(wy - np.float32(cy))
                r = _clamp(cy, h)
                s, sx, sy, ws = _tap(img1[r], i1x[r], i1y[r], cx0, kx0 * ky, s, sx, sy, ws)
                s, sx, sy, ws = _tap(img1[r], i1x[r], i1y[r], cx1, kx1 * ky, s, sx, sy, ws)
                s, sx, sy, ws = _tap(img1[r], i1x[r], i1y[r], cx2, kx2 * ky, s, sx, sy, ws)
                s, sx, sy, ws = _tap(img1[r], i1x[r], i1y[r], cx3, kx3 * ky, s, sx, sy, ws)
            coeff = F1 / ws
            vw, vx, vy = s * coeff, sx * coeff, sy * coeff
            i1wx[y, x], i1wy[y, x] = vx, vy
            grad[y, x] = vx * vx + vy * vy
            rho_c[y, x] = vw - vx * u1v - vy * u2v - img0[y, x]


@numba.njit(inline="always")
def _clamp(i, n):
    """Texture address mode clamp: i → min(max(i, 0), n - 1)."""
    return min(max(i, 0), n - 1)


@numba.njit(inline="always", error_model="numpy")
def _tap(row, row_x, row_y, c, wt, s, sx, sy, ws):
    """One warp tap: sum += w·I1, sumx += w·I1x, sumy += w·I1y, wsum += w (K:140-146, in this order)."""
    return s + wt * row[c], sx + wt * row_x[c], sy + wt * row_y[c], ws + wt


@_jit
def _sweep_numba(i1wx, i1wy, grad, rho_c, u1, u2, p11, p12, p21, p22, l_t, taut, theta, calc):
    """One inner iteration (§4.3) in place: estimateU of row y, then the dual update of row y-1.

    Jacobi-exact: row y's estimateU reads p of rows y and y-1 before row y-1's dual update rewrites them, and that
    update reads the new u of rows y-1 and y. → the float64 sum of the squared u changes, row-major (0 unless calc).
    Each row is its own small function: compiled apart, its loop vectorises (inlined into one body, it did not).
    """
    h, w = u1.shape
    div1 = np.empty(w, np.float32)
    div2 = np.empty(w, np.float32)
    e = np.empty(w, np.float32)
    err = 0.0
    for y in range(h + 1):
        if y < h:
            above = max(y - 1, 0)
            _divergence_row(p11[y], p12[y], p12[above], div1, y == 0)
            _divergence_row(p21[y], p22[y], p22[above], div2, y == 0)
            _estimate_u_row(i1wx[y], i1wy[y], grad[y], rho_c[y], u1[y], u2[y], div1, div2, e, l_t, theta)
            if calc:
                for x in range(w):
                    err += np.float64(e[x])
        if y > 0:
            _dual_row(p11[y - 1], p12[y - 1], p21[y - 1], p22[y - 1], u1[y - 1], u2[y - 1], u1[min(y, h - 1)],
                      u2[min(y, h - 1)], taut)  # fmt: skip
    return err


@_jit
def _divergence_row(p1, p2, p2_above, out, top):
    """§4.3 divergence of (p1, p2) along one row (K:187-207), with the border cases' association order."""
    w = p1.shape[0]
    if top:  # y = 0
        out[0] = p1[0] + p2[0]
        for x in range(1, w):
            out[x] = (p1[x] - p1[x - 1]) + p2[x]
    else:
        out[0] = (p1[0] + p2[0]) - p2_above[0]
        for x in range(1, w):
            out[x] = (p1[x] - p1[x - 1]) + (p2[x] - p2_above[x])


@_jit
def _estimate_u_row(gx, gy, grad, rho_c, u1, u2, div1, div2, err, l_t, theta):
    """§4.3 estimateU along one row (K:209-288), u in place; err[x] = the squared change of u (float32)."""
    nl_t = -l_t
    for x in range(u1.shape[0]):
        a, b, g = gx[x], gy[x], grad[x]
        u1o, u2o = u1[x], u2[x]
        rho = rho_c[x] + (a * u1o + b * u2o)
        fi = -rho / g  # used only when g > FLT_EPSILON; computed always so the loop has no branch
        c1 = rho < nl_t * g
        c2 = rho > l_t * g
        c3 = g > FLT_EPSILON
        d1 = l_t * a if c1 else (nl_t * a if c2 else (fi * a if c3 else F0))
        d2 = l_t * b if c1 else (nl_t * b if c2 else (fi * b if c3 else F0))
        u1n = (u1o + d1) + theta * div1[x]
        u2n = (u2o + d2) + theta * div2[x]
        u1[x] = u1n
        u2[x] = u2n
        err[x] = (u1o - u1n) * (u1o - u1n) + (u2o - u2n) * (u2o - u2n)


@_jit
def _dual_row(p11, p12, p21, p22, u1, u2, u1_below, u2_below, taut):
    """§4.3 estimateDualVariables along one row with the new u (K:313-348); forward differences, 0 at the far
    border (the last column is done apart, so the main loop vectorises; the last row passes itself as `below`)."""
    w = u1.shape[0]
    for x in range(w - 1):
        _dual_px(p11, p12, p21, p22, x, u1[x + 1] - u1[x], u1_below[x] - u1[x], u2[x + 1] - u2[x],
                 u2_below[x] - u2[x], taut)  # fmt: skip
    x = w - 1
    _dual_px(p11, p12, p21, p22, x, u1[x] - u1[x], u1_below[x] - u1[x], u2[x] - u2[x], u2_below[x] - u2[x], taut)


@numba.njit(inline="always", error_model="numpy")
def _hypot32(a, b):
    """hypotf as glibc computes it: f32 of the double-precision sqrt(a² + b²) (CUDA's hypotf may differ by an ulp)."""
    return np.float32(math.sqrt(np.float64(a) * np.float64(a) + np.float64(b) * np.float64(b)))


@numba.njit(inline="always", error_model="numpy")
def _dual_px(p11, p12, p21, p22, x, u1x, u1y, u2x, u2y, taut):
    """§4.3 estimateDualVariables at column x of one row (K:313-348): real divisions by 1 + taut·|∇u|."""
    ng1 = F1 + taut * _hypot32(u1x, u1y)
    ng2 = F1 + taut * _hypot32(u2x, u2y)
    p11[x] = (p11[x] + taut * u1x) / ng1
    p12[x] = (p12[x] + taut * u1y) / ng1
    p21[x] = (p21[x] + taut * u2x) / ng2
    p22[x] = (p22[x] + taut * u2y) / ng2


# --- CUDA (and any device): torch -----------------------------------------------------------------------------------
# Full-tensor ops only, float32 with the kernels' operation order (an elementwise torch op rounds once, like the
# kernel's expression); u is [B, 2, H, W] (u1, u2), p is [B, 2, 2, H, W] (p11, p12 / p21, p22).


def _tvl1_torch(a: torch.Tensor, b: torch.Tensor, sizes, scale_step: float, consts) -> tuple[torch.Tensor, np.ndarray]:
    """float32 [B, H, W] on any device → (flow [B, 2, H, W], iterations [B, levels, warps])."""
    l_t, taut, theta, epsilon, warps, iterations = consts
    dev = a.device
    plan = {
        k: [tuple(torch.from_numpy(c).to(dev) for c in cs) for cs in v]
        for k, v in _level_plan(sizes, scale_step).items()
    }
    pyr0, pyr1 = [a], [b]
    for s in range(1, len(sizes)):
        cy, cx = plan["down_y"][s - 1], plan["down_x"][s - 1]
        pyr0.append(_resize_torch(pyr0[-1], cy, cx))
        pyr1.append(_resize_torch(pyr1[-1], cy, cx))
    batch = len(a)
    iters = np.zeros((batch, len(sizes), warps), np.int32)
    u = torch.zeros((batch, 2, *sizes[-1]), dtype=torch.float32, device=dev)
    for s in range(len(sizes) - 1, -1, -1):
        h, w = sizes[s]
        grad_i1 = _centred_gradient_torch(pyr1[s])  # [B, 2, H, W]
        p = torch.zeros((batch, 2, 2, h, w), dtype=torch.float32, device=dev)
        scaled_eps = epsilon * epsilon * (h * w)
        for wi in range(warps):
            data = _warp_torch(pyr0[s], pyr1[s], grad_i1, u)
            u, p, iters[:, s, wi] = _inner_loop_torch(u, p, data, l_t, taut, theta, epsilon, iterations, scaled_eps)
        if s > 0:
            cy, cx = plan["up_y"][s - 1], plan["up_x"][s - 1]
            u = _resize_torch(u.flatten(0, 1), cy, cx).view(batch, 2, *sizes[s - 1]) * float(_up_factor(scale_step))
    return u, iters


def _resize_torch(src: torch.Tensor, cy, cx) -> torch.Tensor:
    """§3 bilinear resize of [N, h, w] with per-axis coefficients (resize_coeffs) → [N, h', w']."""
    y1, y2, ay0, ay1 = cy
    x1, x2, ax0, ax1 = cx
    r1, r2 = src.index_select(1, y1), src.index_select(1, y2)
    t11, t12, t21, t22 = r1.index_select(2, x1), r1.index_select(2, x2), r2.index_select(2, x1), r2.index_select(2, x2)
    ay0, ay1, ax0, ax1 = ay0[:, None], ay1[:, None], ax0[None], ax1[None]
    return t11 * (ax0 * ay0) + t12 * (ax1 * ay0) + t21 * (ax0 * ay1) + t22 * (ax1 * ay1)


def _centred_gradient_torch(img: torch.Tensor) -> torch.Tensor:
    """§4.1 centred gradient of [B, H, W] with clamped neighbours → [B, 2, H, W] (I1x, I1y)."""
    h, w = img.shape[-2:]
    dev = img.device
    xr, xl = (torch.arange(w, device=dev) + 1).clamp_(max=w - 1), (torch.arange(w, device=dev) - 1).clamp_(min=0)
    yd, yu = (torch.arange(h, device=dev) + 1).clamp_(max=h - 1), (torch.arange(h, device=dev) - 1).clamp_(min=0)
    gx = 0.5 * (img.index_select(2, xr) - img.index_select(2, xl))
    gy = 0.5 * (img.index_select(1, yd) - img.index_select(1, yu))
    return torch.stack([gx, gy], 1)


def _cubic_torch(t: torch.Tensor) -> torch.Tensor:
    """Keys cubic, a = -0.5 (§4.2), elementwise float32."""
    t = t.abs()
    inner = t * t * (1.5 * t - 2.5) + 1.0
    outer = t * (t * (-0.5 * t + 2.5) - 4.0) + 2.0
    return torch.where(t <= 1.0, inner, torch.where(t < 2.0, outer, torch.zeros_like(t)))


def _warp_torch(img0, img1, grad_i1, u) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """§4.2 warpBackward, batched: 16 gathers (rows × cols of clamped taps), accumulated in row-major order.

    → (g [B, 2, H, W] = (I1wx, I1wy), grad [B, H, W], rho_c [B, H, W]).
    """
    batch, h, w = img0.shape
    dev = img0.device
    xs = torch.arange(w, device=dev, dtype=torch.float32)
    ys = torch.arange(h, device=dev, dtype=torch.float32)[:, None]
    wx, wy = xs + u[:, 0], ys + u[:, 1]  # [B, H, W]
    fx, fy = wx.floor(), wy.floor()
    taps = []
    for i in range(4):  # tap i at floor - 1 + i: its weight and clamped index, per axis
        cx, cy = fx + (i - 1), fy + (i - 1)
        col = cx.long().clamp_(0, w - 1)
        row = cy.long().clamp_(0, h - 1)
        taps.append((_cubic_torch(wx - cx), _cubic_torch(wy - cy), row, col))
    src = torch.stack([img1, grad_i1[:, 0], grad_i1[:, 1]], 1).flatten(2)  # [B, 3, H*W]
    acc = torch.zeros((batch, 3, h * w), dtype=torch.float32, device=dev)
    wsum = torch.zeros((batch, h, w), dtype=torch.float32, device=dev)
    for j in range(4):
        wyj, row = taps[j][1], taps[j][2]
        for i in range(4):
            wxi, col = taps[i][0], taps[i][3]
            wt = wxi * wyj
            idx = (row * w + col).flatten(1)[:, None].expand(-1, 3, -1)
            acc = acc + wt.flatten(1)[:, None] * src.gather(2, idx)
            wsum = wsum + wt
    coeff = 1.0 / wsum
    i1w, g = (acc.view(batch, 3, h, w) * coeff[:, None]).split([1, 2], 1)
    grad = g[:, 0] * g[:, 0] + g[:, 1] * g[:, 1]
    rho_c = i1w[:, 0] - g[:, 0] * u[:, 0] - g[:, 1] * u[:, 1] - img0
    return g.contiguous(), grad, rho_c


def _divergence_torch(p: torch.Tensor) -> torch.Tensor:
    """§4.3 divergence of p [B, 2, 2, H, W] → [B, 2, H, W], with the border cases' association order."""
    px, py = p[:, :, 0], p[:, :, 1]
    dx = px - torch.nn.functional.pad(px[..., :-1], (1, 0))  # x = 0: px - 0 = px
    dy = py - torch.nn.functional.pad(py[..., :-1, :], (0, 0, 1, 0))  # y = 0: py
    div = dx + dy  # x > 0, y > 0: (p1 - p1[x-1]) + (p2 - p2[y-1]); y = 0 and/or x = 0 rows come out as docs/tvl1.md's
    div[..., 1:, 0] = (px[..., 1:, 0] + py[..., 1:, 0]) - py[..., :-1, 0]  # x = 0, y > 0: (p1 + p2) - p2[y-1]
    return div


def _estimate_u_torch(u, p, g, grad, rho_c, l_t, theta, calc: bool):
    """§4.3 estimateU on [B, ...] → (new u [B, 2, H, W], float64 error sums [B] or None)."""
    rho = rho_c + (g[:, 0] * u[:, 0] + g[:, 1] * u[:, 1])
    lg = float(l_t) * grad
    lt_g = float(l_t) * g
    fi = (-rho / grad)[:, None]
    zero = torch.zeros((), dtype=torch.float32, device=u.device)
    d = torch.where(
        (rho < -lg)[:, None],
        lt_g,
        torch.where((rho > lg)[:, None], -lt_g, torch.where((grad > float(FLT_EPSILON))[:, None], fi * g, zero)),
    )
    u_new = (u + d) + float(theta) * _divergence_torch(p)
    if not calc:
        return u_new, None
    diff = u - u_new
    sq = diff * diff
    return u_new, (sq[:, 0] + sq[:, 1]).double().sum((1, 2))


def _hypot_torch(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """f32 of the double-precision hypot (what glibc's hypotf computes; the numba kernel does the same)."""
    a64, b64 = a.double(), b.double()
    return (a64 * a64 + b64 * b64).sqrt_().float()


def _dual_torch(u, p, taut) -> torch.Tensor:
    """§4.3 estimateDualVariables with the new u → new p [B, 2, 2, H, W]; forward differences, 0 at the far border."""
    ux = torch.nn.functional.pad(u[..., 1:] - u[..., :-1], (0, 1))
    uy = torch.nn.functional.pad(u[..., 1:, :] - u[..., :-1, :], (0, 0, 0, 1))
    ng = 1.0 + float(taut) * _hypot_torch(ux, uy)  # [B, 2, H, W]
    grad_u = torch.stack([ux, uy], 2)  # [B, 2, 2, H, W]
    return (p + float(taut) * grad_u) / ng[:, :, None]


def _inner_loop_torch(u, p, data, l_t, taut, theta, epsilon, iterations, scaled_eps):
    """§4.4 for every pair of the batch: the host runs each pair's schedule in float64, exactly as OpenCV's host code.

    Pairs whose loop has ended leave the working batch (their u and p are written back and stay frozen). The error
    sums are read (a sync) only at the iterations where some pair checks. → (u, p, iterations run [B]).
    """
    g, grad, rho_c = data
    batch = len(u)
    error = np.full(batch, DBL_MAX)
    prev = np.zeros(batch)
    runs = np.zeros(batch, np.int32)
    sel = np.arange(batch)  # pairs in the working batch
    u_full, p_full = u, p
    for n in range(iterations):
        active = error[sel] > scaled_eps
        if not active.all():  # some pairs ended at the last check: freeze them
            keep = torch.from_numpy(np.flatnonzero(active)).to(u.device)
            idx = torch.from_numpy(sel).to(u.device)
            u_full, p_full = u_full.index_copy(0, idx, u), p_full.index_copy(0, idx, p)
            sel = sel[active]
            if len(sel) == 0:
                break
            u, p, g, grad, rho_c = (t.index_select(0, keep) for t in (u, p, g, grad, rho_c))
        calc = (epsilon > 0) & (n % 2 == 1) & (prev[sel] < scaled_eps)
        u, err = _estimate_u_torch(u, p, g, grad, rho_c, l_t, theta, bool(calc.any()))
        p = _dual_torch(u, p, taut)
        runs[sel] += 1
        if err is not None:
            e = err.cpu().numpy()  # the sync: as OpenCV's cuda::sum + download
            error[sel] = np.where(calc, e, DBL_MAX)
            prev[sel] = np.where(calc, e, prev[sel] - scaled_eps)
        else:
            error[sel] = DBL_MAX
            prev[sel] -= scaled_eps
    if len(sel):
        idx = torch.from_numpy(sel).to(u.device)
        u_full, p_full = u_full.index_copy(0, idx, u), p_full.index_copy(0, idx, p)
    return u_full, p_full, runs
