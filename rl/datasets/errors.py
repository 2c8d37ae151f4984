"""The errors the dataset package raises, and the check for its optional dependencies.

Every error names what was looked for, where, and what to do about it. They subclass the builtin an
``except`` clause would already catch (``FileNotFoundError``, ``ValueError``, ``ImportError``), so code
written against the builtins keeps working.
"""

from __future__ import annotations

import importlib
from types import ModuleType

OFFLINE_INSTALL_HINT = 'pip install -e ".[offline]"'
"""How to install h5py and Minari, the ``offline`` extra of setup.cfg."""


class DatasetNotFoundError(FileNotFoundError):
    """Raised for a dataset file or Minari id that is not on this machine; says where it looked."""


class MalformedDatasetError(ValueError):
    """Raised for a dataset whose content does not fit its format: a missing key, mismatched lengths."""


class UnknownDatasetEnvError(MalformedDatasetError):
    """Raised for a dataset that records no env when none is given: says to pass ``--env <id>``."""


class UnknownDatasetNameError(ValueError):
    """Raised for a D4RL-style name with an unknown env or level; lists the valid ones."""


class ReferenceScoreError(ValueError):
    """Raised when a score cannot be normalised: no D4RL constants and no reference returns given."""


class MissingDependencyError(ImportError):
    """Raised when h5py or Minari is needed but not installed."""


def import_optional(module: str) -> ModuleType:
    """Import ``module`` (h5py, minari), or raise MissingDependencyError saying what to install.

    The heavy optional packages are imported where they are used, so ``import rl.datasets`` works without
    them and only the functions that need them fail.
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingDependencyError(
            f"{module} is needed for offline datasets but is not installed ({error}). Run: {OFFLINE_INSTALL_HINT}"
        ) from error
