"""Tests of the learned behaviour space (qd/autoencoder.py), TAXONS, STAX and the path signature.

Runs are tiny (populations of 3-4 on RedundantArm-v0 with the state-vector AE and a few epochs) so each
test stays under a few seconds on a busy CPU.

Mutation testing (mutmut 3.8.1, qd/taxons.py; the run about a third done): 108 mutants checked, 20 survived before
(7 of them in ``TAXONS.surprise``, which no test reached), 2 after, both equivalent:

- ``xǁTAXONSǁstep__mutmut_40`` (offspring described with ``rng=None``): the generator only seeds the AE when it is
  built, and the initial population's ``describe`` has always built it before an offspring generation.
- ``xǁTAXONSǁstep__mutmut_77`` (``kind="STABLE"``): numpy reads the sort kind case-insensitively, the same stable
  sort.

Second pass (the run finished; 35 survivors of qd/taxons.py): 35 survivors examined, 26 killed, 9 equivalent. The
constructor's defaults and every argument reaching NS, the AE, its optimizer and its training, the evaluator and
its ``render`` flag, the clock, the empty first chunk, ``descriptors`` building the AE from the generator and the
summary's keys are now pinned (``test_taxons_defaults`` to
``test_taxons_chunk_starts_empty_and_the_clock_times_the_autoencoder``). The 9 equivalent: ``step__mutmut_40`` and
``step__mutmut_77`` (above) and

- ``refresh_descriptors__mutmut_3`` and ``_9`` (archive / population described with ``rng=None``): only ``retrain``
  calls it, after ``space.train`` has built the AE, and a built AE never draws from the generator.
- ``state_dict__mutmut_6`` (``copy.copy`` of the ``TrainingSchedule``): its state is two ints, so a shallow copy is
  already independent (``chunk_finished`` rebinds the copy's attributes).
- ``state_dict__mutmut_12``, ``_16``, ``_20`` (``copy.copy`` of the observation and surprise arrays or None):
  ``ndarray.__copy__`` copies the data, the same as ``deepcopy`` for float arrays.
- ``load_state_dict__mutmut_20`` (``copy.copy`` in the loop over the schedule and those arrays): both reasons above.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from qd_point_task import register_point_task

from qd.autoencoder import Autoencoder, LearnedBehaviourSpace, TrainingReport, TrainingSchedule
from qd.evaluation import EvaluationResult
from qd.run import QDRun, main
from qd.signature import path_signature, signature_size, trajectory_signatures
from qd.stax import STAX
from qd.taxons import TAXONS

ENV_ID = "RedundantArm-v0"
TINY = {"pop_size": 4, "observation_kind": "state", "max_epochs": 3, "chunk_size": 12, "archive_per_generation": 2}
"""Initial 4 evaluations, then 8 per generation, 2 archived; chunks of 12 evaluations end after generations 1, 3,
5, ...; the AE trains after chunks 1, 3, 6, ... (generations 1, 5, ...)."""


def _taxons(seed: int = 3, **overrides) -> TAXONS:
    return TAXONS(ENV_ID, seed=seed, **{**TINY, **overrides})


# -- signature -----------------------------------------------------------------------------------------
def test_signature_of_straight_segment_is_hand_computed():
    increment = np.array([1.0, 2.0])
    # Points along one straight line: Chen's identity must give the single segment's signature.
    path = np.array([[0.5, -1.0], [0.75, -0.5], [1.5, 1.0]])
    signature = path_signature(path, 3)
    assert signature.shape == (signature_size(2, 3),) == (2 + 4 + 8,)
    np.testing.assert_allclose(signature[:2], increment)  # level 1: the increment
    np.testing.assert_allclose(signature[2:6], [0.5, 1.0, 1.0, 2.0])  # level 2: D (x) D / 2
    level3 = np.einsum("i,j,k->ijk", increment, increment, increment) / 6.0
    np.testing.assert_allclose(signature[6:], level3.reshape(-1))
    np.testing.assert_array_equal(path_signature(path[:1], 2), np.zeros(6))


def test_signature_of_two_segments_has_the_levy_area():
    # Right then up: level 2 = [[1/2, 1], [0, 1/2]] (the x-then-y iterated integral is 1, y-then-x is 0).
    signature = path_signature(np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]), 2)
    np.testing.assert_allclose(signature, [1.0, 1.0, 0.5, 1.0, 0.0, 0.5])
    timed = path_signature(np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]), 2, time_augment=True)
    assert timed.shape == (3 + 9,) and timed[2] == pytest.approx(1.0)
    assert trajectory_signatures([np.zeros((3, 2)), np.ones((4, 2))]).shape == (2, 6)


def test_signature_matches_iisignature():
    iisignature = pytest.importorskip("iisignature")
    path = np.random.default_rng(0).normal(size=(30, 2))
    for depth in (2, 3):
        np.testing.assert_allclose(path_signature(path, depth), iisignature.sig(path, depth), atol=1e-12)


# -- the autoencoder -----------------------------------------------------------------------------------
def test_autoencoder_is_seeded_and_roundtrips_its_state():
    data = np.random.default_rng(0).normal(size=(20, 5)).astype(np.float32)
    first, second = Autoencoder("state", (5,), seed=4), Autoencoder("state", (5,), seed=4)
    state = torch.get_rng_state()
    report = first.fit(data, np.random.default_rng(1), max_epochs=3)
    second.fit(data, np.random.default_rng(1), max_epochs=3)
    assert torch.equal(torch.get_rng_state(), state)  # the global torch RNG is left alone
    assert report.epochs == 3 and report.samples == 20 and len(report.history) == 2
    np.testing.assert_array_equal(first.encode(data), second.encode(data))
    assert not np.array_equal(first.encode(data), Autoencoder("state", (5,), seed=5).encode(data))
    restored = Autoencoder.from_state_dict(first.state_dict())
    np.testing.assert_array_equal(restored.encode(data), first.encode(data))
    restored.fit(data, np.random.default_rng(2), max_epochs=2)
    first.fit(data, np.random.default_rng(2), max_epochs=2)  # same Adam state: same continuation
    np.testing.assert_array_equal(restored.encode(data), first.encode(data))


def test_early_stopping_after_patience_epochs_of_worse_validation(monkeypatch):
    ae = Autoencoder("state", (3,), seed=0)
    errors = iter([1.0, 2.0, 0.5, 0.6, 0.7, 0.8, 0.9])  # epochs 2..8
    monkeypatch.setattr(ae, "_validation_error", lambda valid: next(errors))
    report = ae.fit(np.zeros((20, 3), np.float32), np.random.default_rng(0), max_epochs=50, patience=2)
    # Best 0.5 at epoch 4; 0.6, 0.7 are tolerated, the third worse epoch (7, error 0.8) stops.
    assert report.stopped_early and report.epochs == 7 and report.history == [1.0, 2.0, 0.5, 0.6, 0.7, 0.8]


def test_image_autoencoder_shapes_and_surprise_is_reconstruction_error():
    images = np.random.default_rng(0).random((5, 1, 64, 64)).astype(np.float32)
    ae = Autoencoder("image", (1, 64, 64), seed=0)
    latents, errors = ae.evaluate(images)
    assert latents.shape == (5, 10) and errors.shape == (5,)
    with torch.no_grad():
        reconstruction = ae.network.decoder(ae.network.encoder(torch.from_numpy(images))).numpy()
    np.testing.assert_allclose(errors, ((reconstruction - images) ** 2).mean(axis=(1, 2, 3)), rtol=1e-5)
    np.testing.assert_array_equal(ae.reconstruction_error(images), errors)
    with pytest.raises(ValueError, match="shape"):
        ae.encode(images[:, :, :32])
    with pytest.raises(ValueError, match="kind"):
        Autoencoder("video", (3,))


def test_training_schedule_grows_by_one_chunk_after_every_training():
    schedule = TrainingSchedule()
    due = [chunk for chunk in range(1, 16) if schedule.chunk_finished()]
    assert due == [1, 3, 6, 10, 15]  # GPaolo/STAX: after chunk 1, then 2 more, 3 more, ...
    later = TrainingSchedule(first_interval=2)
    assert [chunk for chunk in range(1, 10) if later.chunk_finished()] == [2, 5, 9]
    with pytest.raises(ValueError, match="first_training_interval"):
        TrainingSchedule(0)


# -- TAXONS ----------------------------------------------------------------------------------------------
def test_novelty_and_surprise_of_the_initial_population_by_hand():
    algorithm = _taxons(k_neighbors=2)
    algorithm.step()
    latents = algorithm.population_descriptors
    assert latents.shape == (4, 10) and len(algorithm.archive) == 0
    np.testing.assert_array_equal(latents, algorithm.space.ae.encode(algorithm.population_observations))
    for i in range(4):
        distances = sorted(np.linalg.norm(latents[i] - latents[j]) for j in range(4) if j != i)
        assert algorithm.population_novelty[i] == pytest.approx(np.mean(distances[:2]))
    np.testing.assert_array_equal(algorithm.population_surprise,
                                  algorithm.space.ae.reconstruction_error(algorithm.population_observations))
    states = algorithm.population_observations  # the state option: the final state_observation()
    assert states.shape == (4, 20)


def test_criterion_is_novelty_until_the_first_training_then_follows_the_seed():
    algorithm = _taxons(seed=11)
    assert [algorithm.choose_criterion() for _ in range(3)] == ["novelty"] * 3  # untrained: no draw
    state = algorithm.rng.bit_generator.state
    algorithm.space.reports.append(TrainingReport(1, 0.0, None, False, 1))  # as after a training
    chosen = [algorithm.choose_criterion() for _ in range(200)]
    coins = np.random.default_rng(11)
    coins.bit_generator.state = state
    assert chosen == ["surprise" if c < 0.5 else "novelty" for c in coins.random(200)]
    assert 60 < chosen.count("surprise") < 140
    never = _taxons(surprise_probability=0.0)
    never.space.reports.append(TrainingReport(1, 0.0, None, False, 1))
    assert {never.choose_criterion() for _ in range(50)} == {"novelty"}


def test_archive_latents_are_recomputed_after_retraining():
    algorithm = _taxons(chunk_size=20)
    algorithm.run(12)  # initial population + generation 1: 2 archived, chunk 1 not over, no training yet
    before = algorithm.archive.descriptors.copy()
    stored = algorithm.archive_observations.copy()
    assert len(before) == 2 and algorithm.space.ae.trainings == 0
    algorithm.run(20)  # generation 2 ends chunk 1: the AE trains on archive + population + last offspring
    ae = algorithm.space.ae
    assert ae.trainings == 1 and algorithm.space.reports[0].samples == 4 + 4 + 8
    after = algorithm.archive.descriptors
    assert after.shape == (4, 10)
    np.testing.assert_array_equal(algorithm.archive_observations[:2], stored)
    assert not np.allclose(after[:2], before)  # the first two entries moved with the new encoder ...
    np.testing.assert_array_equal(after, ae.encode(algorithm.archive_observations))  # ... to its latents
    np.testing.assert_array_equal(algorithm.population_descriptors, ae.encode(algorithm.population_observations))
    np.testing.assert_array_equal(algorithm.population_surprise,
                                  ae.reconstruction_error(algorithm.population_observations))
    np.testing.assert_allclose(algorithm.population_novelty,
                               algorithm.archive.novelty(algorithm.population_descriptors))
    assert algorithm.criteria == ["novelty", "novelty"]  # both generations ran before the first training


def test_archive_takes_the_best_offspring_by_the_criterion():
    # Chunks of 4: the initial population ends chunk 1 and the AE trains; generation 1 then ranks by surprise.
    algorithm = _taxons(surprise_probability=1.0, chunk_size=4, archive_per_generation=2)
    algorithm.step()
    assert algorithm.trainings == 1
    parents = algorithm.population.copy()
    algorithm.generation = 1
    algorithm.step()
    assert algorithm.criteria == ["surprise"] and algorithm.trainings == 1  # chunk 2 of an interval of 2
    archived = algorithm.archive_observations
    offspring_surprise = algorithm.space.ae.reconstruction_error(archived)
    # Every archived offspring is at least as surprising as any survivor that is an offspring and not archived.
    is_parent = (algorithm.population[:, None, :] == parents[None]).all(axis=2).any(axis=1)
    survivors = algorithm.population_surprise[~is_parent]
    archived_genomes = algorithm.archive.genomes
    not_archived = [s for s, g in zip(survivors, algorithm.population[~is_parent])
                    if not (archived_genomes == g).all(axis=1).any()]
    assert all(offspring_surprise.min() >= s for s in not_archived)
    assert np.all(np.diff(algorithm.population_surprise) <= 0)  # survivors ranked by surprise


def test_tiny_taxons_runs_are_reproducible():
    first, second, other = _taxons(), _taxons(), _taxons(seed=4)
    for algorithm in (first, second):
        algorithm.run(20)
    other.run(4)
    assert first.generation == 3 and first.space.ae.trainings == 1  # after chunk 1 (generation 1)
    np.testing.assert_array_equal(first.metrics.outcomes, second.metrics.outcomes)
    np.testing.assert_array_equal(first.archive.descriptors, second.archive.descriptors)
    assert first.criteria == second.criteria
    assert not np.array_equal(first.metrics.outcomes[:4], other.metrics.outcomes)


def _scripted_describe(algorithm: TAXONS, batches) -> list[np.ndarray]:
    """Make the AE's ``describe`` return the prepared (latents, surprise) batches in call order; returns the
    observations it was called with."""
    queue = [(np.asarray(latents, dtype=float), np.asarray(surprise, dtype=float)) for latents, surprise in batches]
    seen: list[np.ndarray] = []

    def describe(observations, rng):
        seen.append(np.array(observations))
        latents, surprise = queue.pop(0)
        assert len(latents) == len(observations)
        return latents, surprise

    algorithm.space.describe = describe
    return seen


def _recording_mutate(algorithm: TAXONS) -> list[np.ndarray]:
    made: list[np.ndarray] = []
    mutate = algorithm.mutate

    def record(parents):
        made.append(mutate(parents))
        return made[-1]

    algorithm.mutate = record
    return made


def _knn_by_hand(points: np.ndarray, k: int) -> np.ndarray:
    """Novelty of each point against all of them: its own distance 0 dropped, the next k averaged."""
    return np.array([np.mean(sorted(np.linalg.norm(p - q) for q in points)[1:k + 1]) for p in points])


def test_taxons_generation_ranked_by_novelty_by_hand():
    algorithm = _taxons(k_neighbors=2, chunk_size=10**6)  # no training: the criterion is novelty
    parents_latents = [[0.0, 0.0], [1.0, 0.0], [5.0, 0.0], [0.0, 3.0]]
    offspring_latents = [[0.5, 0.0], [9.0, 9.0], [2.0, 0.0], [0.0, 1.0], [6.0, 0.0], [1.0, 1.0], [-3.0, 0.0],
                         [0.0, 0.2]]
    # Surprise ranks them otherwise than novelty does.
    parents_surprise, offspring_surprise = [0.9, 0.8, 0.1, 0.2], [5.0, 0.0, 4.0, 0.1, 3.0, 0.2, 0.3, 6.0]
    seen = _scripted_describe(algorithm, [(parents_latents, parents_surprise), (offspring_latents,
                                                                                 offspring_surprise)])
    made = _recording_mutate(algorithm)
    algorithm.step()
    assert algorithm.archive_observations.shape == (0, seen[0].shape[1])
    assert algorithm.archive_observations.dtype == seen[0].dtype == np.float32
    np.testing.assert_allclose(algorithm.population_novelty, _knn_by_hand(np.array(parents_latents), 2))
    parents = algorithm.population.copy()
    algorithm.step()
    assert algorithm.criteria == ["novelty"]
    latents = np.array(parents_latents + offspring_latents)
    novelty = _knn_by_hand(latents, 2)
    survivors = np.argsort(-novelty, kind="stable")[:4]
    genomes = np.concatenate([parents, made[0]])
    np.testing.assert_array_equal(algorithm.population, genomes[survivors])
    np.testing.assert_array_equal(algorithm.population_descriptors, latents[survivors])
    np.testing.assert_array_equal(algorithm.population_surprise,
                                  np.array(parents_surprise + offspring_surprise)[survivors])
    np.testing.assert_allclose(algorithm.population_novelty, novelty[survivors])
    assert algorithm.population_novelty[0] == pytest.approx((np.hypot(3, 9) + np.hypot(4, 9)) / 2)  # (9, 9)
    archived = np.argsort(-novelty[4:], kind="stable")[:2]  # (9, 9) and (-3, 0)
    assert archived.tolist() == [1, 6]
    np.testing.assert_array_equal(algorithm.archive.descriptors, np.array(offspring_latents)[archived])
    np.testing.assert_array_equal(algorithm.archive.genomes, made[0][archived])
    np.testing.assert_array_equal(algorithm.archive_observations, seen[1][archived])
    assert algorithm.archive_observations.dtype == np.float32


def test_taxons_survivors_of_equal_surprise_keep_their_order():
    algorithm = _taxons(surprise_probability=1.0, chunk_size=10**6)
    rng = np.random.default_rng(0)
    _scripted_describe(algorithm, [(rng.normal(size=(4, 2)), [1.0, 0.0, 1.0, 0.0]),
                                   (rng.normal(size=(8, 2)), [1.0, 0.0] * 4)])
    made = _recording_mutate(algorithm)
    algorithm.step()
    parents = algorithm.population.copy()
    algorithm.space.reports.append(TrainingReport(1, 0.0, None, False, 1))  # as after a training
    algorithm.step()
    assert algorithm.criteria == ["surprise"]
    # Surprise 1, 0, 1, 0, ... over parents + offspring: the stable ranking keeps parents 0, 2 then offspring 0, 2.
    np.testing.assert_array_equal(algorithm.population, np.concatenate([parents[[0, 2]], made[0][[0, 2]]]))
    np.testing.assert_array_equal(algorithm.population_surprise, np.ones(4))


def test_taxons_trains_after_the_initial_population_on_it_alone():
    algorithm = _taxons(chunk_size=4)
    data: list[np.ndarray] = []
    algorithm.retrain = lambda observations: data.append(observations.copy())
    algorithm.step()  # 4 evaluations: chunk 1 is over, the AE trains on the initial population only
    assert algorithm.chunk_spent == 0 and len(data) == 1
    np.testing.assert_array_equal(data[0], algorithm.population_observations)
    algorithm.generation = 1
    algorithm.step()  # chunk 2: no training (the interval is now 2 chunks)
    assert algorithm.chunk_spent == 0 and len(data) == 1


def test_taxons_surprise_is_the_reconstruction_error_of_a_seeded_ae():
    algorithm, twin = _taxons(seed=6), _taxons(seed=6)
    results = algorithm.evaluate(algorithm.initial_population())
    twin.initial_population()
    surprise = algorithm.surprise(results)  # builds the AE from the algorithm's generator
    observations = algorithm.space.observations(results)
    assert surprise.shape == (4,)
    np.testing.assert_array_equal(surprise, algorithm.space.ae.reconstruction_error(observations))
    np.testing.assert_array_equal(surprise, twin.space.describe(observations, twin.rng)[1])
    np.testing.assert_array_equal(algorithm.descriptors(results), twin.space.ae.encode(observations))


def test_taxons_surprise_probability_is_a_strict_bound():
    algorithm = _taxons(seed=2)
    algorithm.space.reports.append(TrainingReport(1, 0.0, None, False, 1))
    twin = np.random.default_rng()
    twin.bit_generator.state = algorithm.rng.bit_generator.state
    coin = twin.random()
    algorithm.surprise_probability = coin  # a draw equal to the probability is not below it
    assert algorithm.choose_criterion() == "novelty"
    algorithm.surprise_probability = float(np.nextafter(twin.random(), 1.0))
    assert algorithm.choose_criterion() == "surprise"


def test_taxons_checkpoint_resume_equals_uninterrupted(tmp_path):
    kwargs = {**TINY, "pop_size": 3, "chunk_size": 6}
    config = {"algo": "taxons", "env": ENV_ID, "seed": 5, "hyperparams": kwargs}
    straight = TAXONS(ENV_ID, seed=5, **kwargs)
    straight.run(27)  # 3 + 4 generations of 6: chunks end after generations 1, 2, 3, 4; trainings after 1 and 3
    first = QDRun(TAXONS(ENV_ID, seed=5, **kwargs), tmp_path / "run", config=config, progress=False)
    first.algorithm.run(15)  # through generation 2
    first.save_checkpoint()
    resumed = QDRun.resume(tmp_path / "run", progress=False)
    assert resumed.algorithm.evaluations == 15 and resumed.algorithm.space.ae.trainings == 1
    resumed.algorithm.run(27)
    np.testing.assert_array_equal(resumed.algorithm.metrics.outcomes, straight.metrics.outcomes)
    np.testing.assert_array_equal(resumed.algorithm.archive.descriptors, straight.archive.descriptors)
    assert resumed.algorithm.criteria == straight.criteria and straight.space.ae.trainings == 2
    assert straight.criteria[0] == "novelty" and len(straight.criteria) == 4


def test_taxons_image_option_renders_and_encodes():
    algorithm = _taxons(pop_size=3, observation_kind="image", max_epochs=2, chunk_size=3)
    algorithm.run(9)  # the initial population ends chunk 1: one training
    assert algorithm.population_observations.shape == (3, 1, 64, 64)
    assert algorithm.archive.descriptors.shape == (len(algorithm.archive), 10)
    assert algorithm.space.ae.trainings == 1


def test_taxons_rejects_bad_settings():
    with pytest.raises(ValueError, match="observation_kind"):
        _taxons(observation_kind="pixels")
    with pytest.raises(ValueError, match="surprise_probability"):
        _taxons(surprise_probability=1.5)
    with pytest.raises(ValueError, match="chunk_size"):
        _taxons(chunk_size=0)
    space = LearnedBehaviourSpace("state")
    assert space.state_dict()["ae"] is None and not space.needs_render
    assert isinstance(TrainingReport(1, 0.0, None, False, 1), TrainingReport)


def test_taxons_cli_writes_run_folder(tmp_path):
    argv = ["--env", ENV_ID, "--budget", "9", "--seed", "2", "-f", str(tmp_path), "--no-progress", "-params",
            "pop_size:3", "observation_kind:state", "max_epochs:2", "chunk_size:3"]
    assert main(TAXONS, argv) == 0
    run_dir = tmp_path / "taxons" / f"{ENV_ID}_1"
    for name in ("config.json", "checkpoint.pkl", "metrics.json", "coverage_map.png"):
        assert (run_dir / name).is_file(), name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["evaluations"] == 9 and metrics["config"]["hyperparams"]["observation_kind"] == "state"
    assert metrics["algorithm"]["autoencoder_trainings"] == 1  # after the initial population (chunk 1)
    assert metrics["algorithm"]["generations_by_novelty"] + metrics["algorithm"]["generations_by_surprise"] == 1


class SyntheticArmEvaluator:
    """Instant stand-in for the arm's episodes: a fixed smooth map from genome to outcome and a 20-d state.

    The training schedule depends on evaluation counts only, so a benchmark-sized run can be checked without
    simulating 3,000 episodes.
    """

    def __init__(self, genome_size: int) -> None:
        self.projection = np.random.default_rng(0).normal(size=(genome_size, 22)) / np.sqrt(genome_size)

    def evaluate(self, genomes: np.ndarray, *, render: bool = False) -> list[EvaluationResult]:
        features = np.tanh(np.asarray(genomes) @ self.projection)
        outcomes = 0.5 + 0.5 * features[:, :2]
        return [EvaluationResult(reward=0.0, reward_area=-1, outcome=o, trajectory=o[None], observation=None,
                                 state=f[2:]) for o, f in zip(outcomes, features)]


def test_a_benchmark_sized_taxons_run_trains_and_ranks_by_surprise(tmp_path):
    from qd.benchmark import DEFAULT_HYPERPARAMS
    from qd.genome import genome_size

    # results/qd's budget (3,000) with the benchmark's settings (population 100, chunks of 1000); the state input
    # and 2 epochs only keep the test fast (the schedule does not depend on them).
    hyperparams = {**DEFAULT_HYPERPARAMS["taxons"], "observation_kind": "state", "max_epochs": 2}
    algorithm = TAXONS(ENV_ID, seed=0, evaluator=SyntheticArmEvaluator(genome_size(ENV_ID)), **hyperparams)
    config = {"algo": "taxons", "env": ENV_ID, "seed": 0, "hyperparams": hyperparams}
    metrics = QDRun(algorithm, tmp_path / "run", config=config, save_freq=0, progress=False).run(3000)
    summary = metrics["algorithm"]
    # Chunk 1 ends at 1,100 evaluations (100 + 5 x 200): the first training; the next is due after 2 more chunks.
    assert summary["autoencoder_trainings"] >= 1 and summary["autoencoder_training_samples"][0] == 25 + 100 + 200
    assert summary["generations_by_surprise"] > 0  # surprise only after the first training, then the coin
    assert algorithm.criteria[:5] == ["novelty"] * 5
    assert summary["generations_by_novelty"] + summary["generations_by_surprise"] == algorithm.generation - 1
    assert metrics["evaluations"] == 3000 and metrics["evaluations_spent"] == 3100
    recorded = json.loads((tmp_path / "run" / "metrics.json").read_text())["algorithm"]
    assert recorded == summary


class RecordingArmEvaluator(SyntheticArmEvaluator):
    """The synthetic arm, recording the ``render`` flag of every call."""

    def __init__(self, genome_size: int) -> None:
        super().__init__(genome_size)
        self.renders: list[bool] = []

    def evaluate(self, genomes: np.ndarray, *, render: bool = False) -> list[EvaluationResult]:
        self.renders.append(render)
        return super().evaluate(genomes, render=render)


def _recorded_taxons(seed: int = 3, **overrides) -> TAXONS:
    from qd.genome import genome_size

    return _taxons(seed, evaluator=RecordingArmEvaluator(genome_size(ENV_ID)), **overrides)


def test_taxons_defaults():
    from qd.evaluation import SerialEvaluator

    algorithm = TAXONS(ENV_ID)
    assert algorithm.seed == 0 and algorithm.rng.random() == np.random.default_rng(0).random()
    assert isinstance(algorithm.evaluator, SerialEvaluator)
    assert algorithm.mutation_sigma == 0.05 and algorithm.offspring_per_parent == 2
    assert algorithm.space.observation_kind == "image" and algorithm.space.needs_render
    assert algorithm.chunk_spent == 0 and algorithm.chunk_size == 1000 and algorithm.criteria == []
    # Nothing stored before the initial population is evaluated.
    assert algorithm.archive_observations is None
    assert algorithm.population_observations is None
    assert algorithm.population_surprise is None


def test_taxons_settings_reach_ns_the_autoencoder_and_its_training():
    algorithm = _recorded_taxons(seed=7, offspring_per_parent=3, mutation_sigma=0.2, mutation_prob=0.5,
                                 archive_selection="random", latent_dim=3, learning_rate=0.01, max_epochs=7,
                                 patience=5, chunk_size=1)  # a chunk of one evaluation is allowed
    assert isinstance(algorithm.evaluator, RecordingArmEvaluator) and algorithm.chunk_size == 1
    algorithm.retrain = lambda observations: None  # chunks of 1 end after every generation: no training here
    algorithm.step()
    assert algorithm.evaluator.renders == [False]  # the state input needs no render
    assert algorithm.population_descriptors.shape == (4, 3)  # latent_dim reached the AE
    assert algorithm.space.ae.optimizer.param_groups[0]["lr"] == 0.01
    # Mutation by hand: 3 Gaussian mutants of every parent (sigma 0.2), each gene mutated with probability 0.5.
    twin = np.random.default_rng()
    twin.bit_generator.state = algorithm.rng.bit_generator.state
    parents = algorithm.population
    repeated = np.repeat(parents, 3, axis=0)
    noise = twin.normal(0.0, 0.2, size=repeated.shape) * (twin.random(repeated.shape) < 0.5)
    np.testing.assert_array_equal(algorithm.mutate(parents), np.clip(repeated + noise, *algorithm.genome_bounds))
    # Random archive selection: a permutation from the generator, not the best by the score.
    twin.bit_generator.state = algorithm.rng.bit_generator.state
    chosen = algorithm._select_for_archive(np.arange(12.0))
    assert chosen.tolist() == twin.permutation(12)[:2].tolist() != [11, 10]
    # max_epochs and patience reach the AE's training.
    calls = []
    algorithm.space.ae.fit = lambda observations, rng, **kwargs: calls.append(kwargs) or TrainingReport(
        1, 0.0, None, False, len(observations))
    algorithm.space.train(algorithm.population_observations, algorithm.rng)
    assert calls == [{"max_epochs": 7, "patience": 5}]


def test_taxons_evaluations_render_only_for_the_image_input():
    algorithm = _recorded_taxons()
    genomes = algorithm.initial_population()
    algorithm.evaluate(genomes)
    algorithm.evaluate(genomes, render=True)
    image = _recorded_taxons(observation_kind="image")
    image.evaluate(genomes)
    assert algorithm.evaluator.renders == [False, True] and image.evaluator.renders == [True]


def test_taxons_descriptors_build_the_ae_from_the_generator():
    algorithm, twin = _recorded_taxons(seed=6), _recorded_taxons(seed=6)
    results = algorithm.evaluate(algorithm.initial_population())
    twin.initial_population()
    latents = algorithm.descriptors(results)  # the first use builds the AE with a seed drawn from the generator
    observations = algorithm.space.observations(results)
    np.testing.assert_array_equal(latents, twin.space.describe(observations, twin.rng)[0])
    assert algorithm.rng.random() == twin.rng.random()


def test_taxons_chunk_starts_empty_and_the_clock_times_the_autoencoder():
    algorithm = _recorded_taxons(chunk_size=5)
    assert algorithm.space.clock is algorithm.clock
    algorithm.step()  # 4 evaluations of a chunk of 5: no training yet
    assert algorithm.chunk_spent == 4 and algorithm.trainings == 0
    assert algorithm.clock.seconds["autoencoder"] > 0.0
    assert algorithm.summary() == {"generations": 0, "evaluations_spent": 4, "novelty_archive_size": 0,
                                   "observation_kind": "state", "autoencoder_trainings": 0,
                                   "autoencoder_training_samples": [], "generations_by_novelty": 0,
                                   "generations_by_surprise": 0}


# -- STAX --------------------------------------------------------------------------------------------------
POINT_ID = "QDTaxonsPoint-v0"


# reward 1 within 0.6 of (0.3, 0.3) after 4 steps of 0.3 * action, so that tiny runs find rewards and emitters run
register_point_task(POINT_ID, max_steps=4, step_size=0.3, radius=0.6, frame_size=16, time_in_state=True)

STAX_TINY = {"pop_size": 4, "chunk_size": 16, "observation_kind": "state", "max_epochs": 2, "emitter_pop_size": 3,
             "bootstrap_generations": 2, "archive_per_generation": 2}


def _assert_all_latents_current(algorithm: STAX) -> None:
    ae = algorithm.space.ae
    np.testing.assert_array_equal(algorithm.archive.descriptors, ae.encode(algorithm.archive_observations))
    np.testing.assert_array_equal(algorithm.population_descriptors, ae.encode(algorithm.population_observations))
    if len(algorithm.reward_archive):
        observations = algorithm.space.observations(algorithm.reward_archive.results)
        np.testing.assert_allclose(algorithm.reward_archive.descriptors, ae.encode(observations))
    for emitter in [*algorithm.candidates.values(), *algorithm.emitters.values()]:
        np.testing.assert_allclose(emitter.ancestor_descriptor,
                                   ae.encode(algorithm.space.observations([emitter.ancestor_result]))[0])


def test_stax_retrains_on_a_growing_interval_and_recomputes_every_latent():
    algorithm = STAX(POINT_ID, seed=0, **STAX_TINY)
    trainings, changed = [], []
    algorithm.on_descriptor_space_changed = lambda: changed.append(algorithm.evaluations)
    while algorithm.evaluations < 400:
        before = algorithm.space.ae.trainings if algorithm.space.ae else 0
        algorithm.step()
        algorithm.generation += 1
        if algorithm.space.ae.trainings > before:
            trainings.append(algorithm.ns_evaluations)
            _assert_all_latents_current(algorithm)
    assert algorithm.emitters_created > 0 and algorithm.emitter_evaluations > 0  # the emitters ran
    # Trainings after NS chunks 1, 1 + 2, 1 + 2 + 3, ...: the NS evaluations between them grow.
    assert len(trainings) >= 3 and changed and len(changed) == len(trainings)
    gaps = np.diff(trainings)
    assert np.all(np.diff(gaps) > 0)
    assert algorithm.schedule.interval == len(trainings) + 1
    assert len(algorithm.archive_observations) == len(algorithm.archive)


def _stax_resume_matches_straight(tmp_path, env_id: str, kwargs: dict, split: int, budget: int) -> tuple[STAX, STAX]:
    straight = STAX(env_id, seed=2, **kwargs)
    straight.run(budget)
    config = {"algo": "stax", "env": env_id, "seed": 2, "hyperparams": kwargs}
    run = QDRun(STAX(env_id, seed=2, **kwargs), tmp_path / env_id, config=config, progress=False)
    run.algorithm.run(split)
    run.save_checkpoint()
    resumed = QDRun.resume(tmp_path / env_id, progress=False).algorithm
    assert resumed.evaluations == run.algorithm.evaluations
    resumed.run(budget)
    # The resumed run repeats the uninterrupted one with the same seed: reproducible and resumed exactly.
    np.testing.assert_array_equal(resumed.metrics.outcomes, straight.metrics.outcomes)
    np.testing.assert_array_equal(resumed.archive.descriptors, straight.archive.descriptors)
    np.testing.assert_array_equal(resumed.archive_observations, straight.archive_observations)
    np.testing.assert_array_equal(resumed.reward_archive.descriptors, straight.reward_archive.descriptors)
    return straight, resumed


def test_tiny_stax_on_the_arm_is_reproducible_and_resumes_exactly(tmp_path):
    kwargs = {**STAX_TINY, "pop_size": 3, "chunk_size": 6}
    straight, resumed = _stax_resume_matches_straight(tmp_path, ENV_ID, kwargs, 15, 27)
    # 3 + 4 generations of 6, one NS chunk each: trainings after chunks 1 and 3, the first before the split.
    assert straight.space.ae.trainings == 2 == resumed.space.ae.trainings


def test_stax_with_running_emitters_resumes_exactly(tmp_path):
    straight, _ = _stax_resume_matches_straight(tmp_path, POINT_ID, STAX_TINY, 90, 200)
    assert straight.emitter_evaluations > 0 and straight.space.ae.trainings >= 2


def test_stax_signature_option_and_cli(tmp_path):
    algorithm = STAX(POINT_ID, seed=1, **{**STAX_TINY, "observation_kind": "signature"})
    algorithm.run(12)
    assert algorithm.population_observations.shape == (4, 6)  # depth-2 signature of a 2-D trajectory
    expected = path_signature(np.asarray(algorithm.evaluator.evaluate(algorithm.population[:1])[0].trajectory), 2)
    np.testing.assert_allclose(algorithm.population_observations[0], expected, rtol=1e-6)
    argv = ["--env", POINT_ID, "--budget", "20", "-f", str(tmp_path), "--no-progress", "-params", "pop_size:4",
            "observation_kind:state", "chunk_size:8", "max_epochs:2"]
    assert main(STAX, argv) == 0
    assert (tmp_path / "stax" / f"{POINT_ID}_1" / "metrics.json").is_file()
