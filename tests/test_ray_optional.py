"""Ray stays optional, its set-up errors are one line, and run folders travel whole: no Ray cluster needed here.

The Ray runs themselves are tested in ``test_ray.py``; this module covers what must hold without Ray
installed or without a cluster: imports, the one-line errors (exit status 2), the archive that carries a
run folder from a worker to the driver, and the check that a cluster runs the driver's code.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from rl import benchmark
from rl.ray_backend import (
    INSTALL_HINT,
    TornFileError,
    _make_probe,
    compare_code,
    pack_folder,
    unpack_folder,
    write_files,
)

REPO = Path(__file__).resolve().parents[1]


def test_the_ray_modules_import_without_ray():
    code = ("import sys; sys.modules['ray'] = None; sys.modules['optuna'] = None\n"
            "import rl.benchmark, rl.sweep, rl.sweep_space, rl.ray_backend, qd.ray_evaluator\n"
            "print('imported')")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "imported" in done.stdout, done.stderr


def test_using_ray_without_it_is_one_line_naming_the_install(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "ray", None)  # as if it were not installed
    status = benchmark.main(["--name", "x", "--algos", "ppo", "--envs", "CartPole-v1", "-n", "64", "--backend", "ray"])
    error = capsys.readouterr().err.strip()
    assert status == 2 and len(error.splitlines()) == 1 and INSTALL_HINT in error
    assert not (tmp_path / "results").exists()  # refused before anything was written

    from rl.sweep import main

    space = tmp_path / "space.yml"
    space.write_text("learning_rate: {loguniform: [1e-4, 1e-3]}\n")
    assert main(["--algo", "ppo", "--env", "CartPole-v1", "--space", str(space), "--trials", "2"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and INSTALL_HINT in error


def test_an_unreachable_cluster_is_one_line_and_exit_2(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    status = benchmark.main(["--name", "x", "--algos", "ppo", "--envs", "CartPole-v1", "-n", "64", "--backend", "ray",
                             "--address", "127.0.0.1:9"])
    error = capsys.readouterr().err.strip()
    assert status == 2 and len(error.splitlines()) == 1 and error.startswith("error: ")
    try:
        import ray  # noqa: F401
    except ImportError:
        assert INSTALL_HINT in error
    else:
        assert "Cannot reach a Ray cluster at 127.0.0.1:9" in error and "ray start --head" in error


def test_ray_flags_need_the_ray_backend(capsys):
    with pytest.raises(SystemExit) as exit_info:
        benchmark.main(["--name", "x", "--algos", "ppo", "--envs", "CartPole-v1", "-n", "64", "--gpus-per-run", "1"])
    assert exit_info.value.code == 2 and "--gpus-per-run need --backend ray" in capsys.readouterr().err


def test_a_cluster_must_run_the_drivers_code():
    driver = {"host": "head", "version": "0.1.0", "commit": "abc1234"}
    assert compare_code(driver, [dict(driver, host="a"), {"host": "b", "version": "0.1.0", "commit": None}]) is None
    missing = compare_code(driver, [{"host": "b", "error": "ModuleNotFoundError: No module named 'rl'"}])
    assert "Node b cannot import the project" in missing and INSTALL_HINT in missing and "abc1234" in missing
    other = compare_code(driver, [{"host": "c", "version": "0.1.0", "commit": "def5678"}])
    assert "Node c runs frontier-rl 0.1.0 at commit def5678" in other and INSTALL_HINT in other
    # The probe itself, run here: this checkout's version and commit.
    here = _make_probe()()
    assert "error" not in here and here["version"] and (here["commit"] or not (REPO / ".git").exists())


def _run_folder(root: Path, steps: list[int]) -> Path:
    folder = root / "run"
    for step in steps:
        checkpoint = folder / "checkpoints" / f"step_{step:012d}"
        checkpoint.mkdir(parents=True)
        (checkpoint / "model.zip").write_bytes(b"model %d" % step)
        (checkpoint / "state.json").write_text(json.dumps({"num_timesteps": step}))
    (folder / "checkpoints" / ".tmp_step_99_1").mkdir()  # a checkpoint being written
    (folder / ".config.yml.1.tmp").write_text("half")  # an atomic write in progress
    (folder / "CartPole-v1").mkdir()
    (folder / "CartPole-v1" / "args.yml").write_text("algo: ppo\n")
    (folder / "run.json").write_text('{"num_timesteps": 3}')
    np.savez(folder / "evaluations.npz", timesteps=np.arange(3), results=np.ones((3, 1)))
    return folder


def test_a_run_folder_travels_with_its_newest_checkpoint_only(tmp_path):
    data = pack_folder(_run_folder(tmp_path, [1, 2, 3]))
    destination = tmp_path / "driver" / "run"
    old = destination / "checkpoints" / f"step_{0:012d}"
    old.mkdir(parents=True)
    (old / "model.zip").write_bytes(b"old")
    unpack_folder(data, destination)
    files = sorted(str(p.relative_to(destination)) for p in destination.rglob("*") if p.is_file())
    assert files == ["CartPole-v1/args.yml", "checkpoints/step_000000000000/model.zip",
                     "checkpoints/step_000000000003/model.zip", "checkpoints/step_000000000003/state.json",
                     "evaluations.npz", "run.json"]
    assert np.load(destination / "evaluations.npz")["timesteps"].tolist() == [0, 1, 2]
    unpack_folder(pack_folder(_run_folder(tmp_path / "later", [4])), destination)  # the runner keeps two
    assert sorted(p.name for p in (destination / "checkpoints").iterdir()) == ["step_000000000003", "step_000000000004"]
    assert pack_folder(tmp_path / "absent") is None


def test_a_half_written_evaluation_file_is_packed_again_later(tmp_path):
    folder = _run_folder(tmp_path, [1])
    whole = (folder / "evaluations.npz").read_bytes()
    (folder / "evaluations.npz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(TornFileError):
        pack_folder(folder)


def test_the_driver_writes_the_folders_a_task_sent(tmp_path):
    outcome = {"spec": {"work_dir": "logs/x", "result_dir": "results/x"}, "record": {},
               "files": {"results/x": pack_folder(_run_folder(tmp_path / "r", [1])),
                         "logs/x": pack_folder(_run_folder(tmp_path / "w", [1]))}}
    returned = write_files(outcome, tmp_path / "driver")
    assert "files" not in returned
    for folder in ("logs/x", "results/x"):
        assert (tmp_path / "driver" / folder / "run.json").is_file()
    with pytest.raises(tarfile.ReadError):  # not a gzipped tar: nothing is written
        unpack_folder(b"not an archive", tmp_path / "bad")
    assert not any((tmp_path / "bad").glob("[!.]*"))
