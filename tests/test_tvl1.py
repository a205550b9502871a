"""tvl1.py against the per-pixel reference written from docs/tvl1.md (tests/reference_tvl1.py): the stages one by one
(resize, warp, one inner iteration) bit for bit, whole runs on small synthetic and real images (both backends), the
<16 pyramid rule, flat images, sub-pixel shifts at the full default parameters, batches, and bad arguments."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from reference_tvl1 import centred_gradient, cuda_resize, estimate_dual, estimate_u, ref_tvl1, warp_backward

import tvl1
from video import quantize_flow

BACKENDS = ["numba", "torch"]
L_T, TAUT, THETA = tvl1._constants(0.25, 0.15, 0.3)


def texture(h: int, w: int, dx: float = 0.0, dy: float = 0.0, seed: int = 0) -> np.ndarray:
    """A smooth random texture [h, w] (sum of plane waves around 128) whose content is moved by (dx, dy) px."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    v = np.full((h, w), 128.0)
    for _ in range(8):
        fx, fy = rng.uniform(-0.5, 0.5, 2)
        v += rng.uniform(8, 20) * np.sin(fx * (x - dx) + fy * (y - dy) + rng.uniform(0, 6.3))
    return v


def uint8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def real_frames(real_media) -> list[np.ndarray]:
    """Grey frames 10, 11, 30, 31 of the 18 s ActivityNet clip at 341×256 (camera and actor motion)."""
    video = pytest.importorskip("video")
    frames = itertools.islice(video.iter_frames(real_media / "videos" / "v_GGSY1Qvo990.mp4"), 32)
    return [video.to_gray(f) for k, f in enumerate(frames) if k in (10, 11, 30, 31)]


