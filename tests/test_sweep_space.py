"""Sweep search spaces in YAML and the sweep's output files: no Ray needed (the sweep itself: test_ray.py)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

from rl.hyperparams import conf_file_hyperparams, parse_value, validate_keys
from rl.registry import get_algo
from rl.sweep import TrialRow, _find_eval_callback, main, raw_overrides, write_best, write_trial_table
from rl.sweep_space import DISTRIBUTIONS, SearchSpaceError, load_search_space, to_hyperparams

SWEEPS = Path(__file__).resolve().parents[1] / "sweeps"


@pytest.mark.parametrize("algo", ["mdpo", "ppo"])
def test_the_shipped_spaces_name_only_keys_the_algorithm_takes(algo):
    space = load_search_space(str(SWEEPS / f"{algo}.yml"))
    algo_class = get_algo(algo).load_class()
    for name, dimension in space.dimensions.items():
        for value in dimension.values:  # every choice and both ends of every range
            validate_keys(to_hyperparams({name: value}), algo_class, algo)
    assert space.dimensions["learning_rate"].distribution == "loguniform"
    assert isinstance(to_hyperparams(space.example())["policy_kwargs"], dict)


def _space(tmp_path, text):
    path = tmp_path / "space.yml"
    path.write_text(text)
    return str(path)


def test_a_space_reads_zoo_distributions_fixed_values_and_python_text(tmp_path):
    space = load_search_space(_space(tmp_path, (
        "learning_rate: {loguniform: [1e-5, 1e-3]}\n"  # PyYAML reads 1e-5 as text: converted
        "gamma: {uniform: [0.9, 0.999]}\n"
        "n_epochs: {int: [1, 20]}\n"
        "n_steps: {logint: [64, 2048]}\n"
        "net: {categorical: [[64, 64], {pi: [8]}, 'dict(a=1)', 3]}\n"
        "normalize: true\n")))
    assert space.dimensions["learning_rate"].values == (1e-5, 1e-3)
    assert space.dimensions["n_epochs"].values == (1, 20) and space.fixed == {"normalize": True}
    assert space.dimensions["net"].values == ("[64, 64]", "{'pi': [8]}", "dict(a=1)", 3)  # Optuna stores text
    assert [to_hyperparams({"net": v})["net"] for v in space.dimensions["net"].values] == [
        [64, 64], {"pi": [8]}, {"a": 1}, 3]


def test_a_space_builds_tunes_distributions_with_both_ends_included(tmp_path):
    pytest.importorskip("ray", reason='Tune search spaces need Ray: pip install -e ".[ray]"')
    tune_space = load_search_space(_space(tmp_path, "a: {int: [1, 3]}\nb: {loguniform: [1e-4, 1e-2]}\n")).to_tune()
    assert (tune_space["a"].lower, tune_space["a"].upper) == (1, 4)  # Tune's upper bound is exclusive
    assert (tune_space["b"].lower, tune_space["b"].upper) == (1e-4, 1e-2)


@pytest.mark.parametrize("text, message", [
    ("lr: {lognormal: [0, 1]}", "unknown distribution 'lognormal'; use one of " + ", ".join(DISTRIBUTIONS)),
    ("lr: {uniform: [1]}", "uniform takes [low, high]"),
    ("lr: {loguniform: [0, 1]}", "loguniform needs low > 0"),
    ("lr: {uniform: [2, 1]}", "needs finite low < high"),
    ("n: {int: [1.5, 3]}", "is not an integer"),
    ("lr: {uniform: [a, 1]}", "bound 'a' is not a number"),
    ("lr: {uniform: [0, 1], int: [0, 1]}", "give exactly one distribution"),
    ("lr: 0.001", "nothing to search"),
])
def test_a_malformed_space_is_refused_with_the_fix(tmp_path, text, message):
    with pytest.raises(SearchSpaceError, match=message.replace("[", r"\[").replace("(", r"\(")):
        load_search_space(_space(tmp_path, text + "\n"))


def test_the_sweep_command_refuses_a_bad_space_in_one_line(tmp_path, capsys):
    argv = ["--algo", "ppo", "--env", "CartPole-v1", "--trials", "2", "--space"]
    assert main([*argv, _space(tmp_path, "learning_rate: {lognormal: [0, 1]}\n")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "unknown distribution 'lognormal'" in error
    assert main([*argv, _space(tmp_path, "learning_rat: {uniform: [0.1, 0.2]}\n")]) == 2
    assert "Unknown hyperparameter 'learning_rat' for ppo. Did you mean learning_rate?" in capsys.readouterr().err
    space = _space(tmp_path, "learning_rate: {uniform: [0.1, 0.2]}\n")
    assert main([*argv, space, "-params", "learning_rate:0.1"]) == 2
    assert "both searched" in capsys.readouterr().err


def test_params_keep_their_text_as_the_yaml_files_do():
    values = raw_overrides(["learning_rate:0.001", "policy_kwargs:dict(net_arch=[8])", "normalize:True"])
    assert values == {"learning_rate": 0.001, "policy_kwargs": "dict(net_arch=[8])", "normalize": True}
    assert to_hyperparams(values)["policy_kwargs"] == parse_value("dict(net_arch=[8])")


def test_the_best_trial_becomes_an_algos_hyperparams_entry_and_every_trial_a_table_row(tmp_path):
    rows = [TrialRow("t1", {"learning_rate": 3e-4, "policy_kwargs": "dict(net_arch=[64])"}, 120.5, 1000, 11,
                     "finished"),
            TrialRow("t2", {"learning_rate": 1e-2, "policy_kwargs": "dict(net_arch=[8])"}, 20.0, 300, 3,
                     "stopped early"),
            TrialRow("t3", {"learning_rate": 1e-1, "policy_kwargs": "dict(net_arch=[8])"}, None, None, None,
                     "error: ValueError: boom")]
    csv_path, md_path = write_trial_table(rows, tmp_path, "Sweep")
    with open(csv_path) as handle:
        table = list(csv.DictReader(handle))
    assert [r["stopped_early"] for r in table] == ["no", "yes", "error"] and table[1]["reports"] == "3"
    assert "| t2 | 0.01 | dict(net_arch=[8]) | 20 | 300 | 3 | yes | stopped early |" in md_path.read_text()
    path = write_best(rows[0], {"normalize": True}, "Hopper-v4", tmp_path / "best.yml", "Best of 3\nsecond line")
    assert path.read_text().startswith("# Best of 3\n# second line\nHopper-v4:\n")
    assert yaml.safe_load(path.read_text())["Hopper-v4"]["learning_rate"] == 3e-4
    assert conf_file_hyperparams(str(path), "Hopper-v4") == {  # what -conf best.yml trains with
        "learning_rate": 3e-4, "normalize": True, "policy_kwargs": {"net_arch": [64]}}


def test_the_report_callback_finds_the_runners_evaluation_among_nested_callbacks():
    from stable_baselines3.common.callbacks import CallbackList, EvalCallback
    from stable_baselines3.common.env_util import make_vec_env

    evaluation = EvalCallback(make_vec_env("CartPole-v1", n_envs=1), eval_freq=10)
    assert _find_eval_callback(CallbackList([CallbackList([]), CallbackList([evaluation])])) is evaluation
    assert _find_eval_callback(CallbackList([])) is None
