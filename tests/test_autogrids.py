"""AutoGrids (paper eq. 4-5, A.3): a learnable SGT that really learns."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from gridconv_core import layout_families
from gridconv_core.autogrids import AutoGrids
from gridconv_core.errors import LayoutError
from gridconv_core.sgt import phi, phi_inv
from gridconv_core.skeleton import H36M17

SHAPE = (5, 5)


def test_init_from_layout_and_eval_argmax() -> None:
    hand = layout_families.handcrafted_onehot()
    ag = AutoGrids.from_layout(hand, init_scale=2.0)
    assert ag.s_prob.shape == (25, 17)
    assert torch.equal(ag.s_prob.detach(), torch.from_numpy(2.0 * hand.to_onehot()))
    ag.eval()
    s = ag()
    assert torch.equal(s, torch.from_numpy(hand.to_onehot())) and not s.requires_grad
    assert ag.layout().cells == hand.cells
    snap = ag.snapshot()
    np.testing.assert_allclose(snap.sum(axis=1), 1.0, rtol=1e-6)  # probabilities, rows sum to 1
    assert (snap.argmax(axis=1) == hand.to_onehot().argmax(axis=1)).all()
    snap[0, 0] = 99.0
    assert ag.s_prob[0, 0].item() == 0.0  # a copy


def test_noise_resamples_only_in_training_with_noise_on() -> None:
    torch.manual_seed(0)
    ag = AutoGrids.from_layout(layout_families.handcrafted_onehot(), init_scale=1.0)
    prior = torch.from_numpy(layout_families.handcrafted_onehot().to_onehot())
    noisy = ag()
    assert ((noisy.detach() - prior).abs().sum(dim=1) > 0).any()  # scale 1: Gumbel noise moves cells
    assert torch.equal(noisy.detach().sum(dim=1), torch.ones(25))  # still one joint per cell
    ag.noise = False
    assert torch.equal(ag().detach(), prior)


def test_straight_through_value_is_exactly_one_hot_and_grad_reaches_s_prob() -> None:
    torch.manual_seed(0)
    ag = AutoGrids.random("h36m17", SHAPE, seed=1)
    s = ag()
    assert s.requires_grad and set(s.detach().unique().tolist()) <= {0.0, 1.0}
    x = torch.randn(4, 17, 2)
    conv = nn.Conv2d(2, 3, 3, padding=1)
    out = phi_inv(s, conv(phi(s, x, SHAPE)))
    (out - torch.randn(4, 17, 3)).pow(2).mean().backward()
    assert ag.s_prob.grad is not None and ag.s_prob.grad.abs().sum() > 0
    assert torch.isfinite(ag.s_prob.grad).all()


def test_bad_shapes_raise() -> None:
    with pytest.raises(LayoutError, match=r"expected \(25, 17\)"):
        AutoGrids("h36m17", SHAPE, np.zeros((24, 17)))
    with pytest.raises(ValueError, match="gumbel_tau"):
        AutoGrids("h36m17", SHAPE, np.zeros((25, 17)), gumbel_tau=0.0)


def _train(learn_layout: bool, steps: int = 150) -> tuple[float, float, AutoGrids, object]:
    """Synthetic lifting (3D of each joint from its own and its parent's 2D) with a tiny grid net.

    Returns the held-out loss (eval mode: argmax layout) before and after training.
    """
    torch.manual_seed(0)
    mix = torch.randn(2, 3)
    parent = torch.tensor([max(p, 0) for p in H36M17.parents])

    def batch(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randn(n, 17, 2)
        return x, x @ mix + 0.5 * x[:, parent] @ mix

    ag = AutoGrids.random("h36m17", SHAPE, seed=0)
    start = ag.layout()
    ag.s_prob.requires_grad_(learn_layout)
    net = nn.Sequential(
        nn.Conv2d(2, 16, 3, padding=1, padding_mode="circular"), nn.ReLU(),
        nn.Conv2d(16, 3, 3, padding=1, padding_mode="circular"),
    )
    x_val, y_val = batch(512)

    def val_loss() -> float:
        ag.eval()
        with torch.no_grad():
            s = ag()
            loss = (phi_inv(s, net(phi(s, x_val, SHAPE))) - y_val).pow(2).mean().item()
        ag.train()
        return loss

    before = val_loss()
    opt = torch.optim.Adam([{"params": net.parameters(), "lr": 1e-2}, {"params": [ag.s_prob], "lr": 5e-2}])
    for step in range(steps):
        ag.noise = step < steps // 2  # noise switched off half way (paper: after epoch 30)
        x, y = batch(32)
        s = ag()
        loss = (phi_inv(s, net(phi(s, x, SHAPE))) - y).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return before, val_loss(), ag, start


@pytest.fixture
def one_thread():
    """Tiny ops run fastest, and do not fight other test runs for the cores, on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_autogrids_learns_a_layout(one_thread) -> None:
    """The loss falls and the gradient moves the hard layout (eq. 5's argmax), which a frozen ``S^prob`` keeps.

    Whether the learnt layout then beats the frozen start on this toy is chaotic: over six seeds on a 2-core AVX2
    EPYC the ratio of their held-out losses ran from 0.60 to 1.54 and the missing joints went up as often as down
    (on an AVX512 EPYC seed 0 read 0.70 and 4 -> 2), so it is not asserted here; the layouts are compared on real
    Human3.6M in ``benchmarks/h36m_budget_study.py``."""
    before, after, ag, start = _train(learn_layout=True)
    _, _, frozen, _ = _train(learn_layout=False)
    end = ag.layout()
    assert after < 0.5 * before  # the loss falls
    assert (end.index_grid() != start.index_grid()).sum() >= 5  # the hard layout changes
    assert frozen.layout().cells == start.cells  # and only through the gradient: Gumbel noise alone moves nothing


def test_checkpoints_from_before_the_sgt_interface_still_load() -> None:
    """A state dict that keeps AutoGrids' scores under ``autogrids.`` (before issue 10) loads as ``sgt.``."""
    from gridconv_core import build_model

    torch.manual_seed(0)
    trained = build_model(sgt="autogrids", channels=8)
    with torch.no_grad():
        trained.sgt.s_prob.add_(torch.randn_like(trained.sgt.s_prob))  # as if trained
    legacy = {k.replace("sgt.", "autogrids.", 1) if k.startswith("sgt.") else k: v for k, v in trained.state_dict().items()}
    assert "autogrids.s_prob" in legacy and "sgt.s_prob" not in legacy
    fresh = build_model(sgt="autogrids", channels=8)
    assert not torch.equal(fresh.sgt.s_prob, trained.sgt.s_prob)
    fresh.load_state_dict(legacy, strict=True)
    torch.testing.assert_close(fresh.sgt.s_prob, trained.sgt.s_prob, rtol=0, atol=0)
