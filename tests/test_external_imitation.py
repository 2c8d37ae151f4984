"""The imitation PreferenceComparisons baseline (imitation 1.0.1 in its own venv), mostly without that venv.

- ``imitation_venv``: exact pins with torch first and alone, the location override, the completion marker;
- ``imitation_run.py``'s pure functions (importable here: numpy only at module level): imitation's named config
  per task, the env-step budget plan and the cap on agent training, the one-line input errors, the command line
  and the script's imports;
- label agreement: the child's fragment conversion and gatherer give exactly the project's rater labels on the
  same segments (real HalfCheetah-v4 and Hopper-v4 rollouts; bt, noisy, intransitive), here and, when the venv
  is present, inside imitation's venv through ``imitation_run.py label``;
- ``run_imitation_preference_baseline``: bad input refused in one line before any venv is touched, the subprocess
  handling with fake python executables (result, resume, one-line failures, timeout);
- when the venv at the configured location is complete (``python -m rl.external.imitation_venv``): the v4 envs
  step identically in both venvs, and one tiny real run on Hopper-v4 end to end (otherwise skipped, saying why).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
from external_helpers import check_script_imports, check_venv_location, count_child_runs, fake_child, make_venv_dir
from external_helpers import fake_venv as marked_fake_venv

from rl.external import imitation_baseline, imitation_run, imitation_venv
from rl.external.errors import ExternalBaselineError
from rl.external.imitation_baseline import (
    RUN_SCRIPT,
    imitation_command,
    read_result,
    run_imitation_preference_baseline,
    run_inputs,
)
from rl.preferences import make_rater, raters, segments
from rl.preferences.segments import collect_trajectories

VENV_PRESENT = imitation_venv.is_complete(imitation_venv.venv_path())
NEEDS_VENV = pytest.mark.skipif(
    not VENV_PRESENT,
    reason=f"no complete imitation venv at {imitation_venv.venv_path()} (set {imitation_venv.VENV_ENV_VAR} or run "
           "`python -m rl.external.imitation_venv`)",
)

try:
    from rl.preferences.reward_terms import RewardTermsInInfo, reward_term_names
except ImportError:  # the module is new; the wrapper cases are skipped without it
    RewardTermsInInfo = reward_term_names = None


# -------------------------------------------------------------------------------------------------- the venv


def test_requirements_are_exact_pins_with_torch_first():
    requirements = imitation_venv.REQUIREMENTS
    assert requirements[0] == "torch==2.13.0" == imitation_venv.TORCH_REQUIREMENT
    assert all("==" in r and not any(c in r for c in "<>~") for r in requirements)
    names = {r.split("==")[0].split("[")[0] for r in requirements}
    assert {"imitation", "stable-baselines3", "gymnasium", "mujoco", "pybullet-envs-gymnasium"} <= names
    assert "imitation==1.0.1" in requirements and "stable-baselines3==2.2.1" in requirements
    assert "gymnasium[mujoco]==0.29.1" in requirements
    commands = imitation_venv.install_commands("py")
    assert commands[0][-1] == "torch==2.13.0" and commands[1][-len(requirements):] == list(requirements)
    check = imitation_venv.check_command("py")[2]
    assert "PreferenceComparisons" in check and all(env in check for env in imitation_venv.CHECK_ENVS)
    assert set(imitation_venv.CHECK_ENVS) <= set(imitation_venv.SUPPORTED_ENVS)


def test_location_follows_the_env_var(monkeypatch, tmp_path):
    check_venv_location(imitation_venv, monkeypatch, tmp_path, "imitation-1.0.1")


def complete_marker() -> dict:
    return {"requirements": list(imitation_venv.REQUIREMENTS), "versions": {"imitation": "1.0.1"}}


def test_marker_decides_completeness_and_an_unmarked_venv_is_completed(tmp_path):
    make_venv_dir(tmp_path / "old", {"requirements": ["imitation==1.0.0"]})
    assert not imitation_venv.is_complete(tmp_path / "old")
    path = tmp_path / "venv"
    make_venv_dir(path, None)
    assert not imitation_venv.is_complete(path)
    calls = []

    def fake_run(command, *, echo, what, path):
        calls.append(list(command))
        return 'chatter\n{"imitation": "1.0.1"}\n' if "-c" in command else ""

    assert imitation_venv.ensure_venv(path, run=fake_run, python_runs=lambda python: True) == (
        imitation_venv.venv_python(path))
    assert "venv" not in calls[0] and calls[0][-1] == "torch==2.13.0" and calls[2][1] == "-c"
    assert imitation_venv.is_complete(path) and imitation_venv.read_marker(path)["versions"] == {"imitation": "1.0.1"}


# ------------------------------------------------------------------------------------- the script's pure parts


def test_named_config_per_task():
    assert imitation_run.named_config_for("Hopper-v4") == "seals_hopper"
    assert imitation_run.named_config_for("HalfCheetah-v4") == "seals_half_cheetah"
    assert imitation_run.named_config_for("Walker2d-v4") == "seals_walker"
    assert imitation_run.named_config_for("HalfCheetahBulletEnv-v0") is None  # imitation has none: its defaults
    assert imitation_run.named_config_for("Reacher-v4") is None


def test_budget_plan_and_cap():
    plan = imitation_run.plan_budget(1_000_000, 5000, num_iterations=5, fragment_length=100,
                                     initial_comparison_frac=0.1, transition_oversampling=1, rollout=2048)
    assert (plan["initial_pairs"], plan["initial_transitions"]) == (500, 100_000)
    assert plan["imitation_total_timesteps"] == 900_000 * 5 // 6 and plan["training_calls"] == 6
    assert plan["env_step_cap"] == 1_000_000
    agent = imitation_run.plan_budget(1_000_000, 5000, num_iterations=5, fragment_length=100,
                                      initial_comparison_frac=0.1, transition_oversampling=1, rollout=2048,
                                      budget="agent")
    assert agent["imitation_total_timesteps"] == 1_000_000 and agent["env_step_cap"] is None
    cap = imitation_run.capped_steps
    assert cap(1000, 256, 0, None) == 1000  # no cap: imitation's request, SB3 rounds it up itself
    assert cap(1000, 256, 0, 5000) == 1024  # whole rollouts, as SB3 would run them
    assert cap(1000, 256, 4000, 5000) == 768  # ... cut to what still fits
    assert cap(1000, 256, 4900, 5000) == 0
    with pytest.raises(ValueError, match="total_timesteps >= 2048"):
        imitation_run.plan_budget(1000, 10, num_iterations=5, fragment_length=100, initial_comparison_frac=0.1,
                                  transition_oversampling=1, rollout=1848)
    with pytest.raises(ValueError, match="total_comparisons >= 10"):
        imitation_run.plan_budget(10_000, 9, num_iterations=5, fragment_length=10, initial_comparison_frac=0.1,
                                  transition_oversampling=1, rollout=64)


def test_overrides_map_onto_imitations_config():
    updates, multiplier = imitation_run.config_updates(
        {"fragment_length": 50, "rl_batch_size": 512, "rl_kwargs": {"n_epochs": 1}, "num_vec": 4,
         "initial_epoch_multiplier": 4})
    assert updates == {"fragment_length": 50, "rl": {"batch_size": 512, "rl_kwargs": {"n_epochs": 1}},
                       "environment": {"num_vec": 4}}
    assert multiplier == 4.0
    with pytest.raises(ValueError, match="Unknown imitation settings"):
        imitation_run.check_overrides({"fragment_lenght": 50})


def test_command_line_round_trips_the_inputs(tmp_path):
    inputs = run_inputs("Hopper-v4", "Noisy", 5000, 50, 3, rater_kwargs={"flip_probability": 0.2},
                        reward_terms=("reward_forward", "reward_ctrl"), reward_terms_wrapper=True, eval_episodes=4,
                        overrides={"fragment_length": 25})
    command = imitation_command("py", tmp_path / "r.json", inputs)
    assert command[:3] == ["py", str(RUN_SCRIPT), "run"]
    args = imitation_run.parse_args(command[2:])
    assert imitation_run.run_inputs(args) == inputs and inputs["rater"] == "noisy"
    assert args.project_root == str(imitation_baseline.PROJECT_ROOT) and args.out == str(tmp_path / "r.json")


def test_run_script_imports_only_what_the_imitation_venv_has():
    check_script_imports(RUN_SCRIPT, {"numpy", "torch", "gymnasium", "imitation", "sacred", "stable_baselines3",
                                      "mujoco", "pybullet_envs_gymnasium"})  # rl.preferences only by load_project


# ----------------------------------------------------------------------------------------- label agreement


def rollout(env: gym.Env, seed: int, steps: int) -> SimpleNamespace:
    """Random actions from a seeded generator; the per-step infos as imitation's buffer keeps them, with the
    child's float64 reward in ``info['frontier_reward']``."""
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    observations, actions, rewards, infos = [obs], [], [], []
    for _ in range(steps):
        action = rng.uniform(env.action_space.low, env.action_space.high).astype(np.float32)
        obs, reward, terminated, truncated, info = env.step(action)
        observations.append(obs)
        actions.append(action)
        rewards.append(float(reward))
        infos.append({**info, imitation_run.REWARD_INFO_KEY: float(reward)})
        if terminated or truncated:
            break
    return SimpleNamespace(obs=np.asarray(observations), acts=np.asarray(actions), rews=np.asarray(rewards),
                           infos=infos)


