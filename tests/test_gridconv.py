"""Fast fused GridConv / D-GridConv (eq. 6-8) against a naive per-cell reference; attention (eq. 7, Fig. 8)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from gridconv_core.attention import KernelAttention, KernelScale, build_attention
from gridconv_core import build_model, gridconv
from gridconv_core.gridconv import DGridConv, GridConv, cell_groups, fused_terms, normalise_paddings, tap_sources


def pad_axis(x: torch.Tensor, mode: str, pad: tuple[int, int, int, int]) -> torch.Tensor:
    return F.pad(x, pad, mode="constant" if mode == "zeros" else mode)


def naive_dgridconv(layer: GridConv, x: torch.Tensor, alpha: torch.Tensor | None) -> torch.Tensor:
    """Eq. 8 cell by cell and tap by tap: pad each branch, scale each tap of W by alpha_ij, sum."""
    b, _, h, p = x.shape
    k, r = layer.kernel_size, layer.kernel_size // 2
    out = torch.zeros(b, layer.out_channels, h, p, dtype=torch.float64)
    for n, mode in enumerate(layer.paddings):
        horizontal, _, vertical = mode.partition(":")  # Table D per-axis mixes: columns first, then rows
        xp = pad_axis(pad_axis(x.double(), horizontal, (r, r, 0, 0)), vertical or horizontal, (0, 0, r, r))
        w = layer.branch_weights()[n].double()
        for i in range(h):
            for j in range(p):
                for dy in range(k):
                    for dx in range(k):
                        a = 1.0 if alpha is None else alpha[:, dy * k + dx, i, j].double()[:, None]
                        out[:, :, i, j] += a * (xp[:, :, i + dy, j + dx] @ w[:, :, dy, dx].t())
                if layer.has_bias:
                    out[:, :, i, j] += layer.branch_biases()[n].double()
    return out.float()


@pytest.mark.parametrize("paddings", [("circular",), ("zeros",), ("replicate",), ("c", "r"), ("c", "z"), ("c", "r", "z", "c"),
                                      ("c:r",), ("r:c",), ("z:c",), ("c", "r", "c:r", "r:c")])
@pytest.mark.parametrize("kernel", [1, 3, 5])
@pytest.mark.parametrize("grid", [(7, 5), (3, 6)])
@pytest.mark.parametrize("path", ["stacked", "fused", "grouped"])
def test_fast_dgridconv_equals_naive(monkeypatch, paddings: tuple[str, ...], kernel: int, grid: tuple[int, int],
                                     path: str) -> None:
    """Every path against eq. 8 cell by cell; ``grouped`` runs without autograd, where the groups have fewer terms."""
    monkeypatch.setattr(gridconv, "SMALL_BATCH_CELLS", 10**9 if path == "stacked" else 0)
    torch.manual_seed(kernel)
    layer = DGridConv(4, 6, kernel, grid, paddings)
    x = torch.randn(3, 4, *grid)
    alpha = torch.rand(3, kernel * kernel, *grid)
    with torch.set_grad_enabled(path != "grouped"):
        assert layer.path(3) == ("fused" if path == "grouped" and not layer.groups_for_inference else path)
        torch.testing.assert_close(layer(x, KernelScale(alpha)), naive_dgridconv(layer, x, alpha), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(layer(x), naive_dgridconv(layer, x, None), atol=1e-5, rtol=1e-5)


def test_inference_takes_the_cell_groups_where_they_have_fewer_terms() -> None:
    """(c, z), the paper's detected-input setting: zero padding's terms vanish in the groups (225), while base and
    bands cancel them (285); (c, r) has 281 against 285, where the bands' cheap kernels win."""
    with_zeros = GridConv(8, 8, 3, (5, 5), ("c", "z"))
    assert cell_groups((5, 5), 3, with_zeros.paddings).count == 225 and with_zeros.term_count == 285
    assert cell_groups((5, 5), 3, normalise_paddings(("c", "r"))).count == 281
    assert with_zeros.groups_for_inference and not GridConv(8, 8, 3, (5, 5), ("c", "r")).groups_for_inference
    assert with_zeros.path(40) == "fused"  # autograd on: training keeps base and bands
    with torch.no_grad():
        small = gridconv.SMALL_BATCH_CELLS // 25  # the most poses that run the per-branch GEMM
        assert with_zeros.path(40) == "grouped" and with_zeros.path(small) == "stacked"
        assert with_zeros.path(small + 1) == "grouped"