def agreement(flow: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """(fraction of quantised components (method §12.4) identical, max |Δflow|) of [2, H, W] flows."""
    q, qr = (quantize_flow(np.moveaxis(f, 0, -1)) for f in (flow, ref))
    return float((q == qr).mean()), float(np.abs(flow - ref).max())


# --- stages, bit for bit -----------------------------------------------------------------------------------------


def test_pyramid_sizes_and_the_16_px_rule():
    assert tvl1.pyramid_sizes(256, 341) == [(256, 341), (205, 273), (164, 218), (131, 174), (105, 139)]
    assert tvl1.pyramid_sizes(240, 320) == [(240, 320), (192, 256), (154, 205), (123, 164), (98, 131)]
    assert tvl1.pyramid_sizes(20, 100) == [(20, 100), (16, 80)]  # 13 rows next: dropped, and all below it
    assert tvl1.pyramid_sizes(100, 19) == [(100, 19)]  # 15 columns next
    assert tvl1.pyramid_sizes(8, 8) == [(8, 8)]  # smaller than 16 already: the input alone
    assert tvl1.pyramid_sizes(256, 341, nscales=1) == [(256, 341)]
    # the resize steps: f32(1/0.8) = 1.25 down; f32(1/(dst/src)) up (docs/tvl1.md §3's examples)
    assert tvl1._resize_k(341, 273, 0.8) == np.float32(1.25)
    assert tvl1._resize_k(205, 256, None) == np.float32(0.80078125)
    assert tvl1._resize_k(131, 164, None) == np.float32(0.7987805)


@pytest.mark.parametrize(
    ("src", "dst", "fx"), [((29, 37), (23, 30), 0.8), ((18, 23), (23, 29), None), ((7, 5), (9, 6), None)]
)
def test_resize_matches_reference(src, dst, fx):
    img = np.random.default_rng(0).uniform(-50, 300, src).astype(np.float32)
    ref = cuda_resize(img, *dst, fx)
    cy = tvl1.resize_coeffs(src[0], dst[0], tvl1._resize_k(src[0], dst[0], fx))
    cx = tvl1.resize_coeffs(src[1], dst[1], tvl1._resize_k(src[1], dst[1], fx))
    np.testing.assert_array_equal(tvl1._resize_numba(img, cy, cx), ref)
    t = tvl1._resize_torch(
        torch.from_numpy(img)[None], [torch.from_numpy(c) for c in cy], [torch.from_numpy(c) for c in cx]
    )
    np.testing.assert_array_equal(t[0].numpy(), ref)


def warp_inputs(h: int = 20, w: int = 24, seed: int = 0):
    """Images and a flow that reaches every warp case: sub-pixel, exactly integer positions (5 taps in the spec's
    range), ±1e-9 around an integer, far outside the image (clamped reads), a flat patch (zero gradient)."""
    rng = np.random.default_rng(seed)
    img0, img1 = (uint8(texture(h, w, seed=seed + k)).astype(np.float32) for k in (1, 2))
    img1[:6, :6] = 77
    u1 = rng.normal(0, 1.5, (h, w)).astype(np.float32)
    u2 = rng.normal(0, 1.5, (h, w)).astype(np.float32)
    u1[::3, ::2] = np.round(u1[::3, ::2])  # integer positions
    u2[::3, ::2] = np.round(u2[::3, ::2])
    u1[1, :] = np.float32(1e-9)
    u2[2, :] = np.float32(-1e-9)
    u1[-1, :] = 40.5  # far right of the image
    u2[:, -1] = -33.25  # far above
    return img0, img1, u1, u2


def test_warp_matches_reference():
    img0, img1, u1, u2 = warp_inputs()
    gx, gy = centred_gradient(img1)
    ref = warp_backward(img0, img1, gx, gy, u1, u2)  # I1wx, I1wy, grad, rho_c
    ngx, ngy = tvl1._centred_gradient_numba(img1)
    np.testing.assert_array_equal(ngx, gx)
    np.testing.assert_array_equal(ngy, gy)
    out = [np.empty_like(img0) for _ in range(4)]
    tvl1._warp_numba(img0, img1, gx, gy, u1, u2, *out)
    for got, want in zip(out, ref, strict=True):
        np.testing.assert_array_equal(got, want)
    t = [torch.from_numpy(a)[None] for a in (img0, img1)]
    grad_i1 = tvl1._centred_gradient_torch(t[1])
    np.testing.assert_array_equal(grad_i1[0].numpy(), np.stack([gx, gy]))
    g, grad, rho_c = tvl1._warp_torch(t[0], t[1], grad_i1, torch.from_numpy(np.stack([u1, u2]))[None])
    for got, want in zip((g[0, 0], g[0, 1], grad[0], rho_c[0]), ref, strict=True):
        np.testing.assert_array_equal(got.numpy(), want)


def test_one_inner_iteration_matches_reference():
    """estimateU + estimateDualVariables once, from duals and flow that hit every threshold case and border case."""
    h, w = 17, 23
    rng = np.random.default_rng(3)
    img0, img1, u1, u2 = warp_inputs(h, w, seed=3)
    gx, gy = centred_gradient(img1)
    i1wx, i1wy, grad, rho_c = warp_backward(img0, img1, gx, gy, u1, u2)
    u1 = u1 + rng.normal(0, 0.3, (h, w)).astype(np.float32)  # rho no longer ≈ 0: all three threshold cases occur
    p = [rng.normal(0, 0.5, (h, w)).astype(np.float32) for _ in range(4)]
    n1, n2, err = estimate_u(i1wx, i1wy, grad, rho_c, *p, u1, u2, L_T, THETA, True)
    ref_p = estimate_dual(n1, n2, *p, TAUT)
    ref_err = sum(float(e) for e in err.ravel())
    rho = rho_c + (i1wx * u1 + i1wy * u2)
    assert (rho < -L_T * grad).any() and (rho > L_T * grad).any() and (np.abs(rho) <= L_T * grad).any()
    assert (grad == 0).any()  # the flat patch: the 4th case (d = 0)

    state = [a.copy() for a in (u1, u2, *p)]
    e = tvl1._sweep_numba(i1wx, i1wy, grad, rho_c, *state, L_T, TAUT, THETA, True)
    assert e == ref_err  # float64, row-major: the same sum
    for got, want in zip(state, (n1, n2, *ref_p), strict=True):
        np.testing.assert_array_equal(got, want)

    tt = lambda *a: torch.from_numpy(np.stack(a))[None]  # noqa: E731
    u_new, e_t = tvl1._estimate_u_torch(tt(u1, u2), tt(*p).view(1, 2, 2, h, w), tt(i1wx, i1wy), tt(grad)[:, 0],
                                        tt(rho_c)[:, 0], L_T, THETA, True)  # fmt: skip
    p_new = tvl1._dual_torch(u_new, tt(*p).view(1, 2, 2, h, w), TAUT)
    np.testing.assert_array_equal(u_new[0].numpy(), np.stack([n1, n2]))
    np.testing.assert_array_equal(p_new[0].flatten(0, 1).numpy(), np.stack(ref_p))
    assert float(e_t[0]) == pytest.approx(ref_err, rel=1e-12)  # torch's summation order


# --- whole runs against the reference ----------------------------------------------------------------------------


def synthetic_pair(h: int, w: int, dx: float, dy: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    return uint8(texture(h, w, seed=seed)), uint8(texture(h, w, dx, dy, seed=seed))


CASES = {  # name: (pair maker, keyword arguments)
    "shift": (lambda rf: synthetic_pair(28, 36, 0.6, -0.35), {}),  # 28×36 → 22×29 → 18×23, then <16: 3 levels
    "border": (lambda rf: synthetic_pair(24, 32, 2.7, 1.9, seed=5), {"warps": 2}),  # content leaves the image
    "thin": (lambda rf: synthetic_pair(17, 40, -0.8, 0.3, seed=2), {"warps": 3}),  # one level (17 → 14 rows)
    # another pyramid factor: 24×30 → 17×21, the flow upsampled × f32(1/0.7), not × 1.25
    "scale_step": (
        lambda rf: synthetic_pair(24, 30, 0.6, 0.4, seed=3),
        {"scale_step": 0.7, "warps": 2, "iterations": 40},
    ),
    "real_camera": (
        lambda rf: (rf[0][32:64, 100:140], rf[1][32:64, 100:140]),
        {"warps": 3, "iterations": 80},
    ),  # ≈ 3 px
    "real_actor": (
        lambda rf: (rf[2][32:64, 260:300], rf[3][32:64, 260:300]),
        {"warps": 3, "iterations": 80},
    ),  # ≈ 5.7 px
}


@pytest.mark.parametrize("case", list(CASES))
def test_port_matches_reference(case, request):
    make, kwargs = CASES[case]
    frames = request.getfixturevalue("real_frames") if case.startswith("real") else None
    a, b = make(frames)
    ref, runs = ref_tvl1(a, b, **kwargs)
    levels = 1 + max(s for s, _ in runs)
    for backend in BACKENDS:
        flow, iters = tvl1.tvl1(torch.from_numpy(a), torch.from_numpy(b), backend=backend, return_iterations=True,
                                **kwargs)  # fmt: skip
        same, max_diff = agreement(flow.numpy(), ref)
        assert same >= 0.999 and max_diff <= 1e-4, (backend, same, max_diff)
        assert iters.shape == (levels, kwargs.get("warps", 5))
        assert {k: int(iters[k]) for k in runs} == runs, backend  # the same stopping schedule, warp by warp
    assert np.hypot(*ref).mean() > 0.3  # a real motion was estimated


def test_flat_images():
    """Zero gradient: no data term, so the flow stays exactly 0; the first check (n = 1) stops every warp."""
    for a, b in (
        (np.full((20, 24), 100, np.uint8),) * 2,
        (np.full((20, 24), 80, np.uint8), np.full((20, 24), 120, np.uint8)),
    ):
        ref, runs = ref_tvl1(a, b, warps=2)
        assert not ref.any() and set(runs.values()) == {2}
        for backend in BACKENDS:
            flow, iters = tvl1.tvl1(a, b, warps=2, backend=backend, return_iterations=True)
            assert not flow.any() and (iters == 2).all()


def test_epsilon_zero_runs_every_iteration():
    a, b = synthetic_pair(20, 24, 0.5, 0.5)
    for backend in BACKENDS:
        _, iters = tvl1.tvl1(a, b, epsilon=0.0, iterations=7, warps=2, backend=backend, return_iterations=True)
        assert (iters == 7).all()
    _, iters = tvl1.tvl1(a, b, iterations=0, return_iterations=True)
    assert not iters.any()


# --- accuracy, batches, backends ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("dx", "dy"), [(0.37, -0.81), (1.6, 0.45), (-2.3, 1.2)])
def test_recovers_subpixel_shift(dx, dy):
    """Full default parameters, uint8 frames: the mean error away from the borders is < 0.02 px."""
    a, b = synthetic_pair(96, 128, dx, dy, seed=1)
    flow = tvl1.tvl1(a, b).numpy()
    inner = flow[:, 16:-16, 16:-16]
    assert np.abs(inner[0] - dx).mean() < 0.02 and np.abs(inner[1] - dy).mean() < 0.02


def test_batch_equals_pairs_and_backends_agree(real_frames):
    """A batch (with a flat pair that stops at once and a pair moving the other way) equals its pairs run one by one,
    with any thread count, and the torch backend (the CUDA code) equals the numba backend bit for bit."""
    f = [fr[32:72, 100:156] for fr in real_frames]
    flat = np.full_like(f[0], 90)
    prev, nxt = np.stack([f[0], f[2], flat, f[1]]), np.stack([f[1], f[3], flat, f[0]])
    kw = {"warps": 3, "iterations": 100}
    batch, iters = tvl1.tvl1(prev, nxt, threads=2, return_iterations=True, **kw)
    assert batch.shape == (4, 2, 40, 56) and batch.dtype == torch.float32
    assert len({int(i) for i in iters[:, 0, 0]}) > 1  # the pairs stop at different iterations
    for k in range(len(prev)):
        one, it = tvl1.tvl1(prev[k], nxt[k], threads=1, return_iterations=True, **kw)
        assert one.shape == (2, 40, 56)
        torch.testing.assert_close(batch[k], one, rtol=0, atol=0)
        np.testing.assert_array_equal(iters[k], it)
    by_torch, it_torch = tvl1.tvl1(prev, nxt, backend="torch", return_iterations=True, **kw)
    torch.testing.assert_close(by_torch, batch, rtol=0, atol=0)
    np.testing.assert_array_equal(it_torch, iters)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_equals_cpu():
    """The torch backend on the GPU against numba on the CPU: the same float32 operations, so the same flow (up to a
    tie in the float64 stopping sums, which sum in another order)."""
    prev = np.stack([uint8(texture(48, 64, seed=s)) for s in range(3)])
    nxt = np.stack([uint8(texture(48, 64, 0.7 * s - 0.5, 0.4, seed=s)) for s in range(3)])
    cpu, it_cpu = tvl1.tvl1(prev, nxt, warps=3, return_iterations=True)
    gpu, it_gpu = tvl1.tvl1(
        torch.from_numpy(prev).cuda(), torch.from_numpy(nxt).cuda(), warps=3, return_iterations=True
    )
    assert gpu.is_cuda
    same, max_diff = agreement(gpu.cpu().flatten(0, 1).numpy(), cpu.flatten(0, 1).numpy())
    assert same >= 0.999 and max_diff <= 1e-4
    np.testing.assert_array_equal(it_gpu, it_cpu)


def test_inputs():
    a, b = synthetic_pair(20, 24, 0.5, 0.2)
    u8 = tvl1.tvl1(torch.from_numpy(a), torch.from_numpy(b), warps=1)
    as_float = tvl1.tvl1(torch.from_numpy(a).double(), torch.from_numpy(b).double(), warps=1)  # 0..255, not /255
    torch.testing.assert_close(u8, as_float, rtol=0, atol=0)
    torch.testing.assert_close(tvl1.tvl1(a, b, warps=1), u8, rtol=0, atol=0)  # numpy in
    with pytest.raises(ValueError, match="one shape"):
        tvl1.tvl1(a, b[:-1])
    with pytest.raises(ValueError, match="one shape"):
        tvl1.tvl1(a[None, None], b[None, None])
    with pytest.raises(ValueError, match="uint8 or float"):
        tvl1.tvl1(a.astype(np.int32), b.astype(np.int32))
    with pytest.raises(ValueError, match="unknown backend"):
        tvl1.tvl1(a, b, backend="opencl")
    with pytest.raises(ValueError, match="out of range"):
        tvl1.tvl1(a, b, warps=0)
