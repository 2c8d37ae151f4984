"""Networks for CQL: SB3's SAC policy (tanh-squashed Gaussian actor, twin Q critics) with CORL's initialisation.

CORL's offline CQL (tinkoff-ai/CORL algorithms/offline/cql.py) builds the same networks as SB3's
:class:`~stable_baselines3.sac.policies.SACPolicy` -- an MLP actor whose last layer gives the mean and the
log-std of a Gaussian squashed by tanh (log-std clamped to [-20, 2]), and Q networks that are MLPs on
``concat(s, a)`` -- and initialises them in its own way (``init_module_weights``):

- critics (``orthogonal_init=True``): hidden layers orthogonal with gain sqrt(2), the output layer
  orthogonal with gain 1e-2, all biases 0 (``FullyConnectedQFunction``);
- actor: hidden layers keep PyTorch's default initialisation (CORL does not pass ``orthogonal_init`` to
  the actor's init), the output layer is Xavier-uniform with gain 1e-2 and bias 0, and the log-std is
  ``log_std_multiplier * raw + log_std_offset`` with a learnable offset starting at -1
  (``TanhGaussianPolicy``).

So at initialisation the policy is close to ``tanh(N(0, e^-2))`` and every Q value is close to 0. SB3's
actor has two output layers (``mu`` and ``log_std``); here both get CORL's output initialisation and the
``log_std`` bias starts at ``log_std_offset``, which gives the same initial distribution (CORL's extra
learnable multiplier of the log-std is not reproduced).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.sac.policies import SACPolicy
from torch import nn

NET_ARCH = [256, 256, 256]
"""CORL's actor (``TanhGaussianPolicy.base_network``) and critics (``q_n_hidden_layers = 3`` in its locomotion
configs): three hidden layers of 256; the authors' ``cql_mujoco_new.py`` uses the same ``[M, M, M]``, M = 256."""

LOG_STD_OFFSET = -1.0
"""CORL's ``log_std_offset`` of ``TanhGaussianPolicy``: the initial log-std of the actor."""


def init_critic_orthogonal(q_network: nn.Sequential) -> None:
    """CORL's critic initialisation: orthogonal hidden layers (gain sqrt(2)) and output (gain 1e-2), zero biases."""
    linears = [module for module in q_network if isinstance(module, nn.Linear)]
    for layer in linears[:-1]:
        nn.init.orthogonal_(layer.weight, gain=np.sqrt(2))
        nn.init.zeros_(layer.bias)
    nn.init.orthogonal_(linears[-1].weight, gain=1e-2)
    nn.init.zeros_(linears[-1].bias)


def init_actor_head(layer: nn.Linear, bias: float = 0.0) -> None:
    """CORL's actor output initialisation: Xavier-uniform with gain 1e-2, constant bias."""
    nn.init.xavier_uniform_(layer.weight, gain=1e-2)
    nn.init.constant_(layer.bias, bias)


class CQLPolicy(SACPolicy):
    """SB3's SAC policy initialised as CORL's CQL networks.

    :param observation_space: observation space
    :param action_space: action space (Box)
    :param lr_schedule: learning rate schedule of the critics (the actor's is set by the algorithm)
    :param net_arch: hidden layers of actor and critics (list) or ``dict(pi=..., qf=...)``
        (CORL: three hidden layers of 256)
    :param orthogonal_init: initialise the critics as CORL does (orthogonal, small output layer); False
        keeps SB3's default initialisation of the critics
    :param log_std_offset: initial log-std of the actor (the bias of its log-std layer; CORL: -1)
    :param kwargs: the rest of :class:`~stable_baselines3.sac.policies.SACPolicy`'s arguments
    """

    def __init__(
        self,
        observation_space: Any,
        action_space: Any,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        orthogonal_init: bool = True,
        log_std_offset: float = LOG_STD_OFFSET,
        **kwargs: Any,
    ) -> None:
        # Read by _build, which SACPolicy.__init__ calls.
        self.orthogonal_init = orthogonal_init
        self.log_std_offset = log_std_offset
        net_arch = NET_ARCH if net_arch is None else net_arch
        super().__init__(observation_space, action_space, lr_schedule, net_arch=net_arch, **kwargs)

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)
        init_actor_head(self.actor.mu)
        init_actor_head(self.actor.log_std, bias=self.log_std_offset)  # type: ignore[arg-type]
        if self.orthogonal_init:
            for q_network in self.critic.q_networks:
                init_critic_orthogonal(q_network)
            self.critic_target.load_state_dict(self.critic.state_dict())

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(orthogonal_init=self.orthogonal_init, log_std_offset=self.log_std_offset)
        return data
