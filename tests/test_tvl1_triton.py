"""tvl1.py's Triton backend (tvl1_triton.py, the CUDA default) against the per-pixel reference and the numba backend.

Without a GPU the kernels run in Triton's interpreter on CPU (a subprocess: TRITON_INTERPRET must be set before
triton is imported), on tiny images with several programs per image, so tile borders, the per-program float64 error
partials and the device-side stopping schedule are all exercised. Stages are compared bit for bit with
tests/reference_tvl1.py; whole runs bit for bit with the numba backend (which equals the reference, test_tvl1.py),
including the inner iterations run in every warp. On CUDA, a real 341×256 pair: Triton vs torch vs numba.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from test_tvl1 import agreement

import tvl1

ROOT = Path(__file__).resolve().parents[1]

INTERPRETER_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path[:0] = [sys.argv[1], sys.argv[1] + "/tests"]
    import numpy as np, torch, tvl1, tvl1_triton as tt
    from reference_tvl1 import centred_gradient, cuda_resize, estimate_dual, estimate_u, warp_backward
    from test_tvl1 import L_T, TAUT, THETA, synthetic_pair, warp_inputs

    # the interpreter is slow: 2-4 programs per image for the iteration kernels (tile borders, partial sums), one for
    # the warp; polls every 4 iterations (answered one poll late: up to 8 no-op iterations after the last pair stops)
    tt.BLOCK, tt.WARP_BLOCK, tt.CHECK_EVERY = 512, 1024, 4
    checked = []

    # §3 resize, down (factor 0.8) and up (to a size, then × f32(1/0.8)), 2 images per launch
    for src, dst, fx in (((29, 37), (23, 30), 0.8), ((18, 23), (23, 29), None)):
        img = np.random.default_rng(0).uniform(-50, 300, (2, *src)).astype(np.float32)
        cy, cx = (tt._coeffs(tvl1.resize_coeffs(s, d, tvl1._resize_k(s, d, fx)), "cpu") for s, d in zip(src, dst))
        factor = None if fx else 1.25
        got = tt.resize(torch.from_numpy(img), cy, cx, dst, factor).numpy()
        for k in range(2):
            want = cuda_resize(img[k], *dst, fx) * np.float32(factor or 1)
            assert np.array_equal(got[k], want), ("resize", src, dst)
        checked.append("resize")

    # §4.2 warp (sub-pixel, integer and ±1e-9 positions, far outside the image, a flat patch), and its state reset
    img0, img1, u1, u2 = warp_inputs()
    gx, gy = centred_gradient(img1)
    want = warp_backward(img0, img1, gx, gy, u1, u2)
    t = lambda *a: torch.from_numpy(np.stack(a))[None]
    data = torch.empty((1, 3, *img0.shape))
    state = (torch.full((1,), 5.0, dtype=torch.float64), torch.full((1,), 9, dtype=torch.int32),
             torch.full((1, 2), 7, dtype=torch.int32))
    tt.warp(t(img0)[0], t(img1)[0], t(u1, u2), data, state, 1)
    for got, w in zip((data[0, 0], data[0, 1], data[0, 2]), (want[0], want[1], want[3])):
        assert np.array_equal(got.numpy(), w), "warp"
    assert float(state[0]) == 0.0 and int(state[1]) == 0 and int(state[2][0, 0]) == 1
    checked.append("warp")

    # §4.3 one inner iteration (every threshold and border case), its float64 error sum and one §4.4 step
    h, w = 17, 23
    rng = np.random.default_rng(3)
    img0, img1, u1, u2 = warp_inputs(h, w, seed=3)
    i1wx, i1wy, grad, rho_c = warp_backward(img0, img1, *centred_gradient(img1), u1, u2)
    u1 = u1 + rng.normal(0, 0.3, (h, w)).astype(np.float32)
    p = [rng.normal(0, 0.5, (h, w)).astype(np.float32) for _ in range(4)]
    n1, n2, err = estimate_u(i1wx, i1wy, grad, rho_c, *p, u1, u2, L_T, THETA, True)
    ref_p = estimate_dual(n1, n2, *p, TAUT)
    ref_err = sum(float(e) for e in err.ravel())
    assert np.array_equal(i1wx * i1wx + i1wy * i1wy, grad)  # the kernel recomputes grad this way
    u, pp = t(u1, u2).contiguous(), t(*p).contiguous()
    state = (torch.zeros(1, dtype=torch.float64), torch.zeros(1, dtype=torch.int32),
             torch.zeros((1, 2), dtype=torch.int32))
    state[2][0, 0] = 2  # run and check
    scaled = ref_err * 2  # the error is below scaledEps: the pair stops, the 2 further launches change nothing
    tt.inner_loop(u, pp, t(i1wx, i1wy, rho_c), state, torch.tensor([scaled], dtype=torch.float64), 1, True, 3, L_T,
                  TAUT, THETA)
    assert np.array_equal(u[0].numpy(), np.stack([n1, n2])), "estimateU"
    assert np.array_equal(pp[0].numpy(), np.stack(ref_p)), "dual"
    assert abs(float(state[0]) - ref_err) <= 1e-12 * ref_err, (float(state[0]), ref_err)  # a tree order, not row-major
    assert int(state[1]) == 1 and int(state[2][0, 1]) == 0
    checked.append("iteration")

    def same(a, b, **kw):  # → the Triton flow and iterations, equal to numba's (whose batches equal their pairs)
        flow, it = tvl1.tvl1(a, b, backend="triton", return_iterations=True, **kw)
        want, it_want = tvl1.tvl1(a, b, backend="numba", threads=1, return_iterations=True, **kw)
        assert torch.equal(flow, want), (kw, float((flow - want).abs().max()))
        assert np.array_equal(it, it_want), (kw, it.tolist(), it_want.tolist())
        return flow, it

    # whole runs: a batch of 3 pairs with different stopping times (3 levels: 28×36 → 22×29 → 18×23, then < 16):
    # a sub-pixel shift, content leaving the image, a flat pair (stops at 2 iterations, then frozen); each pair of
    # the batch equals numba's run of that pair alone
    pairs = [synthetic_pair(28, 36, 0.6, -0.35), synthetic_pair(28, 36, 2.7, 1.9, seed=5),
             (np.full((28, 36), 80, np.uint8), np.full((28, 36), 120, np.uint8))]
    prev, nxt = np.stack([a for a, _ in pairs]), np.stack([b for _, b in pairs])
    kw = dict(warps=2, iterations=30)
    flow, it = tvl1.tvl1(prev, nxt, backend="triton", return_iterations=True, **kw)
    assert it.shape == (3, 3, 2) and len({tuple(i.ravel()) for i in it}) == 3, it.tolist()  # stop apart
    assert not flow[2].any() and (it[2] == 2).all()
    for k, (a, b) in enumerate(pairs):
        one, it_one = tvl1.tvl1(a, b, backend="numba", threads=1, return_iterations=True, **kw)
        assert torch.equal(flow[k], one) and np.array_equal(it[k], it_one), (k, it[k].tolist(), it_one.tolist())
    assert float(flow[0, 0, 8:-8, 8:-8].mean()) > 0.3  # a real motion was estimated
    checked.append("batch")

    same(*synthetic_pair(17, 40, -0.8, 0.3, seed=2), warps=1, iterations=30)  # one level: 17 → 14 rows < 16
    checked.append("one level")
    _, it = same(*synthetic_pair(20, 24, 0.5, 0.5), warps=1, iterations=5, epsilon=0.0)  # no checks: all run
    assert (it == 5).all()
    _, it = same(*synthetic_pair(20, 24, 0.5, 0.5), iterations=0)
    assert not it.any()
    checked.append("epsilon 0, iterations 0")
    print("checked", ", ".join(checked))
    """
)


