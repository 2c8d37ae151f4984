"""Networks for IQL: a Gaussian (or deterministic) actor, twin Q with a target copy, and a state value V.

The actor follows the authors' locomotion policy (ikostrikov/implicit_q_learning, policy.py with the
arguments of learner.py): an MLP whose mean goes through ``tanh``, a state-independent log-std
parameter (initialised at 0, clipped to [-5, 2]) and a plain, unsquashed Gaussian; actions live in
SB3's scaled space [-1, 1], so samples are clipped to it. The critics are SB3's ``ContinuousCritic``.
Every network has its own features extractor (the observation standardisation, when it is on).
"""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BaseModel, BasePolicy, ContinuousCritic
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, FlattenExtractor, create_mlp
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn
from torch.distributions import Normal

LOG_STD_MIN = -5.0
"""The authors' ``log_std_min=-5.0`` (learner.py); CORL uses -20."""
LOG_STD_MAX = 2.0
"""The authors' and CORL's upper clip of the log-std."""


def _mlp_body(in_dim: int, net_arch: list[int], activation_fn: type[nn.Module], dropout: float | None) -> nn.Sequential:
    """Hidden layers, each followed by the activation and, when asked, dropout (as the authors' MLP)."""
    layers: list[nn.Module] = []
    for size in net_arch:
        layers += [nn.Linear(in_dim, size), activation_fn()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        in_dim = size
    return nn.Sequential(*layers)


class IQLActor(BasePolicy):
    """pi(a | s): ``N(tanh(mu(s)), exp(log_std))`` with a learned state-independent ``log_std``.

    With ``deterministic=True`` (CORL's ``iql_deterministic``) it is the deterministic policy
    ``tanh(mu(s))`` and has no ``log_std``.

    :param observation_space: observation space
    :param action_space: action space (Box; the actor acts in SB3's scaled space [-1, 1])
    :param net_arch: hidden layer sizes
    :param features_extractor: network applied to observations first
    :param features_dim: output size of ``features_extractor``
    :param activation_fn: activation after each hidden layer
    :param deterministic: deterministic actor instead of the Gaussian
    :param dropout: dropout rate after each hidden layer (None: no dropout, the locomotion setting)
    :param normalize_images: divide image observations by 255
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
        deterministic: bool = False,
        dropout: float | None = None,
        normalize_images: bool = True,
    ) -> None:
        super().__init__(
            observation_space, action_space, features_extractor=features_extractor, normalize_images=normalize_images,
            squash_output=True,
        )
        self.net_arch = net_arch
        self.features_dim = features_dim
        self.activation_fn = activation_fn
        self.deterministic = deterministic
        self.dropout = dropout
        action_dim = get_action_dim(self.action_space)
        self.latent_pi = _mlp_body(features_dim, net_arch, activation_fn, dropout)
        self.mu = nn.Sequential(nn.Linear(net_arch[-1] if net_arch else features_dim, action_dim), nn.Tanh())
        self.log_std = None if deterministic else nn.Parameter(th.zeros(action_dim))

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            net_arch=self.net_arch, features_dim=self.features_dim, activation_fn=self.activation_fn,
            deterministic=self.deterministic, dropout=self.dropout, features_extractor=self.features_extractor,
        )
        return data

    def mean(self, obs: PyTorchObs) -> th.Tensor:
        """The mean action ``tanh(mu(s))``, in [-1, 1]."""
        return self.mu(self.latent_pi(self.extract_features(obs, self.features_extractor)))

    def distribution(self, obs: PyTorchObs) -> Normal:
        """The Gaussian policy at ``obs`` (per action dimension; sum ``log_prob`` over the last axis)."""
        if self.log_std is None:
            raise RuntimeError("A deterministic IQL actor has no action distribution.")
        mean = self.mean(obs)
        std = self.log_std.clamp(LOG_STD_MIN, LOG_STD_MAX).exp().expand_as(mean)
        return Normal(mean, std)

    def log_prob(self, obs: PyTorchObs, actions: th.Tensor) -> th.Tensor:
        """``log pi(a | s)`` of scaled actions, shape (batch, 1)."""
        return self.distribution(obs).log_prob(actions).sum(dim=-1, keepdim=True)

    def forward(self, obs: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        if deterministic or self.log_std is None:
            return self.mean(obs)
        return self.distribution(obs).sample().clamp(-1.0, 1.0)

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        return self(observation, deterministic)


class ValueNetwork(BaseModel):
    """V(s): an MLP with one output, shape (batch, 1).

    :param observation_space: observation space
    :param action_space: action space (unused; SB3's BaseModel keeps it)
    :param net_arch: hidden layer sizes
    :param features_extractor: network applied to observations first
    :param features_dim: output size of ``features_extractor``
    :param activation_fn: activation after each hidden layer
    :param normalize_images: divide image observations by 255
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        net_arch: list[int],
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        activation_fn: type[nn.Module] = nn.ReLU,
        normalize_images: bool = True,
    ) -> None:
        super().__init__(
            observation_space, action_space, features_extractor=features_extractor, normalize_images=normalize_images
        )
        self.v_net = nn.Sequential(*create_mlp(features_dim, 1, net_arch, activation_fn))

    def forward(self, obs: th.Tensor) -> th.Tensor:
        return self.v_net(self.extract_features(obs, self.features_extractor))


class IQLPolicy(BasePolicy):
    """Actor, twin critic, its target and the value network of IQL, each with its own optimizer.

    :param observation_space: observation space
    :param action_space: action space
    :param lr_schedule: learning rate schedule (the algorithm sets the rates before each update)
    :param net_arch: hidden sizes of every network (list), or per network: ``dict(pi=..., qf=..., vf=...)``
    :param activation_fn: activation function
    :param deterministic_actor: deterministic actor instead of the Gaussian (CORL's ``iql_deterministic``)
    :param actor_dropout: dropout rate in the actor's hidden layers (None: none)
    :param features_extractor_class: features extractor of each network
    :param features_extractor_kwargs: its keyword arguments
    :param normalize_images: divide image observations by 255
    :param optimizer_class: optimizer of each network (Adam)
    :param optimizer_kwargs: its keyword arguments besides the learning rate
    :param n_critics: number of Q networks (2: the value target takes their minimum)
    """

    actor: IQLActor
    critic: ContinuousCritic
    critic_target: ContinuousCritic
    value_net: ValueNetwork

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        deterministic_actor: bool = False,
        actor_dropout: float | None = None,
        features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        n_critics: int = 2,
    ) -> None:
        super().__init__(
            observation_space, action_space, features_extractor_class, features_extractor_kwargs,
            optimizer_class=optimizer_class, optimizer_kwargs=optimizer_kwargs, squash_output=True,
            normalize_images=normalize_images,
        )
        if net_arch is None:
            net_arch = [256, 256]
        if isinstance(net_arch, dict):
            unknown = set(net_arch) - {"pi", "qf", "vf"}
            if unknown:
                raise ValueError(f"net_arch keys are pi, qf and vf; got {sorted(unknown)}.")
            archs = {key: list(net_arch.get(key, [256, 256])) for key in ("pi", "qf", "vf")}
        else:
            archs = {key: list(net_arch) for key in ("pi", "qf", "vf")}
        self.net_arch = net_arch
        self.activation_fn = activation_fn
        self.deterministic_actor = deterministic_actor
        self.actor_dropout = actor_dropout
        self.n_critics = n_critics
        common = dict(
            observation_space=self.observation_space, action_space=self.action_space, activation_fn=activation_fn,
            normalize_images=normalize_images,
        )
        self.actor_kwargs = {**common, "net_arch": archs["pi"], "deterministic": deterministic_actor,
                             "dropout": actor_dropout}
        self.critic_kwargs = {**common, "net_arch": archs["qf"], "n_critics": n_critics,
                              "share_features_extractor": False}
        self.value_kwargs = {**common, "net_arch": archs["vf"]}
        self._build(lr_schedule)

    def _build(self, lr_schedule: Schedule) -> None:
        self.actor = IQLActor(**self._update_features_extractor(self.actor_kwargs)).to(self.device)
        self.critic = self.make_critic()
        self.critic_target = self.make_critic()
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.critic_target.set_training_mode(False)
        self.value_net = ValueNetwork(**self._update_features_extractor(self.value_kwargs)).to(self.device)
        for network in (self.actor, self.critic, self.value_net):
            network.optimizer = self.optimizer_class(
                network.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs  # type: ignore[call-arg]
            )

    def make_critic(self) -> ContinuousCritic:
        return ContinuousCritic(**self._update_features_extractor(self.critic_kwargs)).to(self.device)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            net_arch=self.net_arch, activation_fn=self.activation_fn, deterministic_actor=self.deterministic_actor,
            actor_dropout=self.actor_dropout, n_critics=self.n_critics, lr_schedule=self._dummy_schedule,
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
        """Train/eval mode for the actor (dropout), critic and V; the target critic stays in eval mode."""
        self.actor.set_training_mode(mode)
        self.critic.set_training_mode(mode)
        self.value_net.set_training_mode(mode)
        self.training = mode


MlpPolicy = IQLPolicy
