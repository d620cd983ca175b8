"""The interface every lifting model of :func:`~gridconv_core.model.build_model` shares (eq. 9's signature).

A :class:`LiftingModel` maps normalised 2D joints ``(B, J, 2)`` to root-relative 3D ``(B, J, 3)`` in metres and
holds its :class:`~gridconv_core.skeleton.Skeleton` and :class:`~gridconv_core.model_config.GLNConfig`. Grid
models hold an :class:`~gridconv_core.sgt.SGT` (fixed or AutoGrids); ``grid_layout()`` and ``autogrids`` read
it, and ``attention_maps()`` taps the kernel attention of every D-GridConv layer with forward hooks.
"""
from __future__ import annotations

from functools import partial
from typing import Any

import torch
from torch import Tensor, nn

from .autogrids import AutoGrids
from .gridconv import DGridConv
from .model_config import GLNConfig
from .sgt import SGT, GridLayout
from .skeleton import Skeleton

__all__ = ["LiftingModel"]


class LiftingModel(nn.Module):
    """Base of the GLN and the baselines: ``skeleton``, ``config``, an optional ``sgt``, and the readers below."""

    def __init__(self, config: GLNConfig, skeleton: Skeleton, sgt: SGT | None = None) -> None:
        super().__init__()
        self.config, self.skeleton = config, skeleton
        self.sgt = sgt
        self.register_load_state_dict_pre_hook(_rename_legacy_keys)

    def grid_layout(self) -> GridLayout | None:
        """The current SGT layout (the learnt hard layout for AutoGrids); ``None`` for a model without a grid."""
        return None if self.sgt is None else self.sgt.layout()

    @property
    def autogrids(self) -> AutoGrids | None:
        """The learnable SGT when the model has one (its ``noise`` switch, ``s_prob``, ``snapshot()``)."""
        return self.sgt if isinstance(self.sgt, AutoGrids) else None

    @torch.no_grad()
    def attention_maps(self, x: Tensor) -> dict[str, Tensor]:
        """Attention ``alpha`` (eq. 7) of every D-GridConv layer, input to output, each ``(B, K*K, H, P)``.

        Collected by forward hooks on the layers during one forward pass of ``x``; layers whose attention has
        no per-cell taps (``se`` or static GridConv) report ones. Empty for models without D-GridConv layers.
        """
        maps: dict[str, Tensor] = {}
        handles = [module.register_forward_hook(partial(_tap, maps, name, x.shape[0]))
                   for name, module in self.named_modules() if isinstance(module, DGridConv)]
        try:
            self(x)
        finally:
            for handle in handles:
                handle.remove()
        return maps


def _tap(maps: dict[str, Tensor], name: str, batch: int, conv: DGridConv, args: tuple[Any, ...], _: Tensor) -> None:
    """Forward hook: the kernel scale a D-GridConv layer was called with (eq. 8's ``alpha``)."""
    shape = (batch, conv.kernel_size**2, *conv.grid_shape)
    scale = args[1] if len(args) > 1 else None
    taps = None if scale is None else scale.taps
    maps[name] = args[0].new_ones(shape) if taps is None else taps.float().expand(shape)


_LEGACY_PREFIX = "autogrids."
"""Where checkpoints written before the one SGT interface kept AutoGrids' scores (now under ``sgt.``)."""


def _rename_legacy_keys(module: nn.Module, state_dict: dict[str, Any], prefix: str, *_: Any) -> None:
    """``load_state_dict`` pre-hook: reads an older AutoGrids checkpoint's ``autogrids.s_prob`` as ``sgt.s_prob``."""
    old = prefix + _LEGACY_PREFIX
    for key in [k for k in state_dict if k.startswith(old)]:
        state_dict[prefix + "sgt." + key[len(old):]] = state_dict.pop(key)
