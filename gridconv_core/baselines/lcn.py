"""Locally connected layer (Ci et al. 2019, LCN), a single-step graph operator (paper A.5).

``x'_j = b_j + sum_{k in N(j)} W_jk x_k``: a separate weight matrix for every (joint, neighbour)
pair of the adjacency (self loops included) and a bias per joint; no weight sharing between joints.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["LocallyConnected"]


class LocallyConnected(nn.Module):
    """LCN layer on features ``(B, J, C_in) -> (B, J, C_out)`` for a ``(J, J)`` adjacency.

    Parameters: ``E C_in C_out`` for the ``E`` nonzeros of the adjacency with self loops,
    + ``J C_out`` biases. The forward is one batched matmul over edges and a scatter-add.
    """

    def __init__(self, in_features: int, out_features: int, adj: Tensor, bias: bool = True) -> None:
        super().__init__()
        num_joints = adj.shape[0]
        mask = (adj > 0) | torch.eye(num_joints, dtype=torch.bool)
        dst, src = mask.nonzero(as_tuple=True)
        self.register_buffer("dst", dst, persistent=False)
        self.register_buffer("src", src, persistent=False)
        # nn.Linear's default bounds, with each joint's fan-in = its neighbours x C_in.
        fan_in = mask.sum(dim=1).float() * in_features
        bound = fan_in.rsqrt()
        self.weight = nn.Parameter((torch.rand(len(dst), in_features, out_features) * 2 - 1) * bound[dst, None, None])
        self.bias = nn.Parameter((torch.rand(num_joints, out_features) * 2 - 1) * bound[:, None]) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        messages = torch.bmm(x[:, self.src].transpose(0, 1), self.weight.to(x.dtype))  # (E, B, C_out)
        out = x.new_zeros(x.shape[0], x.shape[1], messages.shape[-1])
        out = out.index_add(1, self.dst, messages.transpose(0, 1))
        return out if self.bias is None else out + self.bias.to(x.dtype)
