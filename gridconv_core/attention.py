"""Attention for D-GridConv: the kernel attention ``pi`` of eq. 7 and the Fig. 8 variants.

Every module maps a grid feature ``(B, C_in, H, P)`` to a :class:`KernelScale`: factors that
scale the kernel ``W`` of a D-GridConv layer (eq. 8). ``taps`` ``(B, K*K or 1, H, P)`` scales the
kernel taps per output grid cell; ``channels`` ``(B, C_in, 1, 1)`` scales its input channels.
Parameter names follow the official code (``fc``, ``bn``, ``position_fc``).

The temperature ``T`` belongs to the paper's dynamic attention (eq. 7, the authors' code). The SE and
spatial variants of Fig. 8 use their own papers' convention, a plain ``sigmoid(z)``: dividing by
``T = 30`` would pin them near 0.5 and scale their gradients by 1/30.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .errors import ConfigError

__all__ = [
    "ATTENTIONS",
    "KernelScale",
    "KernelAttention",
    "ChannelAttention",
    "SpatialAttention",
    "SpatialChannelAttention",
    "build_attention",
]

ATTENTIONS = ("none", "dynamic", "se", "spatial", "spatial_channel")


class KernelScale(NamedTuple):
    """Kernel scaling factors of one D-GridConv layer; ``None`` leaves that axis unscaled."""

    taps: Tensor | None = None
    channels: Tensor | None = None


def _squeeze(in_channels: int, hidden_min: int) -> tuple[nn.Conv2d, nn.BatchNorm2d]:
    """Global-pool MLP head: FC ``C_in -> max(C_in // 16, hidden_min)`` without bias, then BN."""
    hidden = max(in_channels // 16, hidden_min)
    return nn.Conv2d(in_channels, hidden, 1, bias=False), nn.BatchNorm2d(hidden)


def _fc(layer: nn.Conv2d, x: Tensor) -> Tensor:
    """A 1x1 conv on ``(B, C)`` features as one GEMM (kept as ``Conv2d`` for the official weight shapes)."""
    return F.linear(x, layer.weight.flatten(1), layer.bias)


def _pooled_mlp(fc: nn.Conv2d, bn: nn.BatchNorm2d, head: nn.Conv2d, x: Tensor) -> Tensor:
    """GAP, FC, BN, ReLU, FC: the SE-typed logits ``z`` of eq. 7, shape ``(B, head.out_channels)``."""
    hidden = _fc(fc, x.mean(dim=(2, 3)))
    return _fc(head, torch.relu(bn(hidden[:, :, None, None]).flatten(1)))


def _init(module: nn.Module) -> None:
    """Official init: Kaiming-normal (fan_out, relu) 1x1 convs with zero bias; BN weight 1, bias 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class KernelAttention(nn.Module):
    """Eq. 7, ``alpha = pi(D_in)``: GAP, FC, BN, ReLU, FC to ``K*K*H*P``, ``sigmoid(z / T)``.

    ``alpha`` has shape ``(B, K*K, H, P)``: one factor per sample, kernel tap and grid cell,
    shared by all channels and branches (paper A.2). ``temperature`` is a plain attribute, as in
    the official code (not saved in state dicts); the released models use T = 30.
    """

    def __init__(
        self,
        in_channels: int,
        kernel_size: int,
        grid_shape: tuple[int, int],
        temperature: float = 30.0,
        hidden_min: int = 16,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.grid_shape = tuple(grid_shape)
        self.temperature = float(temperature)
        self.fc, self.bn = _squeeze(in_channels, hidden_min)
        self.position_fc = nn.Conv2d(self.fc.out_channels, kernel_size**2 * grid_shape[0] * grid_shape[1], 1)
        _init(self)

    def forward(self, x: Tensor) -> KernelScale:
        z = _pooled_mlp(self.fc, self.bn, self.position_fc, x)
        alpha = torch.sigmoid(z / self.temperature).view(x.shape[0], self.kernel_size**2, *self.grid_shape)
        return KernelScale(taps=alpha)


class ChannelAttention(nn.Module):
    """Fig. 8 (a), SENet-style: one factor per input channel of the kernel, ``sigmoid(z)`` of the pooled input."""

    def __init__(self, in_channels: int, hidden_min: int = 16) -> None:
        super().__init__()
        self.fc, self.bn = _squeeze(in_channels, hidden_min)
        self.channel_fc = nn.Conv2d(self.fc.out_channels, in_channels, 1)
        _init(self)

    def forward(self, x: Tensor) -> KernelScale:
        z = _pooled_mlp(self.fc, self.bn, self.channel_fc, x)
        return KernelScale(channels=torch.sigmoid(z)[:, :, None, None])


class SpatialAttention(nn.Module):
    """Fig. 8 (b), reduced CBAM: channel mean and max, a ``K x K`` circular conv, ``sigmoid`` per cell."""

    def __init__(self, kernel_size: int = 3) -> None:
        super().__init__()
        self.spatial_conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, padding_mode="circular")

    def forward(self, x: Tensor) -> KernelScale:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return KernelScale(taps=torch.sigmoid(self.spatial_conv(pooled)))


class SpatialChannelAttention(nn.Module):
    """Fig. 8 (c), CBAM-like: channel factors (a) and, from the channel-scaled input, cell factors (b)."""

    def __init__(self, in_channels: int, kernel_size: int = 3, hidden_min: int = 16) -> None:
        super().__init__()
        self.channel = ChannelAttention(in_channels, hidden_min)
        self.spatial = SpatialAttention(kernel_size)

    def forward(self, x: Tensor) -> KernelScale:
        channels = self.channel(x).channels
        return KernelScale(taps=self.spatial(x * channels).taps, channels=channels)


def build_attention(
    kind: str,
    in_channels: int,
    kernel_size: int,
    grid_shape: tuple[int, int],
    temperature: float = 30.0,
    hidden_min: int = 16,
) -> nn.Module | None:
    """The attention module of one D-GridConv layer by name (:data:`ATTENTIONS`); ``None`` for ``"none"``.

    ``temperature`` applies to ``"dynamic"`` only (module doc)."""
    if kind == "none":
        return None
    if kind == "dynamic":
        return KernelAttention(in_channels, kernel_size, grid_shape, temperature, hidden_min)
    if kind == "se":
        return ChannelAttention(in_channels, hidden_min)
    if kind == "spatial":
        return SpatialAttention(kernel_size)
    if kind == "spatial_channel":
        return SpatialChannelAttention(in_channels, kernel_size, hidden_min)
    raise ConfigError(f"unknown attention {kind!r}; choose one of {', '.join(ATTENTIONS)}")
