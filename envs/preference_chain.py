"""A small tabular task whose bilevel preference problem can be solved exactly: PARL's test bed and sanity table.

PARL (Chakraborty et al., ICLR 2024) learns reward parameters ``nu`` from preferences over trajectories of the
policy that is optimal for ``r_nu``. On a finite MDP with a known model every part of that problem is exact:
the lower level's entropy-regularised optimum (soft value iteration), the upper level's expected preference
log-likelihood (a sum over every short trajectory), and the hypergradient (autograd through both).
``algos.parl_exact`` does those computations; this module is the task.

:class:`TabularMDP` holds the model: transitions, initial distribution, reward features ``phi(s, a)`` (the
learned reward is ``r_nu(s, a) = phi(s, a) . nu``) and the hidden true reward the rater prefers by.
:func:`slippery_chain` builds the task the tests and the sanity table use: a chain of ``n_states`` cells, moves
left or right that slip the other way with probability ``slip``, a true reward for standing on one goal cell
and features that cannot represent it exactly (the cell's position and a bias term per action), so the
learned reward depends on where the policy's trajectories go, which is what the bilevel problem is about.
:class:`TabularMDPEnv` is the same MDP as a Gymnasium env, reward = the true reward (which a preference learner
does not see; the rater uses it), for running SB3 agents on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces


@dataclass(frozen=True)
class TabularMDP:
    """A finite MDP with reward features and a hidden true reward.

    Attributes:
        transitions: ``P[s, a, s']``, shape (S, A, S), rows summing to 1.
        initial: the start distribution, shape (S,).
        features: ``phi[s, a, k]``, shape (S, A, K): the learned reward is ``phi . nu``.
        true_reward: the rater's reward ``r*[s, a]``, shape (S, A).
        gamma: the lower level's discount.
    """

    transitions: np.ndarray
    initial: np.ndarray
    features: np.ndarray
    true_reward: np.ndarray
    gamma: float = 0.9

    def __post_init__(self) -> None:
        n_states, n_actions = self.true_reward.shape
        if self.transitions.shape != (n_states, n_actions, n_states):
            raise ValueError(f"transitions must have shape {(n_states, n_actions, n_states)}, "
                             f"got {self.transitions.shape}.")
        if not np.allclose(self.transitions.sum(axis=2), 1.0) or (self.transitions < 0).any():
            raise ValueError("every transitions[s, a] must be a probability distribution over next states.")
        if self.initial.shape != (n_states,) or not np.isclose(self.initial.sum(), 1.0) or (self.initial < 0).any():
            raise ValueError(f"initial must be a distribution over the {n_states} states.")
        if self.features.ndim != 3 or self.features.shape[:2] != (n_states, n_actions):
            raise ValueError(f"features must have shape ({n_states}, {n_actions}, K), got {self.features.shape}.")
        if not 0 <= self.gamma < 1:
            raise ValueError(f"gamma must be in [0, 1), got {self.gamma!r}.")

    @property
    def n_states(self) -> int:
        return int(self.true_reward.shape[0])

    @property
    def n_actions(self) -> int:
        return int(self.true_reward.shape[1])

    @property
    def n_features(self) -> int:
        return int(self.features.shape[2])


def slippery_chain(n_states: int = 4, *, goal: int = 2, slip: float = 0.1, gamma: float = 0.9) -> TabularMDP:
    """The chain task: cells ``0 .. n_states - 1``, action 0 moves left and 1 right (the ends reflect), each
    move going the other way with probability ``slip``; every cell is a possible start (uniform).

    True reward: 1 for acting on the ``goal`` cell, 0 elsewhere. Features (K = 3): the cell's position scaled to
    [0, 1], and a bias per action (``[pos, a == left, a == right]``). A linear reward in those features is
    monotone in the position, so it cannot single out an interior goal: the best ``nu`` depends on which cells the
    compared trajectories visit.
    """
    if n_states < 2:
        raise ValueError(f"n_states must be >= 2, got {n_states!r}.")
    if not 0 <= goal < n_states:
        raise ValueError(f"goal must be a cell in 0 .. {n_states - 1}, got {goal!r}.")
    if not 0 <= slip <= 1:
        raise ValueError(f"slip must be a probability, got {slip!r}.")
    transitions = np.zeros((n_states, 2, n_states))
    for state in range(n_states):
        left, right = max(state - 1, 0), min(state + 1, n_states - 1)
        transitions[state, 0, left] += 1 - slip
        transitions[state, 0, right] += slip
        transitions[state, 1, right] += 1 - slip
        transitions[state, 1, left] += slip
    position = np.arange(n_states) / (n_states - 1)
    features = np.zeros((n_states, 2, 3))
    features[:, :, 0] = position[:, None]
    features[:, 0, 1] = 1.0
    features[:, 1, 2] = 1.0
    true_reward = np.zeros((n_states, 2))
    true_reward[goal, :] = 1.0
    return TabularMDP(transitions=transitions, initial=np.full(n_states, 1.0 / n_states), features=features,
                      true_reward=true_reward, gamma=gamma)


class TabularMDPEnv(gym.Env[np.int64, np.int64]):
    """A :class:`TabularMDP` as a Gymnasium env: Discrete states and actions, reward = the true reward.

    ``info["features"]`` carries ``phi(s, a)`` of the step, so a learned linear reward can be computed from the
    stream of steps without the model. Episodes never terminate; wrap in a ``TimeLimit`` for a horizon.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, mdp: TabularMDP | None = None) -> None:
        self.mdp = mdp if mdp is not None else slippery_chain()
        self.observation_space = spaces.Discrete(self.mdp.n_states)
        self.action_space = spaces.Discrete(self.mdp.n_actions)
        self._state = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.int64, dict[str, Any]]:
        super().reset(seed=seed)
        self._state = int(self.np_random.choice(self.mdp.n_states, p=self.mdp.initial))
        return np.int64(self._state), {}

    def step(self, action: np.int64) -> tuple[np.int64, float, bool, bool, dict[str, Any]]:
        state, action = self._state, int(action)
        reward = float(self.mdp.true_reward[state, action])
        info = {"features": self.mdp.features[state, action].copy()}
        self._state = int(self.np_random.choice(self.mdp.n_states, p=self.mdp.transitions[state, action]))
        return np.int64(self._state), reward, False, False, info
