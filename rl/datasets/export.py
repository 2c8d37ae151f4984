"""Write any dataset the loader reads as one D4RL-layout HDF5 file, for tools that read D4RL files.

Whole episodes are kept (time-limit ends as ``timeouts``, not dropped), so a reader that rebuilds
episodes from the rows (d3rlpy's ``MDPDataset``) sees the same episodes the project learns from.
"""

from __future__ import annotations

import os
from pathlib import Path

from rl.datasets.d4rl import write_d4rl_hdf5
from rl.datasets.episodes import episodes_to_d4rl
from rl.datasets.loading import HDF5_SUFFIXES
from rl.datasets.minari_store import load_minari_dataset, minari_reference_returns, read_episodes
from rl.datasets.names import minari_id_for
from rl.datasets.scores import d4rl_reference_returns


def export_d4rl_file(spec: str | os.PathLike, folder: str | os.PathLike) -> Path:
    """The D4RL-layout file of dataset ``spec``: the file itself if it is one, else ``<folder>/<name>.hdf5``.

    A Minari dataset (or D4RL-style name) is written once, atomically, with its env id and reference
    returns as attributes; later calls reuse the file.
    """
    text = os.fspath(spec)
    if Path(text).suffix.lower() in HDF5_SUFFIXES or Path(text).is_file():
        return Path(text)
    dataset_id, d4rl = minari_id_for(text)
    name = d4rl.name if d4rl is not None else dataset_id.replace("/", "-")
    path = Path(folder) / f"{name}.hdf5"
    if path.is_file():
        return path
    dataset = load_minari_dataset(dataset_id)
    env_id = dataset.env_spec.id if dataset.env_spec is not None else None
    scale = minari_reference_returns(dataset) or d4rl_reference_returns(name) or (None, None)
    attributes = {"name": name, "env_id": env_id, "ref_min_score": scale[0], "ref_max_score": scale[1]}
    return write_d4rl_hdf5(path, episodes_to_d4rl(read_episodes(dataset)), attributes=attributes)
