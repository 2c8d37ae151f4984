"""The multi-objective actor-critic: SB3's ActorCriticPolicy with one value output per objective.

PGMORL's and C-MORL's ``Policy`` (a2c_ppo_acktr's MLPBase with ``obj_num`` critic outputs): separate 64-64
tanh actor and critic networks, a Gaussian head with a state-independent log std, and a linear value layer
with ``n_objectives`` outputs. SB3's defaults for PPO give the same networks; only the value layer changes,
so ``forward``, ``evaluate_actions`` and ``predict_values`` return values of shape (batch, n_objectives).
"""

from __future__ import annotations

from typing import Any

from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.type_aliases import Schedule
from torch import nn


class MOActorCriticPolicy(ActorCriticPolicy):
    """ActorCriticPolicy whose ``value_net`` has one output per objective.

    :param n_objectives: number of objectives (value outputs).

    Other parameters as SB3's ActorCriticPolicy.
    """

    def __init__(self, *args: Any, n_objectives: int = 2, **kwargs: Any) -> None:
        self.n_objectives = int(n_objectives)
        super().__init__(*args, **kwargs)

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)
        self.value_net = nn.Linear(self.mlp_extractor.latent_dim_vf, self.n_objectives)
        if self.ortho_init:
            self.init_weights(self.value_net, gain=1)
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data["n_objectives"] = self.n_objectives
        return data


MlpPolicy = MOActorCriticPolicy

__all__ = ["MOActorCriticPolicy", "MlpPolicy"]
