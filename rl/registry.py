"""Algorithm registry: the names the command line and the benchmark harness accept.

Entries are import paths, resolved on first use, so that listing algorithms never imports them all.
SB3's own algorithms are registered beside the project's so that baselines run through the same runner.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass

from gymnasium import spaces


@dataclass(frozen=True)
class AlgoSpec:
    """What the runner needs to know about an algorithm before building it."""

    name: str
    import_path: str
    """``module:ClassName``."""
    action_spaces: tuple[type[spaces.Space], ...]
    """Action spaces the algorithm supports."""
    paper: str = ""
    offline: bool = False
    """Trains from a dataset (``--dataset``) before any env steps: see :mod:`rl.offline`."""

    def load_class(self) -> type:
        """Import and return the algorithm class."""
        module_name, class_name = self.import_path.split(":")
        return getattr(importlib.import_module(module_name), class_name)

    @property
    def is_off_policy(self) -> bool:
        from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

        return issubclass(self.load_class(), OffPolicyAlgorithm)


_ALL_SPACES = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)

ALGORITHMS: dict[str, AlgoSpec] = {
    spec.name: spec
    for spec in (
        AlgoSpec("mdpo", "algos.mdpo:MDPO", (spaces.Box, spaces.Discrete), "Tomar et al., ICLR 2022"),
        AlgoSpec("mdpo_off", "algos.mdpo_off:OffPolicyMDPO", (spaces.Box,), "Tomar et al., ICLR 2022"),
        AlgoSpec("subpo", "algos.subpo:SubPO", (spaces.Discrete, spaces.Box), "Prajapat et al., ICLR 2024"),
        AlgoSpec("iql", "algos.iql:IQL", (spaces.Box,), "Kostrikov et al., ICLR 2022", offline=True),
        AlgoSpec("cql", "algos.cql:CQL", (spaces.Box,), "Kumar et al., NeurIPS 2020", offline=True),
        AlgoSpec("awac", "algos.awac:AWAC", (spaces.Box,), "Nair et al., 2020", offline=True),
        AlgoSpec("td3_bc", "algos.td3_bc:TD3BC", (spaces.Box,), "Fujimoto & Gu, NeurIPS 2021", offline=True),
        AlgoSpec("famo2o", "algos.famo2o:FamO2O", (spaces.Box,), "Wang et al., NeurIPS 2023", offline=True),
        AlgoSpec("famo2o_cql", "algos.famo2o_cql:FamO2OCQL", (spaces.Box,), "Wang et al., NeurIPS 2023", offline=True),
        AlgoSpec("h2o", "algos.h2o:H2O", (spaces.Box,), "Niu et al., NeurIPS 2022", offline=True),
        AlgoSpec("oppo", "algos.oppo:OPPO", (spaces.Box,), "Kang et al., ICML 2023", offline=True),
        AlgoSpec("ppo", "stable_baselines3:PPO", _ALL_SPACES),
        AlgoSpec("a2c", "stable_baselines3:A2C", _ALL_SPACES),
        AlgoSpec("sac", "stable_baselines3:SAC", (spaces.Box,)),
        AlgoSpec("td3", "stable_baselines3:TD3", (spaces.Box,)),
        AlgoSpec("ddpg", "stable_baselines3:DDPG", (spaces.Box,)),
        AlgoSpec("dqn", "stable_baselines3:DQN", (spaces.Discrete,)),
    )
}


METHODS: dict[str, str] = {
    "s3rl": "algos.snapshot:configure",
    "spo": "algos.spo:configure",
    "rm": "algos.rm:configure",
    "parl": "algos.parl:configure",
    "priv": "algos.privileged:configure",
    "sim": "sim2real._training:configure",
}
"""Methods that change how an algorithm is trained, not the algorithm: ``name -> module:function``.

The function takes a :class:`rl.runner.RunConfig` (its method options among ``config.hyperparams``) and
returns the changed config. The benchmark harness runs ``<method>_<algo>[_<suffix>]`` labels with it,
e.g. ``s3rl_sac`` or ``s3rl_sac_nosc``, or ``sim_sac`` (SAC trained in a simulator variant).
"""


def parse_run_label(label: str) -> tuple[str | None, str]:
    """Split a benchmark label into (method or None, algorithm): ``s3rl_sac_nosc`` -> ("s3rl", "sac").

    A suffix after ``@`` names a variant with its own hyperparameters and is ignored here:
    ``mdpo@authors_schedule`` -> (None, "mdpo").
    """
    label = label.split("@", 1)[0]
    method, _, rest = label.partition("_")
    if method in METHODS and rest:
        for name in sorted(ALGORITHMS, key=len, reverse=True):  # mdpo_off before mdpo
            if rest == name or rest.startswith(name + "_"):
                return method, name
        get_algo(rest.split("_")[0])  # raises, naming close algorithms
    get_algo(label)
    return None, label


def load_method(name: str):  # noqa: ANN201 - returns the method's configure function
    """Import a registered method's configure function."""
    module_name, function_name = METHODS[name].split(":")
    return getattr(importlib.import_module(module_name), function_name)


class UnknownAlgorithmError(ValueError):
    """Raised for an algorithm name that is not registered."""


def get_algo(name: str) -> AlgoSpec:
    """Look up an algorithm by name, suggesting close names on a typo."""
    key = name.lower()
    if key not in ALGORITHMS:
        close = difflib.get_close_matches(key, list(ALGORITHMS), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownAlgorithmError(
            f"Unknown algorithm {name!r}.{hint} Registered: {', '.join(sorted(ALGORITHMS))}."
        )
    return ALGORITHMS[key]


class UnsupportedActionSpaceError(ValueError):
    """Raised when an env's action space is one the algorithm cannot act in."""


def check_action_space(spec: AlgoSpec, action_space: spaces.Space, env_id: str) -> None:
    """Refuse an env whose action space the algorithm does not support, naming alternatives."""
    if isinstance(action_space, spec.action_spaces):
        return
    supported = ", ".join(s.__name__ for s in spec.action_spaces)
    alternatives = [
        other.name for other in ALGORITHMS.values() if isinstance(action_space, other.action_spaces)
    ]
    raise UnsupportedActionSpaceError(
        f"{spec.name} supports {supported} action spaces, but {env_id} has {action_space}. "
        f"Algorithms that support it: {', '.join(alternatives) or 'none registered'}."
    )
