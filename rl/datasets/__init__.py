"""Offline-RL datasets: D4RL-style names and scores, D4RL HDF5 files, the local Minari store, generation.

What offline algorithms use::

    from rl.datasets import load_dataset
    data = load_dataset("hopper-medium-v2")      # or a Minari id, or a D4RL-layout .hdf5 path
    data = load_dataset("mujoco/hopper/medium-v0", download=True)   # a public Minari dataset, fetched once
    data.observations, data.actions, data.rewards, data.next_observations, data.terminals
    data.env_id, data.normalized_score(episode_returns)

What makes the data here::

    from rl.datasets import generate_dataset, make_medium_expert
    generate_dataset("hopper-random-v2", None)                                # uniform random actions
    generate_dataset("hopper-medium-v2", policy, policy_name="sac-hopper-medium")  # any obs -> action function
    make_medium_expert("hopper")                                              # medium + expert, concatenated

Modules: ``names`` (D4RL names -> envs and Minari ids), ``scores`` (normalised scores), ``d4rl`` (HDF5 files,
``qlearning_dataset``), ``episodes`` (whole episodes and their flat layouts), ``export`` (any dataset as one
D4RL file), ``minari_store`` (the local Minari store, without jax), ``generate`` (resumable collection),
``loading`` (``load_dataset``), ``errors``.
h5py and Minari (``pip install -e ".[offline]"``) are imported only by the functions that need them.
"""

from rl.datasets.d4rl import (
    REQUIRED_KEYS,
    TRANSITION_KEYS,
    check_d4rl_arrays,
    check_finite_fields,
    load_d4rl_hdf5,
    qlearning_dataset,
    read_d4rl_attributes,
    write_d4rl_hdf5,
)
from rl.datasets.episodes import Episode, episodes_to_d4rl, episodes_to_transitions
from rl.datasets.errors import (
    DatasetNotFoundError,
    MalformedDatasetError,
    MissingDependencyError,
    ReferenceScoreError,
    UnknownDatasetEnvError,
    UnknownDatasetNameError,
)
from rl.datasets.export import export_d4rl_file
from rl.datasets.generate import (
    Policy,
    WorkFolderError,
    collect_episodes,
    combine_datasets,
    generate_dataset,
    make_medium_expert,
    save_episodes,
)
from rl.datasets.loading import OfflineDataset, load_dataset
from rl.datasets.minari_store import (
    download_allowed,
    load_minari_dataset,
    minari_root,
    minari_to_transitions,
    read_episodes,
    write_minari_dataset,
)
from rl.datasets.names import D4RL_ENVS, D4RL_LEVELS, D4RLName, minari_id_for, parse_d4rl_name
from rl.datasets.scores import D4RL_REFERENCE_RETURNS, d4rl_reference_returns, normalized_score

__all__ = [
    "D4RL_ENVS",
    "D4RL_LEVELS",
    "D4RL_REFERENCE_RETURNS",
    "D4RLName",
    "DatasetNotFoundError",
    "Episode",
    "MalformedDatasetError",
    "MissingDependencyError",
    "OfflineDataset",
    "Policy",
    "REQUIRED_KEYS",
    "ReferenceScoreError",
    "TRANSITION_KEYS",
    "UnknownDatasetEnvError",
    "UnknownDatasetNameError",
    "WorkFolderError",
    "check_d4rl_arrays",
    "check_finite_fields",
    "collect_episodes",
    "combine_datasets",
    "d4rl_reference_returns",
    "episodes_to_d4rl",
    "episodes_to_transitions",
    "export_d4rl_file",
    "generate_dataset",
    "load_d4rl_hdf5",
    "load_dataset",
    "download_allowed",
    "load_minari_dataset",
    "make_medium_expert",
    "minari_id_for",
    "minari_root",
    "minari_to_transitions",
    "normalized_score",
    "parse_d4rl_name",
    "qlearning_dataset",
    "read_d4rl_attributes",
    "read_episodes",
    "save_episodes",
    "write_d4rl_hdf5",
    "write_minari_dataset",
]
