"""Networks for AWAC: a Gaussian actor in CORL's form and SB3's twin Q critics.

AWAC's actor is trained by weighted maximum likelihood of *dataset* actions, so its distribution must
give a finite log-likelihood to every action in the data, including actions on the bounds. SB3's SAC
actor is a tanh-squashed Gaussian (``log pi(+-1) = +inf`` after the change of variables) with a
state-dependent std; CORL's AWAC actor (algorithms/offline/awac.py, ``class Actor``) is a plain Gaussian:

- mean: an MLP with a linear output (the authors' rlkit ``GaussianPolicy`` puts a tanh on it:
  ``tanh_mean=True``);
- std: one state-independent log-std per action dimension, a free parameter initialised to 0 and
  clamped to [-20, 2] (rlkit: ``min + sigmoid(logits) * (max - min)`` in [-6, 0]);
- actions: sampled and clamped to the bounds, [-1, 1] in SB3's scaled action space; the deterministic
  action is the mean, clamped the same way.

The critics are SB3's :class:`~stable_baselines3.common.policies.ContinuousCritic` (two Q networks,
their target copy), which is exactly CORL's ``Critic``: an MLP on ``concat(s, a)``.
"""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy, ContinuousCritic
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.torch_layers import (
    BaseFeaturesExtractor,
    FlattenExtractor,
    create_mlp,
    get_actor_critic_arch,
)
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn
from torch.distributions import Normal

LOG_STD_BOUNDS = (-20.0, 2.0)
"""CORL's ``min_log_std`` and ``max_log_std`` (algorithms/offline/awac.py, ``Actor.__init__``)."""

NET_ARCH = [256, 256, 256]
"""CORL's actor and critic: three hidden layers of ``hidden_dim = 256`` (``Actor._mlp``, ``Critic._mlp``)."""


