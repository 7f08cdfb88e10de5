"""Statistics of sampled sequences, and the one reader of the hidden motifs.

`sample_statistics` needs only the sequences and their rewards (mean and max reward,
valid fraction, diversity, unique fraction). `modes_found` counts the hidden motifs
that appear whole in at least one sample; it runs after training.
"""

from __future__ import annotations

import torch

from trainers.gflownet.reward import HiddenModes, motif_match


def diversity(tokens: torch.Tensor, lengths: torch.Tensor) -> float:
    """Mean pairwise distance: share of positions (up to the longer of the two) where two sequences differ."""
    n, max_length = tokens.shape
    if n < 2:
        return 0.0
    inside = torch.arange(max_length, device=tokens.device)[None] < lengths[:, None]
    padded = torch.where(inside, tokens, -1)
    differ = (padded[:, None] != padded[None]).float().sum(-1)
    longer = torch.maximum(lengths[:, None], lengths[None]).clamp(min=1).float()
    pairs = ~torch.eye(n, dtype=torch.bool, device=tokens.device)
    return float((differ / longer)[pairs].mean())


def sample_statistics(
    tokens: torch.Tensor, lengths: torch.Tensor, rewards: torch.Tensor, min_length: int
) -> dict[str, float]:
    unique = len({tuple(row[:n].tolist()) for row, n in zip(tokens, lengths)})
    return {
        "mean_reward": float(rewards.mean()),
        "max_reward": float(rewards.max()),
        "valid_fraction": float((lengths >= min_length).float().mean()),
        "diversity": diversity(tokens, lengths),
        "unique_fraction": unique / len(tokens),
    }


def modes_found(tokens: torch.Tensor, lengths: torch.Tensor, modes: HiddenModes) -> int:
    """How many hidden motifs occur whole in at least one of the sequences."""
    return int((motif_match(tokens, lengths, modes.motifs) == 1.0).any(0).sum())