@pytest.mark.parametrize("paddings", [("zeros",), ("c", "r"), ("c", "z", "r", "c"), ("c:r", "r:c")])
def test_fast_dgridconv_gradients_equal_naive(paddings: tuple[str, ...]) -> None:
    """Gradients w.r.t. input, every branch weight and bias, and alpha; 150 samples span several CPU blocks."""
    torch.manual_seed(1)
    layer = DGridConv(5, 7, 3, (5, 5), paddings)
    x = torch.randn(150, 5, 5, 5)
    alpha = torch.rand(150, 9, 5, 5)
    upstream = torch.randn(150, 7, 5, 5)
    grads = []
    for conv in (lambda xx, aa: layer(xx, KernelScale(aa)), lambda xx, aa: naive_dgridconv(layer, xx, aa)):
        xx, aa = x.clone().requires_grad_(), alpha.clone().requires_grad_()
        layer.zero_grad(set_to_none=True)
        (conv(xx, aa) * upstream).sum().backward()
        grads.append([xx.grad, aa.grad, *(w.grad for w in layer.branch_weights()), *(b.grad for b in layer.branch_biases())])
    for fast, ref in zip(*grads):  # fp32 sums of 3,750 products: the weight gradients reach ~100
        torch.testing.assert_close(fast, ref, atol=2e-6 * float(ref.abs().max()) + 1e-5, rtol=1e-4)


@pytest.mark.parametrize("paddings", [("c", "r"), ("c",), ("c", "z"), ("c", "r", "z", "c"), ("c:r", "r:c"), ("r", "z")])
@pytest.mark.parametrize("grid, kernel", [((5, 5), 3), ((3, 6), 5), ((1, 7), 3), ((2, 2), 5)])
def test_fused_terms_rebuild_every_branch_tap(paddings: tuple[str, ...], grid: tuple[int, int], kernel: int) -> None:
    """Base plus bands equals sum_n sum_k w_nk x[source] on scalar features, cell by cell (module doc of gridconv)."""
    modes = normalise_paddings(paddings)
    terms, src = fused_terms(grid, kernel, modes), tap_sources(grid, kernel, modes)
    rng = np.random.default_rng(0)
    hp, n, kk = src.shape
    x, w, a = np.append(rng.normal(size=hp), 0.0), rng.normal(size=(n, kk)), rng.normal(size=(kk, hp))
    ref = (w * x[np.where(src < 0, hp, src)] * a.T[:, None, :]).sum((1, 2))
    out = (a.reshape(-1)[terms.base_alpha_index] * w.sum(0)[np.tile(np.arange(kk), hp)] * x[terms.base_sources])
    out = out.reshape(hp, kk).sum(1)  # the base, per cell
    for band in terms.bands:
        diff = (x[band.sources[:, 0]] - x[band.sources[:, 1]]) * a.reshape(-1)[band.alpha_index]
        out[band.cells] += (diff.reshape(len(band.cells), -1) * w.reshape(-1)[band.taps]).sum(1)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)


def test_fused_terms_count_the_borders_only() -> None:
    """5x5, 3x3 (c, r): 225 base terms and, for the replicate branch, 3 taps on each of the 4 border lines."""
    both = fused_terms((5, 5), 3, normalise_paddings(("c", "r")))
    assert both.base_mode == "circular" and both.count == 225 + 4 * 5 * 3
    assert sorted(len(b.cells) * 10 + len(b.taps) for b in both.bands) == [53] * 4
    assert fused_terms((5, 5), 3, ("circular",)).count == 225 and not fused_terms((5, 5), 3, ("zeros",)).bands
    assert fused_terms((5, 5), 3, normalise_paddings(("c:r", "r:c"))).base_mode == "circular:replicate"


