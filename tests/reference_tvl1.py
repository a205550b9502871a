"""Slow, obviously-correct TV-L1 written line by line from docs/tvl1.md (the CUDA class), for tests.

Per-pixel Python loops over np.float32 scalars (so every operation rounds to float32 as the CUDA kernels do); the
stopping schedule in Python floats (double). Only for small images (≈ 40×32) and few iterations: ~10 µs per pixel
per inner iteration. Each function names the section it transcribes.
"""

from __future__ import annotations

import math

import numpy as np

f32 = np.float32
FLT_EPSILON = f32(1.1920929e-07)


def cv_round(x: float) -> int:
    """cvRound / saturate_cast<int>(double): nearest, ties to even."""
    return int(np.rint(x))


def cuda_resize(src: np.ndarray, dst_h: int, dst_w: int, fx: float | None = None) -> np.ndarray:
    """§3 CUDA INTER_LINEAR: kx = f32(1/fx) (fx = the given factor, or dsize/size in double), corner origin."""
    h, w = src.shape
    if (dst_h, dst_w) == (h, w):
        return src.copy()
    kx = f32(1.0 / (fx if fx is not None else dst_w / w))
    ky = f32(1.0 / (fx if fx is not None else dst_h / h))
    out = np.zeros((dst_h, dst_w), np.float32)
    for Y in range(dst_h):
        for X in range(dst_w):
            sx = f32(X) * kx
            sy = f32(Y) * ky
            x1 = math.floor(sx)
            y1 = math.floor(sy)
            x2 = x1 + 1
            y2 = y1 + 1
            x2r = min(x2, w - 1)
            y2r = min(y2, h - 1)
            acc = f32(0)
            acc = acc + src[y1, x1] * ((f32(x2) - sx) * (f32(y2) - sy))
            acc = acc + src[y1, x2r] * ((sx - f32(x1)) * (f32(y2) - sy))
            acc = acc + src[y2r, x1] * ((f32(x2) - sx) * (sy - f32(y1)))
            acc = acc + src[y2r, x2r] * ((sx - f32(x1)) * (sy - f32(y1)))
            out[Y, X] = acc
    return out


