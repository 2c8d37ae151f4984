"""Tests of the SDDP baseline (algos.sddp): bounds, policy vs perfect foresight, save/load, CLI errors."""

import numpy as np
import pytest

from algos.hydro_common import perfect_foresight_costs
from algos.sddp import SDDP, main
from envs.hydro import load_system, toy_case_path


@pytest.fixture(scope="module")
def trained():
    model = SDDP(load_system(toy_case_path()), seed=0, case="toy")
    model.train(8, progress=False)
    return model


def test_lower_bound_is_non_decreasing(trained):
    bounds = [row["lower_bound"] for row in trained.history]
    assert all(b >= a - 1e-6 * abs(a) for a, b in zip(bounds, bounds[1:]))
    assert bounds[-1] > bounds[0]


def test_lower_bound_is_below_the_simulated_policy_cost(trained):
    costs = trained.simulate(40, seed=5)
    noise = 2.0 * costs.std(ddof=1) / np.sqrt(len(costs))
    assert trained.history[-1]["lower_bound"] <= costs.mean() + noise


def test_policy_costs_at_least_perfect_foresight_scenario_by_scenario(trained):
    scenarios = np.arange(trained.system.num_scenarios)
    policy = np.array(trained.evaluate(scenarios)["costs"])
    assert np.all(policy >= perfect_foresight_costs(trained.system, scenarios) - 1e-6)


def test_save_load_round_trip(trained, tmp_path):
    loaded = SDDP.load(trained.save(tmp_path / "cuts.json"))
    assert loaded.evaluate([15, 16])["costs"] == trained.evaluate([15, 16])["costs"]
    assert loaded.lower_bound() == pytest.approx(trained.lower_bound())


def test_cli_refuses_an_unknown_case(capsys, tmp_path):
    assert main(["--case", "toyy", "--iterations", "1", "-f", str(tmp_path), "--no-progress"]) == 2
    assert "did you mean 'toy'" in capsys.readouterr().err