def make_env(env_id: str, wrapped: bool) -> gym.Env:
    env = gym.make(env_id)
    return RewardTermsInInfo(env) if wrapped else env


def fragments_and_segments(env_id: str, wrapped: bool, reward_terms, length: int = 20, count: int = 24):
    """The same windows of one rollout as imitation fragments and as the project's collected segments."""
    data = rollout(make_env(env_id, wrapped), seed=5, steps=300)
    actions = iter(data.acts)
    trajectory = collect_trajectories(make_env(env_id, wrapped), lambda _obs: next(actions), 1, seed=5,
                                      max_steps=len(data.acts), reward_terms=reward_terms)[0]
    assert len(trajectory) == len(data.acts) and np.allclose(trajectory.rewards.sum(axis=-1) if
                                                             trajectory.rewards.ndim == 2 else trajectory.rewards,
                                                             data.rews)
    starts = np.random.default_rng(0).integers(0, len(data.acts) - length, size=count)
    fragments = [SimpleNamespace(obs=data.obs[s:s + length + 1], acts=data.acts[s:s + length],
                                 rews=data.rews[s:s + length].astype(np.float32), infos=data.infos[s:s + length])
                 for s in starts]
    return fragments, [trajectory.segment(int(s), length) for s in starts]


AGREEMENT_CASES = [
    ("HalfCheetah-v4", False, "auto", "bt", {}),
    ("HalfCheetah-v4", False, "auto", "bt", {"temperature": 0.0}),
    ("HalfCheetah-v4", False, "auto", "noisy", {"flip_probability": 0.3}),
    ("Hopper-v4", False, "auto", "noisy", {"base": "bt", "temperature": 2.0, "flip_probability": 0.2}),
    ("HalfCheetah-v4", False, "auto", "intransitive", {}),  # v4's two terms: ties (0.5) where they disagree
    ("HalfCheetah-v4", False, "auto", "intransitive",
     {"terms_weights": [{"reward_run": 1.0}, {"reward_ctrl": 1.0}, {"reward_run": 0.1, "reward_ctrl": 3.0}]}),
    ("Hopper-v4", True, "wrapper", "intransitive", {}),  # three terms from the project's RewardTermsInInfo
]


