"""Bad input gets an error that names the problem and the fix."""

import zipfile

import pytest

from rl.checkpoint import CheckpointError, check_model_file
from rl.cli import main
from rl.envs import UnknownEnvError, ensure_registered
from rl.hyperparams import HyperparameterError, parse_overrides, resolve_hyperparams
from rl.registry import UnknownAlgorithmError, UnsupportedActionSpaceError, check_action_space, get_algo


def test_unknown_env_lists_close_matches():
    with pytest.raises(UnknownEnvError, match="HalfCheetah-v") as error:
        ensure_registered("HalfCheetah-v9")
    assert "Closest registered ids" in str(error.value)


def test_unknown_pybullet_env_suggests_bullet_ids():
    with pytest.raises(UnknownEnvError, match="HalfCheetahBulletEnv-v0"):
        ensure_registered("HalfCheetahBullet-v0")


def test_pybullet_and_panda_ids_register_on_demand():
    assert ensure_registered("HopperBulletEnv-v0") == "HopperBulletEnv-v0"
    assert ensure_registered("PandaPush-v3") == "PandaPush-v3"


def test_unknown_hyperparameter_lists_valid_keys():
    from algos.mdpo import MDPO

    with pytest.raises(HyperparameterError, match="Did you mean learning_rate") as error:
        resolve_hyperparams("mdpo", MDPO, "Pendulum-v1", overrides={"learning_rat": 0.1})
    assert "sgd_steps" in str(error.value)  # the valid keys are listed


def test_malformed_override():
    with pytest.raises(HyperparameterError, match="key:value"):
        parse_overrides(["learning_rate=0.1"])


def test_override_values_are_parsed_like_rl_zoo():
    parsed = parse_overrides(["learning_rate:0.001", "policy_kwargs:dict(net_arch=[32, 32])", "normalize:True"])
    assert parsed == {"learning_rate": 0.001, "policy_kwargs": {"net_arch": [32, 32]}, "normalize": True}
    schedule = parse_overrides(["learning_rate:lin_0.001"])["learning_rate"]
    assert schedule(1.0) == pytest.approx(0.001) and schedule(0.5) == pytest.approx(0.0005)


def test_unknown_algorithm():
    with pytest.raises(UnknownAlgorithmError, match="mdpo"):
        get_algo("mdp")


def test_off_policy_mdpo_refuses_discrete_actions():
    import gymnasium as gym

    with pytest.raises(UnsupportedActionSpaceError, match="Discrete") as error:
        check_action_space(get_algo("mdpo_off"), gym.spaces.Discrete(2), "CartPole-v1")
    assert "mdpo" in str(error.value) and "ppo" in str(error.value)  # names algorithms that fit


def test_cli_reports_user_errors_in_one_line(tmp_path, capsys):
    assert main("mdpo", ["--env", "HalfCheetah-v9", "-f", str(tmp_path), "--no-progress"]) == 2
    assert "Unknown environment id 'HalfCheetah-v9'" in capsys.readouterr().err
    assert main("mdpo_off", ["--env", "CartPole-v1", "-f", str(tmp_path), "--no-progress"]) == 2
    assert "supports Box action spaces" in capsys.readouterr().err
    assert main("mdpo", ["--env", "Pendulum-v1", "-params", "sgd_step:3", "-f", str(tmp_path)]) == 2
    assert "Did you mean sgd_steps" in capsys.readouterr().err


def test_missing_model_file(tmp_path, capsys):
    missing = tmp_path / "nope.zip"
    with pytest.raises(CheckpointError, match="does not exist"):
        check_model_file(missing)
    assert main("mdpo", ["--env", "Pendulum-v1", "-i", str(missing), "-f", str(tmp_path)]) == 2
    assert str(missing) in capsys.readouterr().err


def test_corrupt_model_file(tmp_path):
    corrupt = tmp_path / "corrupt.zip"
    corrupt.write_bytes(b"this is not a zip archive")
    with pytest.raises(CheckpointError, match="corrupt"):
        check_model_file(corrupt)
    not_sb3 = tmp_path / "other.zip"
    with zipfile.ZipFile(not_sb3, "w") as archive:
        archive.writestr("hello.txt", "hi")
    with pytest.raises(CheckpointError, match="not an SB3 model"):
        check_model_file(not_sb3)


def test_run_folder_without_checkpoint(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    assert main("mdpo", ["--env", "Pendulum-v1", "-i", str(tmp_path / "run"), "-f", str(tmp_path)]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_malformed_conf_file(tmp_path, capsys):
    conf = tmp_path / "bad.yml"
    conf.write_text("learning_rate: [0.1\n")
    assert main("mdpo", ["--env", "Pendulum-v1", "-conf", str(conf), "-f", str(tmp_path)]) == 2
    assert "not valid YAML" in capsys.readouterr().err
