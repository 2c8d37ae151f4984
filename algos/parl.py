"""PARL: policy alignment as bilevel optimisation, for any SB3 algorithm with a stochastic policy.

Chakraborty, Bedi, Koppel, Wang, Huang, Manocha, "PARL: A Unified Framework for Policy Alignment in Reinforcement
Learning from Human Feedback", ICLR 2024 (https://arxiv.org/abs/2308.02585). No official code is public.

Upper level: reward parameters ``nu`` (a Bradley-Terry ensemble, :class:`rl.preferences.BradleyTerryRewardModel`)
fitted to preferences over trajectories of the lower-level policy; lower level: any SB3 algorithm trained on
``r_nu``. Reward learning that ignores how the policy, and so the next comparisons, respond to ``nu`` (PEBBLE,
Christiano et al.) follows only the direct term ``d_nu G``; A-PARL follows the hypergradient

    dG/dnu = d_nu G + (d theta*/d nu)^T d_theta G,   d theta*/d nu = -[Hessian_theta V]^-1 d^2_{theta,nu} V.

:class:`ParlRewardCallback` is the reward-model loop of :class:`rl.preferences.PreferenceRewardCallback` (same
rater, query schedule, segments and budget as the ``rm_`` baseline) with the implicit term added: after each
round's queries, it estimates ``M^T A^-1 d_theta G`` from the current policy's recent trajectories and the
round's labelled pairs (:func:`algos.parl_estimators.implicit_term`), then fits the reward model with that term
added to every step's ascent direction. The tabular version of the same problem, solved exactly, is
:mod:`algos.parl_exact`; its hypergradient is checked against finite differences.

Choices where the paper leaves details open (each is a setting):

- Inverse-HVP: conjugate gradient, 10 iterations, damping 0.1 (TRPO's settings for its Fisher solve); or a
  Neumann series (``inverse_method="neumann"``, ``neumann_scale``).
- ``A``: the Hessian of the importance-weighted policy-gradient surrogate on the ``implicit_trajectories`` most
  recent trajectories, reward-to-go with the algorithm's ``gamma`` (see :mod:`algos.parl_estimators`).
- The implicit term is computed once per round, at the reward parameters and policy of the round's start, and
  held fixed while the reward model takes its ``epochs`` of Adam steps (the policy does not move during them,
  as in A-PARL's outer step; the reward does, which A-PARL's single outer step would not).
- Scale: the upper objective is the mean log-likelihood of the round's pairs, the fitting loss each member's mean
  cross-entropy; the implicit term of the ensemble mean is multiplied by the number of members so that each member
  gets it at its own loss's scale, and by ``implicit_weight`` (1: A-PARL; 0: the ``rm_`` baseline exactly).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback

from algos.parl_estimators import implicit_term
from algos.rm import RewardModelOptions
from algos.spo import SPOError, _reward_terms_wrapper, build_rater
from rl.inverse_hvp import SOLVERS
from rl.preferences.raters import Rater
from rl.preferences.recorder import env_term_names
from rl.preferences.reward_learning import PreferenceRewardCallback
from rl.preferences.reward_model import BradleyTerryRewardModel

DETERMINISTIC_POLICIES = ("td3", "ddpg", "dqn")
"""Registered algorithms whose policy has no action distribution (PARL's score-function term needs one)."""


class ParlRewardCallback(PreferenceRewardCallback):
    """Online reward learning with A-PARL's implicit term (see the module docstring).

    :param rater: the preference oracle.
    :param reward_model: ``r_nu``.
    :param implicit_weight: the implicit term's weight (1: A-PARL's hypergradient; 0: plain reward learning).
    :param implicit_trajectories: recent trajectories the Hessian and mixed term are estimated on.
    :param inverse_method: ``"cg"`` or ``"neumann"``.
    :param inverse_iterations: products with the Hessian per round.
    :param damping: added to ``-Hessian``'s diagonal.
    :param neumann_scale: the Neumann series' step.
    :param kwargs: :class:`rl.preferences.PreferenceRewardCallback`'s settings (budget, schedule, segments).
    """

    def __init__(self, rater: Rater, reward_model: BradleyTerryRewardModel, *, implicit_weight: float = 1.0,
                 implicit_trajectories: int = 10, inverse_method: str = "cg", inverse_iterations: int = 10,
                 damping: float = 0.1, neumann_scale: float = 0.1, **kwargs: Any) -> None:
        super().__init__(rater, reward_model, **kwargs)
        ParlSettings(implicit_weight=implicit_weight, implicit_trajectories=implicit_trajectories,
                     inverse_method=inverse_method, inverse_iterations=inverse_iterations, damping=damping,
                     neumann_scale=neumann_scale)  # checks them
        self.implicit_weight, self.implicit_trajectories = float(implicit_weight), int(implicit_trajectories)
        self.inverse_method, self.inverse_iterations = inverse_method, int(inverse_iterations)
        self.damping, self.neumann_scale = float(damping), float(neumann_scale)

    def _gradient_correction(self, n_new: int) -> list[th.Tensor] | None:
        if self.implicit_weight == 0 or n_new < 1:
            return None
        trajectories = self.queue.recent_trajectories()[-self.implicit_trajectories:]
        pairs, labels = self.queue.pairs()[-n_new:], self.queue.labels()[-n_new:]
        term = implicit_term(
            self.model, self.reward_model, trajectories, pairs, labels, gamma=float(self.model.gamma),
            method=self.inverse_method, iterations=self.inverse_iterations, damping=self.damping,
            scale=self.neumann_scale,
        )
        self.logger.record("parl/implicit_norm", term.norm)
        self.logger.record("parl/score_norm", term.score_norm)
        self.logger.record("parl/solution_norm", term.solution_norm)
        self.logger.record("parl/surrogate_steps", term.steps)
        weight = self.implicit_weight * self.reward_model.n_members
        return [-weight * gradient for gradient in term.gradients]  # the loss's gradient: minus an ascent direction


@dataclass
class ParlSettings:
    """The implicit term's settings (``parl_`` hyperparameters; see :class:`ParlRewardCallback`)."""

    implicit_weight: float = 1.0
    implicit_trajectories: int = 10
    inverse_method: str = "cg"
    inverse_iterations: int = 10
    damping: float = 0.1
    neumann_scale: float = 0.1

    def __post_init__(self) -> None:
        if not self.implicit_weight >= 0:
            raise SPOError(f"parl implicit_weight must be >= 0 (1: A-PARL), got {self.implicit_weight!r}")
        for name in ("implicit_trajectories", "inverse_iterations"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise SPOError(f"parl {name} must be an integer >= 1, got {value!r}")
        if self.inverse_method not in SOLVERS:
            raise SPOError(f"parl inverse_method must be one of {', '.join(SOLVERS)}, got {self.inverse_method!r}")
        if not self.damping >= 0 or not self.neumann_scale > 0:
            raise SPOError(f"parl damping must be >= 0 and neumann_scale > 0, got {self.damping!r} and "
                           f"{self.neumann_scale!r}")


@dataclass
class ParlOptions:
    """A PARL run: the reward-learning loop's options (as the ``rm_`` baseline's) and the implicit term's."""

    reward: RewardModelOptions
    parl: ParlSettings

    @classmethod
    def pop_from(cls, hyperparams: dict[str, Any]) -> ParlOptions:
        """``parl_total_comparisons``, ``parl_rater``, ... (the ``rm_`` names) and the :class:`ParlSettings`."""
        reward_names = {f.name for f in fields(RewardModelOptions)}
        settings_names = {f.name for f in fields(ParlSettings)}
        prefixed = {key[5:]: key for key in list(hyperparams) if key.startswith("parl_")}
        reward = {f"rm_{name}": hyperparams.pop(key) for name, key in prefixed.items() if name in reward_names}
        settings = {name: hyperparams.pop(key) for name, key in prefixed.items() if name in settings_names}
        try:
            reward_options = RewardModelOptions.pop_from(reward)
        except SPOError as error:
            raise SPOError(str(error).replace("rm_", "parl_")) from None
        return cls(reward=reward_options, parl=ParlSettings(**settings))


def configure(config: Any, options: ParlOptions | None = None, *, progress: bool = True) -> Any:
    """Turn a runner RunConfig into a PARL run of ``config.algo`` (the ``parl`` method of rl.registry)."""
    options = options or ParlOptions.pop_from(config.hyperparams)
    if config.algo in DETERMINISTIC_POLICIES:
        raise SPOError(f"PARL needs log pi(a|s) and {config.algo} has a deterministic policy: use ppo, a2c or sac")
    if config.label is None:
        config.label = f"parl_{config.algo}"
    if options.reward.rater.strip().lower() == "intransitive":
        config.env_wrapper = _reward_terms_wrapper
    seed, env_id = config.seed, config.env
    record: dict[str, Any] = {**asdict(options.reward), **asdict(options.parl)}

    def callbacks(model: BaseAlgorithm) -> list[BaseCallback]:
        assert model.env is not None
        terms = env_term_names(model.env)
        reward = options.reward
        rater = build_rater(reward.rater, terms, **reward.rater_options().rater_kwargs())
        reward_model = BradleyTerryRewardModel(model.observation_space, model.action_space, seed=seed)
        callback = ParlRewardCallback(
            rater, reward_model, **asdict(options.parl), total_comparisons=reward.total_comparisons,
            query_interval=reward.query_interval, segment_length=reward.segment_length, epochs=reward.epochs,
            reward_terms=terms, env_id=env_id, seed=seed,
        )
        callback.record = record
        return [callback]

    config.model_callbacks = callbacks
    config.extra_record = {"parl": record}
    return config


def build_parser() -> argparse.ArgumentParser:
    from rl.cli import build_parser as runner_parser

    parser = runner_parser("parl")
    parser.prog = "python -m algos.parl"
    parser.description = (
        "PARL: train --algo on a reward learned online from a rater's preferences, the reward's updates corrected "
        "by the bilevel (implicit) term; the env's true return is still logged and evaluated."
    )
    parser.add_argument("--algo", default="ppo", help="the RL algorithm with a stochastic policy: ppo, a2c, sac")
    parser.add_argument("--rater", default="bt", help="bt, noisy or intransitive (default bt)")
    parser.add_argument("--temperature", type=float, default=0.0, help="bt: Bradley-Terry temperature")
    parser.add_argument("--flip-probability", type=float, default=0.1, help="noisy: label flip probability")
    parser.add_argument("--total-comparisons", type=int, default=1000, help="the query budget")
    parser.add_argument("--query-interval", type=int, default=10_000, help="env steps between query rounds")
    parser.add_argument("--segment-length", type=int, default=50, help="steps per compared segment")
    parser.add_argument("--epochs", type=int, default=10, help="reward-model epochs per round")
    parser.add_argument("--implicit-weight", type=float, default=1.0, help="1: A-PARL; 0: no bilevel correction")
    parser.add_argument("--implicit-trajectories", type=int, default=10,
                        help="recent trajectories the Hessian is estimated on")
    parser.add_argument("--inverse-method", choices=SOLVERS, default="cg")
    parser.add_argument("--inverse-iterations", type=int, default=10)
    parser.add_argument("--damping", type=float, default=0.1)
    parser.add_argument("--neumann-scale", type=float, default=0.1)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m algos.parl --algo ppo --env Hopper-v4 --rater bt --total-comparisons 1000 -n 1000000``."""
    import shlex

    from rl.cli import config_from_args, run_and_report
    from rl.preferences.errors import SegmentError, UnknownRaterError
    from rl.preferences.reward_terms import NoRewardTermsError
    from rl.runner import train

    args = build_parser().parse_args(argv)

    def start() -> object:
        options = ParlOptions(
            reward=RewardModelOptions(
                total_comparisons=args.total_comparisons, rater=args.rater, temperature=args.temperature,
                flip_probability=args.flip_probability, query_interval=args.query_interval,
                segment_length=args.segment_length, epochs=args.epochs,
            ),
            parl=ParlSettings(
                implicit_weight=args.implicit_weight, implicit_trajectories=args.implicit_trajectories,
                inverse_method=args.inverse_method, inverse_iterations=args.inverse_iterations,
                damping=args.damping, neumann_scale=args.neumann_scale,
            ),
        )
        config = configure(config_from_args(args, args.algo), options)
        config.command = shlex.join(["python", "-m", "algos.parl", *(sys.argv[1:] if argv is None else argv)])
        return train(config)

    return run_and_report(start, (SPOError, UnknownRaterError, NoRewardTermsError, SegmentError))


if __name__ == "__main__":
    # Run the importable module, not this ``__main__`` copy (pickled state must name algos.parl's classes).
    from algos.parl import main as module_main

    sys.exit(module_main())
