"""Networks for FamO2O: the universal policy pi_u(a | s, beta), the balance model beta(s), and the policies
that hold them beside the base algorithm's critics (IQL's or CQL's).

Read from the authors' code (github.com/LeapLabTHU/FamO2O):

- beta enters the universal policy as ``d = 6`` sin/cos features concatenated to the state
  (jax_iql/family_utils.py ``sin_cos_skill_func``, the same in jax_cql/cql_finetune/family_utils.py):
  ``[sin(beta / n^(0/d)), cos(beta / n^(0/d)), sin(beta / n^(2/d)), cos(...), sin(beta / n^(4/d)), cos(...)]``
  with ``n = 10000``, i.e. a transformer's positional encoding of the scalar beta;
- the balance model is a tanh-squashed Gaussian over one dimension, ``u = tanh(z)`` in [-1, 1], mapped
  affinely to ``beta = beta_min + (u + 1) / 2 * (beta_max - beta_min)`` (jax_iql/family_actor.py L25-27).
  On IQL its log-std is a state-independent parameter (family_learner.py L119-123); on CQL it is a second
  output of the network with a -1 offset, as in CQL's actor (jax_cql/JaxCQL/hierarchical_policy.py).
  Acting and evaluating always take its deterministic choice ``tanh(mean)`` (family_learner.py L173-177,
  family_sampler.py L34).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import torch as th
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3.common.policies import BaseModel, BasePolicy, ContinuousCritic
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, FlattenExtractor, create_mlp
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from stable_baselines3.sac.policies import Actor
from torch import nn
from torch.distributions import Normal

from algos.cql_policies import CQLPolicy, init_actor_head
from algos.iql_policies import LOG_STD_MAX, LOG_STD_MIN, IQLPolicy, ValueNetwork, _mlp_body

BETA_ENCODING_DIM = 6
"""``family_sin_cos_d = 6`` (jax_iql/family_learner.py L85; jax_cql/cql_finetune/finetune_configs/family.py L10)."""
BETA_ENCODING_BASE = 10_000.0
"""``family_sin_cos_n = 10000.0`` (jax_iql/family_learner.py L84; finetune_configs/family.py L9)."""
BALANCE_LOG_STD_MIN = -10.0
"""The IQL balance model's log-std clip: policy.py's ``LOG_STD_MIN`` (its NormalTanhPolicy sets no own bound)."""
SQUASHED_LOG_STD_MIN = -20.0
"""The CQL balance model's log-std clip (JaxCQL/model.py ``TanhGaussianPolicy``: ``clip(log_std, -20, 2)``)."""