def labelled(case):
    env_id, wrapped, terms, name, kwargs = case
    if wrapped and RewardTermsInInfo is None:
        pytest.skip("rl.preferences.reward_terms is not in this checkout")
    if terms == "wrapper":  # what the child does with reward_terms_wrapper and reward_terms="auto"
        terms = list(reward_term_names(gym.make(env_id)))
    fragments, segs = fragments_and_segments(env_id, wrapped, terms)
    pairs = list(zip(range(0, len(segs), 2), range(1, len(segs), 2))) + [(3, 0), (5, 5)]
    project_rater = make_rater(name, **kwargs)
    rng = np.random.default_rng(11)
    expected = [project_rater.prefer(segs[i], segs[j], rng) for i, j in pairs]
    return fragments, segs, pairs, terms, expected


@pytest.mark.parametrize("case", AGREEMENT_CASES, ids=lambda c: f"{c[0]}-{c[3]}-{len(c[4])}")
def test_child_labels_are_the_project_raters_labels(case):
    fragments, segs, pairs, terms, expected = labelled(case)
    _, _, _, name, kwargs = case
    converter = imitation_run.FragmentConverter(segments, terms, "auto")
    converted = [converter(f) for f in fragments]
    for segment, mine in zip(segs, converted):  # the same data, bit for bit
        np.testing.assert_array_equal(mine.rewards, segment.rewards)
        assert mine.reward_names == segment.reward_names
        assert sorted(mine.infos) == sorted(segment.infos)
    child_rater = imitation_run.make_baseline_rater(raters, name, kwargs)
    labels = imitation_run.label_pairs(child_rater, imitation_run.FragmentConverter(segments, terms, "auto"),
                                       [(fragments[i], fragments[j]) for i, j in pairs], np.random.default_rng(11))
    assert labels.dtype == np.float32
    np.testing.assert_array_equal(labels, np.asarray(expected, dtype=np.float32))
    if name != "intransitive" or kwargs:
        assert len(set(expected)) > 1  # the case discriminates


