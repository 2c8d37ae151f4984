"""Tests of SERENE and its emitters (qd/serene.py, qd/emitters.py) on a tiny point task registered only here."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from qd_point_task import register_point_task

from qd import QDRun
from qd.emitters import CMAESEmitter, ElitistESEmitter, Emitter, default_stagnation_window
from qd.evaluation import EvaluationResult
from qd.run import main
from qd.serene import SERENE, RewardArchive, initial_sigma, pareto_front

ENV_ID = "QDSereneTestPoint-v0"
register_point_task(ENV_ID, goal=(0.25, 0.25), radius=0.3, graded=True, frame_size=8)  # graded reward

TINY = {"pop_size": 10, "chunk_size": 60, "mutation_sigma": 0.2, "archive_per_generation": 2,
        "stagnation_window": 25}
"""NS chunks of 60 evaluations (10 + 2 x 20, then 3 x 20), emitter chunks of 60 (6 + 12 x 5 per bootstrap)."""


def _result(reward: float) -> EvaluationResult:
    return EvaluationResult(reward=reward, reward_area=0 if reward > 0 else -1, outcome=np.zeros(2),
                            trajectory=np.zeros((1, 2)), observation=None, state=np.zeros(2))


def _tell_constant(emitter, reward: float, generations: int) -> int:
    """Tell ``generations`` batches of constant reward; returns the generation at which it terminated (or -1)."""
    for generation in range(generations):
        genomes = emitter.ask()
        emitter.tell(genomes, np.full(len(genomes), reward), np.zeros((len(genomes), 2)),
                     [_result(reward)] * len(genomes))
        if emitter.terminated:
            return generation
    return -1


def test_elitist_emitter_terminates_on_stagnation():
    emitter = ElitistESEmitter(np.zeros(4), np.zeros(2), sigma=0.1, bounds=(-1.0, 1.0), seed=0)
    assert isinstance(emitter, Emitter)
    assert emitter.stagnation_window == default_stagnation_window(4, 6) == int(20 * 4 / 6 + 120)
    # Initial population (not a step) + steps; stagnation is tested once steps > window.
    stopped_at = _tell_constant(emitter, 0.5, 200)
    assert stopped_at == emitter.stagnation_window + 1 and emitter.steps == emitter.stagnation_window + 1
    assert emitter.evaluations == 6 + 12 * emitter.steps and not emitter.stopped
    assert emitter.estimate_improvement() == 0.0
    # A steadily improving emitter does not stagnate within the same budget.
    improving = ElitistESEmitter(np.zeros(4), np.zeros(2), sigma=0.1, bounds=(-1.0, 1.0), seed=0,
                                 stagnation_window=30)
    for generation in range(60):
        genomes = improving.ask()
        rewards = generation + np.arange(len(genomes), dtype=float)
        improving.tell(genomes, rewards, np.zeros((len(genomes), 2)), [_result(1.0)] * len(genomes))
        assert not improving.terminated
    assert improving.estimate_improvement() > 0


def test_elitist_emitter_keeps_the_best_and_is_seeded():
    emitter = ElitistESEmitter(np.zeros(3), np.zeros(2), sigma=0.1, bounds=(-1.0, 1.0), seed=4)
    first = emitter.ask()
    assert first.shape == (6, 3)
    np.testing.assert_array_equal(first, ElitistESEmitter(np.zeros(3), np.zeros(2), sigma=0.1, bounds=(-1.0, 1.0),
                                                          seed=4).ask())
    emitter.tell(first, np.arange(6.0), np.zeros((6, 2)), [_result(1.0)] * 6)
    offspring = emitter.ask()
    assert offspring.shape == (12, 3)
    emitter.tell(offspring, np.full(12, 2.5), np.zeros((12, 2)), [_result(2.5)] * 12)
    # Best 6 of parents (0..5) + offspring (2.5 x 12): 5, 4, 3 and three offspring.
    np.testing.assert_array_equal(emitter.population_rewards, [5, 4, 3, 2.5, 2.5, 2.5])
    assert emitter.values[-1].tolist() == [5, 4, 3, 2.5, 2.5, 2.5]


def test_cmaes_emitter_check_stop_and_stagnation():
    # Flat rewards: pyribs's check_stop ("fitness too flat") stops the ES at once.
    flat = CMAESEmitter(np.zeros(4), np.zeros(2), sigma=0.1, bounds=(-1.0, 1.0), seed=0)
    assert _tell_constant(flat, 0.3, 5) == 0 and flat.stopped and flat.es.check_stop(np.full(6, 0.3))
    # Varied but non-improving rewards: check_stop stays quiet, SERENE's stagnation rule ends it.
    emitter = CMAESEmitter(np.zeros(4), np.zeros(2), sigma=0.1, bounds=(-1.0, 1.0), seed=0, stagnation_window=30)
    for _ in range(100):
        genomes = emitter.ask()
        assert np.all(np.abs(genomes) <= 1.0)
        emitter.tell(genomes, np.linspace(0.0, 1.0, 6), np.zeros((6, 2)), [_result(0.5)] * 6)
        if emitter.terminated:
            break
    assert not emitter.stopped and emitter.stagnated() and emitter.steps == 31
    with pytest.raises(ValueError, match="last ask"):
        emitter.tell(np.ones((6, 4)), np.ones(6), np.zeros((6, 2)), [_result(1.0)] * 6)


def test_emitter_state_round_trip():
    for cls in (ElitistESEmitter, CMAESEmitter):
        emitter = cls(np.zeros(4), np.zeros(2), sigma=0.2, bounds=(-1.0, 1.0), seed=1)
        genomes = emitter.ask()
        emitter.tell(genomes, np.linspace(0, 1, len(genomes)), np.zeros((len(genomes), 2)),
                     [_result(1.0)] * len(genomes))
        state = emitter.state_dict()
        copy = cls(np.ones(4), np.zeros(2), sigma=0.5, bounds=(-1.0, 1.0), seed=9)
        copy.load_state_dict(state)
        np.testing.assert_array_equal(copy.ask(), emitter.ask())


def test_initial_sigma_and_pareto_front():
    genomes = np.array([[0.0, 0.0], [0.3, 0.4], [3.0, 0.0]])
    assert initial_sigma(0, genomes, fallback=0.05) == pytest.approx(0.5 / 3)
    assert initial_sigma(2, genomes, fallback=0.05) == pytest.approx(np.hypot(2.7, 0.4) / 3)
    assert initial_sigma(0, np.zeros((2, 2)), fallback=0.05) == 0.05  # duplicate genome: mutation sigma
    # (novelty, improvement): 0 and 1 trade off, 2 is dominated by 1, 3 equals 1, 4 dominated by everyone.
    objectives = np.array([[3.0, 0.1], [1.0, 2.0], [0.5, 2.0], [1.0, 2.0], [0.0, 0.0]])
    assert pareto_front(objectives).tolist() == [0, 1, 3]


def test_candidates_only_from_rewarding_individuals():
    algorithm = SERENE(ENV_ID, seed=0, **TINY)
    algorithm.step()  # the initial population: its rewarding genomes wait for the first offspring
    initial = algorithm.population.copy()
    waiting = {entry[1].tobytes() for entry in algorithm.pending_initial}
    assert not algorithm.candidates and not len(algorithm.reward_archive) and waiting
    initial_rewards = algorithm.metrics.outcome_areas >= 0
    assert waiting == {g.tobytes() for g, hit in zip(initial, initial_rewards) if hit}
    seen: dict[str, np.ndarray] = {}
    hook = algorithm.offspring_evaluated

    def spy(parents, offspring, results, descriptors):
        seen["reference"] = np.concatenate([parents, offspring])
        assert not algorithm.candidates  # created here, before novelty is measured
        hook(parents, offspring, results, descriptors)

    algorithm.offspring_evaluated = spy
    algorithm.generation = 1
    algorithm.step()  # offspring: the waiting and the new rewarding genomes become candidates, once each
    rewarding = {a.tobytes() for a in algorithm.reward_archive.genomes}
    ancestors = {e.ancestor_genome.tobytes() for e in algorithm.candidates.values()}
    assert ancestors == rewarding and waiting <= rewarding and not algorithm.pending_initial
    assert len(algorithm.candidates) == int(np.sum(algorithm.metrics.outcome_areas >= 0))  # every rewarding one
    assert all(result.reward > 0 for result in algorithm.reward_archive.results)
    for candidate in algorithm.candidates.values():  # sigma: nearest other genome of parents + offspring, / 3
        index = next(i for i, g in enumerate(seen["reference"]) if np.array_equal(g, candidate.ancestor_genome))
        assert candidate.sigma == pytest.approx(initial_sigma(index, seen["reference"], fallback=0.2))


def test_ns_novelty_counts_the_reward_archive_by_hand():
    # The authors' ``get_novelty_ref_set``: parents + offspring + novelty archive + reward archive.
    algorithm = SERENE(ENV_ID, seed=0, **{**TINY, "k_neighbors": 2})
    algorithm.step()
    algorithm.archive = type(algorithm.archive)(algorithm.genome_size, 2, k_neighbors=2)
    algorithm.archive.add(np.zeros((2, algorithm.genome_size)), np.array([[0.0, 0.0], [3.0, 0.0]]))
    batch = np.array([[0.0, 1.0], [0.0, 3.0]])
    # Without a reward archive: as NoveltySearch (see test_qd_core): 1.5 and 2.5.
    algorithm.reward_archive = RewardArchive(algorithm.genome_size)
    np.testing.assert_allclose(algorithm.score_novelty(batch), [1.5, 2.5])
    # A rewarding solution at (0, 2): (0,1) -> (0,0) and (0,2) at 1 -> 1.0; (0,3) -> (0,2) at 1, (0,1) at 2 -> 1.5.
    algorithm.reward_archive.add(np.zeros(algorithm.genome_size), np.array([0.0, 2.0]), _result(0.5))
    np.testing.assert_allclose(algorithm.score_novelty(batch), [1.0, 1.5])
    # The emitters' reference set adds the last NS offspring and is fixed for the chunk.
    algorithm.population_descriptors = batch[:1]
    algorithm.offspring_descriptors = batch[1:]
    reference = algorithm.novelty_reference()
    np.testing.assert_array_equal(reference, [[0.0, 1.0], [0.0, 3.0], [0.0, 0.0], [3.0, 0.0], [0.0, 2.0]])


def test_chunks_alternate_and_count_evaluations():
    algorithm = SERENE(ENV_ID, seed=0, **TINY)
    log: list[tuple[str, int]] = []
    previous = [0, 0]

    def record(algo):
        ns, em = algo.ns_evaluations - previous[0], algo.emitter_evaluations - previous[1]
        assert (ns > 0) != (em > 0), "one step is one generation of one kind"
        log.append(("ns", ns) if ns else ("emitters", em))
        previous[:] = [algo.ns_evaluations, algo.emitter_evaluations]

    algorithm.run(400, callback=record)
    assert {n for p, n in log if p == "ns"} <= {10, 20} and {n for p, n in log if p == "emitters"} <= {6, 12}
    assert algorithm.ns_evaluations + algorithm.emitter_evaluations == algorithm.evaluations == sum(n for _, n in log)
    chunks: list[list] = []
    for kind, n in log:
        if chunks and chunks[-1][0] == kind:
            chunks[-1][1] += n
        else:
            chunks.append([kind, n])
    kinds = [k for k, _ in chunks]
    assert "emitters" in kinds, "the tiny task must reach reward and run emitters"
    assert kinds == ["ns", "emitters"] * (len(kinds) // 2) + ["ns"] * (len(kinds) % 2)
    # NS chunks are whole generations adding up to >= 60: 10 + 3 x 20 first, then 3 x 20 (the last may be cut).
    assert chunks[0] == ["ns", 70] and all(n == 60 for k, n in chunks[1:-1] if k == "ns")
    # An emitter chunk spends >= 60 unless it ran out of emitters; a bootstrap (6 + 5 x 12) is never cut.
    for k, n in chunks[:-1]:
        assert k == "ns" or n >= 60 or n % 66 == 0
    assert algorithm.emitters_created >= algorithm.emitters_promoted
    assert len(algorithm.reward_archive) >= algorithm.emitters_created


@pytest.mark.parametrize("emitter", ["elitist", "cmaes"])
def test_tiny_runs_are_reproducible_and_resume(tmp_path, emitter):
    kwargs = {**TINY, "emitter": emitter}
    first, second, other = (SERENE(ENV_ID, seed=s, **kwargs) for s in (3, 3, 4))
    for algorithm in (first, second, other):
        algorithm.run(300)
    np.testing.assert_array_equal(first.metrics.outcomes, second.metrics.outcomes)
    assert not np.array_equal(first.metrics.outcomes, other.metrics.outcomes)
    assert first.emitter_evaluations > 0 and len(first.reward_archive) > 0
    np.testing.assert_array_equal(np.stack(first.reward_archive.genomes), np.stack(second.reward_archive.genomes))
    # Checkpoint in the middle (inside an emitter chunk), resume, and finish: same run.
    config = {"algo": "serene", "env": ENV_ID, "seed": 3, "hyperparams": kwargs}
    run = QDRun(SERENE(ENV_ID, seed=3, **kwargs), tmp_path / "run", config=config, progress=False)
    while run.algorithm.phase != "emitters" or run.algorithm.evaluations < 100:
        run.algorithm.step()
        run.algorithm.generation += 1
    run.save_checkpoint()
    resumed = QDRun.resume(tmp_path / "run", progress=False).algorithm
    assert resumed.evaluations == run.algorithm.evaluations and resumed.phase == "emitters"
    resumed.run(300)
    np.testing.assert_array_equal(resumed.metrics.outcomes, first.metrics.outcomes)
    assert resumed.generation == first.generation and len(resumed.archive) == len(first.archive)
    assert len(resumed.reward_archive) == len(first.reward_archive)


def test_emitter_offspring_fed_back_to_novelty_archive():
    algorithm = SERENE(ENV_ID, seed=0, **{**TINY, "stagnation_window": 20})
    while not algorithm.emitters:
        algorithm.step()
    # On the tiny task emitters climb into the densely archived goal, so their offspring are rarely more
    # novel than the ancestor: lower the ancestor's novelty so that every new offspring beats it.
    ident, emitter = next(iter(algorithm.emitters.items()))
    algorithm.phase, algorithm.active, emitter.ancestor_novelty = "emitters", ident, -1.0
    reference = algorithm.novelty_reference()
    algorithm._active_generation()
    assert len(emitter.novelty_candidates) == len({g.tobytes() for g in emitter.population}) > 2
    assert emitter.most_novel_novelty == max(c[2] for c in emitter.novelty_candidates)
    # The chunk's reference set: NS population + last offspring + novelty archive + reward archive, then fixed.
    np.testing.assert_array_equal(algorithm.chunk_reference, reference)
    assert len(reference) == len(algorithm.population) + 20 + len(algorithm.archive) + len(algorithm.reward_archive)
    algorithm._active_generation()
    np.testing.assert_array_equal(algorithm.chunk_reference, reference)
    # Terminate it: at the chunk's end its most novel candidates enter the novelty archive.
    emitter.stopped = True
    algorithm.emitters.pop(ident)
    algorithm.finished[ident], algorithm.active = emitter, None
    fed: list[np.ndarray] = []
    feed = algorithm.feed_novelty_archive

    def spy(genomes, descriptors, results):
        fed.append(genomes)
        assert len(results) == len(genomes) and descriptors.shape == (len(genomes), 2)
        feed(genomes, descriptors, results)

    algorithm.feed_novelty_archive = spy
    before = len(algorithm.archive)
    rescored = algorithm.score_novelty(np.concatenate([algorithm.population_descriptors,
                                                       algorithm.offspring_descriptors]))[:len(algorithm.population)]
    algorithm._end_emitter_chunk()
    chosen = sorted(emitter.novelty_candidates, key=lambda c: -c[2])[:TINY["archive_per_generation"]]
    np.testing.assert_array_equal(fed[0], np.stack([c[0] for c in chosen]))
    assert len(algorithm.archive) == before + len(chosen) and algorithm.phase == "ns" and not algorithm.finished
    # NS population rescored against the grown reward archive before the feedback (``evaluate_performances``).
    np.testing.assert_allclose(algorithm.population_novelty, rescored)
    assert algorithm.chunk_reference is None


def test_invalid_settings():
    with pytest.raises(ValueError, match="emitter"):
        SERENE(ENV_ID, emitter="cma")
    with pytest.raises(ValueError, match="chunk_size"):
        SERENE(ENV_ID, chunk_size=0)


def test_cli_writes_run_folder(tmp_path):
    argv = ["--env", ENV_ID, "--budget", "150", "--seed", "1", "-f", str(tmp_path), "--no-progress",
            "--save-freq", "50", "-params", "pop_size:10", "chunk_size:60", "emitter:cmaes"]
    assert main(SERENE, argv) == 0
    run_dir = tmp_path / "serene" / f"{ENV_ID}_1"
    for name in ("coverage_map.png", "reward_areas.png", "curves.png", "metrics.json", "checkpoint.pkl",
                 "config.json"):
        assert (run_dir / name).is_file(), name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["evaluations"] >= 150 and metrics["config"]["hyperparams"]["emitter"] == "cmaes"


def test_checkpoints_of_python_m_qd_serene_resume_from_python(tmp_path):
    import pickle
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    argv = [sys.executable, "-m", "qd.serene", "--env", "RedundantArm-v0", "--budget", "12", "-f", str(tmp_path),
            "--no-progress", "-params", "pop_size:4", "chunk_size:8"]
    done = subprocess.run(argv, cwd=root, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    run_dir = tmp_path / "serene" / "RedundantArm-v0_1"
    data = (run_dir / "checkpoint.pkl").read_bytes()
    assert b"__main__" not in data  # the classes are qd.serene's, not the script's
    checkpoint = pickle.loads(data)
    assert checkpoint["algorithm"] == "qd.serene.SERENE"
    assert type(checkpoint["state"]["reward_archive"]).__module__ == "qd.serene"
    resumed = QDRun.resume(run_dir, progress=False)
    assert isinstance(resumed.algorithm, SERENE) and resumed.algorithm.evaluations == 12
    assert main(SERENE, ["--resume", str(run_dir), "--budget", "20", "--no-progress"]) == 0
