"""Self-play win rates and how a trajectory's win rate becomes per-step rewards (Swamy et al., ICML 2024).

SPO's reward for a trajectory xi of the current policy is its win rate against other trajectories of the
same policy, r(xi) = mean_j P(xi > xi_j), each P one query to the rater (a sampled label in {0, 0.5, 1}).
No reward model is fitted.

How the win rate is spread over the trajectory's steps (the paper defines a reward per *trajectory*; an SB3
learner needs one per step):

- ``"uniform"`` (default): every step of a trajectory of T steps gets ``scale * W / T``. The undiscounted
  sum over the trajectory is ``scale * W`` whatever T, so the learner maximises the win rate, SPO's game
  value, and not the episode length; dense rewards keep the signal at every step for a discounted learner
  (gamma 0.99 discounts a reward 1000 steps away by 4e-5). Cost: with gamma < 1 a short trajectory's
  reward arrives sooner, a bias towards its win rate (documented, not corrected).
- ``"terminal"``: the last step gets ``scale * W``, the others 0: the paper's trajectory reward literally.
- ``"discounted"``: equal rewards whose *discounted* sum from the trajectory's first step is ``scale * W``
  (step t of a T-step trajectory gets ``scale * W / sum_{k<T} gamma^k``), so that the learner's discounted
  objective at the start state is exactly the win rate, without ``"uniform"``'s bias: there a trajectory of 20
  steps with W = 0.5 is worth more at its start (gamma 0.99: 0.5 * 18.2 / 20 = 0.45 of the scale) than one of 200
  steps with W = 0.9 (0.9 * 86.6 / 200 = 0.39), which on envs that end early rewards falling early. Cost: a
  reward late in a long trajectory is large (1 / gamma^t times the uniform one), and so are late values.

``scale`` is the env's time limit by default, so that a full-length trajectory's per-step reward is W in
[0, 1], the reward scale the learners' hyperparameters for MuJoCo are tuned to.

An on-policy learner (PPO) updates on rollouts of fixed length, and a trajectory may not be finished when
its rollout ends. Its steps in that rollout are then credited with its *prefix's* win rate: the trajectory so
far against the opponents' first as many steps (more queries, counted). Credits telescope: a trajectory's
cumulative credit after each evaluation is ``scale * W(prefix)``, each evaluation spreads the increment over
the steps since the previous one, and the total at the end is ``scale * W(trajectory)`` exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rl.preferences.queue import ComparisonQueue
from rl.preferences.raters import Rater
from rl.preferences.segments import Segment, Trajectory

SPREADS = ("uniform", "terminal", "discounted")
NO_OPPONENT_WIN_RATE = 0.5
"""The win rate of a trajectory with no opponent yet (the first of a run): a tie, as against itself."""


def head(trajectory: Trajectory, length: int) -> Segment:
    """The first ``length`` steps of a trajectory as a segment (the whole trajectory if it is shorter)."""
    return trajectory.segment(0, min(int(length), len(trajectory)))


def win_rate(
    rater: Rater,
    candidate: Segment,
    opponents: Sequence[Segment],
    rng: np.random.Generator,
    queue: ComparisonQueue,
) -> float:
    """mean_j of one sampled label P(candidate > opponents[j]) each; every query is counted in ``queue``.

    With no opponent, :data:`NO_OPPONENT_WIN_RATE` and no query.
    """
    if not opponents:
        return NO_OPPONENT_WIN_RATE
    labels = [queue.compare(rater, candidate, opponent, rng, store=False) for opponent in opponents]
    return float(np.mean(labels))


def prefix_win_rate(
    rater: Rater,
    trajectory: Trajectory,
    opponents: Sequence[Trajectory],
    rng: np.random.Generator,
    queue: ComparisonQueue,
) -> float:
    """The win rate of ``trajectory`` (finished or not) against the opponents' first ``len(trajectory)`` steps.

    An opponent shorter than that is compared whole: it ended there.
    """
    length = len(trajectory)
    return win_rate(rater, trajectory.as_segment(), [head(o, length) for o in opponents], rng, queue)


def credit_steps(
    target_credit: float, credited: float, n_steps: int, *, last_is_end: bool, spread: str, gamma: float = 1.0,
    first_step: int = 0,
) -> np.ndarray:
    """The rewards of the ``n_steps`` steps since the trajectory's previous evaluation.

    :param target_credit: ``scale * W`` of the trajectory (or prefix) as evaluated now.
    :param credited: what its earlier steps already received (discounted to the trajectory's start, for
        ``"discounted"``).
    :param last_is_end: the last of these steps ends the trajectory.
    :param spread: ``"uniform"``: the increment ``target - credited`` in equal parts; ``"terminal"``: all of
        the target on the trajectory's last step, nothing before it; ``"discounted"``: equal parts ``r`` with
        ``sum_i gamma^(first_step + i) r = target - credited``.
    :param gamma: the learner's discount (``"discounted"`` only).
    :param first_step: the index of the first of these steps in its trajectory (``"discounted"`` only).
    """
    if spread not in SPREADS:
        raise ValueError(f"unknown spread {spread!r}; pass one of {', '.join(SPREADS)}")
    rewards = np.zeros(int(n_steps))
    if n_steps == 0:
        return rewards
    if spread == "uniform":
        rewards[:] = (target_credit - credited) / n_steps
    elif spread == "discounted":
        weights = gamma ** (first_step + np.arange(int(n_steps), dtype=np.float64))
        rewards[:] = (target_credit - credited) / weights.sum()
    elif last_is_end:
        rewards[-1] = target_credit
    return rewards
