"""A-PARL's implicit term estimated from samples, for an SB3 policy and a Bradley-Terry reward model.

:mod:`algos.parl_exact` computes PARL's hypergradient exactly on a tabular MDP. Here the same three pieces are
estimated from the policy's own recorded trajectories and the round's labelled pairs (Chakraborty et al.,
ICLR 2024, A-PARL):

- ``d_theta G`` (the score-function term: the compared segments come from ``pi_theta``):
  ``mean_i (l_i - mean_j l_j) grad_theta [log pi(segment a_i) + log pi(segment b_i)]``, with ``l_i`` the
  Bradley-Terry log-likelihood of pair i's label under the reward model and ``log pi(segment)`` the sum of the
  policy's log-probabilities of the segment's actions (the dynamics' terms do not depend on theta). The mean
  likelihood is the usual constant baseline (it leaves the expectation unchanged).
- ``A = -Hessian_theta V``: the Hessian of the importance-weighted policy-gradient surrogate
  ``L(theta', nu) = mean_t [pi_theta'(a_t|s_t) / pi_theta(a_t|s_t)] (G_t(nu) - mean G)`` at ``theta' = theta``,
  with ``G_t(nu)`` the discounted reward-to-go of ``r_nu`` along the recorded trajectory. Its gradient is the
  policy gradient; its Hessian is ``E[(grad^2 log pi + grad log pi grad log pi^T) G_t]``: the per-step part of
  the policy Hessian (the cross-step score products are left out, as in most second-order policy-gradient
  code). Only products ``A v`` are formed (double backpropagation).
- ``M = d^2_{theta, nu} V``: the mixed derivative of the same surrogate, applied as ``grad_nu (grad_theta L . u)``.

The implicit term is ``M^T A^-1 d_theta G``; ``A^-1`` by :func:`rl.inverse_hvp.solve` (conjugate gradient by
default, 10 iterations and damping 0.1: TRPO's settings for the same kind of Fisher/Hessian solve).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch as th
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy
from torch import nn

from rl.inverse_hvp import solve
from rl.preferences.reward_model import BradleyTerryRewardModel
from rl.preferences.segments import Segment, Trajectory

ACTION_EDGE = 1.0 - 1e-6
"""Squashed actions are kept inside (-1, 1) before their log-probability (the tanh's inverse is infinite at +-1)."""


class PolicyNotStochasticError(ValueError):
    """PARL's terms need ``log pi(a|s)``: the SB3 model's policy has no action distribution."""


def policy_log_prob(model: BaseAlgorithm, observations: np.ndarray, actions: np.ndarray) -> th.Tensor:
    """``log pi_theta(a|s)`` of recorded env actions under the model's current policy, differentiable in theta.

    ``observations`` are raw (as the recorder keeps them): they go through the model's VecNormalize, if any, as
    the policy saw them. ``actions`` are env actions: squashed policies (SAC) get them rescaled to [-1, 1].
    Works for SB3's actor-critic policies (PPO, A2C) and SAC's policy; a deterministic policy (TD3, DDPG) is
    refused.
    """
    policy = model.policy
    normalizer = model.get_vec_normalize_env()
    if normalizer is not None:
        observations = normalizer.normalize_obs(observations)
    observation_tensor, _ = policy.obs_to_tensor(observations)
    if isinstance(policy, ActorCriticPolicy):
        distribution = policy.get_distribution(observation_tensor)
        action_tensor = th.as_tensor(np.asarray(actions), device=policy.device)
        if isinstance(policy.action_space, spaces.Box):
            action_tensor = action_tensor.float().reshape(-1, *policy.action_space.shape)
        else:
            action_tensor = action_tensor.long().reshape(len(observation_tensor), -1).squeeze(-1)
        return distribution.log_prob(action_tensor)
    actor = getattr(policy, "actor", None)
    if actor is None or not hasattr(actor, "get_action_dist_params"):
        raise PolicyNotStochasticError(
            f"{type(model).__name__}'s policy has no action distribution: PARL needs a stochastic policy "
            "(PPO, A2C or SAC)."
        )
    mean, log_std, kwargs = actor.get_action_dist_params(observation_tensor)
    distribution = actor.action_dist.proba_distribution(mean, log_std, **kwargs)
    scaled = np.clip(policy.scale_action(np.asarray(actions, dtype=np.float32)), -ACTION_EDGE, ACTION_EDGE)
    return distribution.log_prob(th.as_tensor(scaled, device=policy.device))


def policy_parameters(model: BaseAlgorithm, observations: np.ndarray, actions: np.ndarray) -> list[nn.Parameter]:
    """The policy parameters ``log pi(a|s)`` depends on (an actor-critic's value head is left out)."""
    parameters = [p for p in model.policy.parameters() if p.requires_grad]
    gradients = th.autograd.grad(policy_log_prob(model, observations[:1], actions[:1]).sum(), parameters,
                                 allow_unused=True)
    return [p for p, g in zip(parameters, gradients) if g is not None]


def reward_to_go(rewards: th.Tensor, gamma: float) -> th.Tensor:
    """``G_t = sum_{t' >= t} gamma^(t' - t) r_t'`` along one trajectory (differentiable in ``rewards``)."""
    steps = len(rewards)
    exponents = th.arange(steps, device=rewards.device)[None, :] - th.arange(steps, device=rewards.device)[:, None]
    weights = th.where(exponents >= 0, th.as_tensor(gamma, dtype=rewards.dtype, device=rewards.device)
                       ** exponents.clamp(min=0).to(rewards.dtype), th.zeros((), dtype=rewards.dtype))
    return weights @ rewards


def ensemble_reward(reward_model: BradleyTerryRewardModel, observations: np.ndarray,
                    actions: np.ndarray) -> th.Tensor:
    """The ensemble's mean raw reward per step, differentiable in the members' parameters (``nu``)."""
    features, _ = reward_model._inputs(observations, actions)
    return reward_model._member_rewards(features).mean(dim=0)


def pair_log_likelihoods(reward_model: BradleyTerryRewardModel, pairs: Sequence[tuple[Segment, Segment]],
                         labels: np.ndarray) -> th.Tensor:
    """``l_i = y_i log sigma(R(a_i) - R(b_i)) + (1 - y_i) log sigma(R(b_i) - R(a_i))`` under the ensemble mean."""
    margins = th.stack([
        ensemble_reward(reward_model, a.observations, a.actions).sum()
        - ensemble_reward(reward_model, b.observations, b.actions).sum()
        for a, b in pairs
    ])
    targets = th.as_tensor(np.asarray(labels), dtype=margins.dtype, device=margins.device)
    return targets * F.logsigmoid(margins) + (1 - targets) * F.logsigmoid(-margins)


def flatten(tensors: Sequence[th.Tensor | None], like: Sequence[th.Tensor]) -> th.Tensor:
    """One flat vector of ``tensors`` (a missing gradient counts as zeros shaped as its parameter in ``like``)."""
    return th.cat([(t if t is not None else th.zeros_like(p)).reshape(-1) for t, p in zip(tensors, like)])


def score_function_gradient(model: BaseAlgorithm, reward_model: BradleyTerryRewardModel,
                            pairs: Sequence[tuple[Segment, Segment]], labels: np.ndarray,
                            parameters: Sequence[nn.Parameter]) -> th.Tensor:
    """``d_theta G`` (flat): the likelihood-weighted score of both segments of each pair, mean-baselined."""
    with th.no_grad():
        likelihoods = pair_log_likelihoods(reward_model, pairs, labels)
    weights = (likelihoods - likelihoods.mean()).to(th.float32)
    log_probs = th.stack([
        policy_log_prob(model, a.observations, a.actions).sum()
        + policy_log_prob(model, b.observations, b.actions).sum()
        for a, b in pairs
    ])
    objective = (weights.to(log_probs.device) * log_probs).mean()
    return flatten(th.autograd.grad(objective, list(parameters), allow_unused=True), parameters)


@dataclass(frozen=True)
class ImplicitTerm:
    """The implicit term per reward parameter, and what produced it (for the logs)."""

    gradients: list[th.Tensor]
    score_norm: float
    solution_norm: float
    steps: int

    @property
    def norm(self) -> float:
        return float(th.sqrt(sum((g * g).sum() for g in self.gradients)))


def implicit_term(model: BaseAlgorithm, reward_model: BradleyTerryRewardModel, trajectories: Sequence[Trajectory],
                  pairs: Sequence[tuple[Segment, Segment]], labels: np.ndarray, *, gamma: float,
                  method: str = "cg", iterations: int = 10, damping: float = 0.1, scale: float = 0.1
                  ) -> ImplicitTerm:
    """``M^T A^-1 d_theta G`` for the reward model's parameters (see the module docstring).

    Args:
        model: the SB3 model whose current policy recorded ``trajectories`` and ``pairs``.
        reward_model: ``r_nu``; its members' parameters are ``nu``.
        trajectories: the policy's recent finished trajectories (the surrogate's data).
        pairs, labels: the round's comparisons (segments of the current policy's trajectories).
        gamma: the discount of the reward-to-go (the RL algorithm's).
        method, iterations, damping, scale: the inverse-HVP solver (:func:`rl.inverse_hvp.solve`).
    """
    if not trajectories or not pairs:
        raise ValueError("the implicit term needs the policy's trajectories and at least one labelled pair.")
    observations = np.concatenate([t.observations[:len(t)] for t in trajectories])  # drop a final observation
    actions = np.concatenate([t.actions for t in trajectories])
    parameters = policy_parameters(model, observations, actions)
    score = score_function_gradient(model, reward_model, pairs, labels, parameters)

    reward_parameters = list(reward_model.members.parameters())
    rewards = ensemble_reward(reward_model, observations, actions)
    returns, start = [], 0
    for trajectory in trajectories:
        returns.append(reward_to_go(rewards[start:start + len(trajectory)], gamma))
        start += len(trajectory)
    advantages = th.cat(returns)
    advantages = advantages - advantages.mean()
    log_probs = policy_log_prob(model, observations, actions)
    ratios = th.exp(log_probs - log_probs.detach())
    surrogate = (ratios * advantages.to(ratios.device)).mean()
    surrogate_gradient = flatten(th.autograd.grad(surrogate, parameters, create_graph=True, allow_unused=True),
                                 parameters)

    def negative_hessian_product(vector: th.Tensor) -> th.Tensor:
        product = th.autograd.grad(surrogate_gradient, parameters, grad_outputs=vector, retain_graph=True,
                                   allow_unused=True)
        return -flatten(product, parameters)

    solution = solve(negative_hessian_product, score.detach(), method=method, iterations=iterations,
                     damping=damping, scale=scale)
    gradients = th.autograd.grad(surrogate_gradient, reward_parameters, grad_outputs=solution, allow_unused=True)
    return ImplicitTerm(
        gradients=[(g if g is not None else th.zeros_like(p)).detach() for g, p in zip(gradients, reward_parameters)],
        score_norm=float(score.norm()), solution_norm=float(solution.norm()), steps=len(observations),
    )
