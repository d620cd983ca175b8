"""The folded eval network (gridconv_core.inference) equals the modules it stands in for, and steps aside when it must."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from gridconv_core import build_model, inference
from gridconv_core.evaluate import predict
from gridconv_core.gridconv import GridConv
from gridconv_core.inference import fold_batch_norm


def trained_like(seed: int = 0, **overrides: object) -> nn.Module:
    """An eval model whose BatchNorms have non-trivial statistics and affine parameters (a fold of identities
    would hide a wrong formula)."""
    torch.manual_seed(seed)
    model = build_model(**overrides)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.2, 0.2)
    return model.eval()


def modules_path(model: nn.Module, x: torch.Tensor, monkeypatch: pytest.MonkeyPatch) -> torch.Tensor:
    with monkeypatch.context() as patch, torch.no_grad():
        patch.setattr(inference, "ENABLED", False)
        return model(x)


def poses(batch: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, 17, 2, generator=torch.Generator().manual_seed(seed)) * 0.3


@pytest.mark.parametrize("batch", [1, 7, 8, 60])  # the stacked path up to 7 poses, then the fused or the grouped one
@pytest.mark.parametrize("overrides", [
    {}, {"model": "gridconv"}, {"paddings": ("zeros",)}, {"paddings": ("c", "z")}, {"paddings": ("c", "z", "r", "c")},
    {"sgt": "autogrids"},
], ids=["dgridconv", "static", "zeros", "detected-c-z", "four-branches", "autogrids"])
def test_folded_network_equals_the_modules(monkeypatch, batch: int, overrides: dict) -> None:
    model = trained_like(**overrides)
    x = poses(batch)
    expected = modules_path(model, x, monkeypatch)
    with torch.no_grad():
        got, grid = model(x), model.forward_grid(x)
    torch.testing.assert_close(got, expected, atol=2e-6, rtol=1e-5)
    with monkeypatch.context() as patch, torch.no_grad():
        patch.setattr(inference, "ENABLED", False)
        torch.testing.assert_close(grid, model.forward_grid(x), atol=2e-6, rtol=1e-5)


def test_eval_without_autograd_bypasses_the_layer_modules(monkeypatch) -> None:
    """The fold is really taken: with the layers' own forward broken, an eval call still works (and a train call not)."""
    model = trained_like()
    x = poses(4)
    expected = modules_path(model, x, monkeypatch)

    def broken(self, *args):
        raise AssertionError("module path ran")

    monkeypatch.setattr(GridConv, "_convolve", broken)
    with torch.no_grad():
        torch.testing.assert_close(model(x), expected, atol=2e-6, rtol=1e-5)
    with pytest.raises(AssertionError, match="module path ran"):
        model(x)  # autograd on: the modules run
    with pytest.raises(AssertionError, match="module path ran"), torch.no_grad():
        model.train()(x)


def test_fold_batch_norm_is_the_eval_batch_norm() -> None:
    bn = nn.BatchNorm2d(5).eval()
    bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.3, 3)
    nn.init.uniform_(bn.weight, -2, 2), nn.init.uniform_(bn.bias, -1, 1)
    x = torch.randn(3, 5, 2, 2)
    scale, shift = fold_batch_norm(bn)
    torch.testing.assert_close(x * scale[:, None, None] + shift[:, None, None], bn(x))


def test_a_change_of_weights_statistics_or_temperature_refolds(monkeypatch) -> None:
    model = trained_like()
    x = poses(2)
    with torch.no_grad():
        before = model(x)
        model.linear_stages[0].w1.branch1_weight.mul_(1.5)  # an in-place edit, as an optimiser step makes
        after_weights = model(x)
    assert not torch.allclose(before, after_weights)
    torch.testing.assert_close(after_weights, modules_path(model, x, monkeypatch), atol=2e-6, rtol=1e-5)

    with torch.no_grad():
        model.batch_norm1.running_var.mul_(2.0)
        after_stats = model(x)
        model.atten_conv1.temperature = 5.0  # a plain attribute, not a tensor
        after_temperature = model(x)
    assert not torch.allclose(after_weights, after_stats)
    assert not torch.allclose(after_stats, after_temperature)
    torch.testing.assert_close(after_temperature, modules_path(model, x, monkeypatch), atol=2e-6, rtol=1e-5)

    other = trained_like(seed=7)
    model.load_state_dict(other.state_dict())
    model.atten_conv1.temperature = other.atten_conv1.temperature
    with torch.no_grad():
        torch.testing.assert_close(model(x), other(x), atol=2e-6, rtol=1e-5)