class GaussianActor(BasePolicy):
    """Diagonal Gaussian policy with a state-independent, clamped log-std, in SB3's scaled action space.

    :param observation_space: observation space
    :param action_space: action space (Box)
    :param net_arch: hidden layer sizes of the mean network
    :param features_extractor: module applied to observations first
    :param features_dim: output size of ``features_extractor``
    :param activation_fn: activation between hidden layers
    :param log_std_init: initial log-std (CORL: 0)
    :param log_std_bounds: clamp of the log-std (CORL: (-20, 2))
    :param tanh_mean: squash the mean with tanh (the authors' rlkit policy; CORL: False)
    :param normalize_images: SB3's image normalisation flag
    """

    action_space: spaces.Box

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        net_arch: list[int],
        features_extractor: nn.Module,
        features_dim: int,
        activation_fn: type[nn.Module] = nn.ReLU,
        log_std_init: float = 0.0,
        log_std_bounds: tuple[float, float] = LOG_STD_BOUNDS,
        tanh_mean: bool = False,
        normalize_images: bool = True,
    ) -> None:
        super().__init__(
            observation_space, action_space, features_extractor=features_extractor,
            normalize_images=normalize_images, squash_output=True,
        )
        if log_std_bounds[0] >= log_std_bounds[1]:
            raise ValueError(f"log_std_bounds must be (low, high) with low < high, got {log_std_bounds}.")
        self.net_arch = net_arch
        self.features_dim = features_dim
        self.activation_fn = activation_fn
        self.log_std_init = log_std_init
        self.log_std_bounds = (float(log_std_bounds[0]), float(log_std_bounds[1]))
        self.tanh_mean = tanh_mean
        action_dim = get_action_dim(self.action_space)
        self.latent_pi = nn.Sequential(*create_mlp(features_dim, -1, net_arch, activation_fn))
        self.mu = nn.Linear(net_arch[-1] if net_arch else features_dim, action_dim)
        self.log_std = nn.Parameter(th.full((action_dim,), float(log_std_init)))

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            net_arch=self.net_arch, features_dim=self.features_dim, activation_fn=self.activation_fn,
            log_std_init=self.log_std_init, log_std_bounds=self.log_std_bounds, tanh_mean=self.tanh_mean,
            features_extractor=self.features_extractor,
        )
        return data

    def distribution(self, obs: PyTorchObs) -> Normal:
        """``N(mean(s), diag(exp(clamp(log_std))^2))`` over actions scaled to [-1, 1]."""
        features = self.extract_features(obs, self.features_extractor)
        mean = self.mu(self.latent_pi(features))
        if self.tanh_mean:
            mean = th.tanh(mean)
        std = self.log_std.clamp(*self.log_std_bounds).exp()
        return Normal(mean, std.expand_as(mean))

    def log_prob(self, obs: PyTorchObs, actions: th.Tensor) -> th.Tensor:
        """``log pi(a|s)`` of given (scaled) actions, summed over action dimensions: shape (batch, 1)."""
        return self.distribution(obs).log_prob(actions).sum(dim=-1, keepdim=True)

    def forward(self, obs: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        """The mean (deterministic) or a sample, clamped to the scaled bounds [-1, 1]."""
        distribution = self.distribution(obs)
        actions = distribution.mean if deterministic else distribution.sample()
        return actions.clamp(-1.0, 1.0)

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        return self(observation, deterministic)


class AWACPolicy(BasePolicy):
    """Actor (:class:`GaussianActor`), twin Q critics and their target, each with its own Adam optimizer.

    One optimizer covers both critics: Adam is per-parameter, so it equals CORL's two optimizers on the
    summed loss ``mse(Q1) + mse(Q2)``.

    :param observation_space: observation space
    :param action_space: action space (Box)
    :param lr_schedule: learning rate schedule (constant 3e-4 in CORL)
    :param net_arch: hidden layers, a list for both actor and critics or ``dict(pi=[...], qf=[...])``
        (default ``[256, 256, 256]``, CORL's)
    :param activation_fn: activation function (ReLU)
    :param log_std_init: initial log-std of the actor (0)
    :param log_std_bounds: clamp of the actor's log-std ((-20, 2))
    :param tanh_mean: squash the actor's mean with tanh (False; the authors' rlkit policy: True)
    :param features_extractor_class: features extractor (AWAC passes ``StandardizedObservations`` when
        normalising observations)
    :param features_extractor_kwargs: its keyword arguments
    :param normalize_images: SB3's image normalisation flag
    :param optimizer_class: optimizer (Adam)
    :param optimizer_kwargs: optimizer keyword arguments besides the learning rate
    :param n_critics: number of Q networks (2)
    :param share_features_extractor: let the critics use the actor's features extractor (False)
    """

    actor: GaussianActor
    critic: ContinuousCritic
    critic_target: ContinuousCritic

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        log_std_init: float = 0.0,
        log_std_bounds: tuple[float, float] = LOG_STD_BOUNDS,
        tanh_mean: bool = False,
        features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        n_critics: int = 2,
        share_features_extractor: bool = False,
    ) -> None:
        super().__init__(
            observation_space, action_space, features_extractor_class, features_extractor_kwargs,
            optimizer_class=optimizer_class, optimizer_kwargs=optimizer_kwargs, squash_output=True,
            normalize_images=normalize_images,
        )
        if net_arch is None:
            net_arch = list(NET_ARCH)
        actor_arch, critic_arch = get_actor_critic_arch(net_arch)
        self.net_arch = net_arch
        self.activation_fn = activation_fn
        self.share_features_extractor = share_features_extractor
        common = dict(
            observation_space=self.observation_space, action_space=self.action_space,
            activation_fn=activation_fn, normalize_images=normalize_images,
        )
        self.actor_kwargs = dict(
            common, net_arch=actor_arch, log_std_init=log_std_init, log_std_bounds=log_std_bounds, tanh_mean=tanh_mean
        )
        self.critic_kwargs = dict(
            common, net_arch=critic_arch, n_critics=n_critics, share_features_extractor=share_features_extractor
        )
        self._build(lr_schedule)

    def _build(self, lr_schedule: Schedule) -> None:
        self.actor = self.make_actor()
        self.actor.optimizer = self.optimizer_class(self.actor.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)
        if self.share_features_extractor:
            self.critic = self.make_critic(features_extractor=self.actor.features_extractor)
            critic_parameters = [p for name, p in self.critic.named_parameters() if "features_extractor" not in name]
        else:
            self.critic = self.make_critic()
            critic_parameters = list(self.critic.parameters())
        self.critic_target = self.make_critic()
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.critic_target.set_training_mode(False)
        self.critic.optimizer = self.optimizer_class(critic_parameters, lr=lr_schedule(1), **self.optimizer_kwargs)

    def make_actor(self, features_extractor: BaseFeaturesExtractor | None = None) -> GaussianActor:
        kwargs = self._update_features_extractor(self.actor_kwargs, features_extractor)
        return GaussianActor(**kwargs).to(self.device)

    def make_critic(self, features_extractor: BaseFeaturesExtractor | None = None) -> ContinuousCritic:
        kwargs = self._update_features_extractor(self.critic_kwargs, features_extractor)
        return ContinuousCritic(**kwargs).to(self.device)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            net_arch=self.net_arch, activation_fn=self.activation_fn,
            log_std_init=self.actor_kwargs["log_std_init"], log_std_bounds=self.actor_kwargs["log_std_bounds"],
            tanh_mean=self.actor_kwargs["tanh_mean"], n_critics=self.critic_kwargs["n_critics"],
            share_features_extractor=self.share_features_extractor, lr_schedule=self._dummy_schedule,
            optimizer_class=self.optimizer_class, optimizer_kwargs=self.optimizer_kwargs,
            features_extractor_class=self.features_extractor_class,
            features_extractor_kwargs=self.features_extractor_kwargs,
        )
        return data

    def forward(self, obs: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        return self._predict(obs, deterministic=deterministic)

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        return self.actor(observation, deterministic)

    def set_training_mode(self, mode: bool) -> None:
        self.actor.set_training_mode(mode)
        self.critic.set_training_mode(mode)
        self.training = mode


MlpPolicy = AWACPolicy
