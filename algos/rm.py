"""The reward-model baseline of SPO's benchmark as a runner method: ``rm_<algo>`` (e.g. ``rm_ppo``).

An RL algorithm trained on a Bradley-Terry reward model learned online from the same rater's labels
(:class:`rl.preferences.reward_learning.PreferenceRewardCallback`; Christiano et al., 2017; PEBBLE). The
benchmark harness passes its settings as hyperparameters prefixed ``rm_``: the rater's (as SPO's flags:
``rm_rater``, ``rm_temperature``, ``rm_flip_probability``) and the budget (``rm_total_comparisons``, required:
the benchmark gives it the comparisons SPO used in the same run length), ``rm_query_interval``,
``rm_segment_length``, ``rm_epochs``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback

from algos.spo import SPOError, SPOOptions, _reward_terms_wrapper, build_rater
from rl.preferences.recorder import env_term_names
from rl.preferences.reward_learning import PreferenceRewardCallback
from rl.preferences.reward_model import BradleyTerryRewardModel


@dataclass
class RewardModelOptions:
    """The baseline's settings: the rater (as SPO's) and the query budget and schedule."""

    total_comparisons: int
    rater: str = "bt"
    temperature: float = 0.0
    flip_probability: float = 0.1
    query_interval: int = 10_000
    segment_length: int = 50
    epochs: int = 10

    def __post_init__(self) -> None:
        for name in ("total_comparisons", "query_interval", "segment_length", "epochs"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise SPOError(f"rm_{name} must be an integer >= 1, got {value!r}")
        self.rater_options()  # checks the rater settings

    def rater_options(self) -> SPOOptions:
        return SPOOptions(rater=self.rater, temperature=self.temperature, flip_probability=self.flip_probability)

    @classmethod
    def pop_from(cls, hyperparams: dict[str, Any]) -> RewardModelOptions:
        names = {f.name for f in fields(cls)}
        options = {
            key[3:]: hyperparams.pop(key) for key in list(hyperparams) if key.startswith("rm_") and key[3:] in names
        }
        if "total_comparisons" not in options:
            raise SPOError(
                "the reward-model baseline needs a budget: pass rm_total_comparisons:<n> with its hyperparameters"
            )
        return cls(**options)


def configure(config: Any, options: RewardModelOptions | None = None, *, progress: bool = True) -> Any:
    """Turn a runner RunConfig into a reward-model run of ``config.algo``."""
    options = options or RewardModelOptions.pop_from(config.hyperparams)
    if config.label is None:
        config.label = f"rm_{config.algo}"
    if options.rater.strip().lower() == "intransitive":
        config.env_wrapper = _reward_terms_wrapper
    seed, env_id = config.seed, config.env
    record: dict[str, Any] = asdict(options)

    def callbacks(model: BaseAlgorithm) -> list[BaseCallback]:
        assert model.env is not None
        terms = env_term_names(model.env)
        rater = build_rater(options.rater, terms, **options.rater_options().rater_kwargs())
        reward_model = BradleyTerryRewardModel(model.observation_space, model.action_space, seed=seed)
        callback = PreferenceRewardCallback(
            rater, reward_model, total_comparisons=options.total_comparisons, query_interval=options.query_interval,
            segment_length=options.segment_length, epochs=options.epochs, reward_terms=terms, env_id=env_id, seed=seed,
        )
        callback.record = record
        return [callback]

    config.model_callbacks = callbacks
    config.extra_record = {"rm": record}
    return config
