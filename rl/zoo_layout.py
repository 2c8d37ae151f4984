"""Make a finished run folder loadable by rl-baselines3-zoo's ``enjoy.py`` and ``record_video.py``.

rl-zoo3 (2.x) finds a trained agent by its folder layout, ``<log_folder>/<algo>/<env>_<id>/``:

- ``<env>.zip``: the model (the runner writes it);
- ``<env>/`` (zoo's "stats path") with ``config.yml`` (the hyperparameters: a YAML dump of an ``OrderedDict``
  sorted by key, read back with ``yaml.UnsafeLoader`` by ``rl_zoo3.utils.get_saved_hyperparams``, which takes
  ``normalize`` from it to decide whether to load VecNormalize statistics), ``args.yml`` (the training command's
  argparse namespace, also an ``OrderedDict`` dump; ``enjoy.py`` reads its ``env_kwargs``, ``get_trained_models``
  its ``env``) and ``vecnormalize.pkl`` (required when ``normalize`` is set).

``<env>`` is zoo's ``EnvironmentName``: the env id with ``/`` replaced by ``-`` and a ``module:`` prefix dropped.
The runner's own top-level ``config.yml`` and ``run.json`` are the project's record and are not touched.
"""

from __future__ import annotations

import os
import shutil
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from rl.hyperparams import printable

ZOO_CONFIG_FILE = "config.yml"
ZOO_ARGS_FILE = "args.yml"
ZOO_VECNORMALIZE_FILE = "vecnormalize.pkl"
ZOO_COMMAND_FILE = "command.txt"


def zoo_env_name(env_id: str) -> str:
    """The file and folder name rl-zoo3 uses for ``env_id`` (huggingface_sb3's ``EnvironmentName`` rule)."""
    name = env_id.replace("/", "-")
    if ":" in name:
        parts = name.split(":")
        if len(parts) != 2:
            raise ValueError(f"Env id {env_id!r} has more than one ':'; rl-zoo3 cannot name it.")
        name = parts[1]
    return name


def zoo_stats_path(run_dir: str | os.PathLike, env_id: str) -> Path:
    """``<run_dir>/<env>/``: where rl-zoo3 looks for ``config.yml``, ``args.yml`` and ``vecnormalize.pkl``."""
    return Path(run_dir) / zoo_env_name(env_id)


def _dump_ordered(path: Path, values: Mapping[str, Any]) -> None:
    """Write ``values`` sorted by key as rl-zoo3 does (``yaml.dump`` of an ``OrderedDict``), atomically."""
    ordered = OrderedDict((key, values[key]) for key in sorted(values))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as handle:
        yaml.dump(ordered, handle)
    os.replace(tmp, path)


def _copy_atomic(source: Path, target: Path) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.copy2(source, tmp)
    os.replace(tmp, target)


def write_zoo_layout(
    run_dir: str,
    env_id: str,
    hyperparams: dict,
    args: dict,
    vecnormalize_path: str | None,
) -> None:
    """Add rl-zoo3's stats folder to a finished run folder, so that zoo's ``enjoy.py -f <log_folder> --algo <algo>
    --env <env_id> --exp-id <n>`` (and ``record_video.py``) load the agent with its normalisation statistics.

    Args:
        run_dir: the finished run folder; it must hold the final model ``<env>.zip`` (or, for an env id that zoo
            renames, ``<env_id>.zip``, which is then copied to zoo's name).
        env_id: the env the model was trained on (gymnasium id).
        hyperparams: the hyperparameters the run trained with (the run record's ``hyperparams``); written as zoo's
            ``config.yml``. Its ``normalize`` is set to true when ``vecnormalize_path`` is given without it (e.g.
            statistics started from a teacher's), since zoo loads the statistics only when it is set.
        args: the run's settings in zoo's flag names (e.g. the run record's ``config``); written as ``args.yml``
            with ``env`` set to ``env_id`` and ``env_kwargs`` added (None) when missing, the two keys zoo reads.
            Its ``command``, if any, also goes to ``command.txt`` as zoo's training writes it.
        vecnormalize_path: the run's VecNormalize statistics (``<run_dir>/vecnormalize.pkl``), None without them.

    Raises:
        FileNotFoundError: no final model in ``run_dir``, or ``vecnormalize_path`` does not exist.
        ValueError: ``hyperparams`` set ``normalize`` but no statistics are given (zoo would refuse the folder).
    """
    run = Path(run_dir)
    name = zoo_env_name(env_id)
    model = run / f"{name}.zip"
    if not model.is_file():
        own = run / f"{env_id}.zip"
        if not own.is_file():
            raise FileNotFoundError(f"No final model in {run}: expected {model.name} (rl-zoo3's name for {env_id}).")
        _copy_atomic(own, model)

    config = printable(dict(hyperparams))
    if vecnormalize_path is not None:
        if not Path(vecnormalize_path).is_file():
            raise FileNotFoundError(f"VecNormalize statistics {vecnormalize_path!r} do not exist.")
        if not config.get("normalize"):
            config["normalize"] = True
    elif config.get("normalize"):
        raise ValueError(
            f"{run}: the hyperparameters set normalize={config['normalize']!r} but no VecNormalize statistics were "
            "given; rl-zoo3 would refuse to load the agent without them."
        )
    if config.get("replay_buffer_class", "") is None:  # enjoy.py tests `"HerReplayBuffer" in` this value
        del config["replay_buffer_class"]

    recorded_args = printable(dict(args))
    recorded_args["env"] = env_id
    recorded_args.setdefault("env_kwargs", None)

    stats = zoo_stats_path(run, env_id)
    stats.mkdir(exist_ok=True)
    _dump_ordered(stats / ZOO_CONFIG_FILE, config)
    _dump_ordered(stats / ZOO_ARGS_FILE, recorded_args)
    if recorded_args.get("command"):
        (stats / ZOO_COMMAND_FILE).write_text(str(recorded_args["command"]))
    target = stats / ZOO_VECNORMALIZE_FILE
    if vecnormalize_path is not None and Path(vecnormalize_path).resolve() != target.resolve():
        _copy_atomic(Path(vecnormalize_path), target)