def test_vanilla_gridconv_matches_conv2d_and_blocks() -> None:
    torch.manual_seed(0)
    layer = GridConv(3, 5, 3, (5, 5), ("circular", "replicate"), bias=False)
    x = torch.randn(300, 3, 5, 5)  # more than one CPU block
    ref = sum(
        F.conv2d(F.pad(x, (1, 1, 1, 1), mode=m), w) for m, w in zip(("circular", "replicate"), layer.branch_weights())
    )
    torch.testing.assert_close(layer(x), ref, atol=1e-5, rtol=1e-5)


def test_official_parameter_names_and_gradients() -> None:
    layer = DGridConv(2, 4, 3, (5, 5), ("c", "z", "r", "c"))
    assert sorted(n for n, _ in layer.named_parameters()) == sorted(
        [f"branch{i}_weight" for i in range(1, 5)] + [f"branch{i}_bias" for i in range(1, 5)]
    )
    x = torch.randn(2, 2, 5, 5)
    alpha = torch.rand(2, 9, 5, 5, requires_grad=True)
    layer(x, KernelScale(alpha)).square().sum().backward()
    assert alpha.grad is not None and alpha.grad.abs().sum() > 0
    assert all(w.grad is not None and w.grad.abs().sum() > 0 for w in layer.branch_weights())


def test_per_axis_paddings_of_table_d() -> None:
    """Table D #3 wraps the columns and replicates the rows; #4 the other way round; ``c:c`` is circular."""
    assert normalise_paddings(("c:r", "r:c", "c:c", "replicate:zeros")) == (
        "circular:replicate", "replicate:circular", "circular", "replicate:zeros")
    modes = normalise_paddings(("c:r", "r:c"))
    src = tap_sources((5, 5), 3, modes)
    top_left, up_left = 0, 0  # cell (0, 0), tap (-1, -1)
    assert src[top_left, 0, up_left] == 0 * 5 + 4  # rows replicate -> row 0, columns wrap -> column 4
    assert src[top_left, 1, up_left] == 4 * 5 + 0  # rows wrap -> row 4, columns replicate -> column 0


def test_bad_paddings_and_shapes_raise_value_errors() -> None:
    with pytest.raises(ValueError, match="1, 2 or 4"):
        normalise_paddings(("c", "r", "z"))
    with pytest.raises(ValueError, match="reflect"):
        normalise_paddings(("reflect",))
    with pytest.raises(ValueError, match="horizontal:vertical"):
        normalise_paddings(("c:r:z",))
    with pytest.raises(ValueError, match="odd"):
        GridConv(2, 2, 2, (5, 5))
    with pytest.raises(ValueError, match="does not fit"):
        GridConv(2, 2, 3, (5, 5))(torch.randn(1, 2, 4, 5))


def test_kernel_attention_parameter_counts_and_range() -> None:
    assert sum(p.numel() for p in KernelAttention(256, 3, (5, 5)).parameters()) == 7953
    assert sum(p.numel() for p in KernelAttention(2, 3, (5, 5)).parameters()) == 3889
    att = KernelAttention(8, 3, (7, 5)).eval()
    alpha = att(torch.randn(4, 8, 7, 5)).taps.detach()
    assert alpha.shape == (4, 9, 7, 5) and float(alpha.min()) > 0 and float(alpha.max()) < 1
    assert sorted(n.split(".")[0] for n, _ in att.named_parameters()) == ["bn", "bn", "fc", "position_fc", "position_fc"]


