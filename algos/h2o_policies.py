"""Networks for H2O: the SAC policy initialised as the authors' SimpleSAC, and the two real-vs-sim discriminators.

The authors' code (github t6-thu/H2O) builds the agent from SimpleSAC/model.py with ``orthogonal_init=False``
(SimpleSAC/sim2real_sac_main.py, flags ``policy_arch='256-256'``, ``qf_arch='256-256'``,
``policy_log_std_offset=-1.0``): two hidden layers of 256 with PyTorch's default initialisation, and every
output layer Xavier-uniform with gain 1e-2 and zero bias (``FullyConnectedNetwork``). The discriminators are
Network/Weight_net.py's ``ConcatDiscriminator``: an MLP 256-256 (ReLU) on the concatenated inputs whose two
logits (real, sim) are ``2 * tanh(.)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch as th
import torch.nn.functional as F
from stable_baselines3.common.torch_layers import create_mlp
from stable_baselines3.common.type_aliases import Schedule
from torch import nn

from algos.cql_policies import CQLPolicy

NET_ARCH = [256, 256]
"""The authors' ``policy_arch`` and ``qf_arch``: ``'256-256'``."""

DISCRIMINATOR_NET_ARCH = [256, 256]
"""Hidden layers of both discriminators (Weight_net.py: ``fc1``, ``fc2`` of ``num_hidden=256``)."""

DISCRIMINATOR_LOGIT_BOUND = 2.0
"""The discriminators' logits are ``2 * tanh(fc3(x))`` (Weight_net.py ``Discriminator.forward``)."""

REAL, SIM = 0, 1
"""Class indices of the discriminators' logits (the authors' ``prob[:, 0]`` is real, ``prob[:, 1]`` sim)."""


class H2OPolicy(CQLPolicy):
    """SB3's SAC policy initialised as the authors' agent: output layers Xavier-uniform (gain 1e-2), zero bias.

    With ``orthogonal_init=True`` the critics are initialised as CORL's CQL instead (:class:`CQLPolicy`).

    :param observation_space: observation space
    :param action_space: action space (Box)
    :param lr_schedule: learning rate schedule of the critics (the actor's is set by the algorithm)
    :param net_arch: hidden layers of actor and critics (the authors: 256-256)
    :param orthogonal_init: CORL's orthogonal critic initialisation (the authors: False)
    :param log_std_offset: initial log-std of the actor (the authors' ``policy_log_std_offset``: -1)
    :param kwargs: the rest of :class:`~stable_baselines3.sac.policies.SACPolicy`'s arguments
    """

    def __init__(
        self,
        observation_space: Any,
        action_space: Any,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        orthogonal_init: bool = False,
        **kwargs: Any,
    ) -> None:
        net_arch = NET_ARCH if net_arch is None else net_arch
        super().__init__(
            observation_space, action_space, lr_schedule, net_arch=net_arch, orthogonal_init=orthogonal_init, **kwargs
        )

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)
        if not self.orthogonal_init:
            for q_network in self.critic.q_networks:
                output = [module for module in q_network if isinstance(module, nn.Linear)][-1]
                nn.init.xavier_uniform_(output.weight, gain=1e-2)
                nn.init.zeros_(output.bias)
            self.critic_target.load_state_dict(self.critic.state_dict())


class Discriminator(nn.Module):
    """MLP on the concatenated inputs with two bounded logits, ``bound * tanh(.)`` (real, sim).

    :param input_dim: size of the concatenated inputs
    :param net_arch: hidden layers (ReLU)
    :param logit_bound: the logits lie in ``[-logit_bound, logit_bound]``
    """

    def __init__(self, input_dim: int, net_arch: Sequence[int], logit_bound: float = DISCRIMINATOR_LOGIT_BOUND) -> None:
        super().__init__()
        self.net = nn.Sequential(*create_mlp(input_dim, 2, list(net_arch), nn.ReLU))
        self.logit_bound = logit_bound

    def forward(self, *inputs: th.Tensor) -> th.Tensor:
        return self.logit_bound * th.tanh(self.net(th.cat(inputs, dim=-1)))


class DynamicsDiscriminators(nn.Module):
    """H2O's classifiers of real vs simulated data: ``D_sa(s, a)`` and ``D_sas(s, a, s')``.

    The ``(s, a, s')`` classifier's logits are ``D_sas(s, a, s') + D_sa(s, a)`` (the authors add the sa logits),
    and the dynamics ratio follows from Bayes' rule on both classifiers::

        P_real(s'|s,a) / P_sim(s'|s,a) = [p_sas(real) / p_sas(sim)] / [p_sa(real) / p_sa(sim)]

    :param observation_dim: size of a (flattened) observation
    :param action_dim: size of an action
    :param net_arch: hidden layers of each discriminator (256-256)
    :param logit_bound: bound of the logits (2)
    """

    def __init__(
        self,
        observation_dim: int,
        action_dim: int,
        net_arch: Sequence[int] = DISCRIMINATOR_NET_ARCH,
        logit_bound: float = DISCRIMINATOR_LOGIT_BOUND,
    ) -> None:
        super().__init__()
        self.sa = Discriminator(observation_dim + action_dim, net_arch, logit_bound)
        self.sas = Discriminator(2 * observation_dim + action_dim, net_arch, logit_bound)

    def logits(
        self, observations: th.Tensor, actions: th.Tensor, next_observations: th.Tensor
    ) -> tuple[th.Tensor, th.Tensor]:
        """The (real, sim) logits of the sa classifier and of the sas classifier (``D_sas + D_sa``), (batch, 2) each."""
        sa_logits = self.sa(observations, actions)
        return sa_logits, self.sas(observations, actions, next_observations) + sa_logits

    def losses(
        self, real: Sequence[th.Tensor], sim: Sequence[th.Tensor]
    ) -> tuple[th.Tensor, th.Tensor]:
        """Cross-entropy losses ``(L_sa, L_sas)``: mean of ``-log p(real)`` on real plus of ``-log p(sim)`` on sim.

        ``real`` and ``sim`` are ``(observations, actions, next_observations)``. ``L_sas`` depends on ``D_sa``
        too (through the added logits), so minimising ``L_sa + L_sas`` trains ``D_sa`` on both, as the authors'
        two backward passes into the accumulated gradients do.
        """
        real_sa, real_sas = self.logits(*real)
        sim_sa, sim_sas = self.logits(*sim)
        real_label = th.full((len(real_sa),), REAL, dtype=th.long, device=real_sa.device)
        sim_label = th.full((len(sim_sa),), SIM, dtype=th.long, device=sim_sa.device)
        sa_loss = F.cross_entropy(real_sa, real_label) + F.cross_entropy(sim_sa, sim_label)
        sas_loss = F.cross_entropy(real_sas, real_label) + F.cross_entropy(sim_sas, sim_label)
        return sa_loss, sas_loss

    def log_ratio(self, observations: th.Tensor, actions: th.Tensor, next_observations: th.Tensor) -> th.Tensor:
        """``log P_real(s'|s,a) - log P_sim(s'|s,a)`` of each transition, shape (batch,)."""
        sa_logits, sas_logits = self.logits(observations, actions, next_observations)
        sa_log_prob, sas_log_prob = F.log_softmax(sa_logits, dim=-1), F.log_softmax(sas_logits, dim=-1)
        return (sas_log_prob[:, REAL] - sas_log_prob[:, SIM]) - (sa_log_prob[:, REAL] - sa_log_prob[:, SIM])
