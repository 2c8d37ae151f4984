"""D4RL-style dataset names, the Gymnasium envs they stand for, and the local Minari ids that hold them.

A D4RL MuJoCo name is ``{env}-{level}-v2``, e.g. ``halfcheetah-medium-replay-v2``. D4RL's own files were
collected on gym's ``-v3`` envs with mujoco-py; frontier-rl regenerates them on Gymnasium's ``-v4`` envs
(the table below), so the names keep D4RL's meaning (which policy collected the data) but the data are the
project's own.

Where the data live: the local Minari store, under the namespace ``frontier``, as
``frontier/{env}/{level}-v{MINARI_VERSION}`` (e.g. ``frontier/halfcheetah/medium-replay-v0``). A namespace
of our own keeps them apart from Minari's published ``mujoco/...`` datasets, which were collected on
Gymnasium ``-v5`` envs by other policies; the Minari version counts the project's regenerations, not D4RL's.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from rl.datasets.errors import UnknownDatasetNameError

D4RL_ENVS: dict[str, str] = {
    "halfcheetah": "HalfCheetah-v4",
    "hopper": "Hopper-v4",
    "walker2d": "Walker2d-v4",
    "ant": "Ant-v4",
}
"""D4RL env key -> the Gymnasium env the project collects that dataset on."""

D4RL_LEVELS: tuple[str, ...] = ("random", "medium", "medium-replay", "medium-expert", "expert")
"""D4RL's levels: random = uniform actions; medium = a policy at about a third of expert return;
medium-replay = the replay buffer of training up to medium; medium-expert = medium and expert concatenated;
expert = a fully trained policy."""

D4RL_VERSION = 2
"""The D4RL dataset version the names follow (the ``-v2`` suffix)."""

MINARI_NAMESPACE = "frontier"
"""Namespace of the project's datasets in the local Minari store."""

MINARI_VERSION = 0
"""Version suffix of the project's Minari ids (``...-v0``); bump it when datasets are regenerated differently."""

_NAME = re.compile(r"^(?P<env>[^-]+)-(?P<level>.+)-v(?P<version>\d+)$")
_MINARI_ID = re.compile(rf"^{MINARI_NAMESPACE}/(?P<env>[^/]+)/(?P<level>[^/]+)-v(?P<version>\d+)$")


@dataclass(frozen=True)
class D4RLName:
    """A parsed D4RL-style dataset name."""

    env: str
    """D4RL env key, e.g. ``"halfcheetah"``."""
    level: str
    """One of :data:`D4RL_LEVELS`."""

    @property
    def env_id(self) -> str:
        """The Gymnasium env id the dataset is collected on, e.g. ``"HalfCheetah-v4"``."""
        return D4RL_ENVS[self.env]

    @property
    def name(self) -> str:
        """The D4RL name, e.g. ``"halfcheetah-medium-v2"``."""
        return f"{self.env}-{self.level}-v{D4RL_VERSION}"

    @property
    def minari_id(self) -> str:
        """The local Minari dataset id that holds it, e.g. ``"frontier/halfcheetah/medium-v0"``."""
        return f"{MINARI_NAMESPACE}/{self.env}/{self.level}-v{MINARI_VERSION}"


def valid_names() -> list[str]:
    """Every D4RL-style name the project knows, e.g. ``hopper-medium-replay-v2``."""
    return [D4RLName(env, level).name for env in D4RL_ENVS for level in D4RL_LEVELS]


def _close(word: str, options: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, list(options), n=3, cutoff=0.5)
    return f" Did you mean {', '.join(close)}?" if close else ""


def parse_d4rl_name(name: str) -> D4RLName:
    """Parse ``{env}-{level}-v2`` into env and level.

    Raises:
        UnknownDatasetNameError: for a malformed name, an unknown env or level, or another version; the
            message lists the valid envs and levels and the closest matches.
    """
    match = _NAME.match(name.strip())
    envs, levels = ", ".join(D4RL_ENVS), ", ".join(D4RL_LEVELS)
    if match is None:
        raise UnknownDatasetNameError(
            f"{name!r} is not a D4RL-style name {{env}}-{{level}}-v{D4RL_VERSION}.{_close(name, valid_names())} "
            f"Envs: {envs}. Levels: {levels}."
        )
    env, level, version = match["env"].lower(), match["level"].lower(), int(match["version"])
    if env not in D4RL_ENVS:
        raise UnknownDatasetNameError(
            f"Unknown D4RL env {match['env']!r} in {name!r}.{_close(env, tuple(D4RL_ENVS))} Envs: {envs}."
        )
    if level not in D4RL_LEVELS:
        raise UnknownDatasetNameError(
            f"Unknown D4RL level {match['level']!r} in {name!r}.{_close(level, D4RL_LEVELS)} Levels: {levels}."
        )
    if version != D4RL_VERSION:
        raise UnknownDatasetNameError(
            f"{name!r} asks for D4RL version v{version}; frontier-rl generates v{D4RL_VERSION}-style datasets only. "
            f"Use {D4RLName(env, level).name!r}."
        )
    return D4RLName(env, level)


def is_d4rl_name(name: str) -> bool:
    """Whether ``name`` parses as a known D4RL-style name."""
    try:
        parse_d4rl_name(name)
    except UnknownDatasetNameError:
        return False
    return True


def d4rl_name_from_minari_id(dataset_id: str) -> D4RLName | None:
    """The D4RL name behind one of the project's Minari ids (``frontier/hopper/medium-v0``), else None."""
    match = _MINARI_ID.match(dataset_id)
    if match is None or match["env"] not in D4RL_ENVS or match["level"] not in D4RL_LEVELS:
        return None
    return D4RLName(match["env"], match["level"])


def d4rl_env_key(name_or_env: str) -> str | None:
    """The D4RL env key (``"hopper"``) that a name, env key, Gymnasium id or project Minari id refers to.

    Accepts ``"hopper-medium-v2"``, ``"hopper"``, ``"Hopper-v4"`` (any Gymnasium version) and
    ``"frontier/hopper/medium-v0"``; returns None for anything else.
    """
    text = name_or_env.strip()
    if text.lower() in D4RL_ENVS:
        return text.lower()
    if is_d4rl_name(text):
        return parse_d4rl_name(text).env
    parsed = d4rl_name_from_minari_id(text)
    if parsed is not None:
        return parsed.env
    base = re.sub(r"-v\d+$", "", text).lower()
    return base if base in D4RL_ENVS and base != text.lower() else None


def minari_id_for(name: str) -> tuple[str, D4RLName | None]:
    """The local Minari id for a D4RL-style name or a Minari id, and the D4RL name behind it (or None).

    ``"hopper-medium-v2"`` -> ``("frontier/hopper/medium-v0", D4RLName("hopper", "medium"))``; an id with a
    ``/`` is a Minari id and is returned as it is.

    Raises:
        UnknownDatasetNameError: a name without ``/`` that is not a valid D4RL-style name.
    """
    if "/" in name:
        return name, d4rl_name_from_minari_id(name)
    parsed = parse_d4rl_name(name)
    return parsed.minari_id, parsed
