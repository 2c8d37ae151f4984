"""Minimax SPO: Self-Play Preference Optimization (Swamy, Dann, Kidambi, Wu, Agarwal, ICML 2024).

"A Minimaximalist Approach to Reinforcement Learning from Human Feedback". The Minimax Winner of a
preference function P is the solution of the symmetric zero-sum game max_pi min_pi' P(pi > pi'); by the
symmetry, one policy playing against itself converges to it. In practice: sample trajectories from the
current policy, ask the rater to compare each with other trajectories of the policy, and give each the
proportion of its wins as its reward; any RL algorithm maximises that. No reward model: intransitive,
stochastic and non-Markovian preferences are handled as they are. No official code was found.

What this module adds to any SB3 algorithm (PPO, A2C, SAC, TD3, MDPO, ...)::

    model = PPO("MlpPolicy", make_vec_env("Hopper-v4", wrapper_class=RewardTermsInInfo))
    SPO(model, rater="intransitive").learn(1_000_000)

- :class:`SelfPlayRewardCallback` follows the run as trajectories (:mod:`rl.preferences.recorder`: raw
  observations, env actions, true rewards or their terms) and replaces the reward the learner stores by 0
  (SB3's Monitor inside each env still logs the true return). When a trajectory finishes, its win rate
  against the ``n_opponents`` most recent finished trajectories (a FIFO queue, the paper's practical
  variant; one rater query each) becomes its reward, spread over its steps as :mod:`rl.preferences.win_rate`
  explains, and is written into the algorithm's buffer: the on-policy rollout buffer at the end of each
  rollout (then GAE is recomputed), or the off-policy replay buffer where the steps were stored. Then the
  trajectory joins the opponents.

Choices where the paper is silent (each is a constructor argument):

- opponents: the 10 most recent finished trajectories (the queue variant; "the same batch" would give an
  on-policy rollout of 2048 Hopper steps only 2-40 opponents, unevenly);
- the first trajectory of a run, with no opponent yet, gets the tie value 0.5 and costs no query;
- an on-policy rollout that ends inside a trajectory credits its steps with the prefix's win rate (see
  :mod:`rl.preferences.win_rate`);
- off-policy: a step's reward is 0 in the replay buffer until its trajectory finishes (at most one episode,
  e.g. 1000 steps per env); updates in between sample it with reward 0. SB3 offers no hook to hold
  transitions back, and holding them back would change the algorithm's data flow;
- rewards the learner sees are SPO's alone and are not normalised: VecNormalize's reward statistics see
  the env's rewards but the rewards it would normalise are replaced; PPO standardises advantages anyway.

Comparisons used (``comparisons_used``) count every rater query; benchmarks report true return against it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.type_aliases import MaybeCallback
from stable_baselines3.common.vec_env import VecEnv

from rl.preferences.queue import ComparisonQueue
from rl.preferences.raters import Rater, make_rater
from rl.preferences.recorder import RecordingCallback, env_term_names
from rl.preferences.win_rate import SPREADS, credit_steps, prefix_win_rate

DEFAULT_N_OPPONENTS = 10
CURVE_EVERY = 5000
DEFAULT_HORIZON = 1000
"""The reward scale when the env has no time limit to read (MuJoCo's and PyBullet's time limit)."""


class SPOError(ValueError):
    """A bad SPO setting or an algorithm SPO cannot write rewards for."""


def _horizon(venv: VecEnv) -> int:
    try:
        spec = venv.get_attr("spec", [0])[0]
    except AttributeError:
        spec = None
    steps = getattr(spec, "max_episode_steps", None)
    return int(steps) if steps else DEFAULT_HORIZON


class SelfPlayRewardCallback(RecordingCallback):
    """Gives the learner SPO's win-rate rewards instead of the env's (see the module docstring).

    Pass it to ``model.learn(callback=...)`` (or use :class:`SPO`, which does).
    """

    def __init__(
        self,
        rater: Rater,
        *,
        n_opponents: int = DEFAULT_N_OPPONENTS,
        spread: str = "uniform",
        reward_scale: float | None = None,
        reward_terms: Sequence[str] | None = None,
        info_keys: Sequence[str] = (),
        env_id: str | None = None,
        seed: int | None = 0,
        verbose: int = 0,
    ) -> None:
        super().__init__(reward_terms=reward_terms, info_keys=info_keys, env_id=env_id, verbose=verbose)
        if int(n_opponents) != n_opponents or n_opponents < 1:
            raise SPOError(f"n_opponents must be a positive integer, got {n_opponents!r}")
        if spread not in SPREADS:
            raise SPOError(f"unknown spread {spread!r}; pass one of {', '.join(SPREADS)}")
        if reward_scale is not None and not (np.isfinite(reward_scale) and reward_scale > 0):
            raise SPOError(
                f"reward_scale must be a positive number or None (the env's time limit), got {reward_scale!r}"
            )
        self.rater = rater
        self.n_opponents = int(n_opponents)
        self.spread = spread
        self.reward_scale = reward_scale
        self.rng = np.random.default_rng(seed)
        self.queue = ComparisonQueue(recent_capacity=self.n_opponents)
        self.win_rates: list[float] = []
        """Each finished trajectory's win rate, in finishing order (logged, and read by tests)."""
        self.comparison_curve: list[tuple[int, int]] = []
        """(env steps, comparisons used) at the first rollout end past each multiple of ``CURVE_EVERY`` steps."""
        self.record: dict[str, Any] = {}
        """Filled at the end of training: comparisons used and their curve (the runner's run.json gets it)."""
        self._positions: list[list[tuple[int, int]]] = []
        self._credited: list[float] = []
        self._pending: list[tuple[int, list[tuple[int, int]], np.ndarray]] = []
        self._stores = 0

    @property
    def comparisons_used(self) -> int:
        """Rater queries so far."""
        return self.queue.comparisons_used

    def _init_callback(self) -> None:
        if not self._positions:
            n_envs = self.model.env.num_envs  # type: ignore[union-attr]
            self._positions, self._credited = [[] for _ in range(n_envs)], [0.0] * n_envs
        super()._init_callback()
        if self.reward_scale is None:
            self.reward_scale = float(_horizon(self.model.env))  # type: ignore[arg-type]

    def _on_training_start(self) -> None:
        super()._on_training_start()
        assert self.recorder is not None
        for index in range(len(self._positions)):  # an episode the env restarted has no steps to credit
            if self.recorder.steps_in_progress(index) == 0:
                self._positions[index], self._credited[index] = [], 0.0

    # ----- every step ------------------------------------------------------------------------------------

    def _on_step(self) -> bool:
        super()._on_step()
        assert self.recorder is not None
        self.replace_rewards(np.zeros(len(self._positions)))  # the learner never sees the env's reward
        position = self.buffer_position()
        for positions in self._positions:
            positions.append((position, self._stores))
        self._stores += 1
        for index, trajectory in self.recorder.pop_finished():
            opponents = self.queue.recent_trajectories()
            rate = prefix_win_rate(self.rater, trajectory, opponents, self.rng, self.queue)
            self.win_rates.append(rate)
            self._credit(index, rate, last_is_end=True, trajectory_length=len(trajectory))
            self.queue.push_trajectory(trajectory)
        return True

    def _credit(self, index: int, rate: float, *, last_is_end: bool, trajectory_length: int) -> None:
        assert self.reward_scale is not None
        positions = self._positions[index]
        target = self.reward_scale * rate
        rewards = credit_steps(
            target, self._credited[index], len(positions), last_is_end=last_is_end, spread=self.spread,
            gamma=float(getattr(self.model, "gamma", 1.0)), first_step=trajectory_length - len(positions),
        )
        self._pending.append((index, positions, rewards))
        self._positions[index] = []
        self._credited[index] = 0.0 if last_is_end else target

    # ----- at the end of each rollout: write the rewards -------------------------------------------------

    def _on_rollout_end(self) -> None:
        assert self.recorder is not None
        on_policy = isinstance(self.model, OnPolicyAlgorithm)
        if on_policy:  # the rollout's steps leave with this update: credit unfinished trajectories now
            for index, positions in enumerate(self._positions):
                if not positions:
                    continue
                if self.spread == "terminal":
                    self._positions[index] = []
                    continue
                so_far = self.recorder.in_progress(index)
                assert so_far is not None
                rate = prefix_win_rate(self.rater, so_far, self.queue.recent_trajectories(), self.rng, self.queue)
                self._credit(index, rate, last_is_end=False, trajectory_length=len(so_far))
        self._write_pending(on_policy)
        if on_policy:
            self.model.rollout_buffer.compute_returns_and_advantage(
                last_values=self.locals["values"], dones=self.locals["dones"]
            )
        last = self.comparison_curve[-1][0] if self.comparison_curve else -1
        if last < 0 or self.num_timesteps // CURVE_EVERY > last // CURVE_EVERY:
            self.comparison_curve.append((int(self.num_timesteps), self.comparisons_used))
        if self.win_rates:
            self.logger.record("spo/win_rate_recent", float(np.mean(self.win_rates[-self.n_opponents :])))
        self.logger.record("spo/comparisons_used", self.comparisons_used)

    def _write_pending(self, on_policy: bool) -> None:
        buffer: Any = self.model.rollout_buffer if on_policy else self.model.replay_buffer  # type: ignore[attr-defined]
        capacity = buffer.buffer_size
        for index, positions, rewards in self._pending:
            for (position, store), reward in zip(positions, rewards):
                if on_policy or self._stores - store <= capacity:  # not yet overwritten in a circular buffer
                    buffer.rewards[position, index] += reward
        self._pending = []

    def _on_training_end(self) -> None:
        super()._on_training_end()
        self.comparison_curve.append((int(self.num_timesteps), self.comparisons_used))
        self.record.update(
            comparisons_used=self.comparisons_used, trajectories_rated=len(self.win_rates),
            comparison_curve=[list(point) for point in self.comparison_curve],
        )

    # ----- resume ----------------------------------------------------------------------------------------

    def get_resume_state(self) -> dict[str, Any]:
        """Opponents, credits, the generator and the episodes in progress (taken at a rollout start)."""
        return {
            **super().get_resume_state(),
            "rng": self.rng.bit_generator.state,
            "recent": self.queue.recent_trajectories(),
            "comparisons_used": self.queue.comparisons_used,
            "win_rates": list(self.win_rates),
            "positions": [list(p) for p in self._positions],
            "credited": list(self._credited),
            "pending": list(self._pending),
            "stores": self._stores,
            "comparison_curve": list(self.comparison_curve),
            "reward_scale": self.reward_scale,
        }

    def _apply_resume_state(self, state: dict[str, Any]) -> None:
        super()._apply_resume_state(state)
        self.rng.bit_generator.state = state["rng"]
        self.queue = ComparisonQueue(recent_capacity=self.n_opponents)
        for trajectory in state["recent"]:
            self.queue.push_trajectory(trajectory)
        self.queue.comparisons_used = int(state["comparisons_used"])
        self.win_rates = list(state["win_rates"])
        self._positions = [list(p) for p in state["positions"]]
        self._credited = list(state["credited"])
        self._pending = list(state["pending"])
        self._stores = int(state["stores"])
        self.comparison_curve = [tuple(point) for point in state["comparison_curve"]]
        self.reward_scale = state["reward_scale"]