# ------------------------------------------------------------------------------------------ bad input


BAD_INPUTS = [
    (dict(rater="btt"), ["Unknown rater 'btt'", "Did you mean bt", "Fix:"]),
    (dict(rater="human"), ["not supported by the imitation baseline", "Fix: pass one of bt, noisy, intransitive"]),
    (dict(rater="bt", rater_kwargs={"temperature": -1}), ["temperature must be"]),
    (dict(rater="bt", rater_kwargs={"temprature": 1}), ["make_rater('bt')", "it takes"]),
    (dict(rater="noisy", rater_kwargs={"base": object()}), ["must be JSON", "Fix:"]),
    (dict(env_id="Hopper-v5"), ["Unknown env 'Hopper-v5'", "Did you mean Hopper-v4", "use v4", "Fix:"]),
    (dict(env_id="Foo-v0"), ["Unknown env 'Foo-v0'", "Fix: pass one of"]),
    (dict(total_timesteps=1000), ["leaves 0 env steps", "Fix: pass total_timesteps >= 1001"]),
    (dict(total_comparisons=5), ["no initial comparison", "Fix: pass total_comparisons >= 10"]),
    (dict(overrides={"fragment_lenght": 50}), ["Unknown imitation settings", "Fix:"]),
    (dict(budget="some"), ["Unknown budget 'some'", "Fix:"]),
    (dict(reward_terms=3), ["reward_terms must be"]),
]


@pytest.mark.parametrize("changes,expected", BAD_INPUTS, ids=[str(i) for i in range(len(BAD_INPUTS))])
def test_bad_input_is_one_line_naming_the_fix_before_any_venv(tmp_path, changes, expected):
    arguments = dict(env_id="Hopper-v4", rater="bt", total_timesteps=5000, total_comparisons=50, seed=0,
                     out_dir=tmp_path / "out", venv=tmp_path / "no-venv")
    arguments.update(changes)
    with pytest.raises(ExternalBaselineError) as error:
        run_imitation_preference_baseline(**arguments)
    message = str(error.value)
    assert "\n" not in message
    for part in expected:
        assert part in message, (part, message)
    assert not (tmp_path / "no-venv").exists() and not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------ the subprocess, faked


def fake_venv(tmp_path: Path, body: str) -> Path:
    """A venv whose marker says complete and whose python is a script of this venv running ``body``."""
    return marked_fake_venv(tmp_path, body, complete_marker())


WRITE_RESULT = fake_child(
    "{'algorithm': m.ALGORITHM, 'inputs': m.run_inputs(args), 'final': {'true_return_mean': 1.5}}", "imitation chatter"
)


