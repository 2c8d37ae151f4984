"""The learned behaviour space of TAXONS and STAX: an autoencoder of the final observation.

The latent of the final observation is the behaviour descriptor, the reconstruction error is the
surprise (Paolo et al., "Unsupervised Learning and Exploration of Reachable Outcome Space", ICRA 2020,
arXiv 1909.05508; "Sparse Reward Exploration via Novelty Search and Emitters", GECCO 2021 for STAX).

Settings, from the authors' code (read, not copied):

- Conv AE for 64x64 images: four 4x4 stride-2 convolutions 32-64-32-16 channels (64 -> 4 pixels), a linear
  layer to the 10-d latent, SELU activations, the mirrored transposed convolutions in the decoder, ReLU on
  the output (GPaolo/STAX ``core/auto_encoders/ae.py`` ``ConvAE``; 10-d latent: ``bd_size`` in STAX's
  ``parameters.py``, ``feature_size`` in GPaolo/taxons ``scripts/parameters.py``).
- Loss: per-sample mean squared reconstruction error; Adam, learning rate 1e-3 (``BaseAE``).
- Training (STAX ``core/searcher.py`` ``_train_ae`` / ``get_training_data``): 20 % of the data held out
  for validation, batches of 128, at most 100 epochs, validation from the second epoch on, stop when the
  validation error has exceeded its best value more than 3 epochs in a row; the network keeps training
  from its current weights (``reset_ae`` False) and the Adam state persists between trainings.
- When to train (STAX ``core/searcher.py`` ``chunk_step``, shared by TAXONS and STAX there):
  :class:`TrainingSchedule`.

The input: the papers' is the final 64x64 image (``observation_kind="image"``, the default). The "state" option
feeds the env's ``state_observation()``, which on HardMaze holds the robot's position (x / 600, y / 600, ...),
on Curling the ball's (x, y) and on AntMaze the torso's position, i.e. the very outcome coordinates the
coverage is measured on: a behaviour space learned from it is not learned without the hand-designed
descriptor. It is kept for speed and for tests, not for comparisons with the papers.

Deviations: the images are grayscale (1 input channel; the authors used RGB) because the shared evaluator
renders 64x64 grayscale; the state-vector option (an MLP AE: input -> 64 -> 32 -> latent, SELU, linear
output because states can be negative) is ours, for speed, and also takes the trajectory signatures of
the "signature" option; the authors' epoch loop runs 101 epochs at most (``<=``), here ``max_epochs``
exactly; with fewer than 2 held-out samples (tiny runs) training runs ``max_epochs`` without early stopping.
"""

from __future__ import annotations

import copy
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from qd.evaluation import OBSERVATION_SIZE, EvaluationResult
from qd.phase_clock import PhaseClock
from qd.signature import SIGNATURE_DEPTH, trajectory_signatures

LATENT_DIM = 10
"""Latent (behaviour descriptor) size: ``bd_size`` (STAX) / ``feature_size`` (TAXONS)."""
LEARNING_RATE = 1e-3
"""Adam learning rate (``BaseAE``)."""
BATCH_SIZE = 128
"""Minibatch size of training and encoding (STAX ``parameters.py``)."""
MAX_EPOCHS = 100
"""Epoch cap of one training (``max_training_epochs``)."""
PATIENCE = 3
"""Consecutive epochs the validation error may exceed its best before training stops (``_train_ae``)."""
VALIDATION_SHARE = 0.2
"""Share of the training data held out for early stopping (``get_training_data``)."""
OBSERVATION_KINDS = ("image", "state", "signature")
"""AE inputs: final 64x64 render, final ``state_observation()``, or the truncated signature of the outcome
trajectory (:mod:`qd.signature`, STAX's trajectory option); the last two go through the MLP AE."""
STATE_HIDDEN = (64, 32)
"""Hidden sizes of the state-vector MLP AE (ours)."""