def beta_encoding(beta: th.Tensor, dim: int = BETA_ENCODING_DIM, base: float = BETA_ENCODING_BASE) -> th.Tensor:
    """Sin/cos features of the balance coefficient, shape (batch, 1) -> (batch, dim).

    Column ``2i`` is ``sin(beta / base^(2i/dim))`` and column ``2i + 1`` the cosine of the same angle
    (the authors' ``sin_cos_skill_func``).
    """
    if dim <= 0 or dim % 2:
        raise ValueError(f"beta_encoding_dim must be a positive even number (the authors use 6), got {dim}.")
    exponents = th.arange(dim // 2, device=beta.device, dtype=th.float32) * 2.0 / dim
    angles = beta.reshape(-1, 1).float() / base**exponents
    return th.stack([th.sin(angles), th.cos(angles)], dim=-1).flatten(start_dim=1)


def _check_beta_range(beta_min: float, beta_max: float) -> None:
    if not beta_min < beta_max:
        raise ValueError(f"beta_min must be below beta_max (IQL locomotion: 1 and 5; CQL: 0.5 and 1.5), "
                         f"got {beta_min} and {beta_max}.")


class BalanceSample(NamedTuple):
    """What the balance model gives for a batch of states, each of shape (batch, 1).

    :param beta: a reparameterised sample of beta in [beta_min, beta_max] (differentiable)
    :param log_prob: log-density of the squashed sample ``u = tanh(z)`` in [-1, 1] (the authors' entropy
        is that of u)
    :param mode: the deterministic choice ``tanh(mean)`` mapped to the range (what acting uses)
    """

    beta: th.Tensor
    log_prob: th.Tensor
    mode: th.Tensor


class BalanceModel(BaseModel):
    """beta(s): a tanh-squashed Gaussian over one dimension, mapped affinely onto [beta_min, beta_max].

    :param observation_space: observation space
    :param action_space: the env's action space (unused; SB3's BaseModel keeps it)
    :param net_arch: hidden layer sizes
    :param features_extractor: network applied to observations first
    :param features_dim: output size of ``features_extractor``
    :param beta_min: lower end of the balance coefficient's range
    :param beta_max: upper end of the balance coefficient's range
    :param activation_fn: activation after each hidden layer
    :param state_dependent_std: log-std as a second output of the network (CQL version) instead of a
        state-independent parameter (IQL version)
    :param log_std_init: initial log-std (the parameter's value, or the bias of the log-std layer)
    :param log_std_min: lower clip of the log-std
    :param log_std_max: upper clip of the log-std
    :param normalize_images: divide image observations by 255
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        net_arch: list[int],
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        beta_min: float,
        beta_max: float,
        activation_fn: type[nn.Module] = nn.ReLU,
        state_dependent_std: bool = False,
        log_std_init: float = 0.0,
        log_std_min: float = BALANCE_LOG_STD_MIN,
        log_std_max: float = LOG_STD_MAX,
        normalize_images: bool = True,
    ) -> None:
        super().__init__(
            observation_space, action_space, features_extractor=features_extractor, normalize_images=normalize_images
        )
        _check_beta_range(beta_min, beta_max)
        self.beta_min, self.beta_max = float(beta_min), float(beta_max)
        self.log_std_min, self.log_std_max = log_std_min, log_std_max
        self.latent = _mlp_body(features_dim, net_arch, activation_fn, None)
        last_dim = net_arch[-1] if net_arch else features_dim
        self.mu = nn.Linear(last_dim, 1)
        self.log_std: nn.Linear | nn.Parameter
        if state_dependent_std:
            self.log_std = nn.Linear(last_dim, 1)
            nn.init.constant_(self.log_std.bias, log_std_init)
        else:
            self.log_std = nn.Parameter(th.full((1,), float(log_std_init)))

    def to_beta(self, squashed: th.Tensor) -> th.Tensor:
        """Map ``u`` in [-1, 1] to ``beta_min + (u + 1) / 2 * (beta_max - beta_min)`` (clamped against rounding)."""
        beta = self.beta_min + (squashed + 1.0) * 0.5 * (self.beta_max - self.beta_min)
        return beta.clamp(self.beta_min, self.beta_max)

    def distribution_params(self, obs: PyTorchObs) -> tuple[th.Tensor, th.Tensor]:
        """Mean and clipped log-std of the Gaussian before the tanh, each (batch, 1)."""
        latent = self.latent(self.extract_features(obs, self.features_extractor))
        mean = self.mu(latent)
        log_std = self.log_std(latent) if isinstance(self.log_std, nn.Linear) else self.log_std.expand_as(mean)
        return mean, log_std.clamp(self.log_std_min, self.log_std_max)

    def sample(self, obs: PyTorchObs) -> BalanceSample:
        """A reparameterised beta, the log-density of its squashed value, and the deterministic choice."""
        mean, log_std = self.distribution_params(obs)
        gaussian = Normal(mean, log_std.exp())
        z = gaussian.rsample()
        # log |d tanh(z) / dz| = log(1 - tanh(z)^2) = 2 (log 2 - z - softplus(-2 z)), stable for large |z|.
        log_prob = gaussian.log_prob(z) - 2.0 * (math.log(2.0) - z - F.softplus(-2.0 * z))
        return BalanceSample(beta=self.to_beta(th.tanh(z)), log_prob=log_prob, mode=self.to_beta(th.tanh(mean)))

    def forward(self, obs: PyTorchObs, deterministic: bool = True) -> th.Tensor:
        """beta(s), shape (batch, 1): the deterministic choice ``tanh(mean)``, or a sample."""
        if deterministic:
            mean, _ = self.distribution_params(obs)
            return self.to_beta(th.tanh(mean))
        return self.sample(obs).beta


class UniversalGaussianActor(BasePolicy):
    """pi_u(a | s, beta) on IQL: ``N(tanh(mu(s, enc(beta))), exp(log_std))``, a state-independent log-std.

    IQL's locomotion actor (:class:`~algos.iql_policies.IQLActor`) with the sin/cos features of beta
    concatenated to the state's features (jax_iql/family_learner.py L111-117, L134-136).

    :param observation_space: observation space
    :param action_space: action space (Box; the actor acts in SB3's scaled space [-1, 1])
    :param net_arch: hidden layer sizes
    :param features_extractor: network applied to observations first
    :param features_dim: output size of ``features_extractor``
    :param activation_fn: activation after each hidden layer
    :param dropout: dropout rate after each hidden layer (None: none, the locomotion setting)
    :param beta_encoding_dim: number of sin/cos features of beta
    :param beta_encoding_base: base ``n`` of the encoding's frequencies
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
        dropout: float | None = None,
        beta_encoding_dim: int = BETA_ENCODING_DIM,
        beta_encoding_base: float = BETA_ENCODING_BASE,
        normalize_images: bool = True,
    ) -> None:
        super().__init__(
            observation_space, action_space, features_extractor=features_extractor, normalize_images=normalize_images,
            squash_output=True,
        )
        self.net_arch = net_arch
        self.features_dim = features_dim
        self.activation_fn = activation_fn
        self.dropout = dropout
        self.beta_encoding_dim = beta_encoding_dim
        self.beta_encoding_base = beta_encoding_base
        action_dim = get_action_dim(self.action_space)
        self.latent_pi = _mlp_body(features_dim + beta_encoding_dim, net_arch, activation_fn, dropout)
        last_dim = net_arch[-1] if net_arch else features_dim + beta_encoding_dim
        self.mu = nn.Sequential(nn.Linear(last_dim, action_dim), nn.Tanh())
        self.log_std = nn.Parameter(th.zeros(action_dim))

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            net_arch=self.net_arch, features_dim=self.features_dim, activation_fn=self.activation_fn,
            dropout=self.dropout, beta_encoding_dim=self.beta_encoding_dim,
            beta_encoding_base=self.beta_encoding_base, features_extractor=self.features_extractor,
        )
        return data

    def mean(self, obs: PyTorchObs, beta: th.Tensor) -> th.Tensor:
        """The mean action ``tanh(mu(s, enc(beta)))``, in [-1, 1]."""
        features = self.extract_features(obs, self.features_extractor)
        encoding = beta_encoding(beta, self.beta_encoding_dim, self.beta_encoding_base)
        return self.mu(self.latent_pi(th.cat([features, encoding], dim=1)))

    def distribution(self, obs: PyTorchObs, beta: th.Tensor) -> Normal:
        """The Gaussian policy at ``(obs, beta)`` (per action dimension)."""
        mean = self.mean(obs, beta)
        std = self.log_std.clamp(LOG_STD_MIN, LOG_STD_MAX).exp().expand_as(mean)
        return Normal(mean, std)

    def log_prob(self, obs: PyTorchObs, beta: th.Tensor, actions: th.Tensor) -> th.Tensor:
        """``log pi_u(a | s, beta)`` of scaled actions, shape (batch, 1)."""
        return self.distribution(obs, beta).log_prob(actions).sum(dim=-1, keepdim=True)

    def rsample(self, obs: PyTorchObs, beta: th.Tensor) -> th.Tensor:
        """A reparameterised, unclipped action (the authors' ``dist.sample`` in the balance model's loss)."""
        return self.distribution(obs, beta).rsample()

    def forward(self, obs: PyTorchObs, beta: th.Tensor, deterministic: bool = False) -> th.Tensor:
        if deterministic:
            return self.mean(obs, beta)
        return self.distribution(obs, beta).sample().clamp(-1.0, 1.0)

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        raise TypeError("The universal policy needs beta: predict with the FamO2O policy, which asks the "
                        "balance model for it.")


