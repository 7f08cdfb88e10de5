"""The forward policy P_F: a causal transformer over the prefix, and what is computed with it.

Actions are the 20 amino acids and STOP; a sequence that reaches ``max_length`` ends
without a STOP. Sequences have one construction order, so P_B = 1 and Trajectory
Balance needs only ``log P_F(trajectory)`` (`trajectory_log_pf`).

``policy_head``: ``softmax`` gives log-probabilities by log_softmax. ``unconstrained`` is
seed 000's head before its fix: non-negative scores (ReLU) divided by their sum, with a
"safe" log that replaces log(0) by log(1e-6) through ``torch.where``. Its value is finite;
its gradient at every zero score is 0 * inf = nan, so the first optimiser step turns the
parameters to nan whatever the learning rate.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from trainers.gflownet.reward import AMINO_ACIDS, STOP

N_ACTIONS = len(AMINO_ACIDS) + 1
BEGIN = N_ACTIONS  # input token that starts every prefix
LOG_FLOOR = math.log(1e-6)


class ForwardPolicy(nn.Module):
    def __init__(self, d_model: int, n_layers: int, max_length: int, policy_head: str):
        super().__init__()
        self.policy_head = policy_head
        self.token = nn.Embedding(N_ACTIONS + 1, d_model)
        self.position = nn.Embedding(max_length, d_model)
        layer = nn.TransformerEncoderLayer(
            d_model,
            nhead=math.gcd(d_model, 4),
            dim_feedforward=2 * d_model,
            dropout=0.0,
            batch_first=True,
            norm_first=True,
        )
        self.body = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, N_ACTIONS)

    def forward(self, prefixes: torch.Tensor) -> torch.Tensor:
        """Log-probabilities of the next action after each prefix position (batch x T x N_ACTIONS)."""
        length = prefixes.shape[1]
        positions = torch.arange(length, device=prefixes.device)
        causal = nn.Transformer.generate_square_subsequent_mask(length, device=prefixes.device)
        hidden = self.body(self.token(prefixes) + self.position(positions), mask=causal, is_causal=True)
        scores = self.head(hidden)
        if self.policy_head == "softmax":
            return torch.log_softmax(scores, -1)
        probabilities = torch.relu(scores) / torch.relu(scores).sum(-1, keepdim=True)
        return torch.where(probabilities > 0, torch.log(probabilities), LOG_FLOOR)


@torch.no_grad()
def sample(
    policy: ForwardPolicy, n: int, max_length: int, eps: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` sequences (tokens padded with STOP, batch x max_length; lengths) from P_F mixed with eps uniform."""
    device = policy.head.weight.device
    tokens = torch.full((n, max_length), STOP, dtype=torch.long, device=device)
    lengths = torch.full((n,), max_length, dtype=torch.long, device=device)
    running = torch.ones(n, dtype=torch.bool, device=device)
    for t in range(max_length):
        prefixes = torch.cat([torch.full((n, 1), BEGIN, device=device), tokens[:, :t]], 1)
        probabilities = policy(prefixes)[:, -1].exp()
        mixed = (1 - eps) * probabilities + eps / N_ACTIONS
        actions = torch.multinomial(mixed.cpu(), 1, generator=generator).squeeze(1).to(device)
        stopping = running & (actions == STOP)
        lengths[stopping] = t
        tokens[:, t] = torch.where(running, actions, STOP)
        running &= ~stopping
        if not running.any():
            break
    return tokens, lengths


def trajectory_log_pf(policy: ForwardPolicy, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Sum over each trajectory of log P_F(action | prefix), STOP included when length < max_length."""
    n, max_length = tokens.shape
    prefixes = torch.cat([torch.full((n, 1), BEGIN, device=tokens.device), tokens[:, :-1]], 1)
    chosen = policy(prefixes).gather(-1, tokens[..., None]).squeeze(-1)
    taken = torch.arange(max_length, device=tokens.device)[None] <= lengths[:, None]
    return torch.where(taken, chosen, 0.0).sum(1)