def _conv_encoder(latent_dim: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 32, 4, stride=2, padding=1), nn.SELU(),  # 64 -> 32
        nn.Conv2d(32, 64, 4, stride=2, padding=1), nn.SELU(),  # 32 -> 16
        nn.Conv2d(64, 32, 4, stride=2, padding=1), nn.SELU(),  # 16 -> 8
        nn.Conv2d(32, 16, 4, stride=2, padding=1), nn.SELU(),  # 8 -> 4
        nn.Flatten(), nn.Linear(16 * 4 * 4, latent_dim), nn.SELU(),
    )


def _conv_decoder(latent_dim: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(latent_dim, 16 * 4 * 4), nn.SELU(), nn.Unflatten(1, (16, 4, 4)),
        nn.ConvTranspose2d(16, 32, 4, stride=2, padding=1), nn.SELU(),  # 4 -> 8
        nn.ConvTranspose2d(32, 64, 4, stride=2, padding=1), nn.SELU(),  # 8 -> 16
        nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1), nn.SELU(),  # 16 -> 32
        nn.ConvTranspose2d(32, 1, 4, stride=2, padding=1), nn.ReLU(),  # 32 -> 64
    )


def _mlp(sizes: tuple[int, ...], *, last_activation: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2 or last_activation:
            layers.append(nn.SELU())
    return nn.Sequential(*layers)


class AENetwork(nn.Module):
    """Encoder and decoder; ``forward`` returns (latent, reconstruction)."""

    def __init__(self, kind: str, input_shape: tuple[int, ...], latent_dim: int) -> None:
        super().__init__()
        if kind == "image":
            if tuple(input_shape) != (1, OBSERVATION_SIZE, OBSERVATION_SIZE):
                raise ValueError(f"the conv AE takes (1, {OBSERVATION_SIZE}, {OBSERVATION_SIZE}) images, "
                                 f"got input_shape {input_shape}.")
            self.encoder, self.decoder = _conv_encoder(latent_dim), _conv_decoder(latent_dim)
        elif kind == "state":
            if len(input_shape) != 1:
                raise ValueError(f"the state AE takes flat vectors, got input_shape {input_shape}.")
            self.encoder = _mlp((input_shape[0], *STATE_HIDDEN, latent_dim), last_activation=True)
            self.decoder = _mlp((latent_dim, *STATE_HIDDEN[::-1], input_shape[0]), last_activation=False)
        else:
            raise ValueError(f"kind must be 'image' or 'state' (flat vectors), got {kind!r}.")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        latent = self.encoder(x)
        return latent, self.decoder(latent)


@dataclass
class TrainingReport:
    """What one :meth:`Autoencoder.fit` did."""

    epochs: int
    train_loss: float
    validation_error: float | None
    stopped_early: bool
    samples: int
    history: list[float] = field(default_factory=list)
    """Validation error per epoch (empty without a validation split)."""


class Autoencoder:
    """An AE over observations of one shape: training, encoding, reconstruction error; seeded, CPU.

    The initial weights come from ``seed`` (a private torch generator: the global torch RNG is left
    alone); training shuffles with the numpy generator the caller passes, so a run is reproducible for
    its seed and :meth:`state_dict` (weights and Adam state) lets a checkpoint resume exactly.

    Args:
        kind: "image" (conv AE on (1, 64, 64)) or "state" (MLP AE on flat vectors: states, signatures).
        input_shape: Shape of one observation, (1, 64, 64) or (d,).
        latent_dim: Latent size (10).
        learning_rate: Adam learning rate (1e-3).
        seed: Seed of the initial weights.
    """

    def __init__(self, kind: str, input_shape: tuple[int, ...], *, latent_dim: int = LATENT_DIM,
                 learning_rate: float = LEARNING_RATE, seed: int = 0) -> None:
        if latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, got {latent_dim}.")
        if learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {learning_rate}.")
        self.kind = kind
        self.input_shape = tuple(int(s) for s in input_shape)
        self.latent_dim = int(latent_dim)
        self.learning_rate = float(learning_rate)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            self.network = AENetwork(kind, self.input_shape, self.latent_dim)
        self.network.eval()
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=self.learning_rate)
        self.trainings = 0

    # -- inference ----------------------------------------------------------------------------------
    def _tensor(self, observations: np.ndarray) -> torch.Tensor:
        x = np.asarray(observations, dtype=np.float32)
        if x.shape[1:] != self.input_shape:
            raise ValueError(f"observations must have shape (n, {', '.join(map(str, self.input_shape))}), "
                             f"got {x.shape}.")
        return torch.from_numpy(np.ascontiguousarray(x))

    @staticmethod
    def _errors(x: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
        """Per-sample mean squared error (the authors' ``MSELoss(reduction='none')`` averaged per sample)."""
        return ((reconstruction - x) ** 2).flatten(1).mean(dim=1)

    def evaluate(self, observations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Latents (n, latent_dim) and reconstruction errors (n,) of observations, in batches of 128."""
        x = self._tensor(observations)
        latents, errors = [], []
        self.network.eval()
        with torch.no_grad():
            for start in range(0, len(x), BATCH_SIZE):
                batch = x[start:start + BATCH_SIZE]
                latent, reconstruction = self.network(batch)
                latents.append(latent.double().numpy())
                errors.append(self._errors(batch, reconstruction).double().numpy())
        if not latents:
            return np.zeros((0, self.latent_dim)), np.zeros(0)
        return np.concatenate(latents), np.concatenate(errors)

    def encode(self, observations: np.ndarray) -> np.ndarray:
        """Latents (n, latent_dim): the behaviour descriptors."""
        return self.evaluate(observations)[0]

    def reconstruction_error(self, observations: np.ndarray) -> np.ndarray:
        """Per-sample mean squared reconstruction error (n,): the surprise."""
        return self.evaluate(observations)[1]

    # -- training -----------------------------------------------------------------------------------
    def _validation_error(self, x: torch.Tensor) -> float:
        with torch.no_grad():
            errors = [self._errors(x[s:s + BATCH_SIZE], self.network(x[s:s + BATCH_SIZE])[1])
                      for s in range(0, len(x), BATCH_SIZE)]
        return float(torch.cat(errors).mean())

    def fit(self, observations: np.ndarray, rng: np.random.Generator, *, max_epochs: int = MAX_EPOCHS,
            patience: int = PATIENCE, validation_share: float = VALIDATION_SHARE) -> TrainingReport:
        """Train on ``observations`` with early stopping on a held-out split (STAX's ``_train_ae``).

        Args:
            observations: ``(n, *input_shape)`` training data.
            rng: Shuffles the split and the minibatches.
            max_epochs: Epoch cap (100).
            patience: Epochs the validation error may exceed its best in a row before stopping (3).
            validation_share: Held-out share (0.2); with fewer than 2 held-out samples, no early stopping.

        Returns:
            A :class:`TrainingReport`.
        """
        if max_epochs < 1:
            raise ValueError(f"max_epochs must be >= 1, got {max_epochs}.")
        if not 0.0 <= validation_share < 1.0:
            raise ValueError(f"validation_share must be in [0, 1), got {validation_share}.")
        x = self._tensor(observations)
        if len(x) == 0:
            raise ValueError("fit needs at least one observation.")
        order = rng.permutation(len(x))
        n_valid = int(len(x) * validation_share)
        if n_valid < 2 or len(x) - n_valid < 1:
            n_valid = 0
        valid, train = x[order[:n_valid]], x[order[n_valid:]]
        best, worse, history = np.inf, 0, []
        stopped, train_loss, epoch = False, float("nan"), 0
        for epoch in range(1, max_epochs + 1):
            self.network.train()
            permutation = torch.from_numpy(rng.permutation(len(train)))
            losses = []
            for start in range(0, len(train), BATCH_SIZE):
                batch = train[permutation[start:start + BATCH_SIZE]]
                loss = self._errors(batch, self.network(batch)[1]).mean()
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
                losses.append(float(loss.detach()))
            self.network.eval()
            train_loss = float(np.mean(losses))
            if n_valid and epoch > 1:  # the authors validate from the second epoch on
                error = self._validation_error(valid)
                history.append(error)
                if error > best:
                    worse += 1
                    if worse > patience:
                        stopped = True
                        break
                else:
                    best, worse = error, 0
        self.trainings += 1
        return TrainingReport(epochs=epoch, train_loss=train_loss, validation_error=history[-1] if history else None,
                              stopped_early=stopped, samples=len(x), history=history)

    # -- state --------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Settings, weights and Adam state (picklable)."""
        return {"kind": self.kind, "input_shape": self.input_shape, "latent_dim": self.latent_dim,
                "learning_rate": self.learning_rate, "trainings": self.trainings,
                "network": copy.deepcopy(self.network.state_dict()),
                "optimizer": copy.deepcopy(self.optimizer.state_dict())}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> Autoencoder:
        """Rebuild an AE saved by :meth:`state_dict`."""
        ae = cls(state["kind"], state["input_shape"], latent_dim=state["latent_dim"],
                 learning_rate=state["learning_rate"])
        ae.network.load_state_dict(state["network"])
        ae.optimizer.load_state_dict(state["optimizer"])
        ae.trainings = state["trainings"]
        return ae


def observations_of(results: list[EvaluationResult], kind: str, *, signature_depth: int = SIGNATURE_DEPTH
                    ) -> np.ndarray:
    """The AE's input from evaluation results: (n, 1, 64, 64) final images, (n, d) final state vectors or
    (n, d + ... + d^m) depth-m signatures of the (T, d) outcome trajectories.

    Raises:
        ValueError: for an unknown kind, or "image" results evaluated without ``render=True``.
    """
    if kind == "image":
        if any(r.observation is None for r in results):
            raise ValueError('observation_kind="image" needs results evaluated with render=True.')
        return np.stack([np.asarray(r.observation, dtype=np.float32)[None] for r in results])
    if kind == "state":
        return np.stack([np.asarray(r.state, dtype=np.float32).reshape(-1) for r in results])
    if kind == "signature":
        return trajectory_signatures([r.trajectory for r in results], signature_depth).astype(np.float32)
    raise ValueError(f"observation_kind must be one of {OBSERVATION_KINDS}, got {kind!r}.")


class LearnedBehaviourSpace:
    """The AE behaviour space that TAXONS and STAX share: observations -> (latent descriptor, surprise).

    The AE is built on the first observations it sees (their shape fixes the network) with a seed the
    algorithm draws from its own generator.

    Args:
        observation_kind: "image" (final 64x64 render, as in the papers), "state" (``state_observation()``)
            or "signature" (signature of the outcome trajectory).
        latent_dim: Latent size (10).
        learning_rate: Adam learning rate (1e-3).
        max_epochs: Epoch cap of a training (100).
        patience: Early-stopping patience (3).
        signature_depth: Truncation depth of the "signature" option (2, STAX's ``signature_order``).
    """

    def __init__(self, observation_kind: str = "image", *, latent_dim: int = LATENT_DIM,
                 learning_rate: float = LEARNING_RATE, max_epochs: int = MAX_EPOCHS, patience: int = PATIENCE,
                 signature_depth: int = SIGNATURE_DEPTH) -> None:
        if observation_kind not in OBSERVATION_KINDS:
            raise ValueError(f"observation_kind must be one of {OBSERVATION_KINDS}, got {observation_kind!r}.")
        if max_epochs < 1 or patience < 0 or latent_dim < 1:
            raise ValueError(f"need max_epochs >= 1, patience >= 0, latent_dim >= 1; got {max_epochs}, {patience}, "
                             f"{latent_dim}.")
        self.observation_kind = observation_kind
        self.latent_dim = int(latent_dim)
        self.learning_rate = float(learning_rate)
        self.max_epochs = int(max_epochs)
        self.patience = int(patience)
        if signature_depth < 1:
            raise ValueError(f"signature_depth must be >= 1, got {signature_depth}.")
        self.signature_depth = int(signature_depth)
        self.ae: Autoencoder | None = None
        self.reports: list[TrainingReport] = []
        self.clock: PhaseClock | None = None
        """The owning algorithm's clock: encoding and training count as its ``"autoencoder"`` phase."""

    def _measured(self) -> AbstractContextManager[None]:
        return self.clock.measure("autoencoder") if self.clock is not None else nullcontext()

    @property
    def needs_render(self) -> bool:
        """Whether evaluations must render the final image."""
        return self.observation_kind == "image"

    def observations(self, results: list[EvaluationResult]) -> np.ndarray:
        """The AE input of evaluated genomes (see :func:`observations_of`)."""
        return observations_of(results, self.observation_kind, signature_depth=self.signature_depth)

    def ensure_built(self, observations: np.ndarray, rng: np.random.Generator) -> Autoencoder:
        """The AE, built on first use from the observations' shape and a seed drawn from ``rng``."""
        if self.ae is None:
            kind = "image" if self.observation_kind == "image" else "state"
            self.ae = Autoencoder(kind, np.shape(observations)[1:], latent_dim=self.latent_dim,
                                  learning_rate=self.learning_rate, seed=int(rng.integers(2**31)))
        return self.ae

    def describe(self, observations: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Latent descriptors (n, latent_dim) and surprise (n,) of observations."""
        with self._measured():
            return self.ensure_built(observations, rng).evaluate(observations)

    def encode(self, observations: np.ndarray) -> np.ndarray:
        """Latent descriptors (n, latent_dim) of observations with the built AE (no surprise)."""
        with self._measured():
            return self.ae.encode(observations)

    def train(self, observations: np.ndarray, rng: np.random.Generator) -> TrainingReport:
        """Train the AE (early stopping) on observations; the caller then recomputes every stored latent."""
        with self._measured():
            report = self.ensure_built(observations, rng).fit(observations, rng, max_epochs=self.max_epochs,
                                                              patience=self.patience)
        self.reports.append(report)
        return report

    def state_dict(self) -> dict[str, Any]:
        """The AE (or None before first use) and the training reports."""
        return {"ae": None if self.ae is None else self.ae.state_dict(), "reports": copy.deepcopy(self.reports)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`."""
        self.ae = None if state["ae"] is None else Autoencoder.from_state_dict(state["ae"])
        self.reports = copy.deepcopy(state["reports"])


class TrainingSchedule:
    """When the autoencoder trains: after a growing number of exploration chunks (GPaolo/STAX ``Searcher``).

    The authors' searcher, which runs both TAXONS and STAX, counts finished exploration chunks (``chunk_counter``)
    and trains when the count reaches ``training_interval``; the counter then restarts and the interval grows by
    one. With chunks of 1000 evaluations the trainings come after 1000, 3000, 6000, 10000, ... exploration
    evaluations: often early on, when the behaviour space is being discovered, then more and more rarely.

    Args:
        first_interval: Chunks before the first training (1).

    Raises:
        ValueError: for ``first_interval < 1``.
    """

    def __init__(self, first_interval: int = 1) -> None:
        if first_interval < 1:
            raise ValueError(f"first_training_interval must be >= 1, got {first_interval}.")
        self.interval = int(first_interval)
        """Chunks between the last training and the next."""
        self.chunks = 0
        """Chunks finished since the last training."""

    def chunk_finished(self) -> bool:
        """Count a finished exploration chunk; True when the autoencoder must train now (the schedule advances)."""
        self.chunks += 1
        if self.chunks < self.interval:
            return False
        self.chunks = 0
        self.interval += 1
        return True