class UniversalSquashedActor(Actor):
    """pi_u(a | s, beta) on CQL: SB3's SAC actor (tanh-squashed Gaussian) on ``[features(s), enc(beta)]``.

    As the authors' ``FamilyTanhGaussianPolicy`` (jax_cql/JaxCQL/hierarchical_policy.py), CQL's actor on the
    state concatenated with the sin/cos features of beta.

    :param observation_space: observation space
    :param action_space: action space (Box)
    :param net_arch: hidden layer sizes
    :param features_extractor: network applied to observations first
    :param features_dim: output size of ``features_extractor``
    :param beta_encoding_dim: number of sin/cos features of beta
    :param beta_encoding_base: base ``n`` of the encoding's frequencies
    :param kwargs: the rest of SB3's :class:`~stable_baselines3.sac.policies.Actor` arguments (no gSDE)
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        net_arch: list[int],
        features_extractor: nn.Module,
        features_dim: int,
        beta_encoding_dim: int = BETA_ENCODING_DIM,
        beta_encoding_base: float = BETA_ENCODING_BASE,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("use_sde"):
            raise ValueError("FamO2O's universal policy does not support gSDE (use_sde=True).")
        super().__init__(
            observation_space, action_space, net_arch, features_extractor, features_dim + beta_encoding_dim, **kwargs
        )
        self.features_dim = features_dim  # the extractor's; the MLP's input adds the encoding
        self.beta_encoding_dim = beta_encoding_dim
        self.beta_encoding_base = beta_encoding_base

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(beta_encoding_dim=self.beta_encoding_dim, beta_encoding_base=self.beta_encoding_base)
        return data

    def get_action_dist_params(  # type: ignore[override]
        self, obs: PyTorchObs, beta: th.Tensor
    ) -> tuple[th.Tensor, th.Tensor, dict[str, th.Tensor]]:
        features = self.extract_features(obs, self.features_extractor)
        encoding = beta_encoding(beta, self.beta_encoding_dim, self.beta_encoding_base)
        latent_pi = self.latent_pi(th.cat([features, encoding], dim=1))
        log_std = th.clamp(self.log_std(latent_pi), SQUASHED_LOG_STD_MIN, LOG_STD_MAX)  # type: ignore[operator]
        return self.mu(latent_pi), log_std, {}

    def forward(self, obs: PyTorchObs, beta: th.Tensor, deterministic: bool = False) -> th.Tensor:  # type: ignore[override]
        mean_actions, log_std, _ = self.get_action_dist_params(obs, beta)
        return self.action_dist.actions_from_params(mean_actions, log_std, deterministic=deterministic)

    def action_log_prob(self, obs: PyTorchObs, beta: th.Tensor) -> tuple[th.Tensor, th.Tensor]:  # type: ignore[override]
        """A reparameterised squashed action and its log-probability, shapes (batch, ``|A|``) and (batch,)."""
        mean_actions, log_std, _ = self.get_action_dist_params(obs, beta)
        return self.action_dist.log_prob_from_params(mean_actions, log_std)

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        raise TypeError("The universal policy needs beta: predict with the FamO2O policy, which asks the "
                        "balance model for it.")


class LayerNormContinuousCritic(ContinuousCritic):
    """SB3's twin Q networks with LayerNorm after every hidden linear layer (before the activation).

    The authors' FamO2O-CQL critics (jax_cql/JaxCQL/family_model.py ``FamilyFullyConnectedNetwork``:
    Dense, LayerNorm, ReLU per hidden layer).
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        net_arch: list[int],
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        activation_fn: type[nn.Module] = nn.ReLU,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            observation_space, action_space, net_arch, features_extractor, features_dim, activation_fn, **kwargs
        )
        in_dim = features_dim + get_action_dim(self.action_space)
        for idx in range(self.n_critics):
            q_net = nn.Sequential(*create_mlp(in_dim, 1, net_arch, activation_fn, post_linear_modules=[nn.LayerNorm]))
            self.add_module(f"qf{idx}", q_net)  # replaces the plain network of the same name
            self.q_networks[idx] = q_net


