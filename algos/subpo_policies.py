"""SubPO's policy network: a categorical MLP policy with no value head (REINFORCE needs none)."""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.distributions import CategoricalDistribution
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, FlattenExtractor, create_mlp
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.common.utils import ConstantSchedule
from torch import nn

DEFAULT_NET_ARCH = [64, 32]
"""Hidden layers of the authors' policy (utils/network.py: Linear 64, Tanh, Linear 32, Tanh, softmax)."""


class SubPOPolicy(BasePolicy):
    """Categorical policy pi(a | obs) = softmax(MLP(obs)) over a Discrete action space.

    :param observation_space: observation space (flattened by the features extractor).
    :param action_space: a Discrete action space.
    :param lr_schedule: learning-rate schedule; the optimizer starts at ``lr_schedule(1)``.
    :param net_arch: hidden layer sizes (default: the authors' [64, 32]).
    :param activation_fn: activation between layers (the authors': Tanh).
    :param use_sde: must be False (passed by OnPolicyAlgorithm; no gSDE for discrete actions).
    :param features_extractor_class: features extractor (default: flatten).
    :param features_extractor_kwargs: its keyword arguments.
    :param normalize_images: divide image observations by 255.
    :param optimizer_class: optimizer (default: Adam, as the authors).
    :param optimizer_kwargs: its keyword arguments.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.Tanh,
        use_sde: bool = False,
        features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(action_space, spaces.Discrete):
            raise ValueError(f"SubPOPolicy needs a Discrete action space, got {action_space}")
        if use_sde:
            raise ValueError("use_sde must be False: SubPO acts in Discrete action spaces")
        super().__init__(
            observation_space,
            action_space,
            features_extractor_class,
            features_extractor_kwargs,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
            normalize_images=normalize_images,
        )
        self.net_arch = list(DEFAULT_NET_ARCH if net_arch is None else net_arch)
        self.activation_fn = activation_fn
        self.features_extractor = self.make_features_extractor()
        n_actions = int(action_space.n)
        self.logits_net = nn.Sequential(
            *create_mlp(self.features_extractor.features_dim, n_actions, self.net_arch, activation_fn)
        )
        self.action_dist = CategoricalDistribution(n_actions)
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)

    def get_distribution(self, obs: th.Tensor) -> CategoricalDistribution:
        """pi(. | obs)."""
        features = self.extract_features(obs, self.features_extractor)
        return self.action_dist.proba_distribution(self.logits_net(features))

    def forward(self, obs: th.Tensor, deterministic: bool = False) -> tuple[th.Tensor, th.Tensor]:
        """Sample (or take the mode of) actions; returns (actions, their log-probabilities)."""
        dist = self.get_distribution(obs)
        actions = dist.get_actions(deterministic=deterministic)
        return actions, dist.log_prob(actions)

    def _predict(self, observation: th.Tensor, deterministic: bool = False) -> th.Tensor:
        return self.get_distribution(observation).get_actions(deterministic=deterministic)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            net_arch=self.net_arch,
            activation_fn=self.activation_fn,
            lr_schedule=ConstantSchedule(0.0),  # not needed to load the policy alone
            features_extractor_class=self.features_extractor_class,
            features_extractor_kwargs=self.features_extractor_kwargs,
            normalize_images=self.normalize_images,
            optimizer_class=self.optimizer_class,
            optimizer_kwargs=self.optimizer_kwargs,
        )
        return data
