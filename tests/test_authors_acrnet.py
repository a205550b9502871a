"""The authors' transcription (the speed baseline of bench.py) computes what model.py computes."""

from __future__ import annotations

import authors_acrnet as A
import numpy as np
import pytest
import reference_model as ref
import torch
from test_model import make_inputs

import model
from model import ACRNet


@pytest.mark.parametrize(("t", "c"), [(1, 3), (2, 3), (11, 5), (40, 7)])
@pytest.mark.parametrize("kind", ["random", "equal"])
def test_authors_steps_match_reference(kind, t, c):
    seg, cas = make_inputs(kind, 3, t, c, torch.float64, seed=t + c)
    want = ref.heads_and_scores(seg.numpy(), cas.numpy())
    mask = A.temporal_clustering(seg)
    np.testing.assert_array_equal(mask.numpy(), want["mask"])
    refined = A.refine_mask(seg, mask, cas)
    np.testing.assert_array_equal(refined.numpy(), want["seg_mask"])
    np.testing.assert_array_equal(A.refine_mask_by_class(seg, mask, cas).numpy(), want["seg_mask"])
    act, bkg = A.video_scores(seg, refined, cas)
    np.testing.assert_allclose(act.numpy(), want["act_score"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(bkg.numpy(), want["bkg_score"], rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", ["random", "q1", "q2", "equal"])
def test_both_refining_loops_agree(kind, dtype):
    # the class-only loop (the second baseline) gives the class × video loop's masks exactly, in either dtype
    removed = 0
    for t, c in ((1, 3), (2, 3), (11, 5), (40, 7), (80, 20)):
        seg, cas = make_inputs(kind, 4, t, c, dtype, seed=3 * t + c)
        mask = A.temporal_clustering(seg)
        mask[0] = 0  # a video with no positives
        refined = A.refine_mask(seg, mask, cas)
        assert torch.equal(A.refine_mask_by_class(seg, mask, cas), refined), (t, c)
        removed += int((mask - refined).sum())
    assert removed > 0 or kind == "equal"  # refining removed positives somewhere: the comparison can fail


def test_refining_quirks_on_crafted_rows():
    # scores [0.9, 0.8, 0.1, 0.05] cluster into positives {0, 1}; ref = (a_0/2 + a_1/3) / max(1/2 + 1/3, 1)
    seg = torch.tensor([0.9, 0.8, 0.1, 0.05], dtype=torch.float64).view(1, 4, 1).repeat(3, 1, 1)
    cas = torch.tensor([[1.0, 0.0, 5, 5], [-1.0, -0.1, 5, 5], [0.0, 1.0, 5, 5]], dtype=torch.float64).unsqueeze(-1)
    # video 0: ref = 0.5 = m_2 exactly (a tie counts: J = 2, both stay); video 1: every m_j < ref (J = 0, quirk: the
    # smallest positive's score, both stay); video 2: J = 1 (only the first stays)
    want = torch.tensor([[1, 1, 0, 0], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.float64).unsqueeze(-1)
    mask = A.temporal_clustering(seg)
    assert torch.equal(mask, torch.tensor([1.0, 1, 0, 0], dtype=torch.float64).view(1, 4, 1).expand(3, 4, 1))
    np.testing.assert_array_equal(ref.refine_mask(seg.numpy(), mask.numpy(), cas.numpy()), want.numpy())
    for refine in (A.refine_mask, A.refine_mask_by_class, model.refine_mask):
        assert torch.equal(refine(seg, mask, cas), want), refine


@pytest.mark.parametrize("pool", [False, True])
def test_authors_network_and_loss_equal_model_with_one_state_dict(pool):
    torch.manual_seed(7)
    net = ACRNet(6, pool=pool).double().eval()  # dropout off: the same function in both
    authors = A.AuthorsACRNet(6, pool=pool).double().eval()
    authors.load_state_dict(net.state_dict(), strict=True)
    x = torch.randn(3, 19, 2048, dtype=torch.float64)
    label = torch.tensor([[1, 0, 0, 0, 1, 0], [0, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]], dtype=torch.float64)

    out = net(x)
    loss, _ = model.acrnet_loss(out, label)
    loss.backward()
    theirs = authors(x)
    their_loss = A.total_loss(theirs, label)
    their_loss.backward()

    assert torch.equal(out.seg_mask, theirs["seg_mask"])
    for name in ("act_score", "bkg_score", "seg_score", "aas_rgb", "aas_flow", "cas"):
        torch.testing.assert_close(getattr(out, name), theirs[name], rtol=0, atol=1e-10, msg=name)
    torch.testing.assert_close(loss, their_loss, rtol=0, atol=1e-12)
    theirs_grads = dict(authors.named_parameters())
    for name, p in net.named_parameters():
        g = theirs_grads[name].grad
        torch.testing.assert_close(p.grad, g, rtol=1e-8, atol=1e-10 * g.abs().max().item(), msg=name)
