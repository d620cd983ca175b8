"""The Grid Lifting Network (paper 3.4, eq. 9): ``G_3D = phi^-1(GLN(phi(G_2D)))``.

Topology (official code): input D-GridConv ``2 -> C`` + BN + ReLU + Dropout2d; ``num_blocks``
residual blocks of two (D-GridConv, BN, ReLU, Dropout2d) with ``x + y``; output D-GridConv
``C -> 3`` without bias. Each D-GridConv layer has its own attention computed from its input
(eq. 7). Module names follow the official state dicts (``w1``, ``batch_norm1``, ``atten_conv1``,
``linear_stages.{i}.{w1,w2,batch_norm1,batch_norm2,atten_conv1,atten_conv2}``, ``w2``,
``atten_conv2``); the SGT is a fixed :class:`GridTransform` or the learnable :class:`AutoGrids`.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .attention import KernelScale, build_attention
from .autogrids import AutoGrids
from .model_config import GLNConfig
from .gridconv import DGridConv
from .sgt import GridLayout, GridTransform, phi, phi_inv
from .layout_families import default_shape, get_layout
from .skeleton import Skeleton, get_skeleton

__all__ = ["InputError", "check_pose_input", "GridLiftingNetwork", "build_model"]

Record = list[tuple[str, KernelScale | None]]


class InputError(ValueError):
    """A model input has the wrong shape or non-finite values."""


def check_pose_input(x: Tensor, num_joints: int, skeleton_name: str = "", training: bool = False) -> None:
    """Raise :class:`InputError` unless ``x`` is a finite floating-point ``(B, J, 2)`` batch.

    The finiteness check reads a value back to the host; a training step on CUDA skips it (training
    batches are rows of a PoseSet, checked when it was built), so the step never waits for the device.
    """
    if not isinstance(x, Tensor) or x.ndim != 3 or x.shape[1] != num_joints or x.shape[2] != 2:
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        of = f" for skeleton {skeleton_name}" if skeleton_name else ""
        raise InputError(f"expected 2D poses of shape (B, {num_joints}, 2){of}, got {got}")
    if not x.is_floating_point():
        raise InputError(f"expected floating-point 2D poses, got dtype {x.dtype}")
    if (training and x.is_cuda) or torch.compiler.is_compiling():
        return
    if not bool(torch.isfinite(x).all()):
        raise InputError("2D poses contain NaN or infinite values")


def _layer(
    config: GLNConfig, c_in: int, c_out: int, kernel: int, shape: tuple[int, int], bias: bool
) -> tuple[DGridConv, nn.Module | None]:
    """A D-GridConv layer (eq. 8) and its attention ``pi`` (eq. 7), or ``None`` for static GridConv."""
    conv = DGridConv(c_in, c_out, kernel, shape, config.paddings, bias)
    atten = build_attention(
        config.effective_attention, c_in, kernel, shape, config.attention_temperature, config.attention_hidden_min
    )
    return conv, atten


def _dynamic(conv: DGridConv, atten: nn.Module | None, x: Tensor, name: str, record: Record | None) -> Tensor:
    """Eq. 7-8: ``conv(x, pi(x))``, optionally recording the kernel scale under ``name``."""
    scale = None if atten is None else atten(x)
    if record is not None:
        record.append((name, scale))
    return conv(x, scale)


class _ResidualBlock(nn.Module):
    """Two (D-GridConv, BN, ReLU, Dropout2d) stages and the skip connection ``x + y``."""

    def __init__(self, config: GLNConfig, shape: tuple[int, int]) -> None:
        super().__init__()
        c, (_, kb, kc, _) = config.channels, config.kernel_pattern
        self.w1, self.atten_conv1 = _layer(config, c, c, kb, shape, True)
        self.batch_norm1 = nn.BatchNorm2d(c)
        self.w2, self.atten_conv2 = _layer(config, c, c, kc, shape, True)
        self.batch_norm2 = nn.BatchNorm2d(c)
        self.dropout = nn.Dropout2d(config.dropout)

    def forward(self, x: Tensor, prefix: str = "", record: Record | None = None) -> Tensor:
        y = self.dropout(torch.relu(self.batch_norm1(_dynamic(self.w1, self.atten_conv1, x, prefix + "w1", record))))
        y = self.dropout(torch.relu(self.batch_norm2(_dynamic(self.w2, self.atten_conv2, y, prefix + "w2", record))))
        return x + y


class GridLiftingNetwork(nn.Module):
    """GLN of eq. 9 mapping normalised 2D joints ``(B, J, 2)`` to root-relative 3D ``(B, J, 3)`` (metres)."""

    def __init__(self, config: GLNConfig, skeleton: Skeleton) -> None:
        super().__init__()
        self.config, self.skeleton = config, skeleton
        self.sgt: GridTransform | None = None
        self.autogrids: AutoGrids | None = None
        if config.sgt == "autogrids":
            start = config.autogrids_start()
            if start == "random":
                shape = config.grid_shape or default_shape(skeleton)
                self.autogrids = AutoGrids.random(skeleton, shape, gumbel_tau=config.gumbel_tau)
            else:
                init = get_layout(start, skeleton, config.grid_shape)
                self.autogrids = AutoGrids.from_layout(init, config.autogrids_init_scale, gumbel_tau=config.gumbel_tau)
            shape = self.autogrids.shape
        else:
            self.sgt = GridTransform(get_layout(config.sgt, skeleton, config.grid_shape))
            shape = self.sgt.shape
        self.grid_shape = shape
        c, (ka, _, _, kd) = config.channels, config.kernel_pattern
        self.w1, self.atten_conv1 = _layer(config, 2, c, ka, shape, True)
        self.batch_norm1 = nn.BatchNorm2d(c)
        self.dropout = nn.Dropout2d(config.dropout)
        self.linear_stages = nn.ModuleList(_ResidualBlock(config, shape) for _ in range(config.num_blocks))
        self.w2, self.atten_conv2 = _layer(config, c, 3, kd, shape, False)

    def grid_layout(self) -> GridLayout:
        """The current SGT layout (the learnt hard layout for AutoGrids)."""
        return self.autogrids.layout() if self.autogrids is not None else self.sgt.layout  # type: ignore[union-attr]

    def forward(self, x: Tensor) -> Tensor:
        """Eq. 9: ``(B, J, 2) -> (B, J, 3)``."""
        return self._lift(x, None)[1]

    def forward_grid(self, x: Tensor) -> Tensor:
        """The network's grid output ``(B, 3, H, P)``, before the inverse SGT."""
        return self._lift(x, None)[0]

    @torch.no_grad()
    def attention_maps(self, x: Tensor) -> dict[str, Tensor]:
        """Tap attention ``alpha`` (eq. 7) of every D-GridConv layer, input to output, each ``(B, K*K, H, P)``.

        Layers whose attention has no per-cell taps (``se`` or static GridConv) report ones.
        """
        record: Record = []
        self._lift(x, record)
        maps = {}
        for (name, scale), conv in zip(record, self._convs()):
            shape = (x.shape[0], conv.kernel_size**2, *self.grid_shape)
            taps = None if scale is None else scale.taps
            maps[name] = x.new_ones(shape) if taps is None else taps.float().expand(shape)
        return maps

    def _convs(self) -> list[DGridConv]:
        return [self.w1, *(w for block in self.linear_stages for w in (block.w1, block.w2)), self.w2]

    def _lift(self, x: Tensor, record: Record | None) -> tuple[Tensor, Tensor]:
        check_pose_input(x, self.skeleton.num_joints, self.skeleton.name, self.training)
        if self.autogrids is not None:
            s = self.autogrids()
            grid = self._network(phi(s, x, self.grid_shape), record)
            return grid, phi_inv(s, grid)
        grid = self._network(self.sgt(x), record)  # type: ignore[misc]
        return grid, self.sgt.inverse(grid)  # type: ignore[union-attr]

    def _network(self, d: Tensor, record: Record | None) -> Tensor:
        y = _dynamic(self.w1, self.atten_conv1, d, "w1", record)
        y = self.dropout(torch.relu(self.batch_norm1(y)))
        for i, block in enumerate(self.linear_stages):
            y = block(y, f"linear_stages.{i}.", record)
        return _dynamic(self.w2, self.atten_conv2, y, "w2", record)


def build_model(config: GLNConfig | None = None, **overrides: object) -> nn.Module:
    """Build the model of ``config`` (default: the paper's D-GridConv GLN) with optional field overrides."""
    config = config or GLNConfig()
    if overrides:
        config = config.replace(**overrides)
    skeleton = get_skeleton(config.skeleton)
    if config.model in ("dgridconv", "gridconv"):
        return GridLiftingNetwork(config, skeleton)
    from .baselines import build_baseline

    return build_baseline(config, skeleton)