class _BalancedPolicy:
    """Acting with a balance model: beta from ``balance_model`` (its deterministic choice), then the universal
    actor with that beta (deterministic: its mean; otherwise a sample). Mixed in before the base policy."""

    balance_model: BalanceModel
    actor: UniversalGaussianActor | UniversalSquashedActor

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        beta = self.balance_model(observation, deterministic=True)
        return self.actor(observation, beta, deterministic)

    def predict_beta(self, observation: np.ndarray | dict[str, np.ndarray]) -> np.ndarray:
        """The balance model's beta for raw observations (one observation: a scalar array), no gradient."""
        self.set_training_mode(False)  # type: ignore[attr-defined]
        obs_tensor, vectorized = self.obs_to_tensor(observation)  # type: ignore[attr-defined]
        with th.no_grad():
            beta = self.balance_model(obs_tensor, deterministic=True)
        values = beta.cpu().numpy().reshape(-1)
        return values if vectorized else values[0]

    def _balance_constructor_parameters(self) -> dict[str, Any]:
        return dict(
            beta_min=self.beta_min, beta_max=self.beta_max, beta_encoding_dim=self.beta_encoding_dim,  # type: ignore[attr-defined]
            beta_encoding_base=self.beta_encoding_base, balance_net_arch=self.balance_net_arch,  # type: ignore[attr-defined]
        )


