"""Loading the authors' released checkpoints (OSVAI/GridConv ``dgridconv`` / ``dgridconv_autogrids``).

The released ``.pth.tar`` files are (Python 2) pickles of ``{'epoch', 'lr', 'error', 'state_dict',
'optimizer'}`` where ``optimizer`` is a whole ``torch.optim.Adam`` object. They are read with a
restricted unpickler: only tensor-rebuild functions, storages, plain containers and a harmless
stand-in for the optimizer classes can be named; anything else is refused before it runs.
"""
from __future__ import annotations

import io
import os
import pickle
import types
import zipfile
from _compat_pickle import IMPORT_MAPPING, NAME_MAPPING
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .errors import CheckpointError, ConfigError
from .model_config import GLNConfig
from .model import GridLiftingNetwork, build_model

__all__ = ["CheckpointError", "OptimizerStandIn", "restricted_pickle", "read_official_file", "load_official_checkpoint"]


class OptimizerStandIn:
    """Inert placeholder for a pickled ``torch.optim`` object: keeps its name and state, runs nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs

    def __setstate__(self, state: Any) -> None:
        self.state = state


_ALLOWED = {
    ("torch._utils", "_rebuild_tensor"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("collections", "OrderedDict"),
    ("collections", "defaultdict"),
    ("builtins", "dict"),
    ("builtins", "list"),
    ("builtins", "set"),
    ("builtins", "tuple"),
}
_STAND_IN_MODULES = ("torch.optim.",)


class _Disallowed(pickle.UnpicklingError):
    """A pickle names a global outside the allow-list."""


class _RestrictedUnpickler(pickle.Unpickler):
    """``find_class`` limited to the allow-list; ``torch.optim.*`` names become :class:`OptimizerStandIn`."""

    def find_class(self, module: str, name: str) -> Any:
        module, name = NAME_MAPPING.get((module, name), (IMPORT_MAPPING.get(module, module), name))  # Python 2
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        if module == "torch" and name.endswith("Storage") and name[:1].isupper():
            return super().find_class(module, name)
        if module.startswith(_STAND_IN_MODULES):
            return OptimizerStandIn
        raise _Disallowed(f"disallowed global {module}.{name}")


def _restricted_load(file: Any, **kwargs: Any) -> Any:
    return _RestrictedUnpickler(file, **kwargs).load()


restricted_pickle = types.ModuleType("gridconv_restricted_pickle")
"""A pickle module for ``torch.load(pickle_module=...)`` whose unpickler only rebuilds plain data."""
restricted_pickle.Unpickler = _RestrictedUnpickler  # type: ignore[attr-defined]
restricted_pickle.load = _restricted_load  # type: ignore[attr-defined]
restricted_pickle.UnpicklingError = pickle.UnpicklingError  # type: ignore[attr-defined]


def read_official_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read an official checkpoint file with the restricted unpickler (Python 2 pickles: latin1)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise CheckpointError(f"cannot read checkpoint {path}: {err.strerror or err}") from None
    if zipfile.is_zipfile(io.BytesIO(data)):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if any(n.endswith(("constants.pkl", ".py")) or "/code/" in n for n in archive.namelist()):
                raise CheckpointError(f"{path} is a TorchScript archive, not a checkpoint; refusing to load code")
    try:
        obj = torch.load(
            io.BytesIO(data), map_location="cpu", pickle_module=restricted_pickle, weights_only=False, encoding="latin1"
        )
    except _Disallowed as err:
        raise CheckpointError(f"refused {path}: {err}") from None
    except Exception as err:  # truncated or corrupt files fail in many ways inside torch.load
        raise CheckpointError(f"corrupt or truncated checkpoint {path}: {type(err).__name__}: {err}") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, expected a checkpoint dict")
    return obj


def load_official_checkpoint(
    path_or_state_dict: str | os.PathLike[str] | Mapping[str, Any], padding: str | Sequence[str] = ("c", "r")
) -> GridLiftingNetwork:
    """An eval-mode GLN holding an official ``dgridconv`` or ``dgridconv_autogrids`` state dict.

    ``padding`` is the official ``--padding_mode`` pair: ``("c", "r")`` for the GT-input models,
    ``("c", "z")`` for the HRNet ones. The handcrafted model gets the official handcrafted SGT
    (with its Thorax-Nose cell) inside, the autogrids model its stored ``S`` (``sgt_trans_mat``).
    """
    if isinstance(path_or_state_dict, Mapping):
        obj: Mapping[str, Any] = path_or_state_dict
    else:
        obj = read_official_file(path_or_state_dict)
    state = obj.get("state_dict", obj)
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError("checkpoint has no state dict of tensors")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    try:
        config = _infer_config(state, padding)
    except (KeyError, IndexError, ConfigError) as err:
        raise CheckpointError(f"not an official D-GridConv state dict: {err}") from None
    model = build_model(config)
    if "sgt_layer.sgt_trans_mat" in state:
        s = state.pop("sgt_layer.sgt_trans_mat")
        state["sgt.s_prob"] = s.reshape(s.shape[-2], s.shape[-1])
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        raise CheckpointError(f"state dict does not fit the model: {' '.join(line.strip() for line in first[:3])}") from None
    return model.eval()  # type: ignore[return-value]


def _infer_config(state: Mapping[str, Tensor], padding: str | Sequence[str]) -> GLNConfig:
    """Architecture from the official key names and shapes (facts: 2 blocks, 256 channels, 5x5)."""
    w1 = state["w1.branch1_weight"]
    blocks = sorted({int(k.split(".")[1]) for k in state if k.startswith("linear_stages.")})
    kb = state["linear_stages.0.w1.branch1_weight"].shape[-1] if blocks else 3
    kc = state["linear_stages.0.w2.branch1_weight"].shape[-1] if blocks else 3
    kernels = (w1.shape[-1], kb, kc, state["w2.branch1_weight"].shape[-1])
    attention = "dynamic" if "atten_conv1.position_fc.weight" in state else "none"
    common = dict(
        channels=int(w1.shape[0]),
        num_blocks=len(blocks),
        kernel_pattern=tuple(int(k) for k in kernels),
        paddings=tuple(padding) if not isinstance(padding, str) else (padding,),
        attention=attention,
        model="dgridconv" if attention == "dynamic" else "gridconv",
    )
    if "sgt_layer.sgt_trans_mat" in state:
        cells = state["sgt_layer.sgt_trans_mat"].shape[-2]
        side = int(round(cells**0.5))
        if side * side != cells:
            raise ConfigError(f"sgt_trans_mat has {cells} cells; only square official grids are known")
        return GLNConfig(sgt="autogrids", grid_shape=(side, side), **common)  # type: ignore[arg-type]
    return GLNConfig(sgt="handcrafted", **common)  # type: ignore[arg-type]


