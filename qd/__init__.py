"""Quality diversity on top of pyribs: shared evaluation, novelty, metrics and run folders, plus Novelty
Search and MAP-Elites baselines. TAXONS, SERENE and STAX (Paolo et al.) build on these parts.

The names below are imported on first use (PEP 562), not when the package is: ``python -m qd.serene`` then
runs a module that the package has not imported yet (otherwise runpy warns that ``qd.serene`` was already in
``sys.modules``, a line that would precede every command-line message), and the command line does not pay for
torch unless the algorithm needs it.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "Autoencoder": "qd.autoencoder",
    "LearnedBehaviourSpace": "qd.autoencoder",
    "TrainingReport": "qd.autoencoder",
    "TrainingSchedule": "qd.autoencoder",
    "QDAlgorithm": "qd.base",
    "BaseEmitter": "qd.emitters",
    "CMAESEmitter": "qd.emitters",
    "ElitistESEmitter": "qd.emitters",
    "Emitter": "qd.emitters",
    "EvaluationResult": "qd.evaluation",
    "Evaluator": "qd.evaluation",
    "NotAQDTaskError": "qd.evaluation",
    "ProcessPoolEvaluator": "qd.evaluation",
    "SerialEvaluator": "qd.evaluation",
    "evaluate_genome": "qd.evaluation",
    "make_task_env": "qd.evaluation",
    "task_spec": "qd.evaluation",
    "GENOME_HIGH": "qd.genome",
    "GENOME_LOW": "qd.genome",
    "MLPController": "qd.genome",
    "clip_genomes": "qd.genome",
    "genome_size": "qd.genome",
    "MapElites": "qd.map_elites",
    "COVERAGE_CELLS": "qd.metrics",
    "CoverageGrid": "qd.metrics",
    "RunMetrics": "qd.metrics",
    "K_NEIGHBORS": "qd.novelty",
    "NoveltyArchive": "qd.novelty",
    "knn_novelty": "qd.novelty",
    "NoveltySearch": "qd.ns",
    "QDRun": "qd.run",
    "build_parser": "qd.run",
    "load_checkpoint": "qd.run",
    "main": "qd.run",
    "save_pictures": "qd.run",
    "write_pickle_atomic": "qd.run",
    "SERENE": "qd.serene",
    "RewardArchive": "qd.serene",
    "pareto_front": "qd.serene",
    "path_signature": "qd.signature",
    "signature_size": "qd.signature",
    "trajectory_signatures": "qd.signature",
    "STAX": "qd.stax",
    "TAXONS": "qd.taxons",
}
"""Public name -> the module that defines it."""

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use and cache the name here."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'qd' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