class FamO2OPolicy(_BalancedPolicy, IQLPolicy):
    """IQL's twin critic, its target and V, with the universal actor pi_u(a | s, beta) and the balance model.

    :param observation_space: observation space
    :param action_space: action space
    :param lr_schedule: learning rate schedule (the algorithm sets the rates before each update)
    :param net_arch: hidden sizes of every network (list), or per network: ``dict(pi=..., qf=..., vf=...,
        balance=...)`` (the authors: 256, 256 for all, the balance model included)
    :param activation_fn: activation function
    :param deterministic_actor: must be False (FamO2O's universal policy is IQL's Gaussian actor)
    :param actor_dropout: dropout rate in the actor's hidden layers (None: none)
    :param beta_min: lower end of the balance coefficient's range
    :param beta_max: upper end of the balance coefficient's range
    :param beta_encoding_dim: number of sin/cos features of beta given to the actor
    :param beta_encoding_base: base of the encoding's frequencies
    :param balance_net_arch: hidden sizes of the balance model (None: the actor's)
    :param features_extractor_class: features extractor of each network
    :param features_extractor_kwargs: its keyword arguments
    :param normalize_images: divide image observations by 255
    :param optimizer_class: optimizer of each network (Adam)
    :param optimizer_kwargs: its keyword arguments besides the learning rate
    :param n_critics: number of Q networks
    """

    actor: UniversalGaussianActor
    balance_model: BalanceModel

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        deterministic_actor: bool = False,
        actor_dropout: float | None = None,
        beta_min: float = 1.0,
        beta_max: float = 5.0,
        beta_encoding_dim: int = BETA_ENCODING_DIM,
        beta_encoding_base: float = BETA_ENCODING_BASE,
        balance_net_arch: list[int] | None = None,
        features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        n_critics: int = 2,
    ) -> None:
        if deterministic_actor:
            raise ValueError("FamO2O's universal policy is IQL's Gaussian actor; deterministic_actor must be False.")
        _check_beta_range(beta_min, beta_max)
        # Read by _build, which IQLPolicy.__init__ calls.
        self.beta_min, self.beta_max = beta_min, beta_max
        self.beta_encoding_dim, self.beta_encoding_base = beta_encoding_dim, beta_encoding_base
        if isinstance(net_arch, dict) and "balance" in net_arch:
            net_arch = dict(net_arch)
            balance_net_arch = list(net_arch.pop("balance"))
        if balance_net_arch is None:
            pi_arch = net_arch.get("pi", [256, 256]) if isinstance(net_arch, dict) else net_arch
            balance_net_arch = list(pi_arch) if pi_arch is not None else [256, 256]
        self.balance_net_arch = balance_net_arch
        super().__init__(
            observation_space, action_space, lr_schedule, net_arch=net_arch, activation_fn=activation_fn,
            deterministic_actor=False, actor_dropout=actor_dropout, features_extractor_class=features_extractor_class,
            features_extractor_kwargs=features_extractor_kwargs, normalize_images=normalize_images,
            optimizer_class=optimizer_class, optimizer_kwargs=optimizer_kwargs, n_critics=n_critics,
        )

    def _build(self, lr_schedule: Schedule) -> None:
        common = {key: self.actor_kwargs[key] for key in ("observation_space", "action_space", "activation_fn",
                                                           "normalize_images")}
        actor_kwargs = {**common, "net_arch": self.actor_kwargs["net_arch"], "dropout": self.actor_kwargs["dropout"],
                        "beta_encoding_dim": self.beta_encoding_dim, "beta_encoding_base": self.beta_encoding_base}
        self.actor = UniversalGaussianActor(**self._update_features_extractor(actor_kwargs)).to(self.device)
        self.critic = self.make_critic()
        self.critic_target = self.make_critic()
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.critic_target.set_training_mode(False)
        self.value_net = ValueNetwork(**self._update_features_extractor(self.value_kwargs)).to(self.device)
        balance_kwargs = {**common, "net_arch": self.balance_net_arch, "beta_min": self.beta_min,
                          "beta_max": self.beta_max}
        self.balance_model = BalanceModel(**self._update_features_extractor(balance_kwargs)).to(self.device)
        for network in (self.actor, self.critic, self.value_net, self.balance_model):
            network.optimizer = self.optimizer_class(
                network.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs  # type: ignore[call-arg]
            )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(self._balance_constructor_parameters())
        return data

    def set_training_mode(self, mode: bool) -> None:
        super().set_training_mode(mode)
        self.balance_model.set_training_mode(mode)


