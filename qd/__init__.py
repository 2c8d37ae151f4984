"""Quality diversity on top of pyribs: shared evaluation, novelty, metrics and run folders, plus Novelty
Search and MAP-Elites baselines. TAXONS, SERENE and STAX (Paolo et al.) build on these parts.
"""

from qd.autoencoder import Autoencoder, LearnedBehaviourSpace, TrainingReport, rebuilt_archive
from qd.base import QDAlgorithm
from qd.emitters import BaseEmitter, CMAESEmitter, ElitistESEmitter, Emitter
from qd.evaluation import (
    EvaluationResult,
    Evaluator,
    NotAQDTaskError,
    ProcessPoolEvaluator,
    SerialEvaluator,
    evaluate_genome,
    make_task_env,
    task_spec,
)
from qd.genome import GENOME_HIGH, GENOME_LOW, MLPController, clip_genomes, genome_size
from qd.map_elites import MapElites
from qd.metrics import COVERAGE_CELLS, CoverageGrid, RunMetrics
from qd.novelty import K_NEIGHBORS, NoveltyArchive, knn_novelty
from qd.ns import NoveltySearch
from qd.run import QDRun, build_parser, load_checkpoint, main, save_pictures, write_pickle_atomic
from qd.serene import SERENE, RewardArchive, pareto_front
from qd.signature import path_signature, signature_size, trajectory_signatures
from qd.stax import STAX
from qd.taxons import TAXONS

__all__ = [
    "COVERAGE_CELLS",
    "GENOME_HIGH",
    "GENOME_LOW",
    "K_NEIGHBORS",
    "CoverageGrid",
    "EvaluationResult",
    "Evaluator",
    "MLPController",
    "MapElites",
    "NotAQDTaskError",
    "NoveltyArchive",
    "NoveltySearch",
    "ProcessPoolEvaluator",
    "QDAlgorithm",
    "QDRun",
    "RunMetrics",
    "SerialEvaluator",
    "build_parser",
    "clip_genomes",
    "evaluate_genome",
    "genome_size",
    "knn_novelty",
    "load_checkpoint",
    "main",
    "make_task_env",
    "save_pictures",
    "task_spec",
    "write_pickle_atomic",
    "BaseEmitter",
    "CMAESEmitter",
    "ElitistESEmitter",
    "Emitter",
    "SERENE",
    "RewardArchive",
    "pareto_front",
    "Autoencoder",
    "LearnedBehaviourSpace",
    "TrainingReport",
    "rebuilt_archive",
    "path_signature",
    "signature_size",
    "trajectory_signatures",
    "STAX",
    "TAXONS",
]
