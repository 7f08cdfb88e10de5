"""The task: a cheap, fixed, known reward on amino-acid sequences, with hidden motifs.

A sequence earns ``floor + (1 - floor) * m**2`` where ``m`` is the best fraction of
residues any window of it shares with any of the hidden motifs (4 motifs of 4 residues
by default, drawn from the reward seed). A sequence shorter than ``min_length`` is
invalid and earns ``floor``. `make_reward` returns the scoring function (all training
may call) and the `HiddenModes` (read only by the evaluation, to count modes found).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
STOP = len(AMINO_ACIDS)  # action 20 ends the sequence; also the padding after it

RewardFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class HiddenModes:
    motifs: torch.Tensor  # n_motifs x motif_length residue indices


def motif_match(tokens: torch.Tensor, lengths: torch.Tensor, motifs: torch.Tensor) -> torch.Tensor:
    """Best fraction of residues shared by a window of each sequence with a motif (batch x n_motifs)."""
    k = motifs.shape[1]
    windows = tokens.unfold(1, k, 1)  # batch x starts x k
    shared = (windows[:, :, None, :] == motifs[None, None]).float().mean(-1)  # batch x starts x motifs
    inside = torch.arange(windows.shape[1], device=tokens.device)[None] + k <= lengths[:, None]
    return (shared * inside[..., None]).amax(1)


def make_reward(reward: dict[str, Any], min_length: int, device: torch.device) -> tuple[RewardFunction, HiddenModes]:
    """The scoring function ``(tokens, lengths) -> rewards`` and, separately, the hidden motifs."""
    rng = np.random.default_rng(reward["seed"])
    motifs = torch.tensor(
        rng.integers(0, len(AMINO_ACIDS), size=(reward["n_motifs"], reward["motif_length"])), device=device
    )
    floor = reward["floor"]

    def score(tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        best = motif_match(tokens, lengths, motifs).amax(1)
        return torch.where(lengths >= min_length, floor + (1 - floor) * best**2, torch.full_like(best, floor))

    return score, HiddenModes(motifs=motifs.clone())


def decode(tokens: torch.Tensor, lengths: torch.Tensor) -> list[str]:
    """Sequences as amino-acid strings."""
    return ["".join(AMINO_ACIDS[t] for t in row[:n].tolist()) for row, n in zip(tokens, lengths)]