class FamO2OCQLPolicy(_BalancedPolicy, CQLPolicy):
    """CQL's policy (SB3's SAC networks) with the universal squashed actor, LayerNorm critics and the balance model.

    Defaults are the authors' FamO2O-CQL networks (jax_cql/cql_finetune/finetune_configs/base.py L12-16):
    two hidden layers of 256 for every network, no orthogonal initialisation, the actor's (and balance
    model's) log-std offset -1, LayerNorm in the critics (JaxCQL/family_model.py).

    :param observation_space: observation space
    :param action_space: action space (Box)
    :param lr_schedule: learning rate schedule of the critics (the algorithm sets the others)
    :param net_arch: hidden layers of actor and critics (list) or ``dict(pi=..., qf=...)``
    :param orthogonal_init: CORL's critic initialisation (the authors' FamO2O config: False)
    :param log_std_offset: initial log-std of the actor and of the balance model (-1)
    :param critic_layer_norm: LayerNorm after every hidden layer of the critics (the authors' FamO2O critics)
    :param beta_min: lower end of the balance coefficient's range
    :param beta_max: upper end of the balance coefficient's range
    :param beta_encoding_dim: number of sin/cos features of beta given to the actor
    :param beta_encoding_base: base of the encoding's frequencies
    :param balance_net_arch: hidden sizes of the balance model (None: the actor's)
    :param kwargs: the rest of :class:`~algos.cql_policies.CQLPolicy`'s arguments
    """

    actor: UniversalSquashedActor
    balance_model: BalanceModel

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        orthogonal_init: bool = False,
        log_std_offset: float = -1.0,
        critic_layer_norm: bool = True,
        beta_min: float = 0.5,
        beta_max: float = 1.5,
        beta_encoding_dim: int = BETA_ENCODING_DIM,
        beta_encoding_base: float = BETA_ENCODING_BASE,
        balance_net_arch: list[int] | None = None,
        **kwargs: Any,
    ) -> None:
        _check_beta_range(beta_min, beta_max)
        net_arch = [256, 256] if net_arch is None else net_arch
        # Read by _build, which SACPolicy.__init__ calls.
        self.critic_layer_norm = critic_layer_norm
        self.beta_min, self.beta_max = beta_min, beta_max
        self.beta_encoding_dim, self.beta_encoding_base = beta_encoding_dim, beta_encoding_base
        if balance_net_arch is None:
            balance_net_arch = list(net_arch.get("pi", [256, 256]) if isinstance(net_arch, dict) else net_arch)
        self.balance_net_arch = balance_net_arch
        super().__init__(
            observation_space, action_space, lr_schedule, net_arch=net_arch, orthogonal_init=orthogonal_init,
            log_std_offset=log_std_offset, **kwargs,
        )

    def make_actor(self, features_extractor: BaseFeaturesExtractor | None = None) -> UniversalSquashedActor:
        actor_kwargs = self._update_features_extractor(self.actor_kwargs, features_extractor)
        return UniversalSquashedActor(
            **actor_kwargs, beta_encoding_dim=self.beta_encoding_dim, beta_encoding_base=self.beta_encoding_base
        ).to(self.device)

    def make_critic(self, features_extractor: BaseFeaturesExtractor | None = None) -> ContinuousCritic:
        if not self.critic_layer_norm:
            return super().make_critic(features_extractor)
        critic_kwargs = self._update_features_extractor(self.critic_kwargs, features_extractor)
        return LayerNormContinuousCritic(**critic_kwargs).to(self.device)

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)  # universal actor, critics and targets, with CQL's initialisation
        common = {key: self.actor_kwargs[key] for key in ("observation_space", "action_space", "activation_fn",
                                                           "normalize_images")}
        self.balance_model = BalanceModel(**self._update_features_extractor({
            **common, "net_arch": self.balance_net_arch, "beta_min": self.beta_min, "beta_max": self.beta_max,
            "state_dependent_std": True, "log_std_min": SQUASHED_LOG_STD_MIN,
        })).to(self.device)
        # The authors' balance model is CQL's actor network with one output: small output layers, log-std offset.
        init_actor_head(self.balance_model.mu)
        init_actor_head(self.balance_model.log_std, bias=self.log_std_offset)  # type: ignore[arg-type]
        self.balance_model.optimizer = self.optimizer_class(
            self.balance_model.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs  # type: ignore[call-arg]
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(critic_layer_norm=self.critic_layer_norm, **self._balance_constructor_parameters())
        return data

    def set_training_mode(self, mode: bool) -> None:
        super().set_training_mode(mode)
        self.balance_model.set_training_mode(mode)


MlpPolicy = FamO2OPolicy
