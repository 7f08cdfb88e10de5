"""The structure learner: one gate per candidate edge, one small MLP per variable, four losses.

Variable j is reconstructed from the other variables, each multiplied by its edge gate
``A[i, j] = sigmoid(edge_logit[i, j])`` (no self-loops): ``x_hat_j = MLP_j(A[:, j] * x)``.
The MLP's middle layer is a per-variable latent code ``z_j`` (``latent_dim``). Losses:
- reconstruction: squared error of ``x_hat`` (mean or, as before seed 002's fix, sum),
- sparsity: L1 of the gates,
- acyclicity: NOTEARS ``h(A) = tr(exp(A * A)) - d`` (zero exactly for a DAG),
- disentanglement: mean squared correlation between the latent code's dimensions.
The hidden layer is tanh: raw-scale inputs (0..2775) saturate it, so the gates get no
reconstruction gradient and only the penalties move them (seed 001's collapse).
"""

from __future__ import annotations

import torch
from torch import nn


class StructureLearner(nn.Module):
    def __init__(self, n_variables: int, hidden_dim: int, latent_dim: int, sparsify_method: str):
        super().__init__()
        d = n_variables
        self.sparsify_method = sparsify_method
        self.edge_logits = nn.Parameter(torch.zeros(d, d))  # every edge starts undecided (gate 0.5)
        self.register_buffer("off_diagonal", 1.0 - torch.eye(d))
        self.w1 = nn.Parameter(torch.randn(d, hidden_dim, d) / d**0.5)
        self.b1 = nn.Parameter(torch.zeros(d, hidden_dim))
        self.w2 = nn.Parameter(torch.randn(d, latent_dim, hidden_dim) / hidden_dim**0.5)
        self.b2 = nn.Parameter(torch.zeros(d, latent_dim))
        self.w3 = nn.Parameter(torch.randn(d, latent_dim) / latent_dim**0.5)
        self.b3 = nn.Parameter(torch.zeros(d))

    def gates(self) -> torch.Tensor:
        """Edge gates A (d x d) in [0, 1], zero on the diagonal; topk keeps the d largest."""
        gates = torch.sigmoid(self.edge_logits) * self.off_diagonal
        if self.sparsify_method == "topk":
            k = len(gates)
            keep = torch.zeros_like(gates).flatten()
            keep[gates.detach().flatten().topk(k).indices] = 1.0
            gates = gates * keep.view_as(gates)
        return gates

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reconstruction (batch x d), latent codes (batch x d x latent_dim), gates (d x d)."""
        gates = self.gates()
        parents = x[:, None, :] * gates.T[None]  # [b, j, i] = x_i * A[i, j]
        hidden = torch.tanh(torch.einsum("bji,jhi->bjh", parents, self.w1) + self.b1)
        latent = torch.einsum("bjh,jlh->bjl", hidden, self.w2) + self.b2
        reconstruction = torch.einsum("bjl,jl->bj", torch.relu(latent), self.w3) + self.b3
        return reconstruction, latent, gates


def reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    return values.sum() if reduction == "sum" else values.mean()


def reconstruction_loss(reconstruction: torch.Tensor, x: torch.Tensor, reduction: str) -> torch.Tensor:
    return reduce((reconstruction - x) ** 2, reduction)


def sparsity_loss(gates: torch.Tensor, reduction: str) -> torch.Tensor:
    return reduce(gates.abs(), reduction)


def acyclicity_loss(gates: torch.Tensor) -> torch.Tensor:
    """NOTEARS: ``tr(exp(A * A)) - d``, zero if and only if the gated graph has no cycle."""
    return torch.trace(torch.matrix_exp(gates * gates)) - len(gates)


def disentanglement_loss(latent: torch.Tensor, reduction: str) -> torch.Tensor:
    """Squared correlations between latent dimensions (off the diagonal), over batch and variables."""
    codes = latent.reshape(-1, latent.shape[-1])
    codes = codes - codes.mean(0)
    codes = codes / (codes.std(0) + 1e-6)
    correlation = codes.T @ codes / len(codes)
    off_diagonal = correlation - torch.diag(torch.diag(correlation))
    return reduce(off_diagonal**2, reduction)
