"""Official checkpoint loading: outputs equal an independent re-implementation of the authors' forward."""
from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from gridconv_core import CheckpointError, load_official_checkpoint

MODES = {"c": "circular", "r": "replicate", "z": "constant"}
HANDCRAFTED = [[7, 7, 7, 7, 7], [0, 8, 8, 8, 0], [1, 14, None, 11, 4], [2, 15, 9, 12, 5], [3, 16, 10, 13, 6]]


def official_state_dict(autogrids: bool, seed: int = 0) -> OrderedDict:
    """Random weights under the official key names and shapes (2 blocks, 256 channels, 5x5, K=3)."""
    g = torch.Generator().manual_seed(seed)
    state: OrderedDict = OrderedDict()

    def conv(prefix: str, c_in: int, c_out: int, bias: bool) -> None:
        for n in (1, 2):
            state[f"{prefix}.branch{n}_weight"] = torch.randn(c_out, c_in, 3, 3, generator=g) / (3 * c_in**0.5)
            if bias:
                state[f"{prefix}.branch{n}_bias"] = torch.randn(c_out, generator=g) * 0.1

    def bn(prefix: str, c: int) -> None:
        state[f"{prefix}.weight"] = 1 + 0.1 * torch.randn(c, generator=g)
        state[f"{prefix}.bias"] = 0.1 * torch.randn(c, generator=g)
        state[f"{prefix}.running_mean"] = 0.1 * torch.randn(c, generator=g)
        state[f"{prefix}.running_var"] = 0.5 + torch.rand(c, generator=g)
        state[f"{prefix}.num_batches_tracked"] = torch.tensor(100)

    def atten(prefix: str, c_in: int) -> None:
        state[f"{prefix}.fc.weight"] = torch.randn(16, c_in, 1, 1, generator=g) / c_in**0.5
        bn(f"{prefix}.bn", 16)
        state[f"{prefix}.position_fc.weight"] = torch.randn(225, 16, 1, 1, generator=g) * 5
        state[f"{prefix}.position_fc.bias"] = torch.randn(225, generator=g)

    conv("w1", 2, 256, True)
    bn("batch_norm1", 256)
    atten("atten_conv1", 2)
    for i in range(2):
        for j in (1, 2):
            conv(f"linear_stages.{i}.w{j}", 256, 256, True)
            bn(f"linear_stages.{i}.batch_norm{j}", 256)
            atten(f"linear_stages.{i}.atten_conv{j}", 256)
    conv("w2", 256, 3, False)
    atten("atten_conv2", 256)
    if autogrids:
        state["sgt_layer.sgt_trans_mat"] = torch.rand(1, 25, 17, generator=g)
    return state


