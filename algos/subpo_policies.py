"""SubPO's networks: a categorical MLP policy with no value head (the REINFORCE grid form) and a Gaussian
actor with a separate value critic (the actor-critic form of the continuous tasks)."""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.distributions import CategoricalDistribution, DiagGaussianDistribution
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, FlattenExtractor, create_mlp
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.common.utils import ConstantSchedule
from torch import nn

DEFAULT_NET_ARCH = [64, 32]
"""Hidden layers of the authors' policy (utils/network.py: Linear 64, Tanh, Linear 32, Tanh, softmax)."""
ACTOR_CRITIC_NET_ARCH = {"pi": [128, 128], "vf": [128, 128]}
"""Hidden layers of the authors' continuous actor and critic (gym_env/network.py: Actor, Critic)."""
LOG_STD_INIT = 0.1
"""Initial state-independent log standard deviation of the authors' Actor (``std=0.1`` sets log_std)."""


def authors_init(module: nn.Module) -> None:
    """The authors' initialisation of every Linear layer: weights N(0, 0.1^2), biases 0.1."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, mean=0.0, std=0.1)
        nn.init.constant_(module.bias, 0.1)


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


class SubPOActorCriticPolicy(ActorCriticPolicy):
    """Gaussian actor and value critic, separate networks: the authors' continuous learner (gym_env/network.py).

    The actor is MLP(obs) -> tanh -> action mean with a state-independent log-std (init 0.1), the critic a
    separate MLP(obs) -> V(obs); both 128-128 ReLU, no shared layers (``share_features_extractor=False``,
    ``net_arch=dict(pi=..., vf=...)``). Discrete action spaces get a categorical actor instead.

    What differs from the authors' two modules and two Adam optimizers: one Adam optimizer holds both nets.
    The nets share no parameter and Adam scales each parameter on its own, so one step on
    actor loss + critic loss equals their two steps at the same learning rate (the authors use 1e-2 for
    both), unless a global gradient-norm clip is set (``max_grad_norm``; SubPO's default is none).

    :param observation_space: observation space.
    :param action_space: Box (Gaussian actor) or Discrete (categorical actor).
    :param lr_schedule: learning-rate schedule.
    :param net_arch: hidden layers; default the authors' ``dict(pi=[128, 128], vf=[128, 128])``.
    :param activation_fn: activation (authors: ReLU).
    :param squash_mean: pass the Gaussian mean through tanh, as the authors' actor (actions are clipped to
        the Box when stepping the env either way).
    :param use_authors_init: the authors' N(0, 0.1^2) weights and 0.1 biases; False: SB3's orthogonal init.
    :param log_std_init: initial log standard deviation (authors: 0.1).
    :param share_features_extractor: must be False (separate actor and critic, as the authors).
    :param kwargs: the other keyword arguments of ``ActorCriticPolicy`` (features extractor, optimizer...).
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        squash_mean: bool = True,
        use_authors_init: bool = True,
        log_std_init: float = LOG_STD_INIT,
        share_features_extractor: bool = False,
        **kwargs: Any,
    ) -> None:
        if share_features_extractor:
            raise ValueError("share_features_extractor must be False: SubPO's actor and critic are separate nets")
        if kwargs.get("use_sde", False):
            raise ValueError("use_sde must be False: SubPO's actor is a state-independent Gaussian")
        kwargs.pop("ortho_init", None)  # set from use_authors_init
        self.squash_mean = squash_mean
        self.use_authors_init = use_authors_init
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch=dict(ACTOR_CRITIC_NET_ARCH) if net_arch is None else net_arch,
            activation_fn=activation_fn,
            ortho_init=not use_authors_init,
            log_std_init=log_std_init,
            share_features_extractor=False,
            **kwargs,
        )

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)  # the optimizer it creates holds the same parameter objects
        if self.use_authors_init:
            for module in (self.mlp_extractor, self.action_net, self.value_net):
                module.apply(authors_init)
        if self.squash_mean and isinstance(self.action_dist, DiagGaussianDistribution):
            self.action_net = nn.Sequential(self.action_net, nn.Tanh())

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.pop("ortho_init", None)
        data.update(squash_mean=self.squash_mean, use_authors_init=self.use_authors_init)
        return data