def centred_gradient(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """§4.1 (K:59-69)."""
    h, w = img.shape
    dx = np.zeros((h, w), np.float32)
    dy = np.zeros((h, w), np.float32)
    for y in range(h):
        for x in range(w):
            dx[y, x] = f32(0.5) * (img[y, min(x + 1, w - 1)] - img[y, max(x - 1, 0)])
            dy[y, x] = f32(0.5) * (img[min(y + 1, h - 1), x] - img[max(y - 1, 0), x])
    return dx, dy


def bicubic_coeff(x_: np.float32) -> np.float32:
    """§4.2 (K:89-104), a = -0.5."""
    x = abs(x_)
    if x <= f32(1):
        return x * x * (f32(1.5) * x - f32(2.5)) + f32(1)
    if x < f32(2):
        return x * (x * (f32(-0.5) * x + f32(2.5)) - f32(4)) + f32(2)
    return f32(0)


def warp_backward(I0, I1, I1x, I1y, u1, u2):
    """§4.2 (K:106-164): taps ceil(w-2) … floor(w+2), clamped texture reads, 1/wsum. → I1wx, I1wy, grad, rho_c."""
    h, w = I0.shape
    outs = [np.zeros((h, w), np.float32) for _ in range(4)]
    I1wx, I1wy, grad, rho = outs
    for y in range(h):
        for x in range(w):
            wx = f32(x) + u1[y, x]
            wy = f32(y) + u2[y, x]
            xmin, xmax = math.ceil(wx - f32(2)), math.floor(wx + f32(2))
            ymin, ymax = math.ceil(wy - f32(2)), math.floor(wy + f32(2))
            s, sx, sy, ws = f32(0), f32(0), f32(0), f32(0)
            for cy in range(ymin, ymax + 1):
                for cx in range(xmin, xmax + 1):
                    wgt = bicubic_coeff(wx - f32(cx)) * bicubic_coeff(wy - f32(cy))
                    ty, tx = min(max(cy, 0), h - 1), min(max(cx, 0), w - 1)
                    s = s + wgt * I1[ty, tx]
                    sx = sx + wgt * I1x[ty, tx]
                    sy = sy + wgt * I1y[ty, tx]
                    ws = ws + wgt
            coeff = f32(1) / ws
            vw, vx, vy = s * coeff, sx * coeff, sy * coeff
            I1wx[y, x], I1wy[y, x] = vx, vy
            grad[y, x] = vx * vx + vy * vy
            rho[y, x] = vw - vx * u1[y, x] - vy * u2[y, x] - I0[y, x]
    return I1wx, I1wy, grad, rho


def divergence(v1: np.ndarray, v2: np.ndarray, y: int, x: int) -> np.float32:
    """§4.3 (K:187-207), with its association order."""
    if x > 0 and y > 0:
        return (v1[y, x] - v1[y, x - 1]) + (v2[y, x] - v2[y - 1, x])
    if y > 0:
        return v1[y, 0] + v2[y, 0] - v2[y - 1, 0]
    if x > 0:
        return v1[0, x] - v1[0, x - 1] + v2[0, x]
    return v1[0, 0] + v2[0, 0]


def estimate_u(I1wx, I1wy, grad, rho_c, p11, p12, p21, p22, u1, u2, l_t, theta, calc_error):
    """§4.3 estimateU (K:209-288) → new u1, u2 and the per-pixel error (or None)."""
    h, w = u1.shape
    n1, n2 = np.zeros((h, w), np.float32), np.zeros((h, w), np.float32)
    err = np.zeros((h, w), np.float32) if calc_error else None
    for y in range(h):
        for x in range(w):
            gx, gy, g = I1wx[y, x], I1wy[y, x], grad[y, x]
            u1o, u2o = u1[y, x], u2[y, x]
            rho = rho_c[y, x] + (gx * u1o + gy * u2o)
            d1, d2 = f32(0), f32(0)
            if rho < -l_t * g:
                d1, d2 = l_t * gx, l_t * gy
            elif rho > l_t * g:
                d1, d2 = -l_t * gx, -l_t * gy
            elif g > FLT_EPSILON:
                fi = -rho / g
                d1, d2 = fi * gx, fi * gy
            v1, v2 = u1o + d1, u2o + d2
            a = v1 + theta * divergence(p11, p12, y, x)
            b = v2 + theta * divergence(p21, p22, y, x)
            n1[y, x], n2[y, x] = a, b
            if calc_error:
                err[y, x] = (u1o - a) * (u1o - a) + (u2o - b) * (u2o - b)
    return n1, n2, err


def estimate_dual(u1, u2, p11, p12, p21, p22, taut):
    """§4.3 estimateDualVariables (K:313-348) with the new u → new p11, p12, p21, p22. hypotf = f32(hypot(double))."""
    h, w = u1.shape
    out = [np.zeros((h, w), np.float32) for _ in range(4)]
    for y in range(h):
        for x in range(w):
            xn, yn = min(x + 1, w - 1), min(y + 1, h - 1)
            u1x, u1y = u1[y, xn] - u1[y, x], u1[yn, x] - u1[y, x]
            u2x, u2y = u2[y, xn] - u2[y, x], u2[yn, x] - u2[y, x]
            g1 = f32(math.hypot(float(u1x), float(u1y)))
            g2 = f32(math.hypot(float(u2x), float(u2y)))
            ng1, ng2 = f32(1) + taut * g1, f32(1) + taut * g2
            out[0][y, x] = (p11[y, x] + taut * u1x) / ng1
            out[1][y, x] = (p12[y, x] + taut * u1y) / ng1
            out[2][y, x] = (p21[y, x] + taut * u2x) / ng2
            out[3][y, x] = (p22[y, x] + taut * u2y) / ng2
    return out


def ref_tvl1(I0, I1, tau=0.25, lambda_=0.15, theta=0.3, nscales=5, warps=5, epsilon=0.01, iterations=300,
             scale_step=0.8):  # fmt: skip
    """One pair, uint8 or float 0..255 [H, W] → (flow float32 [2, H, W], iterations run {(level, warp): n})."""
    I0, I1 = np.asarray(I0, np.float32), np.asarray(I1, np.float32)
    l_t, taut, theta_f = f32(lambda_ * theta), f32(tau / theta), f32(theta)
    I0s, I1s = [I0], [I1]
    for s in range(1, nscales):  # §3: from the previous level; the < 16 rule stops the pyramid
        h, w = I0s[s - 1].shape
        nh, nw = cv_round(h * scale_step), cv_round(w * scale_step)
        if nw < 16 or nh < 16:
            nscales = s
            break
        I0s.append(cuda_resize(I0s[s - 1], nh, nw, scale_step))
        I1s.append(cuda_resize(I1s[s - 1], nh, nw, scale_step))
    runs = {}
    u1 = np.zeros(I0s[-1].shape, np.float32)
    u2 = np.zeros(I0s[-1].shape, np.float32)
    for s in range(nscales - 1, -1, -1):
        h, w = I0s[s].shape
        I1x, I1y = centred_gradient(I1s[s])
        p11, p12, p21, p22 = (np.zeros((h, w), np.float32) for _ in range(4))
        scaled_eps = epsilon * epsilon * (w * h)
        for wi in range(warps):
            I1wx, I1wy, grad, rho_c = warp_backward(I0s[s], I1s[s], I1x, I1y, u1, u2)
            error = np.finfo(np.float64).max
            prev_error = 0.0
            n = 0
            while error > scaled_eps and n < iterations:
                calc = epsilon > 0 and n % 2 == 1 and prev_error < scaled_eps
                u1, u2, err = estimate_u(I1wx, I1wy, grad, rho_c, p11, p12, p21, p22, u1, u2, l_t, theta_f, calc)
                if calc:
                    error = sum(float(e) for e in err.ravel())  # each float widened to double, summed in double
                    prev_error = error
                else:
                    error = np.finfo(np.float64).max
                    prev_error -= scaled_eps
                p11, p12, p21, p22 = estimate_dual(u1, u2, p11, p12, p21, p22, taut)
                n += 1
            runs[(s, wi)] = n
        if s > 0:  # §4.1: resize to the finer level's size (dsize), then ×1/scale_step
            hh, ww = I0s[s - 1].shape
            k = f32(1.0 / scale_step)
            u1 = cuda_resize(u1, hh, ww) * k
            u2 = cuda_resize(u2, hh, ww) * k
    return np.stack([u1, u2]), runs