def official_net(sd: dict, grid: torch.Tensor, padding: tuple[str, str]) -> torch.Tensor:
    """The authors' D-GridConv network in eval mode, written with F.unfold as they do."""

    def attention(prefix: str, x: torch.Tensor) -> torch.Tensor:
        h = F.conv2d(F.adaptive_avg_pool2d(x, 1), sd[f"{prefix}.fc.weight"])
        h = F.batch_norm(h, sd[f"{prefix}.bn.running_mean"], sd[f"{prefix}.bn.running_var"],
                         sd[f"{prefix}.bn.weight"], sd[f"{prefix}.bn.bias"], False)
        z = F.conv2d(F.relu(h), sd[f"{prefix}.position_fc.weight"], sd[f"{prefix}.position_fc.bias"])
        return torch.sigmoid(z / 30.0).view(x.shape[0], 9, 5, 5)

    def dgridconv(prefix: str, x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        out = 0
        for n, mode in zip((1, 2), padding):
            patches = F.unfold(F.pad(x, (1, 1, 1, 1), mode=MODES[mode]), 3).view(b, c, 9, 25)
            patches = (patches * alpha.view(b, 1, 9, 25)).view(b, c * 9, 25)
            w = sd[f"{prefix}.branch{n}_weight"]
            y = F.fold(w.view(w.shape[0], -1) @ patches, (5, 5), 1)
            out = out + y + (sd[f"{prefix}.branch{n}_bias"].view(1, -1, 1, 1) if f"{prefix}.branch{n}_bias" in sd else 0)
        return out

    def bn(prefix: str, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, sd[f"{prefix}.running_mean"], sd[f"{prefix}.running_var"], sd[f"{prefix}.weight"], sd[f"{prefix}.bias"], False)

    y = F.relu(bn("batch_norm1", dgridconv("w1", grid, attention("atten_conv1", grid))))
    for i in range(2):
        p = f"linear_stages.{i}"
        z = F.relu(bn(f"{p}.batch_norm1", dgridconv(f"{p}.w1", y, attention(f"{p}.atten_conv1", y))))
        z = F.relu(bn(f"{p}.batch_norm2", dgridconv(f"{p}.w2", z, attention(f"{p}.atten_conv2", z))))
        y = y + z
    return dgridconv("w2", y, attention("atten_conv2", y))


def handcrafted_grid(x: torch.Tensor) -> torch.Tensor:
    """The official dataset-side handcrafted SGT (facts 2.2), cell (2,2) the Thorax-Nose midpoint."""
    cells = [[(x[:, 8] + x[:, 9]) / 2 if j is None else x[:, j] for j in row] for row in HANDCRAFTED]
    return torch.stack([torch.stack(row, dim=-1) for row in cells], dim=-2)


def save_like_the_authors(path: Path, state: dict, legacy: bool) -> None:
    params = [torch.nn.Parameter(v.clone()) for v in state.values() if v.is_floating_point()]
    optimizer = torch.optim.Adam(params, lr=1e-3)
    sum(p.sum() for p in params).backward()
    optimizer.step()
    ckpt = {"epoch": 100, "lr": 6.6e-4, "error": 37.15, "state_dict": state, "optimizer": optimizer}
    torch.save(ckpt, path, _use_new_zipfile_serialization=not legacy)


@pytest.mark.parametrize("legacy", [True, False])
@pytest.mark.parametrize("padding", [("c", "r"), ("c", "z")])
def test_handcrafted_checkpoint_matches_official_forward(tmp_path: Path, legacy: bool, padding: tuple[str, str]) -> None:
    state = official_state_dict(autogrids=False)
    path = tmp_path / "gt_d-gridconv.pth.tar"
    save_like_the_authors(path, state, legacy)
    model = load_official_checkpoint(path, padding=padding)
    assert model.autogrids is None and not model.training
    x = torch.randn(6, 17, 2, generator=torch.Generator().manual_seed(1)) * 0.4
    with torch.no_grad():
        expected = official_net(state, handcrafted_grid(x), padding)
        torch.testing.assert_close(model.forward_grid(x), expected, atol=1e-5, rtol=1e-5)
        assert (model.forward_grid(x) - expected).abs().max() < 1e-5


def test_autogrids_checkpoint_matches_official_forward(tmp_path: Path) -> None:
    state = official_state_dict(autogrids=True, seed=3)
    path = tmp_path / "gt_d-gridconv_autogrids.pth.tar"
    save_like_the_authors(path, state, legacy=True)
    model = load_official_checkpoint(path, padding=("c", "r"))
    x = torch.randn(6, 17, 2, generator=torch.Generator().manual_seed(2)) * 0.4
    s = F.one_hot(state["sgt_layer.sgt_trans_mat"][0].argmax(-1), 17).float()  # (25, 17)
    with torch.no_grad():
        grid = (s @ x).view(6, 5, 5, 2).permute(0, 3, 1, 2)
        out = official_net(state, grid, ("c", "r")).reshape(6, 3, 25).transpose(1, 2)
        expected = (s.t() @ out) / (s.sum(0)[:, None] + 1e-8)
        assert (model(x) - expected).abs().max() < 1e-5
    assert model.grid_layout().index_grid().reshape(-1).tolist() == s.argmax(1).tolist()


def test_state_dict_input_and_mismatch(tmp_path: Path) -> None:
    state = official_state_dict(autogrids=False)
    model = load_official_checkpoint(state)
    torch.testing.assert_close(model.w1.branch2_weight, state["w1.branch2_weight"])
    broken = dict(state)
    broken["w2.branch1_weight"] = torch.zeros(3, 256, 5, 5)
    with pytest.raises(CheckpointError, match="does not fit"):
        load_official_checkpoint(broken)
    with pytest.raises(CheckpointError, match="not an official"):
        load_official_checkpoint({"foo": torch.zeros(1)})


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth.tar"
    torch.save({"state_dict": official_state_dict(False), "optimizer": _Evil(marker)}, path)
    with pytest.raises(CheckpointError, match=r"disallowed global (os|posix)\.system"):
        load_official_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize("legacy", [True, False])
def test_truncated_and_missing_files(tmp_path: Path, legacy: bool) -> None:
    path = tmp_path / "ckpt.pth.tar"
    save_like_the_authors(path, official_state_dict(False), legacy)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_official_checkpoint(path)
    with pytest.raises(CheckpointError, match="cannot read"):
        load_official_checkpoint(tmp_path / "absent.pth.tar")