def test_result_is_returned_and_a_finished_one_is_not_redone(tmp_path, monkeypatch):
    calls = count_child_runs(monkeypatch, tmp_path)
    venv = fake_venv(tmp_path, WRITE_RESULT)
    out_dir = tmp_path / "runs" / "hopper"
    record = run_imitation_preference_baseline("Hopper-v4", "noisy", 5000, 50, 1, out_dir, venv=venv,
                                               rater_kwargs={"flip_probability": 0.1})
    assert record["final"]["true_return_mean"] == 1.5 and record["inputs"]["rater_kwargs"] == {"flip_probability": 0.1}
    assert record["omp"] == "1" and record["pythonpath"] is None and record["cwd"] == str(out_dir)
    assert "imitation chatter" in imitation_baseline.log_path(out_dir).read_text()
    again = run_imitation_preference_baseline("Hopper-v4", "noisy", 5000, 50, 1, out_dir, venv=venv,
                                              rater_kwargs={"flip_probability": 0.1})
    assert again == record and calls.read_text().count("run") == 1  # finished: returned, not redone
    other = run_imitation_preference_baseline("Hopper-v4", "noisy", 5000, 50, 2, out_dir, venv=venv,
                                              rater_kwargs={"flip_probability": 0.1})
    assert other["inputs"]["seed"] == 2 and calls.read_text().count("run") == 2
    assert read_result(imitation_baseline.result_path(out_dir), record["inputs"]) is None  # seed 1's is replaced


def test_failure_is_one_line_with_the_last_stderr_line_and_never_returns_a_stale_result(tmp_path):
    venv = fake_venv(tmp_path, "print('progress')\nprint('Traceback (most recent call last): ...', file=sys.stderr)\n"
                               "print('error: ValueError: fragments exploded', file=sys.stderr)\nsys.exit(1)")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    imitation_baseline.result_path(out_dir).write_text(json.dumps({"algorithm": "PreferenceComparisons",
                                                                    "inputs": {"seed": 99}}))
    with pytest.raises(ExternalBaselineError) as error:
        run_imitation_preference_baseline("Hopper-v4", "bt", 5000, 50, 0, out_dir, venv=venv)
    message = str(error.value)
    assert "\n" not in message and "error: ValueError: fragments exploded" in message and "exit status 1" in message
    assert "Traceback" not in message and str(imitation_baseline.log_path(out_dir)) in message
    assert not imitation_baseline.result_path(out_dir).exists()


def test_no_result_or_a_timeout_raises(tmp_path):
    with pytest.raises(ExternalBaselineError, match="left no readable result"):
        run_imitation_preference_baseline("Hopper-v4", "bt", 5000, 50, 0, tmp_path / "a",
                                          venv=fake_venv(tmp_path, "sys.exit(0)"))
    slow = tmp_path / "slow"
    slow.mkdir()
    venv = fake_venv(slow, "import time\nprint('warming up', file=sys.stderr, flush=True)\ntime.sleep(30)")
    with pytest.raises(ExternalBaselineError, match="timed out after 1 s.*warming up"):
        run_imitation_preference_baseline("Hopper-v4", "bt", 5000, 50, 0, tmp_path / "b", venv=venv, timeout=1)


# ------------------------------------------------------------------------------------------ inside the venv


def venv_python() -> Path:
    return imitation_venv.venv_python(imitation_venv.venv_path())


@NEEDS_VENV
def test_v4_envs_step_identically_in_both_venvs():
    code = (
        "import gymnasium as gym, json, numpy as np\n"
        "out = {}\n"
        "for e in ('Hopper-v4', 'HalfCheetah-v4'):\n"
        "    env = gym.make(e); obs, _ = env.reset(seed=3); rng = np.random.default_rng(0); rewards = []\n"
        "    for _ in range(60):\n"
        "        obs, r, term, trunc, _ = env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))\n"
        "        rewards.append(float(r))\n"
        "        if term or trunc: break\n"
        "    out[e] = [rewards, obs.tolist(), gym.__version__]\n"
        "print(json.dumps(out))\n"
    )
    theirs = json.loads(subprocess.run([str(venv_python()), "-W", "ignore", "-c", code], capture_output=True,
                                       text=True, check=True, env=imitation_baseline.child_env()).stdout)
    ours: dict = {}
    exec(code.replace("print(json.dumps(out))", "result = out"), {}, ours)
    for env_id in ("Hopper-v4", "HalfCheetah-v4"):
        assert theirs[env_id][2] == "0.29.1" and ours["result"][env_id][2] != "0.29.1"
        assert theirs[env_id][:2] == ours["result"][env_id][:2]  # same rewards and observations, bit for bit


