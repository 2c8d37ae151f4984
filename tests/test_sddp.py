"""Tests of the SDDP baseline (algos.sddp): bounds, policy vs perfect foresight, save/load, CLI errors."""

import numpy as np
import pytest

from algos.hydro_common import HydroConfigError, perfect_foresight_costs
from algos.sddp import SDDP, SDDPConfigError, main
from envs.hydro import load_system, system_from_dict, toy_case_path


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
    evaluation = trained.evaluate(scenarios)
    policy = np.array(evaluation["costs"])
    assert np.all(policy >= perfect_foresight_costs(trained.system, scenarios) - 1e-6)
    assert evaluation["violation_share"] is None  # the cut policy sets end volumes, not targets


def test_save_load_round_trip(trained, tmp_path):
    loaded = SDDP.load(trained.save(tmp_path / "cuts.json"))
    assert loaded.evaluate([15, 16])["costs"] == trained.evaluate([15, 16])["costs"]
    assert loaded.lower_bound() == pytest.approx(trained.lower_bound())


def test_cli_refuses_an_unknown_case(capsys, tmp_path):
    assert main(["--case", "toyy", "--iterations", "1", "-f", str(tmp_path), "--no-progress"]) == 2
    assert "did you mean 'toy'" in capsys.readouterr().err


def test_bad_settings_raise_sddps_own_error(trained, tmp_path):
    """SDDP's settings raise SDDPConfigError (a HydroConfigError), never TS-DDR's error, and say what they count."""
    with pytest.raises(SDDPConfigError, match=r"forward_passes: must be an integer >= 1 \(sampled scenarios per SDDP"):
        SDDP(trained.system, forward_passes=0)
    with pytest.raises(SDDPConfigError, match="iterations: must be an integer >= 1"):
        SDDP(trained.system).train(0, progress=False)
    assert issubclass(SDDPConfigError, HydroConfigError)
    three_stages = system_from_dict({
        "num_stages": 3, "network": "single_bus", "deficit_cost": 10.0, "buses": ["B"], "thermals": [],
        "demand": {"B": [1.0, 1.0, 1.0]}, "inflows": {"H": [[1.0, 1.0, 1.0]] * 4},
        "hydros": [{"name": "H", "bus": "B", "min_volume": 0, "max_volume": 10, "initial_volume": 5,
                    "max_turbine": 5, "production_factor": 1}]})
    with pytest.raises(SDDPConfigError, match="SDDP cuts for 12 stages, the system has 3"):
        SDDP.load(trained.save(tmp_path / "cuts.json"), three_stages)


@pytest.mark.parametrize(("argv", "expected"), [
    (["--forward-passes", "0"], "forward_passes: must be an integer >= 1"),
    (["--iterations", "0"], "iterations: must be an integer >= 1"),
], ids=["no forward passes", "no iterations"])
def test_cli_bad_settings_are_one_line_exit_2_and_no_run_folder(argv, expected, capsys, tmp_path):
    assert main([*argv, "-f", str(tmp_path / "logs"), "--no-progress"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0]
    assert not (tmp_path / "logs").exists()
