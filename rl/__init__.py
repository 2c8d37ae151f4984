"""frontier-rl's shared core: env factory, hyperparameters, runner, checkpoints, evaluation, benchmarks."""

from rl.checkpoint import AtomicCheckpointCallback, CheckpointError, latest_checkpoint, save_checkpoint
from rl.envs import UnknownEnvError, ensure_registered, make_env, make_training_env
from rl.hyperparams import HyperparameterError, resolve_hyperparams
from rl.registry import ALGORITHMS, UnsupportedActionSpaceError, get_algo
from rl.runner import RunConfig, RunResult, train

__all__ = [
    "ALGORITHMS",
    "AtomicCheckpointCallback",
    "CheckpointError",
    "HyperparameterError",
    "RunConfig",
    "RunResult",
    "UnknownEnvError",
    "UnsupportedActionSpaceError",
    "ensure_registered",
    "get_algo",
    "latest_checkpoint",
    "make_env",
    "make_training_env",
    "resolve_hyperparams",
    "save_checkpoint",
    "train",
]
