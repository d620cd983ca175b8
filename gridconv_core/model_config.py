"""``GLNConfig``: the Grid Lifting Network's configuration; defaults are the paper's model (4.2, A.2).

Defaults: D-GridConv GLN with the handcrafted SGT, 2 residual blocks of 256 channels, kernel
pattern 3-33-33-3 (Table E), circular + replicate branches (Table D), dropout 0.25 and the
kernel attention of eq. 7 at temperature T = 30 (the released checkpoints' value).
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from .attention import ATTENTIONS
from .autogrids import DEFAULT_INIT_SCALE
from .gridconv import normalise_paddings
from .errors import ConfigError, SkeletonError
from .io import read_json, write_json
from .skeleton import get_skeleton

__all__ = ["JsonConfig", "GLNConfig", "MODELS", "GRAPHS"]

MODELS = ("dgridconv", "gridconv", "simple_baseline", "semgcn", "lcn")
GRAPHS = ("skeleton", "grid", "grid_cells", "grid_cells4")


class JsonConfig:
    """JSON round trip for a config dataclass that defines ``to_dict``; ``WHAT`` names it in errors."""

    WHAT: ClassVar[str] = "config"

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_dict(cls: type[C], data: Any) -> C:
        """Build from a plain dict (e.g. parsed JSON); unknown or invalid fields raise :class:`ConfigError`."""
        if not isinstance(data, dict):
            raise ConfigError(f"{cls.WHAT} must be a JSON object, got {type(data).__name__}")
        _known(data, cls, cls.WHAT)
        try:
            return cls(**data)
        except TypeError as err:
            raise ConfigError(f"{cls.WHAT}: {err}") from None

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """JSON text; with ``path`` it is also written atomically."""
        return write_json(self.to_dict(), path)

    @classmethod
    def from_json(cls: type[C], source: str | os.PathLike[str]) -> C:
        """Parse a JSON string or read a JSON file."""
        return cls.from_dict(read_json(source, ConfigError, cls.WHAT))


C = TypeVar("C", bound=JsonConfig)


@dataclass(frozen=True)
class GLNConfig(JsonConfig):
    """Model configuration (see the module doc for the paper's defaults).

    ``sgt`` is a layout spec for :func:`gridconv_core.layout_families.get_layout` or ``"autogrids"``;
    ``autogrids_init`` is a layout spec, ``"random"``, or ``"prior"`` (default: the official
    ``standard`` prior for H36M-17 on 5x5, random scores otherwise, as in paper 4.2 / the official
    code); ``grid_shape`` ``None`` takes the layout's. ``autogrids_init_scale`` is the logit margin ``m`` of
    each cell's prior joint when AutoGrids starts from a layout: under Gumbel noise the cell keeps it
    with probability ``e^m / (e^m + J - 1)`` (0.90 for the default 5 and J = 17; the official 1 gives
    0.15, so the prior is lost at the first noisy step). ``kernel_pattern`` is ``(a, b, c, d)`` of Table E; ``graph`` selects the graph of
    the graph baselines (Table 4): ``"skeleton"``, ``"grid"`` (G_craft: the layout's equivalent
    joint graph), ``"grid_cells"`` (D_craft: the layout's grid cells as nodes, 8 neighbours as in A.5) or
    ``"grid_cells4"`` (D_craft with the 4-neighbourhood of eq. 2).
    """

    skeleton: str = "h36m17"
    model: str = "dgridconv"
    sgt: str = "handcrafted"
    autogrids_init: str = "prior"
    grid_shape: tuple[int, int] | None = None
    channels: int = 256
    num_blocks: int = 2
    kernel_pattern: tuple[int, int, int, int] = (3, 3, 3, 3)
    paddings: tuple[str, ...] = ("circular", "replicate")
    dropout: float = 0.25
    attention: str = "dynamic"
    attention_temperature: float = 30.0
    attention_hidden_min: int = 16
    gumbel_tau: float = 1.0
    autogrids_init_scale: float = DEFAULT_INIT_SCALE
    graph: str = "skeleton"
    WHAT: ClassVar[str] = "model config"

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        try:
            get_skeleton(self.skeleton)
        except SkeletonError as err:
            raise ConfigError(f"skeleton: {err}") from None
        _choice("model", self.model, MODELS)
        _choice("graph", self.graph, GRAPHS)
        _choice("attention", self.attention, ATTENTIONS)
        for name in ("sgt", "autogrids_init"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ConfigError(f"{name} must be a non-empty layout name or path, got {getattr(self, name)!r}")
        if self.grid_shape is not None:
            put("grid_shape", _ints("grid_shape", self.grid_shape, 2, odd=False))
        put("kernel_pattern", _ints("kernel_pattern", self.kernel_pattern, 4, odd=True))
        try:
            put("paddings", normalise_paddings(self.paddings))
        except ValueError as err:
            raise ConfigError(str(err)) from None
        _positive_int("channels", self.channels)
        _positive_int("attention_hidden_min", self.attention_hidden_min)
        if not isinstance(self.num_blocks, int) or isinstance(self.num_blocks, bool) or self.num_blocks < 0:
            raise ConfigError(f"num_blocks must be an integer >= 0, got {self.num_blocks!r}")
        if not _number(self.dropout) or not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout!r}")
        for name in ("attention_temperature", "gumbel_tau", "autogrids_init_scale"):
            if not _number(getattr(self, name)) or getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be a positive number, got {getattr(self, name)!r}")

    @property
    def effective_attention(self) -> str:
        """The attention the network uses: ``"none"`` for the static ``gridconv`` model."""
        return "none" if self.model == "gridconv" else self.attention

    def autogrids_start(self) -> str:
        """The layout spec AutoGrids starts from: ``autogrids_init`` with ``"prior"`` resolved."""
        if self.autogrids_init != "prior":
            return self.autogrids_init
        five_by_five = self.grid_shape is None or tuple(self.grid_shape) == (5, 5)
        return "standard" if self.skeleton == "h36m17" and five_by_five else "random"

    def replace(self, **overrides: Any) -> GLNConfig:
        """A validated copy with some fields changed; unknown names raise :class:`ConfigError`."""
        _known(overrides, GLNConfig, self.WHAT)
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (tuples become lists)."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


def _known(data: dict[str, Any], cls: type, what: str) -> None:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown {what} field(s): {', '.join(map(str, unknown))}")


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")


def _positive_int(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")


def _ints(name: str, value: Any, length: int, odd: bool) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or len(value) != length:
        raise ConfigError(f"{name} must be a list of {length} integers, got {value!r}")
    for v in value:
        _positive_int(name, v)
        if odd and v % 2 == 0:
            raise ConfigError(f"{name} entries must be odd kernel sizes, got {list(value)}")
    return tuple(value)
