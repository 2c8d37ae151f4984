"""A hyperparameter value that does not parse is refused where the key takes no text (``-params
learning_rate:abc``), with one line naming the key, the value and what the key takes; text stays where it is
meaningful (SAC's ``ent_coef: auto``, policy names, str-typed constructor arguments)."""

from __future__ import annotations

import glob
import os
import typing

import pytest
from stable_baselines3 import SAC

from rl.cli import main
from rl.hyperparams import (
    HYPERPARAMS_DIR,
    HyperparameterError,
    load_yaml,
    parse_overrides,
    parse_value,
    resolve_hyperparams,
    takes_string,
    validate_keys,
)
from rl.registry import ALGORITHMS


@pytest.mark.parametrize(
    ("algo", "item", "text"),
    [
        ("sac", "learning_rate:abc", "Hyperparameter 'learning_rate' got 'abc', which is not a number/Python value"),
        ("sac", "train_freq:often", "train_freq takes int | tuple[int, str]"),
        ("sac", "policy_kwargs:dict(net_arch=[64]", "policy_kwargs takes dict[str, Any] | None"),
        ("sac", "n_timesteps:1e6x", "the runner's n_timesteps"),
        ("iql", "expectile:'0.7'", "iql's expectile takes float (default 0.7)"),
        ("iql", "reward_bias:{[1]: 2}", "'reward_bias' got '{[1]: 2}'"),
    ],
)
def test_text_where_a_key_takes_none_is_refused(algo, item, text):
    params = parse_overrides([item])
    with pytest.raises(HyperparameterError) as error:
        validate_keys(params, ALGORITHMS[algo].load_class(), algo)
    assert text in str(error.value) and "\n" not in str(error.value)


def test_a_schedule_key_mentions_lin():
    with pytest.raises(HyperparameterError, match="lin_<x> for a linear schedule"):
        resolve_hyperparams("sac", SAC, "Pendulum-v1", overrides=parse_overrides(["learning_rate:abc"]))


def test_lin_without_a_number_is_a_hyperparameter_error():
    with pytest.raises(HyperparameterError, match="'learning_rate' got 'lin_abc': lin_<x> .* needs a number"):
        parse_overrides(["learning_rate:lin_abc"])


@pytest.mark.parametrize(
    ("algo", "item"),
    [
        ("sac", "ent_coef:auto_0.1"),  # default "auto": a str
        ("sac", "target_entropy:auto"),
        ("sac", "device:cpu"),  # th.device | str
        ("sac", "tensorboard_log:runs"),  # str | None
        ("sac", "policy:MlpPolicy"),  # runner key that takes a name
        ("sac", "vec_env_class:subproc"),
        ("iql", "actor_lr_schedule:constant"),  # a string annotation (from __future__ import annotations)
        ("iql", "dataset:hopper-medium-v2"),  # OfflineDataset | str | None
    ],
)
def test_text_is_kept_where_it_is_meaningful(algo, item):
    params = parse_overrides([item])
    validate_keys(params, ALGORITHMS[algo].load_class(), algo)
    assert isinstance(next(iter(params.values())), str)


def test_takes_string_reads_runtime_and_string_annotations():
    class Algo:
        def __init__(self, a=1.0, b=1, c=None, d="x", e=None, f=0.5, g=1, h=1, i=None, j=None) -> None:
            pass

    Algo.__init__.__annotations__ = {  # as `from __future__ import annotations` leaves them, and as runtime types
        "a": "float | str", "b": "int | tuple[int, str]", "c": "Optional[str]", "g": "Union[int, float]",
        "h": int | str, "i": float | None, "j": typing.Literal["x", "y"],
    }
    expected = dict(a=True, b=False, c=True, d=True, e=True, f=False, g=False, h=True, i=False, j=True)
    assert {key: takes_string(Algo, key) for key in expected} == expected


def test_every_repo_yaml_entry_still_loads():
    for path in sorted(glob.glob(os.path.join(HYPERPARAMS_DIR, "*.yml"))):
        algo = os.path.basename(path)[: -len(".yml")]
        algo_class = ALGORITHMS[algo].load_class()
        for env_id in load_yaml(path):
            resolve_hyperparams(algo, algo_class, env_id)


def test_cli_refuses_unparsable_values_in_one_line(tmp_path, capsys):
    for value in ("learning_rate:abc", "learning_rate:lin_abc"):
        assert main("mdpo", ["--env", "Pendulum-v1", "-f", str(tmp_path), "--no-progress", "-params", value]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: Hyperparameter 'learning_rate' got") and err.count("\n") == 1
    assert not (tmp_path / "mdpo").exists()


def test_replay_buffer_classes_are_read_by_their_rl_zoo3_names():
    from stable_baselines3 import HerReplayBuffer
    from stable_baselines3.common.buffers import DictReplayBuffer

    overrides = parse_overrides(["replay_buffer_class:HerReplayBuffer", "replay_buffer_kwargs:dict(n_sampled_goal=2)"])
    assert overrides == {"replay_buffer_class": HerReplayBuffer, "replay_buffer_kwargs": {"n_sampled_goal": 2}}
    assert parse_value("DictReplayBuffer") is DictReplayBuffer
