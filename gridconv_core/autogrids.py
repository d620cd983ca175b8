"""AutoGrids: the learnable SGT (paper section 3.2, eq. 4-5, appendix A.3).

``S^prob`` (``HP x J``) holds one score per (grid cell, joint). While training with noise, Gumbel
noise resamples it (eq. 4); each cell takes the joint of highest score (eq. 5). The hard one-hot
``S`` is used in the forward pass and a straight-through estimator passes the gradient of the
softmax relaxation ``softmax((S^prob + eps) / tau)`` to ``S^prob``. Unlike the official release,
where the module stays frozen at its prior (facts 4), this one learns.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from .errors import ConfigError, LayoutError
from .sgt import SGT, GridLayout
from .skeleton import Skeleton, get_skeleton

__all__ = ["AutoGrids", "DEFAULT_INIT_SCALE"]

DEFAULT_INIT_SCALE = 5.0
"""Logit margin of the prior joint when ``S^prob`` starts from a layout (``GLNConfig.autogrids_init_scale``).

With Gumbel(0, 1) noise, ``argmax(S^prob + eps)`` picks joint ``k`` with probability
``softmax(S^prob)_k`` (the Gumbel-max trick), so a margin ``m`` keeps the prior joint of a cell with
probability ``e^m / (e^m + J - 1)``: 0.90 for m = 5, J = 17 (the official scale 1 gives 0.15,
i.e. the prior is forgotten at the first noisy step). 5 keeps the prior as the starting point while
about one cell in ten explores another joint at every noisy step, so ``S^prob`` still changes a lot
in the noisy epochs, as the paper's Fig. 3 shows."""


class AutoGrids(SGT):
    """Learnable assignment ``S`` (eq. 4-5); ``forward()`` returns the ``(HP, J)`` one-hot matrix.

    As an :class:`~gridconv_core.sgt.SGT`, :meth:`assignment` is ``(S, S)`` of one ``forward()``: the same
    sample maps the joints to the grid and back (``d = phi(s, x, shape); ...; out = phi_inv(s, d)``).
    ``noise`` switches the Gumbel noise (the trainer turns it off after a chosen epoch, paper: 30).
    """

    def __init__(
        self,
        skeleton: str | Skeleton,
        shape: tuple[int, int],
        s_prob: Tensor | np.ndarray,
        gumbel_tau: float = 1.0,
        noise: bool = True,
    ) -> None:
        super().__init__()
        self.skeleton = get_skeleton(skeleton)
        self.shape = (int(shape[0]), int(shape[1]))
        expected = (self.shape[0] * self.shape[1], self.skeleton.num_joints)
        if tuple(s_prob.shape) != expected:
            grid = f"{shape[0]}x{shape[1]}"
            raise LayoutError(f"S^prob has shape {tuple(s_prob.shape)}, expected {expected} for a {grid} grid")
        if gumbel_tau <= 0:
            raise ConfigError(f"gumbel_tau must be positive, got {gumbel_tau}")
        self.s_prob = nn.Parameter(torch.as_tensor(s_prob, dtype=torch.float32).clone())
        self.gumbel_tau = float(gumbel_tau)
        self.noise = noise

    @classmethod
    def from_layout(
        cls, layout: GridLayout, init_scale: float = DEFAULT_INIT_SCALE, gumbel_tau: float = 1.0, noise: bool = True
    ) -> AutoGrids:
        """Start from a layout's one-hot ``S`` scaled by ``init_scale`` (see :data:`DEFAULT_INIT_SCALE`)."""
        return cls(layout.skeleton, layout.shape, init_scale * layout.to_onehot(), gumbel_tau, noise)

    @classmethod
    def random(
        cls,
        skeleton: str | Skeleton,
        shape: tuple[int, int],
        seed: int = 0,
        gumbel_tau: float = 1.0,
        noise: bool = True,
    ) -> AutoGrids:
        """Start from uniform [0, 1) scores (the paper's init for sizes other than 5x5), seeded."""
        sk = get_skeleton(skeleton)
        s = np.random.default_rng(seed).random((shape[0] * shape[1], sk.num_joints))
        return cls(sk, shape, s, gumbel_tau, noise)

    def forward(self) -> Tensor:
        """Hard one-hot ``S`` (eq. 5) of ``S^soft = S^prob + eps`` (eq. 4) with a straight-through gradient.

        Noise is added only while ``self.training and self.noise``; otherwise ``S`` is the argmax
        of ``S^prob``. In training the value is exactly one-hot, ``hard + (soft - soft.detach())``;
        in eval it carries no gradient.
        """
        logits = self.s_prob
        if self.training and self.noise:
            uniform = torch.rand_like(logits).clamp_(min=1e-10, max=1.0 - 1e-7)
            logits = logits - torch.log(-torch.log(uniform))  # eq. 4, Gumbel(0, 1) noise
        index = logits.argmax(dim=1, keepdim=True)
        hard = torch.zeros_like(logits).scatter_(1, index, 1.0)  # eq. 5
        if not (self.training and torch.is_grad_enabled() and self.s_prob.requires_grad):
            return hard.detach()  # eval: the plain argmax, no gradient
        soft = torch.softmax(logits / self.gumbel_tau, dim=1)
        return hard + (soft - soft.detach())

    def assignment(self) -> tuple[Tensor, Tensor]:
        s = self()
        return s, s

    def probabilities(self) -> Tensor:
        """Row-wise assignment probabilities ``softmax(S^prob / tau)``, ``(HP, J)``, each row summing to 1.

        The parameter ``s_prob`` holds unnormalised scores (logits); these are the probabilities
        that the paper's Fig. 3 and Fig. D visualise. Their row argmax is the eval layout (eq. 5).
        """
        return torch.softmax(self.s_prob.detach().float() / self.gumbel_tau, dim=1)

    def snapshot(self) -> np.ndarray:
        """The current :meth:`probabilities` as ``(HP, J)`` numpy (one entry of the per-epoch history)."""
        return self.probabilities().cpu().numpy()

    def layout(self) -> GridLayout:
        """The current hard layout (argmax of ``S^prob``); it may miss joints (paper A.3)."""
        return GridLayout.from_assignment(self.s_prob, self.shape, self.skeleton, "autogrids", allow_missing=True)

    def extra_repr(self) -> str:
        return f"skeleton={self.skeleton.name}, shape={self.shape}, gumbel_tau={self.gumbel_tau}, noise={self.noise}"