def test_triton_backend_in_interpreter_matches_reference_and_numba():
    pytest.importorskip("triton")
    env = {**os.environ, "TRITON_INTERPRET": "1", "TRITON_DEFAULT_FP_FUSION": "0"}
    res = subprocess.run(
        [sys.executable, "-c", INTERPRETER_SCRIPT, str(ROOT)], env=env, capture_output=True, text=True, timeout=600
    )
    assert res.returncode == 0, res.stderr[-4000:]
    assert "checked resize, resize, warp, iteration, batch, one level, epsilon 0, iterations 0" in res.stdout


# the kernels' signatures as the host launches them (pointers, int32 scalars, float32 scalars, constexprs)
P, P64, PI, F, I = "*fp32", "*fp64", "*i32", "fp32", "i32"
SIGNATURES = {
    "_resize_kernel": (
        dict(
            src=P,
            dst=P,
            yi1=PI,
            yi2=PI,
            ya0=P,
            ya1=P,
            xi1=PI,
            xi2=PI,
            xa0=P,
            xa1=P,
            h=I,
            w=I,
            height=I,
            width=I,
            factor=F,
        ),  # fmt: skip
        {"SCALE": True, "block": 1024},
    ),
    "_warp_kernel": (
        dict(img0=P, img1=P, u=P, data=P, prev_err=P64, count=PI, flags=PI, height=I, width=I, first_flag=I),
        {"block": 256},
    ),
    "_estimate_u_kernel": (
        dict(u=P, p=P, data=P, partials=P64, flags=PI, parity=I, height=I, width=I, l_t=F, theta=F),
        {"n_part": 128, "block": 1024},
    ),
    "_dual_kernel": (
        dict(
            u=P,
            p=P,
            partials=P64,
            prev_err=P64,
            count=PI,
            flags=PI,
            scaled_eps=P64,
            parity=I,
            height=I,
            width=I,
            taut=F,
            iterations=I,
            n_tiles=I,
            above_max=I,
            eps_pos=I,
        ),  # fmt: skip
        {"n_part": 128, "block": 1024},
    ),
}


@pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") == "1", reason="compiles real kernels")
def test_kernels_compile_for_h200_without_fma_or_approximations():
    """No GPU needed: compile each kernel for sm_90 (H100/H200) with the launch options and read the PTX. The float32
    arithmetic must be IEEE-rounded single operations (mul.rn / add.rn, div.rn, no fma, no approximate or
    flush-to-zero instruction) and the hypot's float64 sqrt sqrt.rn.f64 — what the interpreter cannot show."""
    triton = pytest.importorskip("triton")
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    import tvl1_triton

    for name, (sig, constexprs) in SIGNATURES.items():
        src = ASTSource(getattr(tvl1_triton, name), {**sig, **dict.fromkeys(constexprs, "constexpr")}, constexprs)
        ptx = triton.compile(src, target=GPUTarget("cuda", 90, 32), options=dict(tvl1_triton.LAUNCH)).asm["ptx"]
        body = ptx[ptx.index(".entry") :]
        for bad in ("fma.", "mad.f", ".approx", ".ftz", "div.full"):
            assert bad not in body, (name, bad)
        assert "mul.rn.f32" in body and "add.rn.f32" in body, name
        if name != "_resize_kernel":
            assert "div.rn.f32" in body, name
        if name == "_dual_kernel":
            assert "sqrt.rn.f64" in body and "mul.rn.f64" in body, name


def test_backend_selection():
    a = np.zeros((20, 24), np.uint8)
    assert tvl1._auto_backend(torch.device("cpu")) == "numba"
    if "TRITON_INTERPRET" not in os.environ:
        with pytest.raises(ValueError, match="needs CUDA tensors"):
            tvl1.tvl1(a, a, backend="triton")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_triton_vs_torch_vs_numba_on_real_frames(real_media):
    """A real 341×256 pair, authors' parameters: the compiled kernels (FMA fusion off, IEEE divisions) should give the
    numba flow; the float64 error sums run in another order, so a stopping decision may differ: ≥ 99.9 % quantised."""
    pytest.importorskip("triton")
    assert tvl1._auto_backend(torch.device("cuda")) == "triton"
    import video

    frames = itertools.islice(video.iter_frames(real_media / "videos" / "v_GGSY1Qvo990.mp4"), 32)
    grey = [video.to_gray(f) for k, f in enumerate(frames) if k in (10, 11, 30, 31)]  # camera and actor motion
    prev, nxt = np.stack([grey[0], grey[2]]), np.stack([grey[1], grey[3]])
    cpu, it_cpu = tvl1.tvl1(prev, nxt, return_iterations=True)
    gp, gn = torch.from_numpy(prev).cuda(), torch.from_numpy(nxt).cuda()
    for backend in ("triton", "torch"):
        flow, it = tvl1.tvl1(gp, gn, backend=backend, return_iterations=True)
        assert flow.is_cuda and flow.shape == (2, 2, 256, 341)
        same, max_diff = agreement(flow.cpu().flatten(0, 1).numpy(), cpu.flatten(0, 1).numpy())
        assert same >= 0.999, (backend, same, max_diff)
        assert (it == it_cpu).mean() >= 0.95, (backend, it.tolist(), it_cpu.tolist())