def test_autogrids_scores_edited_in_place_refold(monkeypatch) -> None:
    """The fold holds the SGT's matrices (eq. 1, 11); AutoGrids' eval layout is the argmax of S^prob (eq. 5)."""
    model = trained_like(sgt="autogrids")
    x = poses(2)
    with torch.no_grad():
        before = model(x)
        model.sgt.s_prob[:, :].copy_(torch.roll(model.sgt.s_prob, 1, dims=0))  # every joint moves one cell
        after = model(x)
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, modules_path(model, x, monkeypatch), atol=2e-6, rtol=1e-5)


def test_eval_after_a_replaced_submodule_and_a_dtype_change_refold(monkeypatch) -> None:
    """Structural edits are not watched per call (FoldedCache): switching modes after them folds again."""
    model = trained_like()
    x = poses(3)
    with torch.no_grad():
        before = model(x)
        model.batch_norm1 = nn.BatchNorm2d(model.config.channels)  # fresh statistics
        model.train().eval()
        replaced = model(x)
    assert not torch.allclose(before, replaced)
    torch.testing.assert_close(replaced, modules_path(model, x, monkeypatch), atol=2e-6, rtol=1e-5)
    model.double()
    with torch.no_grad():
        out = model(x.double())
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, modules_path(model, x.double(), monkeypatch))


def test_an_eval_model_that_ran_can_be_copied_and_saved(monkeypatch, tmp_path) -> None:
    """Its caches hold packed oneDNN kernels without storage: copies and pickles start without them."""
    model = trained_like()
    x = poses(30)
    with torch.no_grad():
        expected = model(x)
        model(x[:1])  # the folded network's stacked and fused kernels
    modules_path(model, x, monkeypatch)  # and the layers' own kernel caches
    copied = copy.deepcopy(model)
    torch.save(model, tmp_path / "model.pt")
    loaded = torch.load(tmp_path / "model.pt", weights_only=False)
    with torch.no_grad():
        for other in (copied, loaded):
            torch.testing.assert_close(other(x), expected)


def test_predict_frame_by_frame_folds_once(monkeypatch) -> None:
    """``predict`` sets eval mode and restores the caller's on every call; an eval model keeps its fold."""
    model = trained_like()
    folds = []
    real = inference.FoldedNetwork

    def counted(*args):
        folds.append(1)
        return real(*args)

    monkeypatch.setattr(inference, "FoldedNetwork", counted)
    frames = [predict(model, poses(1, seed)) for seed in range(5)]
    assert len(folds) == 1
    torch.testing.assert_close(torch.cat(frames), predict(model, torch.cat([poses(1, s) for s in range(5)])),
                               atol=2e-6, rtol=1e-5)


def test_forward_hooks_still_fire() -> None:
    """Hooks on bypassed modules would be silently skipped: with one registered, the modules run."""
    model = trained_like()
    x = poses(2)
    seen: list[tuple[int, ...]] = []
    handle = model.linear_stages[1].batch_norm2.register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape)))
    with torch.no_grad():
        model(x)
    handle.remove()
    assert seen == [(2, model.config.channels, 5, 5)]
    maps = model.attention_maps(x)  # collected by hooks on the D-GridConv layers
    assert len(maps) == 6 and all(m.shape == (2, 9, 5, 5) for m in maps.values())
    assert not all(torch.equal(m, torch.ones_like(m)) for m in maps.values())


def test_a_layer_with_its_forward_replaced_runs_as_a_module(monkeypatch) -> None:
    """As the benchmarks swap in the authors' layer: an instance-level ``forward`` is honoured."""
    model = trained_like()
    x = poses(2)
    expected = modules_path(model, x, monkeypatch)
    model.w2.forward = lambda y, scale=None: torch.zeros(y.shape[0], 3, 5, 5)
    with torch.no_grad():
        assert torch.equal(model(x), torch.zeros(2, 17, 3))
    del model.w2.forward
    with torch.no_grad():
        torch.testing.assert_close(model(x), expected, atol=2e-6, rtol=1e-5)


def test_fig8_attention_runs_the_modules(monkeypatch) -> None:
    model = trained_like(attention="se")
    x = poses(2)

    def broken(*args):
        raise AssertionError("folded")

    monkeypatch.setattr(inference, "FoldedNetwork", broken)
    with torch.no_grad():
        assert model(x).shape == (2, 17, 3)


@pytest.mark.parametrize("batch", [2, 60])
def test_folded_bf16_autocast_is_close_to_fp32(monkeypatch, batch: int) -> None:
    model = trained_like()
    x = poses(batch)
    with torch.no_grad():
        ref = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = model(x)
    with monkeypatch.context() as patch, torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        patch.setattr(inference, "ENABLED", False)
        modules = model(x)
    assert got.dtype == modules.dtype
    error = (got.float() - ref).abs().max()
    assert 1e-5 < error < 0.05 * ref.abs().max()  # rounded, as bf16 must be, but close
