"""The learned metabolic model: rate constants, MLP_sub, MLP_node and embeddings.

    dc_i/dt = sum_j S_ij k_j prod_{s in substrates(j)} MLP_sub(c_s, |s|)  +  MLP_node(c_i, a_i)

The stoichiometry S and the substrate lists come from the observations (given, frozen).
The model never sees metabolite types, lambdas or baselines.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from trainers.metabolism.simulator import Observations


def mlp(n_inputs: int, hidden: int, n_layers: int) -> nn.Sequential:
    """``n_layers`` linear layers with SiLU between them, one output."""
    layers: list[nn.Module] = []
    width = n_inputs
    for _ in range(n_layers - 1):
        layers += [nn.Linear(width, hidden), nn.SiLU()]
        width = hidden
    layers.append(nn.Linear(width, 1))
    return nn.Sequential(*layers)


class SubstrateFunction(nn.Module):
    """MLP_sub(c, |s|): the learned substrate term (mass action would be c^|s|).

    The output is scale^|s| * (g(c/scale, |s|) - g(0, |s|)), so a missing substrate gives
    zero. MLP_sub(c, s) -> alpha MLP_sub, k -> k / alpha^n leaves dc/dt unchanged; Phase 1
    fixes that gauge with a penalty pulling MLP_sub(1, |s|) to 1, which is what makes k
    comparable with the true rate constants (defined at unit concentration).
    """

    def __init__(self, hidden: int, n_layers: int, concentration_scale: float):
        super().__init__()
        self.net = mlp(2, hidden, n_layers)
        self.register_buffer("concentration_scale", torch.tensor(float(concentration_scale)))

    def forward(self, concentrations: torch.Tensor, order: float) -> torch.Tensor:
        scaled = (concentrations / self.concentration_scale).reshape(-1)
        with_zero = torch.cat([scaled, scaled.new_zeros(1)])  # one pass for g(c) and g(0)
        raw = self.net(torch.stack([with_zero, torch.full_like(with_zero, order)], dim=-1)).squeeze(-1)
        return self.concentration_scale**order * (raw[:-1] - raw[-1]).reshape(concentrations.shape)


class NodeFunction(nn.Module):
    """MLP_node(c_i, a_i): the homeostatic term of each metabolite.

    Initialisation: PyTorch's default for every layer, then the last layer's weights and
    bias are scaled by ``output_init_scale`` (1e-3). The initial output is small (about the
    size of the homeostatic signal, not the reactions) but not zero, and every hidden unit
    is active, so the gradient reaches every layer from the first step. (Zeroing every
    layer, as the public implementation did, leaves all hidden gradients at exactly zero.)
    """

    def __init__(
        self,
        embedding_dim: int,
        hidden: int,
        n_layers: int,
        concentration_scale: float,
        output_init_scale: float = 1e-3,
    ):
        super().__init__()
        self.net = mlp(1 + embedding_dim, hidden, n_layers)
        self.output_init_scale = output_init_scale
        self.scale_output()
        self.register_buffer("concentration_scale", torch.tensor(float(concentration_scale)))

    def scale_output(self) -> None:
        with torch.no_grad():
            self.net[-1].weight.mul_(self.output_init_scale)
            self.net[-1].bias.mul_(self.output_init_scale)

    def reset_parameters(self) -> None:
        """The initialisation of __init__ again, from the current torch seed."""
        for module in self.net:
            if isinstance(module, nn.Linear):
                module.reset_parameters()
        self.scale_output()

    def forward(self, concentrations: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
        """concentrations (..., n), embeddings (n, d) -> (..., n)."""
        scaled = (concentrations / self.concentration_scale).unsqueeze(-1)
        expanded = embeddings.expand(*concentrations.shape, embeddings.shape[-1])
        return self.net(torch.cat([scaled, expanded], dim=-1)).squeeze(-1)


class MetabolicModel(nn.Module):
    """Reaction part (log_k, MLP_sub; Phase 1) plus homeostasis part (MLP_node, embeddings; Phase 2).

    Embeddings start as small random draws (``embedding_init_std``, 0.01 in the presets):
    metabolites begin nearly indistinguishable, so they separate along what their
    dynamics need rather than keep a random layout that MLP_node could memorise.
    """

    def __init__(self, observations: Observations, graph_model: dict, initial_log_k: float):
        super().__init__()
        concentration_scale = float(np.percentile(observations.concentrations, 99))
        n_metabolites, n_reactions = observations.stoichiometry.shape
        self.log_k = nn.Parameter(torch.full((n_reactions,), float(initial_log_k)))
        self.substrate = SubstrateFunction(
            graph_model["hidden_dim_sub"], graph_model["n_layers_sub"], concentration_scale
        )
        self.node = NodeFunction(
            graph_model["embedding_dim"],
            graph_model["hidden_dim_node"],
            graph_model["n_layers_node"],
            concentration_scale,
        )
        self.embedding_init_std = graph_model["embedding_init_std"]
        self.embeddings = nn.Parameter(
            self.embedding_init_std * torch.randn(n_metabolites, graph_model["embedding_dim"])
        )
        self.register_buffer("stoichiometry", torch.as_tensor(observations.stoichiometry, dtype=torch.float32))
        self.register_buffer("substrate_index", torch.as_tensor(observations.substrate_index))
        self.register_buffer("substrate_order", torch.as_tensor(observations.substrate_order))
        self.orders = sorted(int(order) for order in np.unique(observations.substrate_order) if order > 0)

    def reset_homeostasis(self) -> None:
        """MLP_node and the embeddings initialised again, from the current torch seed."""
        self.node.reset_parameters()
        with torch.no_grad():
            self.embeddings.copy_(self.embedding_init_std * torch.randn_like(self.embeddings))

    def reaction_parameters(self) -> list[nn.Parameter]:
        return [self.log_k, *self.substrate.parameters()]

    def homeostasis_parameters(self) -> list[nn.Parameter]:
        return [*self.node.parameters(), self.embeddings]

    def reaction_derivative(self, concentrations: torch.Tensor) -> torch.Tensor:
        """sum_j S_ij k_j prod MLP_sub(c_s, |s|) for states (..., n_metabolites)."""
        ones = torch.ones_like(concentrations[..., :1])
        terms = torch.ones(*concentrations.shape[:-1], *self.substrate_index.shape, device=concentrations.device)
        for order in self.orders:
            values = torch.cat([self.substrate(concentrations, float(order)), ones], dim=-1)
            gathered = values[..., self.substrate_index]  # index -1 -> the padded one
            terms = torch.where(self.substrate_order == order, gathered, terms)
        rates = 10.0**self.log_k * terms.prod(dim=-1)
        return rates @ self.stoichiometry.T

    def node_derivative(self, concentrations: torch.Tensor) -> torch.Tensor:
        """MLP_node(c_i, a_i) for states (..., n_metabolites)."""
        return self.node(concentrations, self.embeddings)

    def unit_substrate_values(self) -> torch.Tensor:
        """MLP_sub(1, |s|) for the orders present (the gauge, pulled to 1)."""
        one = torch.ones(1, device=self.log_k.device)
        return torch.cat([self.substrate(one, float(order)) for order in self.orders])
