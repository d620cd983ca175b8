"""Semantic graph convolution (Zhao et al. 2019, SemGCN), a two-step GCN layer (paper A.5).

``X' = (A o I) X W_self + (A o (1 - I)) X W_neigh + b`` with ``A = softmax_rows(M)``, where ``M``
holds one learnable weight per edge of the adjacency (self loops included) and ``-inf`` elsewhere,
so each joint aggregates only its graph neighbours, with learnt semantic edge weights.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["SemGraphConv"]


class SemGraphConv(nn.Module):
    """SemGCN layer on features ``(B, J, C_in) -> (B, J, C_out)`` for a ``(J, J)`` adjacency.

    Parameters: ``2 C_in C_out`` (self and neighbour weights) + one per nonzero of the adjacency
    with self loops + ``C_out`` bias.
    """

    def __init__(self, in_features: int, out_features: int, adj: Tensor, bias: bool = True) -> None:
        super().__init__()
        num_joints = adj.shape[0]
        mask = (adj > 0) | torch.eye(num_joints, dtype=torch.bool)
        self.register_buffer("edge_index", mask.nonzero().t().contiguous(), persistent=False)
        self.register_buffer("eye", torch.eye(num_joints), persistent=False)
        self.weight = nn.Parameter(torch.empty(2, in_features, out_features))
        nn.init.xavier_uniform_(self.weight, gain=1.414)  # SemGCN's initialisation
        self.edge_weight = nn.Parameter(torch.ones(self.edge_index.shape[1]))
        bound = 1 / math.sqrt(out_features)  # SemGCN's bias initialisation
        self.bias = nn.Parameter(torch.empty(out_features).uniform_(-bound, bound)) if bias else None

    def aggregation(self) -> Tensor:
        """The row-softmax ``A`` over each joint's neighbours, ``(J, J)``; zero outside the graph."""
        logits = torch.full_like(self.eye, float("-inf"))
        logits = logits.index_put((self.edge_index[0], self.edge_index[1]), self.edge_weight.to(logits.dtype))
        return torch.softmax(logits, dim=1)

    def forward(self, x: Tensor) -> Tensor:
        a = self.aggregation().to(x.dtype)
        h_self = torch.matmul(x, self.weight[0].to(x.dtype))
        h_neigh = torch.matmul(x, self.weight[1].to(x.dtype))
        eye = self.eye.to(x.dtype)
        out = torch.matmul(a * eye, h_self) + torch.matmul(a * (1 - eye), h_neigh)
        return out if self.bias is None else out + self.bias.to(x.dtype)
