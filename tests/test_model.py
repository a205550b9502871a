"""model.py against the slow reference (tests/reference_model.py) and method §2.5's state-dict layout."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import reference_model as ref
import torch

import model
import model_cpu
from model import ACRNet, ACRNetOutput

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
DTYPES = [torch.float32, torch.float64]
ROOT = Path(__file__).resolve().parents[1]


def make_inputs(kind: str, n: int, t: int, c: int, dtype: torch.dtype, seed: int) -> tuple[torch.Tensor, ...]:
    """(seg_score, cas) [n, t, c] of a given flavour: random, quantised (many ties), or all-equal rows."""
    g = torch.Generator().manual_seed(seed)
    seg = torch.rand(n, t, c, generator=g, dtype=torch.float64)
    cas = torch.randn(n, t, c, generator=g, dtype=torch.float64) * 2
    if kind == "q1":  # heavy ties in scores and logits
        seg, cas = torch.round(seg * 10) / 10, torch.round(cas * 2) / 2
    elif kind == "q2":
        seg, cas = torch.round(seg * 100) / 100, torch.round(cas * 10) / 10
    elif kind == "equal":  # every row constant; a few videos with constant logits too
        seg = torch.full_like(seg, 0.37)
        cas[: n // 2] = 0.25
    return seg.to(dtype), cas.to(dtype)


CASES = [(t, c) for t in (1, 2, 3, 11) for c in (1, 20)] + [(11, 200), (3, 200), (60, 4), (300, 4)]  # T 300: long rows


@pytest.fixture(params=["numba", "torch"])
def rows_impl(request, monkeypatch):
    """Run §3–§5 through each implementation on the CPU: the numba kernel (the CPU's) or the torch ops on sorted rows
    (CUDA's, with the numba §3 scan standing in for the Triton one)."""
    if request.param == "torch":
        monkeypatch.setattr(model, "_rows_cpu", model._rows_torch)
    return request.param


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("kind", ["random", "q1", "q2", "equal"])
@pytest.mark.parametrize(("t", "c"), CASES, ids=[f"T{t}-C{c}" for t, c in CASES])
def test_clustering_refining_scores_match_reference(t, c, kind, dtype, device, rows_impl):
    n = 2 if c == 200 else 3
    seg, cas = make_inputs(kind, n, t, c, dtype, seed=t * 1000 + c)
    want = ref.heads_and_scores(seg.numpy(), cas.numpy())
    seg_d, cas_d = seg.to(device), cas.to(device)

    mask = model.temporal_clustering(seg_d)
    assert mask.dtype == dtype and mask.shape == seg.shape
    np.testing.assert_array_equal(mask.cpu().numpy(), want["mask"])

    refined = model.refine_mask(seg_d, mask, cas_d)
    np.testing.assert_array_equal(refined.cpu().numpy(), want["seg_mask"])
    assert (refined <= mask).all()  # refining only removes positives

    act, bkg = model.video_scores(seg_d, refined, cas_d)
    np.testing.assert_allclose(act.cpu().double().numpy(), want["act_score"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(bkg.cpu().double().numpy(), want["bkg_score"], rtol=0, atol=1e-6)


def test_clustering_edge_rows():
    # T = 1: the only snippet is positive; T = 2: top positive, bottom negative (ties: earlier snippet is "top").
    one = model.temporal_clustering(torch.tensor([[[0.3, 0.9]]]))
    assert one.tolist() == [[[1.0, 1.0]]]
    two = model.temporal_clustering(torch.tensor([[[0.2], [0.8]], [[0.5], [0.5]]]))
    assert two[:, :, 0].tolist() == [[0.0, 1.0], [1.0, 0.0]]
    # a clear two-level row splits at the gap
    row = torch.tensor([0.9, 0.1, 0.88, 0.12, 0.91, 0.1], dtype=torch.float64).view(1, 6, 1)
    assert model.temporal_clustering(row)[0, :, 0].tolist() == [1, 0, 1, 0, 1, 0]


@pytest.mark.parametrize("shape", [(2, 0, 3), (0, 5, 3), (2, 5, 0)], ids=["T0", "N0", "C0"])
def test_empty_inputs_give_empty_outputs(shape, rows_impl):
    # T = 0 used to crash in the §3 scan (reshape(-1, 0) is ambiguous); refine_mask / video_scores already coped
    seg = torch.rand(shape, dtype=torch.float64)
    assert model.temporal_clustering(seg).shape == shape
    assert model.refine_mask(seg, seg, seg).shape == shape
    mask, act, bkg = model.clustered_scores(seg, seg)
    assert mask.shape == shape and act.shape == bkg.shape == (shape[0], shape[2])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_forward_chain_equals_public_steps_and_no_positive_rows(dtype, device, rows_impl):
    seg, cas = (x.to(device) for x in make_inputs("q1", 3, 11, 5, dtype, seed=3))
    mask = model.refine_mask(seg, model.temporal_clustering(seg), cas)
    act, bkg = model.video_scores(seg, mask, cas)
    got_mask, got_act, got_bkg = model.clustered_scores(seg, cas)  # one pass over the rows
    assert torch.equal(got_mask, mask)
    torch.testing.assert_close(got_act, act, rtol=0, atol=1e-12)
    torch.testing.assert_close(got_bkg, bkg, rtol=0, atol=1e-12)
    empty = torch.zeros_like(seg)  # refine_mask is public: a mask with no positives gives threshold 0
    assert model.refine_mask(seg, empty, cas).eq(0).all()
    np.testing.assert_array_equal(ref.refine_mask(seg.cpu().numpy(), empty.cpu().numpy(), cas.cpu().numpy()), 0)


def adversarial_rows(dtype: np.dtype, seed: int) -> list[np.ndarray]:
    """Rows for the stable descending sort: ties, ±0.0, ±inf, negatives, subnormals, values a few ulps apart, huge
    ranges, crowded values (a bucket of > 16 values: the LSD radix sort), and the lengths T = 1, 2, 11."""
    rng = np.random.default_rng(seed)
    tiny, big = np.finfo(dtype).tiny, np.finfo(dtype).max
    rows = [
        rng.random(80).astype(dtype),
        np.round(rng.random(80) * 4).astype(dtype) / 4,  # heavy ties
        np.full(37, 0.37, dtype),  # all equal
        np.array([0.0, -0.0, 0.0, -0.0, 1.0, -1.0, -0.0], dtype),  # -0.0 ties +0.0
        (rng.standard_normal(300) * 1e3).astype(dtype),  # both signs, many exponents
        np.array([tiny / 4, tiny / 2, 0.0, -tiny / 4, tiny, -tiny], dtype),  # subnormals
        np.nextafter(dtype(0.5), dtype(1), dtype=dtype) ** np.arange(60).astype(dtype),  # values ulps apart
        (0.5 + rng.integers(0, 40, 750) * np.finfo(dtype).eps).astype(dtype),  # crowded: many ties, few values
        np.concatenate([np.full(40, 0.25, dtype), rng.random(40).astype(dtype)]),  # one crowded bucket of ties
        np.concatenate([[big, -big], rng.random(30).astype(dtype)]).astype(dtype),  # range overflows: one bucket
        np.array([np.inf, 1, -np.inf, 0, np.inf, -0.0, 3] * 3, dtype),  # ±inf: buckets collapse
        np.concatenate([[1e30], rng.random(40)]).astype(dtype),  # an outlier: the rest crowd one bucket
        np.array([0.3], dtype),
        np.array([0.2, 0.2], dtype),
        rng.random(11).astype(dtype),
    ]
    return rows


def stable_desc(row: np.ndarray) -> list[int]:
    return sorted(range(len(row)), key=lambda k: -row[k])  # Python's sort is stable; -0.0 == 0.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_row_sorts_are_stable_descending_sorts(dtype):
    rows = adversarial_rows(dtype, seed=5)
    for i, row in enumerate(rows):  # the LSD radix sort alone (the bucket sort's fallback for crowded rows)
        t = len(row)
        order = np.empty(t, np.int64)
        scratch = np.empty((2, t), np.uint64), np.empty((2, t), np.int64), np.empty(256, np.int64)
        model_cpu._lsd_argsort(np.ascontiguousarray(row), order, *scratch)
        assert order.tolist() == stable_desc(row), i
    for t in sorted({len(r) for r in rows}):  # the block sort: every row of that length in one block, as columns
        block = [r for r in rows if len(r) == t]
        block += [r[::-1].copy() for r in block] + [np.roll(r, 3) for r in block]
        u = np.zeros((t, model_cpu.LANES), dtype)
        for lanes in range(0, len(block), model_cpu.LANES):
            cols = block[lanes : lanes + model_cpu.LANES]
            u[:, : len(cols)] = np.stack(cols, axis=1)
            order, v = np.empty((model_cpu.LANES, t), np.int64), np.empty_like(u)
            model_cpu._sort_block(u, len(cols), order, v, model_cpu._sort_scratch(t, u))
            for j, col in enumerate(cols):
                assert order[j].tolist() == stable_desc(col), (t, j)
                assert v[:, j].tobytes() == col[order[j]].tobytes()


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("kind", ["random", "q1", "equal"])
def test_numba_and_torch_row_results_agree(kind, dtype):
    # the CPU kernel and the CUDA path's torch ops give the same masks and (to rounding) weights and logits
    seg, cas = make_inputs(kind, 3, 60, 7, dtype, seed=8)
    for args in ((seg, cas, None, True), (seg, None, None, False), (seg, cas, (seg > 0.5).to(dtype), False)):
        fast, slow = model._rows_cpu(*args), model._rows_torch(*args)
        assert torch.equal(fast.mask, slow.mask)
        tol = 1e-12 if dtype == torch.float64 else 1e-6
        torch.testing.assert_close(fast.weight, slow.weight, rtol=0, atol=tol)
        if args[1] is not None:
            torch.testing.assert_close(fast.logits, slow.logits, rtol=0, atol=10 * tol)


def test_run_blocks_covers_each_block_once_and_raises(monkeypatch):
    for threads in (1, 2, 3):
        monkeypatch.setattr(model_cpu.torch, "get_num_threads", lambda threads=threads: threads)
        for n_blocks, per_chunk in ((1, 1), (7, 2), (10, 3), (5, 9)):
            seen = np.zeros(n_blocks, int)

            def kernel(first, end, seen=seen):
                seen[first:end] += 1

            model_cpu._run_blocks(kernel, n_blocks, per_chunk)
            assert seen.tolist() == [1] * n_blocks, (threads, n_blocks, per_chunk)

        def fail(first, end):
            raise RuntimeError(f"block {first}")

        with pytest.raises(RuntimeError, match="block"):
            model_cpu._run_blocks(fail, 6, 1)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_row_results_equal_on_one_and_two_threads(dtype):
    seg, cas = make_inputs("q2", 8, 750, 20, dtype, seed=4)  # 5 blocks of rows, in 3 chunks
    before = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            results.append(model._rows_cpu(seg, cas, None, True))
    finally:
        torch.set_num_threads(before)
    for a, b in zip(*results, strict=True):
        assert a.numpy().tobytes() == b.numpy().tobytes()


def test_video_scores_gradient_equals_autograd_of_the_spec_formula():
    # §5 written out with autograd (sort, weights w_k = 1/(k+2), masked means); the custom backward must match
    seg, cas = make_inputs("q2", 3, 23, 6, torch.float64, seed=9)
    mask = torch.from_numpy(ref.heads_and_scores(seg.numpy(), cas.numpy())["seg_mask"])
    g_act, g_bkg = torch.randn(3, 6, dtype=torch.float64), torch.randn(3, 6, dtype=torch.float64)

    def spec(logits):
        idx = torch.sort(seg, dim=1, descending=True, stable=True).indices
        a, m = logits.gather(1, idx), mask.gather(1, idx)
        w = (1 / torch.arange(2, 25, dtype=torch.float64)).view(1, -1, 1) * m
        act = (a * w).sum(1) / w.sum(1).clamp(min=1)
        bkg = (a * (1 - m)).sum(1) / (1 - m).sum(1).clamp(min=1)
        return act.softmax(-1), bkg.softmax(-1)

    want_cas = cas.clone().requires_grad_()
    torch.autograd.backward(spec(want_cas), (g_act, g_bkg))
    got_cas = cas.clone().requires_grad_()
    got = model.video_scores(seg, mask, got_cas)
    torch.autograd.backward(got, (g_act, g_bkg))
    for a, b in zip(got, spec(cas), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    torch.testing.assert_close(got_cas.grad, want_cas.grad, rtol=0, atol=1e-12)
    rows = model._rows_cpu(seg, cas, mask, refine=False)  # CUDA's torch backward, run on the CPU, agrees exactly
    assert torch.equal(
        model._logits_grad(rows.mask, rows.weight, g_act, g_bkg),
        model._logits_grad_torch(rows.mask, rows.weight, g_act, g_bkg),
    )


def test_triton_kernel_in_interpreter_matches_reference():
    """The CUDA clustering kernel, run on CPU by Triton's interpreter (a subprocess: the variable must be set
    before the kernel is built)."""
    pytest.importorskip("triton")
    script = textwrap.dedent(
        """
        import sys
        sys.path[:0] = [sys.argv[1], sys.argv[1] + "/tests"]
        import numpy as np, torch, model, reference_model as ref
        from test_model import make_inputs
        count = 0
        for dtype in (torch.float32, torch.float64):
            for t, c in ((1, 3), (2, 3), (3, 4), (11, 5), (11, 1), (30, 2)):
                for kind in ("random", "q1", "equal"):
                    seg, _ = make_inputs(kind, 2, t, c, dtype, seed=7 * t + c)
                    vals, idx = model.sort_rows(seg)
                    sorted_mask = model._cluster_scan_triton(vals.reshape(-1, t)).view_as(vals)  # [N, C, T]
                    assert torch.equal(sorted_mask, model._cluster_sorted(vals)), (dtype, t, c, kind)
                    mask = model._unsort(sorted_mask, idx)
                    assert np.array_equal(mask.numpy(), ref.temporal_clustering(seg.numpy())), (dtype, t, c, kind)
                    count += 1
        print("checked", count)
        """
    )
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    res = subprocess.run([sys.executable, "-c", script, str(ROOT)], env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "checked 36" in res.stdout


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_losses_match_reference(dtype, device):
    n, t, c = 4, 11, 6
    seg, cas = make_inputs("q2", n, t, c, dtype, seed=11)
    g = torch.Generator().manual_seed(5)
    label = (torch.rand(n, c, generator=g) < 0.3).to(dtype)
    label[0] = 0  # a video with no label: max(Σ y, 1) guard
    aas_rgb = torch.rand(n, t, 1, generator=g, dtype=dtype)
    aas_flow = torch.rand(n, t, 1, generator=g, dtype=dtype)
    aas_rgb[1, 0, 0] = 0.0  # eps clamps
    aas_flow[1, 1, 0] = 1.0
    want = ref.heads_and_scores(seg.numpy(), cas.numpy())
    mask = torch.from_numpy(want["seg_mask"])
    act, bkg = torch.from_numpy(want["act_score"]).to(dtype), torch.from_numpy(want["bkg_score"]).to(dtype)
    act[2, 0] = 0.0  # eps clamp inside log

    dev = [x.to(device) for x in (act, bkg, label, mask, aas_rgb, aas_flow)]
    got_cls = model.cls_loss(dev[0], dev[1], dev[2]).item()
    want_cls = ref.cls_loss(act.double().numpy(), bkg.double().numpy(), label.numpy())
    assert got_cls == pytest.approx(want_cls, abs=1e-6)

    want_gce = ref.gce_loss(aas_rgb[..., 0].numpy(), mask.numpy(), label.numpy())
    assert model.gce_loss(dev[4], dev[3], dev[2]).item() == pytest.approx(want_gce, abs=1e-6)
    assert model.gce_loss(dev[4][..., 0], dev[3], dev[2]).item() == pytest.approx(want_gce, abs=1e-6)  # [N, T]

    out = ACRNetOutput(dev[0], dev[1], seg.to(device), dev[3], dev[4], dev[5], cas.to(device))
    total, parts = model.acrnet_loss(out, dev[2], lamda=0.1)
    want_flow = ref.gce_loss(aas_flow[..., 0].numpy(), mask.numpy(), label.numpy())
    assert parts["cls"].item() == pytest.approx(want_cls, abs=1e-6)
    assert parts["gce_flow"].item() == pytest.approx(want_flow, abs=1e-6)
    assert total.item() == pytest.approx(want_cls + 0.1 * (want_gce + want_flow), abs=1e-6)


def test_gce_rejects_bad_aas_shape():
    with pytest.raises(ValueError, match="aas must be"):
        model.gce_loss(torch.rand(2, 5, 3), torch.zeros(2, 5, 3), torch.ones(2, 3))


# --- §2 network -----------------------------------------------------------------------------------------------


def spec_state_dict_shapes(c: int) -> dict[str, tuple[int, ...]]:
    """method §2.5, written out from the spec (not from the model)."""
    shapes = {"mca.rgb_proj": (4, 1024, 256), "mca.flow_proj": (4, 1024, 256), "mca.atte": (4, 256, 256)}
    for m in ("rgb_bwa", "flow_bwa"):
        for layer in ("attn", "conv"):
            shapes[f"{m}.{layer}.0.weight"] = (1024, 1024, 3)
            shapes[f"{m}.{layer}.0.bias"] = (1024,)
    for s in ("rgb", "flow"):
        shapes[f"cas_{s}_encoder.0.weight"] = (1024, 1024, 3)
        shapes[f"cas_{s}_encoder.0.bias"] = (1024,)
        shapes[f"cas_{s}_encoder.2.weight"] = (c, 1024, 1)
        shapes[f"cas_{s}_encoder.2.bias"] = (c,)
        shapes[f"aas_{s}_encoder.0.weight"] = (512, 1024, 1)
        shapes[f"aas_{s}_encoder.0.bias"] = (512,)
        shapes[f"aas_{s}_encoder.2.weight"] = (1, 512, 1)
        shapes[f"aas_{s}_encoder.2.bias"] = (1,)
    return shapes


@pytest.mark.parametrize("c", [20, 100, 200])
def test_spec_state_dict_loads_strict(c, tmp_path):
    shapes = spec_state_dict_shapes(c)
    sd = {k: torch.randn(s) for k, s in shapes.items()}
    path = tmp_path / "authors.pth"
    torch.save(sd, path)
    for pool in (False, True):
        net = ACRNet(c, pool=pool)
        assert {k: tuple(v.shape) for k, v in net.state_dict().items()} == shapes
        net.load_state_dict(torch.load(path, weights_only=True), strict=True)
        assert torch.equal(net.mca.atte, sd["mca.atte"])


def test_init_follows_spec():
    torch.manual_seed(0)
    net = ACRNet(20)
    assert net.mca.rgb_proj.abs().max() <= 32 and net.mca.rgb_proj.abs().max() > 31.9
    assert net.mca.atte.abs().max() <= 16 and net.mca.atte.abs().max() > 15.9
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv1d)]
    assert len(convs) == 12
    for m in convs:
        bound = math.sqrt(6 / (m.in_channels * m.kernel_size[0]))  # kaiming_uniform_(a=0)
        assert m.weight.abs().max() <= bound and m.weight.abs().max() > 0.95 * bound
        assert m.bias.eq(0).all()


def test_merge_heads_quirk_matches_index_loop():
    e = torch.arange(2 * 2 * 3 * 2, dtype=torch.float64).view(2, 2, 3, 2)  # N 2, H 2, T 3, K 2
    got = model.merge_heads(e)
    assert torch.equal(got, ref.merge_heads_loop(e))
    assert not torch.equal(got, e.permute(0, 2, 1, 3).reshape(2, 3, 4))  # not a head concatenation


def test_cross_modal_attention_own_features_quirk():
    torch.manual_seed(1)
    mca = model.CrossModalAttention(dim=8, heads=2).double()
    with torch.no_grad():  # tame the spec's wide init so the softmax is not one-hot and the check is sharp
        for p in mca.parameters():
            p.mul_(0.05)
    r, f = torch.randn(2, 5, 8, dtype=torch.float64), torch.randn(2, 5, 8, dtype=torch.float64)  # [N, T, D]
    got_r, got_f = mca(r, f)
    want_r, want_f = ref.cross_modal_attention(r, f, mca.rgb_proj, mca.flow_proj, mca.atte)
    torch.testing.assert_close(got_r, want_r, rtol=0, atol=1e-12)
    torch.testing.assert_close(got_f, want_f, rtol=0, atol=1e-12)
    # the cross variant (Wr @ Pf) gives something else, so the comparison above can fail
    pr = torch.nn.functional.normalize(torch.einsum("ntd,hdk->nhtk", r, mca.rgb_proj), dim=-1)
    pf = torch.nn.functional.normalize(torch.einsum("ntd,hdk->nhtk", f, mca.flow_proj), dim=-1)
    cross = torch.nn.functional.gelu((pr @ mca.atte @ pf.mT).softmax(-1) @ pf)
    assert not torch.allclose(torch.tanh(model.merge_heads(cross) + r), got_r, atol=1e-3)


LAYOUTS = [model.Layout(True, True), model.Layout(False, False), model.Layout(True, False), model.Layout(False, True)]
LAYOUT_IDS = ["timemajor-copy", "chanfirst-dim2", "timemajor-dim2", "chanfirst-copy"]


def test_layout_switch_defaults():
    # CUDA keeps the layout measured on an H200; the CPU's was measured on CPUs (bench.py step)
    assert model.LAYOUTS["cuda"] == model.Layout(channels_last_conv=True, softmax_on_copy=True)
    assert model.LAYOUTS["cpu"] == model.Layout(channels_last_conv=False, softmax_on_copy=False)
    x = torch.randn(2, 5, 8)
    assert model.layout_of(x) == model.LAYOUTS["cpu"]
    stored = model.conv_memory(x)
    assert torch.equal(stored, x) and stored.transpose(1, 2).is_contiguous()  # [N, D, T] memory on the CPU


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("layout", LAYOUTS[:2], ids=LAYOUT_IDS[:2])
def test_conv_time_major_equals_conv1d(layout, k, dtype, device, monkeypatch):
    monkeypatch.setitem(model.LAYOUTS, torch.device(device).type, layout)
    torch.manual_seed(5)
    conv = torch.nn.Conv1d(64, 32, k, padding=k // 2).to(dtype=dtype, device=device)
    x = torch.randn(3, 7, 64, dtype=dtype, device=device, requires_grad=True)  # [N, T, Cin]
    got = model.conv_time_major(conv, x)
    assert got.shape == (3, 7, 32)
    with torch.backends.cudnn.flags(allow_tf32=False):  # compare like with like on GPUs
        got = model.conv_time_major(conv, x)
        want = conv(x.transpose(1, 2)).transpose(1, 2)
        g = torch.randn_like(got)
        grads = torch.autograd.grad(got, [x, conv.weight, conv.bias], g)
        grads_want = torch.autograd.grad(want, [x, conv.weight, conv.bias], g)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(got, want, rtol=0, atol=tol)
    for a, b in zip(grads, grads_want, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=tol * 10)


@pytest.mark.parametrize("pool", [False, True])
@pytest.mark.parametrize("layout", LAYOUTS[:2], ids=LAYOUT_IDS[:2])
def test_forward_matches_reference_network(layout, pool, monkeypatch):
    monkeypatch.setitem(model.LAYOUTS, "cpu", layout)
    torch.manual_seed(2)
    net = ACRNet(7, pool=pool).double().eval()  # dropout off
    x = torch.randn(2, 17, 2048, dtype=torch.float64)
    with torch.no_grad():
        out = net(x)
    assert isinstance(out, ACRNetOutput)
    assert ACRNetOutput._fields == ("act_score", "bkg_score", "seg_score", "seg_mask", "aas_rgb", "aas_flow", "cas")
    shapes = [(2, 7), (2, 7), (2, 17, 7), (2, 17, 7), (2, 17, 1), (2, 17, 1), (2, 17, 7)]
    assert [tuple(v.shape) for v in out] == shapes
    want = ref.forward({k: v for k, v in net.state_dict().items()}, x, pool=pool)
    for name in ("cas", "aas_rgb", "aas_flow", "seg_score"):
        torch.testing.assert_close(getattr(out, name), want[name], rtol=0, atol=1e-9, msg=name)
    chain = ref.heads_and_scores(out.seg_score.numpy(), out.cas.numpy())
    np.testing.assert_array_equal(out.seg_mask.numpy(), chain["seg_mask"])
    np.testing.assert_allclose(out.act_score.numpy(), chain["act_score"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(out.bkg_score.numpy(), chain["bkg_score"], rtol=0, atol=1e-9)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_every_layout_gives_the_same_outputs_and_gradients(dtype, monkeypatch):
    torch.manual_seed(6)
    net = ACRNet(5, pool=True).to(dtype).eval()  # dropout off: the same function under every layout
    x = torch.randn(2, 13, 2048, dtype=dtype)
    label = torch.tensor([[1, 0, 0, 1, 0], [0, 0, 1, 0, 0]], dtype=dtype)
    results = []
    for layout in LAYOUTS:
        monkeypatch.setitem(model.LAYOUTS, "cpu", layout)
        net.zero_grad()
        out = net(x)
        model.acrnet_loss(out, label)[0].backward()
        results.append((out, [p.grad.clone() for p in net.parameters()]))
    tol = 1e-10 if dtype == torch.float64 else 2e-4
    (base, base_grads), rest = results[0], results[1:]
    for out, grads in rest:
        assert torch.equal(out.seg_mask, base.seg_mask)
        for name in ("act_score", "bkg_score", "seg_score", "aas_rgb", "aas_flow", "cas"):
            torch.testing.assert_close(getattr(out, name), getattr(base, name), rtol=tol, atol=tol, msg=name)
        for a, b in zip(grads, base_grads, strict=True):
            torch.testing.assert_close(a, b, rtol=tol, atol=tol * b.abs().max().item())


def test_pool_is_count_include_pad_average():
    torch.manual_seed(3)
    net = ACRNet(3, pool=True)
    z = torch.randn(1, 1024, 9)
    head = net.cas_rgb_encoder
    unpooled = head[:3](z)
    torch.testing.assert_close(head(z), ref.avg_pool13(unpooled))
    # at the edge (t = 0) the 6 zero pads count: the mean divides by 13, not by the 7 real snippets
    torch.testing.assert_close(head(z)[..., 0], unpooled[..., :7].sum(-1) / 13)


@pytest.mark.parametrize("device", DEVICES)
def test_gradients_reach_every_parameter_not_mask(device):
    torch.manual_seed(4)
    net = ACRNet(5).double().to(device).train()
    x = torch.randn(2, 9, 2048, dtype=torch.float64, device=device)
    label = torch.tensor([[1, 0, 0, 1, 0], [0, 0, 1, 0, 0]], dtype=torch.float64, device=device)
    out = net(x)
    assert out.seg_mask.grad_fn is None and not out.seg_mask.requires_grad
    assert out.act_score.requires_grad and out.bkg_score.requires_grad
    total, parts = model.acrnet_loss(out, label)
    assert set(parts) == {"cls", "gce_rgb", "gce_flow"}
    total.backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_forward_rejects_wrong_width():
    with pytest.raises(ValueError, match="2048"):
        ACRNet(3)(torch.randn(1, 4, 1024))