def build_rater(name: str | Rater, term_names: Sequence[str] | None = None, **kwargs: Any) -> Rater:
    """A rater by name. ``intransitive`` without ``terms_weights`` is one voter per reward term (each voter
    prefers the segment with the larger return of its own term), which needs at least three terms for cycles:
    refused up front otherwise, not at the first comparison mid-run."""
    if not isinstance(name, str):
        return name
    if name.strip().lower() == "intransitive" and "terms_weights" not in kwargs and len(term_names or ()) < 3:
        raise SPOError(
            f"the intransitive rater needs at least 3 reward terms (one voter each), got {list(term_names or [])}; "
            "wrap the env in rl.preferences.RewardTermsInInfo (make_vec_env(..., wrapper_class=RewardTermsInInfo)) "
            "or pass terms_weights"
        )
    return make_rater(name, **kwargs)


class SPO:
    """SPO around an SB3 model: ``SPO(model, rater="noisy").learn(n)``.

    :param model: any SB3 on- or off-policy algorithm with its env.
    :param rater: a rater or a name of :func:`rl.preferences.make_rater` (``bt``, ``noisy``,
        ``intransitive``, ``nonmarkovian``, ...), built with ``rater_kwargs``.
    :param n_opponents: how many recent trajectories each finished one is compared with.
    :param spread: ``uniform``, ``terminal`` or ``discounted`` (see :mod:`rl.preferences.win_rate`).
    :param reward_scale: a trajectory's total reward is ``reward_scale * win rate`` (None: the time limit).
    :param seed: seeds the rater's label draws.
    """

    def __init__(
        self,
        model: BaseAlgorithm,
        rater: str | Rater = "bt",
        *,
        n_opponents: int = DEFAULT_N_OPPONENTS,
        spread: str = "uniform",
        reward_scale: float | None = None,
        seed: int | None = 0,
        rater_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if model.env is None:
            raise SPOError("the model has no env; pass one to the algorithm (or set_env) before SPO")
        self.model = model
        terms = env_term_names(model.env)
        self.rater = build_rater(rater, terms, **(rater_kwargs or {}))
        self.callback = SelfPlayRewardCallback(
            self.rater, n_opponents=n_opponents, spread=spread, reward_scale=reward_scale, reward_terms=terms,
            seed=seed,
        )

    @property
    def comparisons_used(self) -> int:
        return self.callback.comparisons_used

    def learn(self, total_timesteps: int, callback: MaybeCallback = None, **kwargs: Any) -> BaseAlgorithm:
        """``model.learn`` with SPO's callback first (then ``callback``); returns the model."""
        callbacks: list[BaseCallback] = [self.callback]
        if isinstance(callback, list):
            callbacks.extend(callback)
        elif isinstance(callback, BaseCallback):
            callbacks.append(callback)
        elif callback is not None:
            from stable_baselines3.common.callbacks import ConvertCallback

            callbacks.append(ConvertCallback(callback))
        return self.model.learn(total_timesteps, callback=CallbackList(callbacks), **kwargs)


@dataclass
class SPOOptions:
    """SPO's settings for one run (the CLI flags; the benchmark harness passes them as hyperparameters)."""

    rater: str = "bt"
    """A rater name (``bt``, ``noisy``, ``intransitive``, ``nonmarkovian``; see rl.preferences.make_rater)."""
    temperature: float = 0.0
    """``bt``: the Bradley-Terry temperature on segment returns (0: the larger return always wins)."""
    flip_probability: float = 0.1
    """``noisy``: the probability that a label is flipped (B-Pref's 0.1)."""
    n_opponents: int = DEFAULT_N_OPPONENTS
    spread: str = "uniform"
    reward_scale: float | None = None
    region_first: tuple[str, float, float] | None = None
    """``nonmarkovian``: region A as (info key, low, high), e.g. ("x_position", 2.0, inf); hyperparameter
    ``spo_region_first`` or flag ``--region-first x_position:2:inf``."""
    region_second: tuple[str, float, float] | None = None
    """``nonmarkovian``: region B; a trajectory that reaches A before B (or A and never B) is preferred, ties
    (both or neither) go to the larger true return (Bradley-Terry at temperature 0)."""

    def __post_init__(self) -> None:
        """Refuse settings no run can use, naming the flag."""
        if not isinstance(self.n_opponents, int) or self.n_opponents < 1:
            raise SPOError(f"--n-opponents must be an integer >= 1, got {self.n_opponents!r}")
        if self.spread not in SPREADS:
            raise SPOError(f"--spread must be one of {', '.join(SPREADS)}, got {self.spread!r}")
        if not (isinstance(self.temperature, (int, float)) and np.isfinite(self.temperature) and self.temperature >= 0):
            raise SPOError(f"--temperature must be a number >= 0, got {self.temperature!r}")
        if not (isinstance(self.flip_probability, (int, float)) and 0 <= self.flip_probability <= 1):
            raise SPOError(f"--flip-probability must be in [0, 1], got {self.flip_probability!r}")
        if self.reward_scale is not None and not (np.isfinite(self.reward_scale) and self.reward_scale > 0):
            raise SPOError(f"--reward-scale must be a positive number, got {self.reward_scale!r}")
        from rl.preferences.raters import RATERS

        if self.rater.strip().lower() not in RATERS:
            make_rater(self.rater)  # raises UnknownRaterError with the close names
        self.rater = self.rater.strip().lower()
        if self.rater in ("file", "human"):
            raise SPOError(
                f"--rater {self.rater} needs a person in the loop; from the command line use bt, noisy, intransitive "
                "or nonmarkovian, and in a script pass a HumanRater or LabelFileRater to SPO(model, rater=...)"
            )
        if self.rater == "nonmarkovian":
            if self.region_first is None or self.region_second is None:
                raise SPOError(
                    "--rater nonmarkovian needs --region-first KEY:LOW:HIGH and --region-second KEY:LOW:HIGH, e.g. "
                    "--region-first x_position:2:inf --region-second x_position:-inf:-1"
                )
            for flag, region in (("--region-first", self.region_first), ("--region-second", self.region_second)):
                key, low, high = region
                if not isinstance(key, str) or not float(low) <= float(high):
                    raise SPOError(f"{flag} must be KEY:LOW:HIGH with LOW <= HIGH, got {list(region)}")
        if self.rater != "intransitive":  # built now, so that a bad setting fails before any run folder exists
            try:
                make_rater(self.rater, **self.rater_kwargs())
            except (TypeError, ValueError) as error:
                raise SPOError(f"--rater {self.rater}: {error}") from None

    def info_keys(self) -> tuple[str, ...]:
        """The info keys the rater reads (the non-Markovian regions' keys), recorded with each step."""
        regions = (self.region_first, self.region_second) if self.rater == "nonmarkovian" else ()
        return tuple(dict.fromkeys(str(region[0]) for region in regions if region is not None))

    @classmethod
    def pop_from(cls, hyperparams: dict[str, Any]) -> SPOOptions:
        """Take SPO's keys (prefixed ``spo_``) out of a run's hyperparameters."""
        names = {f.name for f in fields(cls)}
        options = {
            key[4:]: hyperparams.pop(key) for key in list(hyperparams) if key.startswith("spo_") and key[4:] in names
        }
        return cls(**options)

    def rater_kwargs(self) -> dict[str, Any]:
        name = self.rater.strip().lower()
        if name == "bt":
            return {"temperature": float(self.temperature)}
        if name == "noisy":
            return {"flip_probability": float(self.flip_probability)}
        if name == "nonmarkovian" and self.region_first is not None and self.region_second is not None:
            first, second = self.region_first, self.region_second
            return {
                "region_first": (str(first[0]), float(first[1]), float(first[2])),
                "region_second": (str(second[0]), float(second[1]), float(second[2])),
                "tie_breaker": make_rater("bt", temperature=0.0),
            }
        return {}


def configure(config: Any, options: SPOOptions | None = None, *, progress: bool = True) -> Any:
    """Turn a runner RunConfig into an SPO run of ``config.algo`` (the ``spo`` method of rl.registry)."""
    options = options or SPOOptions.pop_from(config.hyperparams)
    if config.label is None:
        config.label = f"spo_{config.algo}"
    if options.rater.strip().lower() == "intransitive":
        config.env_wrapper = _reward_terms_wrapper
    seed = config.seed

    def callbacks(model: BaseAlgorithm) -> list[BaseCallback]:
        assert model.env is not None
        terms = env_term_names(model.env)
        rater = build_rater(options.rater, terms, **options.rater_kwargs())
        callback = SelfPlayRewardCallback(
            rater, n_opponents=options.n_opponents, spread=options.spread, reward_scale=options.reward_scale,
            reward_terms=terms, info_keys=options.info_keys(), env_id=config.env, seed=seed,
        )
        callback.record = record  # filled at the end of training, written to run.json
        return [callback]

    record: dict[str, Any] = asdict(options)
    config.model_callbacks = callbacks
    config.extra_record = {"spo": record}
    return config



def _reward_terms_wrapper(env: gym.Env) -> gym.Env:
    from rl.preferences.reward_terms import RewardTermsInInfo

    return RewardTermsInInfo(env)


def build_parser() -> argparse.ArgumentParser:
    from rl.cli import build_parser as runner_parser

    parser = runner_parser("spo")
    parser.prog = "python -m algos.spo"
    parser.description = (
        "Minimax SPO: train --algo on self-play win rates under a rater's preferences instead of the env's reward "
        "(the env's true return is still logged and evaluated)."
    )
    parser.add_argument("--algo", required=True, help="the RL algorithm: ppo, a2c, sac, td3, mdpo, mdpo_off, ...")
    parser.add_argument("--rater", default="bt", help="bt, noisy, intransitive or nonmarkovian (default bt)")
    parser.add_argument("--temperature", type=float, default=0.0,
                        help="bt: Bradley-Terry temperature (0: deterministic)")
    parser.add_argument("--flip-probability", type=float, default=0.1, help="noisy: label flip probability")
    parser.add_argument("--n-opponents", type=int, default=DEFAULT_N_OPPONENTS,
                        help="recent trajectories each finished one is compared with")
    parser.add_argument("--spread", choices=SPREADS, default="uniform",
                        help="how a win rate becomes step rewards (see rl.preferences.win_rate)")
    parser.add_argument("--region-first", metavar="KEY:LOW:HIGH", default=None,
                        help="nonmarkovian: region A, an info key's range (e.g. x_position:2:inf)")
    parser.add_argument("--region-second", metavar="KEY:LOW:HIGH", default=None,
                        help="nonmarkovian: region B (e.g. x_position:-inf:-1); reaching A before B is preferred")
    parser.add_argument("--reward-scale", type=float, default=None,
                        help="a trajectory's total reward is this times its win rate (default: the time limit)")
    return parser


def _region(text: str | None, flag: str) -> tuple[str, float, float] | None:
    """``"x_position:2:inf"`` -> ("x_position", 2.0, inf)."""
    if text is None:
        return None
    try:
        key, low, high = text.rsplit(":", 2)
        return key, float(low), float(high)
    except ValueError:
        raise SPOError(f"{flag} takes KEY:LOW:HIGH with numbers LOW and HIGH (inf allowed), got {text!r}") from None


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m algos.spo --algo ppo --env Hopper-v4 --rater intransitive -n 1000000``."""
    import shlex

    from rl.cli import config_from_args, run_and_report
    from rl.preferences.errors import SegmentError, UnknownRaterError
    from rl.preferences.reward_terms import NoRewardTermsError
    from rl.runner import train

    args = build_parser().parse_args(argv)

    def start() -> object:
        options = SPOOptions(
            rater=args.rater, temperature=args.temperature, flip_probability=args.flip_probability,
            n_opponents=args.n_opponents, spread=args.spread, reward_scale=args.reward_scale,
            region_first=_region(args.region_first, "--region-first"),
            region_second=_region(args.region_second, "--region-second"),
        )
        config = configure(config_from_args(args, args.algo), options)
        config.command = shlex.join(["python", "-m", "algos.spo", *(sys.argv[1:] if argv is None else argv)])
        return train(config)

    return run_and_report(start, (SPOError, UnknownRaterError, NoRewardTermsError, SegmentError))


if __name__ == "__main__":
    # Run the importable module, not this ``__main__`` copy (pickled state must name algos.spo's classes).
    from algos.spo import main as module_main

    sys.exit(module_main())