@NEEDS_VENV
def test_labels_agree_inside_the_imitation_venv(tmp_path):
    cases = [c for c in AGREEMENT_CASES if not c[1] or RewardTermsInInfo is not None]
    for index, case in enumerate(cases):
        fragments, _, pairs, terms, expected = labelled(case)
        data = {"fragments": [{"obs": f.obs.tolist(), "acts": f.acts.tolist(), "rews": f.rews.tolist(),
                               "infos": [{k: float(v) for k, v in info.items()} for info in f.infos]}
                              for f in fragments], "pairs": pairs}
        path = tmp_path / f"fragments{index}.json"
        path.write_text(json.dumps(data))
        out = tmp_path / f"labels{index}.json"
        _, _, _, name, kwargs = case
        subprocess.run([str(venv_python()), str(RUN_SCRIPT), "label", "--project-root",
                        str(imitation_baseline.PROJECT_ROOT), "--rater", name, "--rater-kwargs", json.dumps(kwargs),
                        "--reward-terms", json.dumps(terms), "--seed", "11", "--fragments", str(path), "--out",
                        str(out)], check=True, capture_output=True, env=imitation_baseline.child_env())
        result = json.loads(out.read_text())
        assert result["labels"] == [float(x) for x in expected], case
        assert result["versions"]["gymnasium"] == "0.29.1"


@NEEDS_VENV
def test_tiny_real_run_on_hopper(tmp_path):
    overrides = {"fragment_length": 10, "num_iterations": 2, "rl_batch_size": 256,
                 "rl_kwargs": {"n_epochs": 1, "batch_size": 64}, "initial_epoch_multiplier": 2}
    arguments = dict(env_id="Hopper-v4", rater="noisy", total_timesteps=1500, total_comparisons=10, seed=0,
                     out_dir=tmp_path, rater_kwargs={"flip_probability": 0.1}, eval_episodes=2, curve_episodes=1,
                     overrides=overrides, timeout=240)
    record = run_imitation_preference_baseline(**arguments)
    assert (record["algorithm"], record["library"], record["version"]) == ("PreferenceComparisons", "imitation",
                                                                          "1.0.1")
    assert record["versions"]["stable-baselines3"] == "2.2.1" and record["versions"]["gymnasium"] == "0.29.1"
    assert record["comparisons_used"] == 10 == sum(record["comparisons_per_iteration"])
    assert record["rater"]["class"] == "NoisyRater" and record["rater"]["reward_names"] == []
    assert 0 < record["agent_timesteps"] <= record["env_steps"] <= 1500 and record["over_budget_env_steps"] == 0
    assert record["agent_timesteps"] % 256 == 0 and record["steps_per_s"] > 0
    settings = record["settings"]
    assert settings["named_config"] == "seals_hopper" and settings["num_vec"] == 8 and settings["n_steps"] == 32
    assert settings["rl_kwargs"]["gamma"] == 0.995 and settings["rl_kwargs"]["n_epochs"] == 1  # seals_hopper + ours
    assert settings["reward_trainer"]["epochs"] == 3 and settings["allow_variable_horizon"] is True
    curve = record["curve"]
    assert [p["iteration"] for p in curve] == [-1, 0, 1, 2]  # before training, then imitation's 3 rounds
    assert curve[0]["env_steps"] == 0 and curve[-1]["comparisons"] == 10
    assert all(np.isfinite(p["true_return_mean"]) for p in curve)
    assert len(record["final"]["episode_returns"]) == 2 and np.isfinite(record["final"]["true_return_mean"])
    log = imitation_baseline.log_path(tmp_path)
    stamp = log.stat().st_mtime_ns
    assert run_imitation_preference_baseline(**arguments) == record and log.stat().st_mtime_ns == stamp  # resumed
    assert json.loads(imitation_baseline.progress_path(tmp_path).read_text())["curve"] == curve
