"""GLNConfig and the Grid Lifting Network (eq. 9): parameter counts, SGT, errors, compile, autocast."""
from __future__ import annotations

import json

import pytest
import torch

from gridconv_core import ConfigError, GLNConfig, InputError, build_model, layout_families
from gridconv_core.sgt import phi_inv
from gridconv_core.layout_families import get_layout

TINY = dict(channels=8, num_blocks=1)


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_paper_parameter_counts() -> None:
    assert n_params(build_model()) == 4_790_406
    assert n_params(build_model(sgt="autogrids")) == 4_790_831
    assert n_params(build_model(model="gridconv")) == 4_746_752


def test_forward_shapes_inverse_and_grid_layout() -> None:
    torch.manual_seed(0)
    model = build_model(**TINY).eval()
    x = torch.randn(4, 17, 2)
    grid = model.forward_grid(x)
    assert grid.shape == (4, 3, 5, 5)
    layout = get_layout("handcrafted")
    assert model.grid_layout() == layout
    expected = phi_inv(torch.from_numpy(layout.inverse_assignment()), grid)
    torch.testing.assert_close(model(x), expected)
    maps = model.attention_maps(x)
    assert list(maps) == ["w1", "linear_stages.0.w1", "linear_stages.0.w2", "w2"]
    assert all(m.shape == (4, 9, 5, 5) and 0 <= float(m.min()) and float(m.max()) <= 1 for m in maps.values())


def test_autogrids_model_learns_its_layout() -> None:
    torch.manual_seed(0)
    model = build_model(sgt="autogrids", **TINY)
    assert model.autogrids is not None and model.grid_layout().shape == (5, 5)
    model(torch.randn(8, 17, 2)).square().mean().backward()
    assert model.autogrids.s_prob.grad is not None and model.autogrids.s_prob.grad.abs().sum() > 0


def test_kernel_pattern_and_paddings_change_the_network() -> None:
    model = build_model(kernel_pattern=(3, 1, 5, 1), paddings=("c", "r", "z", "c"), **TINY)
    convs = model.convs()
    assert [c.kernel_size for c in convs] == [3, 1, 5, 1]
    assert all(c.paddings == ("circular", "replicate", "zeros", "circular") for c in convs)
    assert model(torch.randn(2, 17, 2)).shape == (2, 17, 3)


@pytest.mark.parametrize("bad", [torch.randn(4, 16, 2), torch.randn(4, 17, 3), torch.randn(17, 2)])
def test_wrong_shapes_raise_input_error(bad: torch.Tensor) -> None:
    with pytest.raises(InputError, match=r"expected 2D poses of shape \(B, 17, 2\)"):
        build_model(**TINY)(bad)


def test_non_finite_input_raises_input_error() -> None:
    x = torch.randn(2, 17, 2)
    x[1, 3, 0] = float("nan")
    with pytest.raises(InputError, match="NaN"):
        build_model(**TINY)(x)


def test_config_round_trip_and_validation(tmp_path) -> None:
    cfg = GLNConfig(paddings=("c", "z"), grid_shape=[5, 5], channels=64)
    assert cfg.paddings == ("circular", "zeros") and cfg.grid_shape == (5, 5)
    path = tmp_path / "model.json"
    cfg.to_json(path)
    assert GLNConfig.from_json(path) == cfg
    assert cfg.replace(dropout=0.1).dropout == 0.1
    with pytest.raises(ConfigError, match="unknown model config field.*chanels"):
        GLNConfig.from_dict({"chanels": 3})
    path.write_text(json.dumps({**cfg.to_dict(), "bogus": 1}))
    with pytest.raises(ConfigError, match="bogus"):
        GLNConfig.from_json(path)
    with pytest.raises(ConfigError, match="kernel_pattern"):
        GLNConfig(kernel_pattern=(3, 2, 3, 3))
    with pytest.raises(ConfigError, match="attention"):
        GLNConfig(attention="cbam")
    with pytest.raises(ConfigError, match="dropout"):
        GLNConfig(dropout=1.5)
    with pytest.raises(ConfigError, match="1, 2 or 4"):
        GLNConfig(paddings=("c", "r", "z"))


def test_bf16_autocast_cpu_close_to_fp32() -> None:
    torch.manual_seed(0)
    model = build_model(**TINY).eval()
    x = torch.randn(16, 17, 2) * 0.3
    ref = model(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    assert (out.float() - ref).abs().max() < 0.05 * ref.abs().max() + 1e-3


@pytest.mark.slow
def test_torch_compile_matches_eager() -> None:
    torch.manual_seed(0)
    model = build_model(**TINY).eval()
    x = torch.randn(4, 17, 2)
    compiled = torch.compile(model)
    torch.testing.assert_close(compiled(x), model(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("overrides", "shape"), [
    ({}, (5, 5)), ({"grid_shape": (7, 5)}, (7, 5)), ({"skeleton": "h36m32"}, (7, 5)), ({"skeleton": "coco17"}, (5, 6)),
])
def test_autogrids_starts_from_the_prior_on_5x5_h36m17_and_at_random_elsewhere(overrides, shape) -> None:
    config = GLNConfig(sgt="autogrids", channels=8, num_blocks=1, **overrides)
    model = build_model(config)
    assert model.grid_shape == shape
    assert config.autogrids_start() == ("standard" if not overrides else "random")
    if not overrides:
        assert model.grid_layout().cells == layout_families.official_prior("standard").cells