def test_attention_temperature_flattens_alpha() -> None:
    torch.manual_seed(0)
    att = KernelAttention(8, 3, (5, 5), temperature=1.0).eval()
    x = torch.randn(4, 8, 5, 5)
    sharp = att(x).taps
    att.temperature = 30.0
    flat = att(x).taps
    assert (flat - 0.5).abs().max() < (sharp - 0.5).abs().max()
    torch.testing.assert_close(torch.logit(flat) * 30.0, torch.logit(sharp), atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("kind", ["se", "spatial", "spatial_channel"])
def test_fig8_variants_ignore_the_temperature(kind: str) -> None:
    """T divides only the dynamic attention's logits (eq. 7); SE and spatial use a plain sigmoid."""
    torch.manual_seed(0)
    x = torch.randn(4, 6, 5, 5)
    hot, cold = (build_attention(kind, 6, 3, (5, 5), temperature=t) for t in (30.0, 1.0))
    cold.load_state_dict(hot.state_dict())
    a, b = hot.eval()(x), cold.eval()(x)
    for got, ref in ((a.taps, b.taps), (a.channels, b.channels)):
        if ref is not None:
            torch.testing.assert_close(got, ref)
            assert (ref - 0.5).abs().max() > 0.1  # not pinned at sigmoid(z / 30) ~ 0.5
    dynamic = build_attention("dynamic", 6, 3, (5, 5), temperature=30.0).eval()
    assert (dynamic(x).taps - 0.5).abs().max() < 0.1


@pytest.mark.parametrize("kind", ["se", "spatial", "spatial_channel"])
def test_fig8_variants_scale_the_kernel(kind: str) -> None:
    torch.manual_seed(0)
    att = build_attention(kind, 6, 3, (5, 5)).eval()
    layer = DGridConv(6, 4, 3, (5, 5))
    x = torch.randn(3, 6, 5, 5)
    scale = att(x)
    expected_x = x if scale.channels is None else x * scale.channels
    taps = None if scale.taps is None else scale.taps.expand(3, 9, 5, 5)
    torch.testing.assert_close(layer(x, scale), naive_dgridconv(layer, expected_x, taps), atol=1e-5, rtol=1e-5)
    assert build_attention("none", 6, 3, (5, 5)) is None
    with pytest.raises(ValueError, match="unknown attention"):
        build_attention("cbam", 6, 3, (5, 5))


@pytest.mark.parametrize("grad", [True, False])
@pytest.mark.parametrize("batch", [2, 60])  # the small-batch and the fused path
def test_bf16_autocast_cpu_runs_the_gemms_in_bf16(batch: int, grad: bool) -> None:
    """Under autocast the GEMMs run in bf16 (a rounding error appears, within 5%); the fp32 bias promotes the sum."""
    torch.manual_seed(0)
    layer = DGridConv(16, 16, 3, (5, 5)).eval()
    x, alpha = torch.randn(batch, 16, 5, 5), torch.rand(batch, 9, 5, 5)
    ref = uncached(layer, x, KernelScale(alpha))
    with torch.set_grad_enabled(grad), torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(x, KernelScale(alpha))
    assert out.dtype == torch.float32
    error = (out - ref).abs().max()
    assert 1e-4 < error < 0.05 * ref.abs().max()
    assert grad or {k.dtype for k in cached_kernels(layer)} == {torch.bfloat16}


@pytest.mark.parametrize("batch", [2, 60])
def test_bf16_autocast_cpu_backward_is_close_to_fp32(batch: int) -> None:
    """Training under bf16 autocast: the gradients of the features and of the tap factors (the row gather's backward
    on the fused path) are within 2% of fp32's."""
    torch.manual_seed(0)
    layer = DGridConv(16, 16, 3, (5, 5))
    x, alpha = torch.randn(batch, 16, 5, 5), torch.rand(batch, 9, 5, 5)

    def grads(bf16: bool) -> tuple[torch.Tensor, torch.Tensor]:
        xx, aa = x.clone().requires_grad_(), alpha.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = layer(xx, KernelScale(aa))
        out.float().pow(2).sum().backward()
        return xx.grad, aa.grad

    for fp32, bf16 in zip(grads(False), grads(True)):
        assert bf16.dtype == torch.float32
        assert 1e-5 < (bf16 - fp32).abs().max() < 0.02 * fp32.abs().max()


@pytest.mark.parametrize("batch", [2, 60])
def test_bf16_kernels_stay_plain_where_onednn_has_no_bf16_gemm(monkeypatch, batch: int) -> None:
    """On AVX2 alone oneDNN cannot pack a bf16 kernel (it raises): eval caches keep it plain for ``torch.matmul``."""
    monkeypatch.setattr(gridconv, "ONEDNN_PACKS", (torch.float32,))
    torch.manual_seed(0)
    layer = DGridConv(16, 16, 3, (5, 5)).eval()
    x, alpha = torch.randn(batch, 16, 5, 5), torch.rand(batch, 9, 5, 5)
    ref = uncached(layer, x, KernelScale(alpha))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(x, KernelScale(alpha))
    kernels = cached_kernels(layer)
    assert kernels and all(isinstance(k, torch.Tensor) and k.dtype == torch.bfloat16 for k in kernels)
    assert 1e-4 < (out.float() - ref).abs().max() < 0.05 * ref.abs().max()


@pytest.mark.parametrize("paddings", [("c", "r"), ("zeros",), ("c", "z", "r", "c"), ("c:r",)])
@pytest.mark.parametrize("kernel", [1, 3, 5])
def test_stacked_fused_and_tapwise_paths_agree(monkeypatch, paddings: tuple[str, ...], kernel: int) -> None:
    """The per-branch GEMM of small batches, the fused base and bands and the tapwise path agree, values and gradients."""
    torch.manual_seed(kernel)
    layer = DGridConv(4, 6, kernel, (5, 5), paddings)
    x, alpha = torch.randn(6, 4, 5, 5), torch.rand(6, kernel * kernel, 5, 5)
    results = []
    for cells, ratio, path in ((10**9, 10**9, "stacked"), (0, 10**9, "fused"), (0, 0, "tapwise")):
        monkeypatch.setattr(gridconv, "SMALL_BATCH_CELLS", cells)
        monkeypatch.setattr(gridconv, "TAPWISE_RATIO", ratio)
        assert layer.path(6) == path
        xx, aa = x.clone().requires_grad_(), alpha.clone().requires_grad_()
        layer.zero_grad(set_to_none=True)
        out = layer(xx, KernelScale(aa))
        out.pow(2).sum().backward()
        with torch.no_grad():  # without autograd: the CPU blocks
            blocked = layer(x, KernelScale(alpha))
        results.append([out, xx.grad, aa.grad, *(w.grad for w in layer.branch_weights()), layer(x), blocked])
    for stacked, fused, tapwise in zip(*results):
        torch.testing.assert_close(stacked, fused, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(stacked, tapwise, atol=1e-5, rtol=1e-5)


def test_the_output_layer_runs_tapwise() -> None:
    """256 -> 3 gathers 3 values per tap instead of 256; the hidden layers do not."""
    model = build_model()
    assert [conv.path(1) for conv in model.convs()] == ["stacked"] * 5 + ["tapwise"]
    assert [conv.path(1000) for conv in model.convs()] == ["fused"] * 5 + ["tapwise"]


def cached_kernels(layer: GridConv) -> list[object]:
    """The GEMM kernels (not the bias) in a layer's eval cache."""
    kernels = [value for (kind, _), (_, value) in layer._cache.items() if kind != "bias"]
    return [k for value in kernels for k in (value if isinstance(value, list) else [value])]


def uncached(layer: GridConv, x: torch.Tensor, scale: KernelScale) -> torch.Tensor:
    """The layer's output with autograd on, which never reads the kernel cache."""
    with torch.enable_grad():
        return layer(x, scale).detach()


@pytest.mark.parametrize("batch", [2, 60])  # the small-batch and the fused path
def test_cached_kernels_follow_optimizer_steps_state_dicts_and_modes(batch: int) -> None:
    torch.manual_seed(0)
    layer = DGridConv(4, 6, 3, (5, 5))
    x, scale = torch.randn(batch, 4, 5, 5), KernelScale(torch.rand(batch, 9, 5, 5))
    layer.eval()
    with torch.no_grad():
        first = layer(x, scale)
        assert layer._cache  # eval without autograd keeps the kernels
        torch.testing.assert_close(layer(x, scale), first)
    optimizer = torch.optim.Adam(layer.parameters(), lr=0.1)
    layer(x, scale).sum().backward()  # eval mode with autograd: gradients reach the weights
    optimizer.step()  # in-place update: the version counters move
    with torch.no_grad():
        stepped = layer(x, scale)
    assert not torch.allclose(stepped, first)
    torch.testing.assert_close(stepped, uncached(layer, x, scale))
    other = DGridConv(4, 6, 3, (5, 5))
    layer.load_state_dict(other.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(layer(x, scale), uncached(other.eval(), x, scale))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            layer(x, scale)  # caches bf16 kernels; fp32 calls must not reuse them
        torch.testing.assert_close(layer(x, scale), uncached(other, x, scale))
    layer.eval()  # no change of mode (as in predict): the cache stays
    assert layer._cache
    layer.train()
    assert not layer._cache
    with torch.no_grad():
        layer.branch1_weight.data.mul_(2.0)  # bypasses the version counter; the mode switch drops the cache
        layer.eval()
        torch.testing.assert_close(layer(x, scale), uncached(layer, x, scale))


@pytest.mark.slow
def test_torch_compile_matches_eager_on_both_paths() -> None:
    """The compiled layer (kernels rebuilt in the graph, never cached) equals eager, small and fused batches."""
    torch.manual_seed(0)
    layer = DGridConv(8, 8, 3, (5, 5)).eval()
    compiled = torch.compile(layer)
    for batch in (2, 60):
        x, scale = torch.randn(batch, 8, 5, 5), KernelScale(torch.rand(batch, 9, 5, 5))
        with torch.no_grad():
            torch.testing.assert_close(compiled(x, scale), layer(x, scale), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(compiled(x, scale), layer(x, scale), atol=1e-5, rtol=1e-5)


@pytest.mark.skipif(not gridconv.ONEDNN, reason="this torch build has no oneDNN linear ops")
@pytest.mark.parametrize("batch", [2, 60])  # the small-batch and the fused path
def test_onednn_gemms_equal_torch_matmul_in_values_and_gradients(monkeypatch, batch: int) -> None:
    """Training GEMMs through oneDNN (forward and both backward GEMMs) and eval's packed kernels equal ``torch.matmul``."""
    torch.manual_seed(1)
    layer = DGridConv(8, 6, 3, (5, 5))
    x, alpha = torch.randn(batch, 8, 5, 5), torch.rand(batch, 9, 5, 5)
    results = []
    for onednn in (True, False):
        monkeypatch.setattr(gridconv, "ONEDNN", onednn)
        layer.train().zero_grad(set_to_none=True)
        xx, aa = x.clone().requires_grad_(), alpha.clone().requires_grad_()
        out = layer(xx, KernelScale(aa))
        out.pow(2).sum().backward()
        with torch.no_grad():
            evaluated = layer.eval()(x, KernelScale(alpha))
        assert {isinstance(k, gridconv.PackedKernel) for k in cached_kernels(layer)} == {onednn}
        results.append([out, xx.grad, aa.grad, *(w.grad for w in layer.branch_weights()), evaluated])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dynamic", [True, False])
@pytest.mark.parametrize("paddings", [("c", "r"), ("zeros",)])
def test_cpu_row_gather_equals_the_selection_gemm(monkeypatch, paddings: tuple[str, ...], dynamic: bool) -> None:
    """The CPU blocks' row gather (``_ScaledGather``) and the graph-capture form ``G @ X`` agree, values and gradients."""
    torch.manual_seed(2)
    layer = DGridConv(8, 6, 3, (5, 5), paddings)
    x, alpha = torch.randn(40, 8, 5, 5), torch.rand(40, 9, 5, 5)
    results = []
    for capturing in (False, True):
        monkeypatch.setattr(gridconv, "_capturing", lambda capturing=capturing: capturing)
        layer.zero_grad(set_to_none=True)
        xx, aa = x.clone().requires_grad_(), alpha.clone().requires_grad_()
        out = layer(xx, KernelScale(aa) if dynamic else None)
        out.pow(2).sum().backward()
        results.append([out, xx.grad, *(w.grad for w in layer.branch_weights()), *([aa.grad] if dynamic else [])])
    for gathered, selected in zip(*results):  # fp32 sums that cancel at the borders (base + corrections)
        torch.testing.assert_close(gathered, selected, atol=2e-6 * float(selected.detach().abs().max()) + 1e-5, rtol=1e-5)
