"""Tests of SERENE and its emitters (qd/serene.py, qd/emitters.py) on a tiny point task registered only here.

Mutation testing (mutmut 3.8.1, qd/serene.py, qd/emitters.py, qd/ns.py; the run about a third done): 285 mutants
checked, 82 survived before (45 of them in functions no test reached: ``SERENE._select_emitter`` and
``RewardArchive.best_per_area``), 3 after, all equivalent:

- ``x_pareto_front__mutmut_3`` / ``_5`` (``np.asarray`` without ``dtype=np.float64``): the function only
  compares; numeric objectives order the same in their own dtype (SERENE passes a float64 ``column_stack``). Only
  values float64 cannot hold (ints beyond 2**53, long doubles) or non-numbers would differ.
- ``xǁElitistESEmitterǁtell__mutmut_37`` (``kind="STABLE"``): numpy reads the sort kind case-insensitively, so it is
  the same stable sort.

Second pass (the finished run's 39 survivors and timeouts of qd/serene.py and qd/emitters.py; the 3 above among
them): second pass: 39 examined, 34 killed, 5 equivalent, 8 timeouts (all 8 among the killed). The timeouts were
test loops, not algorithm loops: with ``phase`` never "emitters" (``_start_emitter_chunk__mutmut_1``-``_3``) or no
bootstrap ever started (``_start_emitter_chunk__mutmut_4``/``_10``/``_18``, ``_emitter_generation__mutmut_3``/``_6``)
``step`` still returns every call, but ``while phase != "emitters"`` / ``while not algorithm.emitters`` in two tests
never ended; those loops are now bounded (they fail), and direct tests of ``_start_emitter_chunk`` and
``_emitter_generation`` kill the mutants in milliseconds. Equivalent besides the 3 above:

- ``xǁSERENEǁ_start_emitter_chunk__mutmut_17`` (``kind="STABLE"``): as ``tell__mutmut_37``, the same stable sort.
- ``xǁSERENEǁnovelty_reference__mutmut_9`` (``reshape(len(p), -2)``): numpy (2.4) takes any negative size as the
  unknown dimension, silently, so it is ``reshape(len(p), -1)``.

Third pass (both files regenerated, 917 mutants, all run): 175 survived and 2 timed out before the tests under
"third pass" below; 18 after, all equivalent: the 5 above, and

- ``x_initial_sigma__mutmut_3`` / ``_5``, ``xǁSERENEǁ_run_generation__mutmut_15`` / ``_17``,
  ``xǁCMAESEmitterǁask__mutmut_3`` / ``_5`` (a ``dtype=np.float64`` dropped): scipy's ``cdist`` computes in
  float64 whatever it is given, the emitters' ``_check_batch`` makes the rewards float64, and pyribs's ES asks in
  float64 already.
- ``xǁRewardArchiveǁadd__mutmut_13``, ``xǁBaseEmitterǁ_check_batch__mutmut_14`` / ``_25`` (``reshape(-2)``): as
  ``novelty_reference__mutmut_9``, numpy takes any negative size as the unknown dimension.
- ``xǁCMAESEmitterǁtell__mutmut_29`` (``kind="STABLE"``): as ``tell__mutmut_37``.
- ``xǁCMAESEmitterǁ__init____mutmut_48`` / ``tell__mutmut_21`` (``self._asked = ""`` for ``None``): a tell before
  any ask or after the ask's tell is still refused, as no genome batch equals ``""``.
- ``xǁCMAESEmitterǁtell__mutmut_32`` (the ranked rewards passed as ``None``): pyribs's
  ``CMAEvolutionStrategy.tell`` ranks by the indices only and never reads the values (``check_stop`` gets them
  separately).

The timeouts are hangs, so killed: ``xǁCMAESEmitterǁ__init____mutmut_42`` (lower bound = upper bound) makes pyribs
resample forever, and ``xǁSERENEǁstep__mutmut_4`` (``phase == "NS"``) never runs a novelty-search generation.
"""

from __future__ import annotations

import copy
import json
import os

import numpy as np
import pytest
from qd_point_task import register_point_task

from qd import QDRun
from qd.emitters import BaseEmitter, CMAESEmitter, ElitistESEmitter, Emitter, default_stagnation_window
from qd.evaluation import EvaluationResult, SerialEvaluator
from qd.novelty import NoveltyArchive
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
        restored = cls(np.ones(4), np.zeros(2), sigma=0.5, bounds=(-1.0, 1.0), seed=9)
        restored.load_state_dict(state)
        np.testing.assert_array_equal(restored.ask(), emitter.ask())


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
    for _ in range(50):  # bounded: a mutant that never enters an emitter chunk fails instead of hanging
        if run.algorithm.phase == "emitters" and run.algorithm.evaluations >= 100:
            break
        run.algorithm.step()
        run.algorithm.generation += 1
    assert run.algorithm.phase == "emitters"
    run.save_checkpoint()
    resumed = QDRun.resume(tmp_path / "run", progress=False).algorithm
    assert resumed.evaluations == run.algorithm.evaluations and resumed.phase == "emitters"
    resumed.run(300)
    np.testing.assert_array_equal(resumed.metrics.outcomes, first.metrics.outcomes)
    assert resumed.generation == first.generation and len(resumed.archive) == len(first.archive)
    assert len(resumed.reward_archive) == len(first.reward_archive)


def test_emitter_offspring_fed_back_to_novelty_archive():
    algorithm = SERENE(ENV_ID, seed=0, **{**TINY, "stagnation_window": 20})
    for _ in range(100):  # bounded: 10 steps on this seed; a mutant that never promotes one fails, not hangs
        if algorithm.emitters:
            break
        algorithm.step()
    assert algorithm.emitters
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


# -- hand-built state: selection, feedback, emitter settings -----------------------------------------------
def _hand_novelty(descriptor, reference, k: int) -> float:
    """The authors' novelty by hand: sorted distances to the reference, the nearest dropped, the next k averaged."""
    distances = sorted(float(np.linalg.norm(np.asarray(descriptor) - np.asarray(r))) for r in reference)
    return float(np.mean(distances[1:k + 1]))


def _area_result(area: int, reward: float) -> EvaluationResult:
    return EvaluationResult(reward=reward, reward_area=area, outcome=np.zeros(2), trajectory=np.zeros((1, 2)),
                            observation=None, state=np.zeros(2))


def _emitter(algorithm, descriptor, *, improvement: float = 0.0, seed: int = 0) -> ElitistESEmitter:
    emitter = ElitistESEmitter(np.zeros(algorithm.genome_size), np.asarray(descriptor, dtype=float), sigma=0.1,
                               bounds=(-1.0, 1.0), seed=seed)
    emitter.improvement = improvement
    return emitter


def test_reward_archive_best_per_area_keeps_the_maximum_of_each_area():
    archive = RewardArchive(3)
    assert archive.best_per_area() == {}
    for area, reward in ((0, 0.5), (2, 0.7), (0, 0.9), (2, 0.3), (5, -2.0)):
        archive.add(np.zeros(3), np.zeros(2), _area_result(area, reward))
    assert archive.best_per_area() == {0: 0.9, 2: 0.7, 5: -2.0}


def test_select_emitter_takes_the_best_improvement_while_the_reward_archive_is_empty():
    algorithm = SERENE(ENV_ID, seed=0, **{**TINY, "k_neighbors": 2})
    for ident, improvement in ((5, 0.2), (2, 0.9), (8, 0.5)):
        algorithm.emitters[ident] = _emitter(algorithm, [float(ident), 0.0], improvement=improvement)
    reference = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 4.0], [6.0, 0.0]])
    algorithm.chunk_reference = reference.copy()
    before = algorithm.clock.seconds["novelty"]
    state = algorithm.rng.bit_generator.state
    algorithm._select_emitter()
    assert algorithm.active == 2 and algorithm.rng.bit_generator.state == state  # argmax, no draw
    # Its ancestor's novelty is taken against the chunk's fixed reference set: (2, 0) -> 1, 2, 4.47, 4: (2 + 4) / 2.
    assert algorithm.emitters[2].ancestor_novelty == pytest.approx(_hand_novelty([2.0, 0.0], reference, 2))
    assert algorithm.emitters[2].ancestor_novelty == pytest.approx(3.0)
    assert algorithm.emitters[5].ancestor_novelty == 0.0 == algorithm.emitters[8].ancestor_novelty
    np.testing.assert_array_equal(algorithm.chunk_reference, reference)
    assert algorithm.clock.seconds["novelty"] > before


def test_select_emitter_draws_uniformly_from_the_pareto_front():
    algorithm = SERENE(ENV_ID, seed=0, **{**TINY, "k_neighbors": 2})
    rewarding = [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [5.0, 5.0]]
    for descriptor in rewarding:
        algorithm.reward_archive.add(np.zeros(algorithm.genome_size), np.array(descriptor), _result(0.5))
    # Novelty against the reward archive (k = 2, nearest dropped): A (0,0) 1; B (5,5) 6.40; C (1,0) and D (0,1)
    # (1 + 1.41) / 2. With the improvements, A (1, 0) is dominated by C; B, C, D form the front.
    ids = [4, 9, 2, 7]
    for ident, descriptor, improvement in zip(ids, [rewarding[0], rewarding[3], rewarding[1], rewarding[2]],
                                              [0.0, 0.1, 2.0, 2.0]):
        algorithm.emitters[ident] = _emitter(algorithm, descriptor, improvement=improvement, seed=ident)
    assert _hand_novelty([0.0, 0.0], rewarding, 2) == pytest.approx(1.0)
    assert _hand_novelty([1.0, 0.0], rewarding, 2) == pytest.approx((1 + np.sqrt(2)) / 2)
    # The fixed reference set of the chunk (not the reward archive) gives the selected ancestor's novelty.
    reference = np.array([[0.0, 0.0], [0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    algorithm.chunk_reference = reference
    chosen = []
    for _ in range(40):
        algorithm.active = None
        twin = np.random.default_rng()
        twin.bit_generator.state = algorithm.rng.bit_generator.state
        algorithm._select_emitter()
        assert algorithm.active == ids[int(twin.choice([1, 2, 3]))]
        assert algorithm.rng.bit_generator.state == twin.bit_generator.state
        chosen.append(algorithm.active)
    assert set(chosen) == {9, 2, 7}
    for ident in set(chosen):
        emitter = algorithm.emitters[ident]
        expected = _hand_novelty(emitter.ancestor_descriptor, reference, 2)
        assert emitter.ancestor_novelty == pytest.approx(expected)
    assert algorithm.emitters[9].ancestor_novelty == pytest.approx((np.hypot(5, 5) + np.hypot(5, 5)) / 2)
    assert algorithm.emitters[4].ancestor_novelty == 0.0  # never selected


def test_pareto_front_refuses_a_flat_array():
    with pytest.raises(ValueError, match="shape"):
        pareto_front(np.array([1.0, 2.0]))


def _fake_generation(algorithm, emitter, genomes, descriptors) -> None:
    """Make ``emitter``'s next generation the given genomes / descriptors (rewards 0.5, nothing archived)."""
    def run(target):
        assert target is emitter
        target.population = np.array(genomes, dtype=float)
        target.population_descriptors = np.array(descriptors, dtype=float)
        target.population_results = [_area_result(0, 0.1 * (i + 1)) for i in range(len(genomes))]
    algorithm._run_generation = run


def test_active_generation_keeps_new_offspring_above_the_threshold_once_per_genome():
    algorithm = SERENE(ENV_ID, seed=0, **{**TINY, "k_neighbors": 1})
    size = algorithm.genome_size
    a, b, c, d, e = (np.full(size, v) for v in (0.1, 0.2, 0.3, 0.4, 0.5))
    # Reference: the origin twice; with k = 1 the novelty of a descriptor is its norm (exactly).
    algorithm.chunk_reference = np.zeros((2, 2))
    emitter = _emitter(algorithm, [0.0, 0.0])
    emitter.ancestor_novelty = 1.0
    old = (c.copy(), np.array([9.0, 9.0]), 5.0, _area_result(0, 1.0))
    emitter.novelty_candidates = [old]
    algorithm.emitters[3], algorithm.active = emitter, 3
    # Novelties 1 (= the threshold: not above), 2, 2 (same genome b), 3 (genome c: already a candidate), 0.5.
    _fake_generation(algorithm, emitter, [a, b, b, c, d], [[1.0, 0.0], [2.0, 0.0], [0.0, 2.0], [3.0, 0.0], [0.5, 0]])
    algorithm._active_generation()
    assert len(emitter.novelty_candidates) == 2 and emitter.novelty_candidates[0] is old
    genome, descriptor, novelty, result = emitter.novelty_candidates[1]
    np.testing.assert_array_equal(genome, b)
    np.testing.assert_array_equal(descriptor, [2.0, 0.0])
    assert novelty == 2.0 and result.reward == pytest.approx(0.2)
    assert emitter.most_novel_novelty == 3.0 and emitter.threshold_novelty == 3.0
    assert algorithm.active == 3 and algorithm.emitters[3] is emitter and not algorithm.finished
    # The most novel so far is now the threshold: an offspring exactly as novel is not a candidate.
    _fake_generation(algorithm, emitter, [e], [[0.0, 3.0]])
    algorithm._active_generation()
    assert len(emitter.novelty_candidates) == 2 and emitter.most_novel_novelty == 3.0


def test_active_generation_at_the_ancestor_novelty_keeps_it_and_termination_finishes_the_emitter():
    algorithm = SERENE(ENV_ID, seed=0, **{**TINY, "k_neighbors": 1})
    algorithm.chunk_reference = np.zeros((2, 2))
    emitter = _emitter(algorithm, [0.0, 0.0])
    emitter.ancestor_novelty = 2.0
    other = _emitter(algorithm, [1.0, 0.0])
    algorithm.emitters.update({6: emitter, 1: other})
    algorithm.active, algorithm.emitters_terminated = 6, 2
    emitter.stopped = True
    _fake_generation(algorithm, emitter, np.full((2, algorithm.genome_size), 0.3), [[2.0, 0.0], [0.0, 1.0]])
    algorithm._active_generation()
    # No offspring beat the ancestor: the threshold is still the ancestor's novelty.
    assert emitter.most_novel_novelty is None and not emitter.novelty_candidates
    assert algorithm.finished == {6: emitter} and algorithm.emitters == {1: other}
    assert algorithm.emitters_terminated == 3 and algorithm.active is None


def test_end_emitter_chunk_feeds_every_finished_emitter_and_resets_the_chunk():
    algorithm = SERENE(ENV_ID, seed=0, **{**TINY, "k_neighbors": 1})
    size = algorithm.genome_size
    algorithm.archive = NoveltyArchive(size, 2, k_neighbors=1)
    quiet, fed = _emitter(algorithm, [0.0, 0.0]), _emitter(algorithm, [1.0, 0.0])
    fed.novelty_candidates = [(np.full(size, g), np.array([float(i), 0.0]), n, _area_result(0, 0.5))
                              for i, (g, n) in enumerate([(0.0, 1.0), (0.1, 4.0), (0.2, 2.0), (0.3, 3.0)])]
    algorithm.finished = {1: quiet, 4: fed}  # the first (sorted) has no candidate
    running = _emitter(algorithm, [2.0, 0.0], improvement=9.0)
    running.values = [np.array([v]) for v in (1.0, 2.0, 3.0, 4.0, 6.0)]
    algorithm.emitters[0], algorithm.active = running, 0
    algorithm.phase, algorithm.chunk_spent, algorithm.candidate_queue = "emitters", 61, [7]
    algorithm.chunk_reference = np.zeros((2, 2))
    algorithm._end_emitter_chunk()
    assert running.improvement == pytest.approx((3 + 4 + 6) / 3 - 2)  # re-estimated at the chunk's end
    # The two most novel candidates of emitter 4 (archive_per_generation = 2): novelty 4 then 3.
    np.testing.assert_array_equal(algorithm.archive.genomes, [np.full(size, 0.1), np.full(size, 0.3)])
    np.testing.assert_array_equal(algorithm.archive.descriptors, [[1.0, 0.0], [3.0, 0.0]])
    assert algorithm.active is None and algorithm.chunk_spent == 0 and algorithm.candidate_queue == []
    assert algorithm.phase == "ns" and algorithm.finished == {} and algorithm.chunk_reference is None


def test_emitter_improvement_without_values_is_zero():
    emitter = ElitistESEmitter(np.zeros(2), np.zeros(2), sigma=0.1, bounds=(-1.0, 1.0), seed=0)
    emitter.improvement = 0.7
    assert emitter.estimate_improvement() == 0.0 and emitter.improvement == 0.0


def test_emitter_state_dict_and_load_are_independent_copies():
    emitter = ElitistESEmitter(np.zeros(3), np.zeros(2), sigma=0.2, bounds=(-1.0, 1.0), seed=2)
    genomes = emitter.ask()
    emitter.tell(genomes, np.arange(6.0), np.zeros((6, 2)), [_result(1.0)] * 6)
    state = emitter.state_dict()
    following = emitter.ask()  # advances the emitter's generator, not the state's
    emitter.tell(following, np.arange(12.0), np.zeros((12, 2)), [_result(1.0)] * 12)
    assert len(state["values"]) == 1 and state["steps"] == 0
    first, second = (ElitistESEmitter(np.ones(3), np.zeros(2), sigma=0.5, bounds=(-1.0, 1.0), seed=9)
                     for _ in range(2))
    first.load_state_dict(state)
    second.load_state_dict(state)
    np.testing.assert_array_equal(first.ask(), following)
    np.testing.assert_array_equal(second.ask(), following)  # the first's draws did not touch the second
    assert len(state["values"]) == 1


def test_elitist_emitter_passes_its_settings_and_mutates_by_hand():
    ancestor = np.array([0.45, -0.45, 0.0])
    emitter = ElitistESEmitter(ancestor, np.zeros(2), sigma=0.3, bounds=(-0.5, 0.5), pop_size=4,
                               offspring_per_parent=1, seed=7, stagnation_window=30, stagnation_compare=5)
    assert (emitter.pop_size, emitter.stagnation_window, emitter.stagnation_compare) == (4, 30, 5)
    assert emitter.offspring_per_parent == 1 and emitter.initialised is False
    noise = np.random.default_rng(7)
    first = emitter.ask()
    expected = np.clip(ancestor + noise.normal(0.0, 0.3, size=(4, 3)), -0.5, 0.5)
    np.testing.assert_array_equal(first, expected)
    assert np.any(np.abs(first) == 0.5)  # the bounds clip
    emitter.tell(first, np.array([1.0, 0.0, 1.0, 0.0]), np.zeros((4, 2)), [_result(1.0)] * 4)
    assert emitter.initialised is True
    offspring = emitter.ask()  # one mutant per parent
    np.testing.assert_array_equal(offspring, np.clip(first + noise.normal(0.0, 0.3, size=(4, 3)), -0.5, 0.5))
    with pytest.raises(ValueError, match="offspring_per_parent"):
        ElitistESEmitter(ancestor, np.zeros(2), sigma=0.3, bounds=(-0.5, 0.5), offspring_per_parent=0)


def test_elitist_emitter_survivors_keep_the_order_of_equal_rewards():
    emitter = ElitistESEmitter(np.zeros(3), np.zeros(2), sigma=0.1, bounds=(-1.0, 1.0), seed=5)
    parents = emitter.ask()
    emitter.tell(parents, np.array([1.0, 0.0] * 3), np.zeros((6, 2)), [_result(1.0)] * 6)
    offspring = emitter.ask()
    emitter.tell(offspring, np.array([1.0, 0.0] * 6), np.zeros((12, 2)), [_result(1.0)] * 12)
    # Rewards 1, 0, 1, 0, ... over parents + offspring: the stable sort keeps the first three 1s of each.
    np.testing.assert_array_equal(emitter.population, np.concatenate([parents[[0, 2, 4]], offspring[[0, 2, 4]]]))


# -- second mutation pass: chunk start, bootstrap gate, reference set, recomputed descriptors ----------------
def test_start_emitter_chunk_orders_candidates_by_reward_novelty_keeping_ties_in_creation_order():
    algorithm = SERENE(ENV_ID, seed=0, **{**TINY, "k_neighbors": 2})
    a, b, c = [0.0, 0.0], [1.0, 0.0], [5.0, 0.0]
    for descriptor in (a, b, c):
        algorithm.reward_archive.add(np.zeros(algorithm.genome_size), np.array(descriptor), _result(0.5))
    # No candidate (emitters only): an empty queue, nothing to score.
    algorithm._start_emitter_chunk()
    assert algorithm.phase == "emitters" and algorithm.candidate_queue == []
    # Novelty against the reward archive (k = 2, nearest dropped): a (1 + 5) / 2 = 3, b (1 + 4) / 2 = 2.5,
    # c (4 + 5) / 2 = 4.5: c first, then a, then b; equal novelties keep the creation (insertion) order.
    assert [_hand_novelty(d, [a, b, c], 2) for d in (a, b, c)] == [3.0, 2.5, 4.5]
    ids = [17, 3, 11, 0, 8, 25, 6, 14, 2, 29, 9, 21, 5, 12, 27, 1, 19, 23]
    ancestors = [(b, a, c)[j % 3] for j in range(len(ids))]
    for ident, descriptor in zip(ids, ancestors):
        algorithm.candidates[ident] = _emitter(algorithm, descriptor)
    algorithm.phase = "ns"
    algorithm._start_emitter_chunk()
    expected = [11, 25, 2, 21, 27, 23, 3, 8, 14, 9, 12, 19, 17, 0, 6, 29, 5, 1]  # c's, a's, b's ids, in order
    assert algorithm.phase == "emitters" and algorithm.candidate_queue == expected
    # Without a reward archive the candidates keep their creation order.
    algorithm.reward_archive = RewardArchive(algorithm.genome_size)
    algorithm._start_emitter_chunk()
    assert algorithm.candidate_queue == ids


def test_emitter_generation_starts_a_bootstrap_only_while_more_than_a_third_of_the_chunk_is_left():
    algorithm = SERENE(ENV_ID, seed=0, **TINY)  # chunk_size 60: a bootstrap starts while > 20 evaluations are left
    calls: list[int | None] = []
    algorithm._bootstrap_generation = lambda: calls.append(algorithm.bootstrapping)
    algorithm.candidates = {3: _emitter(algorithm, [0.0, 0.0]), 8: _emitter(algorithm, [1.0, 0.0])}
    algorithm.phase, algorithm.candidate_queue, algorithm.chunk_spent = "emitters", [8, 3], 39  # 21 left
    assert algorithm._emitter_generation() is True
    assert calls == [8] and algorithm.bootstrapping == 8 and algorithm.candidate_queue == [3]
    # A running bootstrap goes on: the queue is not touched.
    algorithm.chunk_spent = 0
    assert algorithm._emitter_generation() is True
    assert calls == [8, 8] and algorithm.bootstrapping == 8 and algorithm.candidate_queue == [3]
    # Exactly a third left (20 of 60): no new bootstrap; without emitters the chunk ends.
    algorithm.bootstrapping, algorithm.chunk_spent = None, 40
    assert algorithm._emitter_generation() is False
    assert calls == [8, 8] and algorithm.bootstrapping is None
    assert algorithm.phase == "ns" and algorithm.candidate_queue == [] and algorithm.chunk_spent == 0


def test_novelty_reference_skips_missing_and_empty_parts():
    algorithm = SERENE(ENV_ID, seed=0, **TINY)
    population = np.array([[0.0, 1.0], [2.0, 3.0]])
    algorithm.population_descriptors = population
    algorithm.archive = NoveltyArchive(algorithm.genome_size, 2, k_neighbors=2)  # empty: (0, 2) descriptors
    assert algorithm.offspring_descriptors is None
    np.testing.assert_array_equal(algorithm.novelty_reference(), population)  # no offspring, empty archives
    algorithm.offspring_descriptors = np.empty((0, 2))
    algorithm.reward_archive.add(np.zeros(algorithm.genome_size), np.array([4.0, 5.0]), _result(0.5))
    np.testing.assert_array_equal(algorithm.novelty_reference(), [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])


class _Relabelled(SERENE):
    """SERENE whose behaviour space can be switched to ``(-y, x, 1)`` (a changed, wider space)."""

    relabelled = False

    def descriptors(self, results):
        if not self.relabelled:
            return super().descriptors(results)
        return np.array([[-r.outcome[1], r.outcome[0], 1.0] for r in results])


def _outcome_result(x: float, y: float) -> EvaluationResult:
    return EvaluationResult(reward=0.5, reward_area=0, outcome=np.array([x, y]), trajectory=np.zeros((1, 2)),
                            observation=None, state=np.zeros(2))


def test_recompute_descriptors_relabels_every_stored_descriptor():
    algorithm = _Relabelled(ENV_ID, seed=0, **TINY)
    size = algorithm.genome_size
    stale = np.zeros(2)
    for x in (1.0, 3.0):
        algorithm.reward_archive.add(np.full(size, x), stale, _outcome_result(x, x + 1))
    algorithm.offspring_results = [_outcome_result(5.0, 6.0), _outcome_result(7.0, 8.0)]
    algorithm.offspring_descriptors = np.zeros((2, 2))
    pending = [(4, np.full(size, 0.4), stale, _outcome_result(9.0, 10.0)),
               (7, np.full(size, 0.7), stale, _outcome_result(11.0, 12.0))]
    algorithm.pending_initial = list(pending)
    emitters = []
    for offset in (0.0, 20.0, 40.0):  # a candidate, an emitter, a finished emitter
        emitter = _emitter(algorithm, stale)
        emitter.ancestor_result = _outcome_result(offset + 1, offset + 2)
        emitter.population_results = [_outcome_result(offset + 3, offset + 4), _outcome_result(offset + 5, 0.0)]
        emitter.population_descriptors = np.zeros((2, 2))
        emitter.novelty_candidates = [(np.full(size, offset), stale, 7.0 + offset, _outcome_result(offset + 6, 1.0))]
        emitters.append(emitter)
    idle = _emitter(algorithm, stale)  # told nothing yet: only its ancestor is relabelled
    idle.ancestor_result = _outcome_result(2.0, 3.0)
    algorithm.candidates, algorithm.emitters = {0: emitters[0], 5: idle}, {1: emitters[1]}
    algorithm.finished = {2: emitters[2]}
    algorithm.relabelled = True
    algorithm.recompute_descriptors()
    np.testing.assert_array_equal(algorithm.reward_archive.descriptors, [[-2.0, 1.0, 1.0], [-4.0, 3.0, 1.0]])
    np.testing.assert_array_equal(algorithm.offspring_descriptors, [[-6.0, 5.0, 1.0], [-8.0, 7.0, 1.0]])
    assert [(i, r) for i, _, _, r in algorithm.pending_initial] == [(i, r) for i, _, _, r in pending]
    np.testing.assert_array_equal(np.stack([e[1] for e in algorithm.pending_initial]), [p[1] for p in pending])
    np.testing.assert_array_equal(np.stack([e[2] for e in algorithm.pending_initial]),
                                  [[-10.0, 9.0, 1.0], [-12.0, 11.0, 1.0]])
    for offset, emitter in zip((0.0, 20.0, 40.0), emitters):
        np.testing.assert_array_equal(emitter.ancestor_descriptor, [-(offset + 2), offset + 1, 1.0])
        np.testing.assert_array_equal(emitter.population_descriptors,
                                      [[-(offset + 4), offset + 3, 1.0], [0.0, offset + 5, 1.0]])
        assert len(emitter.novelty_candidates) == 1
        genome, descriptor, novelty, result = emitter.novelty_candidates[0]
        np.testing.assert_array_equal(genome, np.full(size, offset))
        np.testing.assert_array_equal(descriptor, [-1.0, offset + 6, 1.0])
        assert novelty == 7.0 + offset and result.outcome.tolist() == [offset + 6, 1.0]
    np.testing.assert_array_equal(idle.ancestor_descriptor, [-3.0, 2.0, 1.0])
    assert idle.population_descriptors.shape == (0, 2) and idle.novelty_candidates == []


# -- third pass: the CMA-ES update, the emitters' bookkeeping and settings, SERENE's reward-archive update ------
def test_initial_sigma_falls_back_only_without_another_genome():
    assert initial_sigma(0, np.array([[0.2, 0.3]]), fallback=0.07) == 0.07  # nobody else
    assert initial_sigma(1, np.array([[0.0, 0.0], [3.0, 4.0]]), fallback=0.07) == pytest.approx(5.0 / 3)


def test_stored_arrays_are_float64_copies_of_what_was_passed():
    """Emitters and the reward archive keep float64 copies: an int genome kept as is would make the ES's later
    in-place clipping and the archive's stacking depend on the caller's dtype, and a caller's later write would
    reach into the archive."""
    genome, descriptor = np.array([1, 0, 1]), np.array([[2, 3]])
    archive = RewardArchive(3)
    archive.add(genome, descriptor, _result(0.5))
    genome[0], descriptor[0, 0] = 7, 7
    assert archive.genomes[0].dtype == np.float64 and archive.genomes[0].tolist() == [1.0, 0.0, 1.0]
    assert archive.descriptors_list[0].dtype == np.float64 and archive.descriptors_list[0].tolist() == [2.0, 3.0]
    emitter = ElitistESEmitter(np.array([1, 0, 1]), np.array([2, 3]), sigma=0.1, bounds=(-1.0, 1.0), seed=0)
    assert emitter.ancestor_genome.dtype == emitter.ancestor_descriptor.dtype == np.float64
    checked = BaseEmitter._check_batch(np.array([[1, 0, 1]] * 6), np.arange(6).reshape(6, 1),
                                       np.ones((6, 1, 2), dtype=int), [_result(1.0)] * 6)
    assert [a.dtype for a in checked] == [np.float64] * 3
    assert [a.shape for a in checked] == [(6, 3), (6,), (6, 2)]  # column rewards flattened, descriptors 2-D
    emitter._record(np.ones((6, 3), dtype=int), np.arange(6), np.ones((6, 2), dtype=int), [_result(1.0)] * 6)
    assert {a.dtype for a in (emitter.population, emitter.population_rewards, emitter.population_descriptors)} == \
        {np.dtype(np.float64)}
    with pytest.raises(ValueError, match=r"genomes, rewards and results must have the same length, got 6, 5 and 6"):
        BaseEmitter._check_batch(np.ones((6, 3)), np.ones(5), np.ones((6, 2)), [_result(1.0)] * 6)


@pytest.mark.parametrize("cls", [ElitistESEmitter, CMAESEmitter])
def test_a_fresh_emitter_keeps_its_settings_and_starts_empty(cls):
    ancestor = _result(0.8)
    pop_size = 1 if cls is ElitistESEmitter else 2  # CMA-ES needs two to rank
    emitter = cls(np.zeros(3), np.zeros(2), sigma=0.0, bounds=(-1.0, 1.0), pop_size=pop_size, seed=0,
                  ancestor_result=ancestor, stagnation_window=5, stagnation_compare=5)
    assert emitter.ancestor_result is ancestor and emitter.sigma == 0.0 and emitter.pop_size == pop_size
    assert (emitter.stagnation_window, emitter.stagnation_compare) == (5, 5)
    assert emitter.improvement == 0.0 and emitter.stopped is False and emitter.terminated is False
    assert emitter.population.shape == (0, 3) and emitter.population_rewards.shape == (0,)
    assert emitter.population_descriptors.shape == (0, 2) and emitter.population_results == []
    assert cls(np.zeros(3), np.zeros(2), sigma=0.1, bounds=(-1.0, 1.0), stagnation_window=1,
               stagnation_compare=1).stagnation_compare == 1


@pytest.mark.parametrize(("settings", "message"), [
    ({"sigma": -0.1}, "sigma must be >= 0, got -0.1"),
    ({"pop_size": 0}, "pop_size must be >= 1, got 0"),
    ({"stagnation_window": 10, "stagnation_compare": 20}, r"stagnation_window \(10\) must be >= stagnation_compare"),
    ({"stagnation_window": 10, "stagnation_compare": 0}, r"stagnation_window \(10\) must be >= stagnation_compare"),
])
def test_emitter_settings_are_checked(settings, message):
    with pytest.raises(ValueError, match=message):
        ElitistESEmitter(np.zeros(3), np.zeros(2), bounds=(-1.0, 1.0), **{"sigma": 0.1, **settings})


def _stagnation_probe(window: int, compare: int, values: list[list[float]]) -> bool:
    emitter = ElitistESEmitter(np.zeros(2), np.zeros(2), sigma=0.1, bounds=(-1.0, 1.0),
                               stagnation_window=window, stagnation_compare=compare)
    emitter.values = [np.array(v, dtype=float) for v in values]
    emitter.steps = len(values)
    return emitter.stagnated()


def test_stagnation_compares_median_and_maximum_of_the_window_ends_by_hand():
    # The last 4 generations of 5 (steps 5 > window 4); first 2 vs last 2.
    early = [9.0]  # outside the window
    # Equal medians (2 and 2), a higher maximum at the end (5 > 2): stagnated (median not better).
    assert _stagnation_probe(4, 2, [early, [2, 2], [2, 2], [2, 2], [1, 5]]) is True
    # Better median (1 -> 2), equal maximum (3 and 3): stagnated (maximum not better).
    assert _stagnation_probe(4, 2, [early, [1, 1], [1, 3], [2, 2], [2, 3]]) is True
    # Better median and maximum: going on.
    assert _stagnation_probe(4, 2, [early, [1, 1], [1, 2], [2, 2], [2, 3]]) is False
    # The ends are the first and last ``compare`` generations of the window: window 5, compare 2. The middle
    # generation (-5) would lower the end's median to 0 (<= 1) if it were counted.
    assert _stagnation_probe(5, 2, [early, [1], [1], [-5], [0], [3]]) is False


def _cmaes(ancestor, **settings) -> CMAESEmitter:
    return CMAESEmitter(np.asarray(ancestor, dtype=float), np.zeros(2), **{"sigma": 0.3, "bounds": (-0.5, 0.5),
                                                                           "seed": 3, **settings})


def test_cmaes_emitter_builds_its_es_as_written():
    """The ES gets the emitter's sigma, batch size and bounds, a seed drawn from the emitter's generator, and the
    ancestor clipped into the bounds as its mean."""
    from ribs.emitters.opt import CMAEvolutionStrategy

    emitter = _cmaes([0.9, -0.2, 0.0], pop_size=5, stagnation_compare=4)
    assert emitter.stagnation_compare == 4
    twin = CMAEvolutionStrategy(sigma0=0.3, solution_dim=3, batch_size=5,
                                seed=int(np.random.default_rng(3).integers(2**31)), lower_bounds=-0.5, upper_bounds=0.5)
    twin.reset(np.array([0.5, -0.2, 0.0]))
    np.testing.assert_array_equal(emitter.es.mean, [0.5, -0.2, 0.0])
    assert emitter.es.sigma == 0.3
    asked = emitter.ask()
    np.testing.assert_array_equal(asked, twin.ask())
    assert asked.dtype == np.float64 and np.all(np.abs(asked) <= 0.5)
    assert np.any(asked < 0.0) and np.any(asked > 0.0)  # both bounds in play, not one value
    assert _cmaes([0.0, 0.0], sigma=0.0).es.sigma == 1e-12  # a zero step size is kept just above zero


def test_cmaes_emitter_moves_its_mean_to_the_weighted_best_half_by_hand():
    """pyribs's recombination: the new mean is the log-weighted mean of the ``pop_size // 2`` best (weights
    ``log(mu + 1/2) - log(i)``, normalised)."""
    emitter = _cmaes([0.0, 0.0, 0.0], pop_size=6)
    genomes = emitter.ask()
    rewards = np.array([0.3, 0.9, 0.1, 0.5, 0.7, 0.2])
    emitter.tell(genomes, rewards, np.zeros((6, 2)), [_result(1.0)] * 6)
    weights = np.log(3.5) - np.log([1.0, 2.0, 3.0])
    expected = (weights / weights.sum()) @ genomes[[1, 4, 3]]
    np.testing.assert_allclose(emitter.es.mean, expected, rtol=1e-12)
    assert emitter.evaluations == 6 and emitter.steps == 1
    genomes = emitter.ask()
    emitter.tell(genomes, rewards, np.zeros((6, 2)), [_result(1.0)] * 6)
    assert emitter.evaluations == 12 and emitter.steps == 2
    # Equal rewards keep the batch order (a stable sort): the parents are 5, then 0 and 1 of the five ties.
    tied = _cmaes([0.0, 0.0, 0.0], pop_size=6)
    genomes = tied.ask()
    tied.tell(genomes, np.array([0.2, 0.2, 0.2, 0.2, 0.2, 0.5]), np.zeros((6, 2)), [_result(1.0)] * 6)
    np.testing.assert_allclose(tied.es.mean, (weights / weights.sum()) @ genomes[[5, 0, 1]], rtol=1e-12)
    # pop_size 3: one parent, the mean is the best genome itself.
    single = _cmaes([0.0, 0.0], pop_size=3)
    genomes = single.ask()
    single.tell(genomes, np.array([0.1, 0.2, 0.6]), np.zeros((3, 2)), [_result(1.0)] * 3)
    np.testing.assert_allclose(single.es.mean, genomes[2], rtol=1e-12)


def test_cmaes_emitter_refuses_genomes_other_than_the_last_ask():
    emitter = _cmaes([0.0, 0.0])
    genomes = emitter.ask()
    with pytest.raises(ValueError, match=r"^CMAESEmitter\.tell needs the genomes of the last ask, in order\.$"):
        emitter.tell(genomes[::-1], np.arange(6.0), np.zeros((6, 2)), [_result(1.0)] * 6)
    emitter.tell(genomes, np.arange(6.0), np.zeros((6, 2)), [_result(1.0)] * 6)
    with pytest.raises(ValueError, match="last ask"):  # told once only
        emitter.tell(genomes, np.arange(6.0), np.zeros((6, 2)), [_result(1.0)] * 6)


def _scripted_rewards(algorithm, rewards: list[float]) -> None:
    """Make ``algorithm.evaluate`` return results with the given rewards (outcome (reward, 0))."""
    def evaluate(genomes):
        assert len(genomes) == len(rewards)
        return [EvaluationResult(reward=r, reward_area=0 if r > 0 else -1, outcome=np.array([r, 0.0]),
                                 trajectory=np.zeros((1, 2)), observation=None, state=np.zeros(2)) for r in rewards]
    algorithm.evaluate = evaluate


def test_run_generation_archives_the_best_rewarding_then_every_better_offspring():
    algorithm = SERENE(ENV_ID, seed=0, **TINY)
    emitter = _emitter(algorithm, [0.0, 0.0])
    algorithm.chunk_spent, algorithm.emitter_evaluations = 7, 2
    _scripted_rewards(algorithm, [0.0, -1.0, 0.0, -2.0, 0.0, -0.5])  # nothing rewarding: nothing archived
    algorithm._run_generation(emitter)
    assert len(algorithm.reward_archive) == 0 and emitter.archived_rewards == []
    assert (algorithm.chunk_spent, algorithm.emitter_evaluations) == (13, 8)
    fresh = _emitter(algorithm, [0.0, 0.0], seed=1)
    _scripted_rewards(algorithm, [0.1, 0.4, 0.3, 0.0, 0.4, 0.2])  # first archiving: only the best (first of ties)
    algorithm._run_generation(fresh)
    assert fresh.archived_rewards == [0.4] and algorithm.reward_archive.rewards == [0.4]
    np.testing.assert_array_equal(algorithm.reward_archive.genomes[0], fresh.population[1])
    assert algorithm.reward_archive.descriptors.tolist() == [[0.4, 0.0]]
    # Later generations: every survivor above the best archived so far (0.4), in population order.
    _scripted_rewards(algorithm, [0.5, 0.4, 0.45, 0.0, 0.2, 0.3, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
    algorithm._run_generation(fresh)
    assert fresh.population_rewards.tolist() == [0.5, 0.45, 0.4, 0.4, 0.4, 0.3]
    assert fresh.archived_rewards == [0.4, 0.5, 0.45] and algorithm.reward_archive.rewards == [0.4, 0.5, 0.45]
    assert (algorithm.chunk_spent, algorithm.emitter_evaluations) == (31, 26)
    small = _emitter(algorithm, [0.0, 0.0], seed=2)
    _scripted_rewards(algorithm, [0.25, 0.5, 0.75, 0.0, 0.0, 0.0])  # rewards below 1 count (> 0, not > 1)
    algorithm._run_generation(small)
    assert small.archived_rewards == [0.75]


def _bootstrap_probe(algorithm, values: list[list[float]], *, stopped: bool = False):
    """Bootstrap a candidate whose generations yield the given value lists; returns (candidate, generations)."""
    candidate = _emitter(algorithm, [0.0, 0.0])
    algorithm.candidates[5], algorithm.bootstrapping = candidate, 5
    pending = iter(values)

    def run(target):
        target.values.append(np.array(next(pending), dtype=float))
        target.stopped = stopped

    algorithm._run_generation = run
    generations = 0
    while algorithm.bootstrapping is not None:
        algorithm._bootstrap_generation()
        generations += 1
    return candidate, generations


def test_bootstrap_runs_its_generations_and_promotes_only_improving_live_candidates():
    algorithm = SERENE(ENV_ID, seed=0, **{**TINY, "bootstrap_generations": 4})
    improving = [[0.1], [0.1], [0.1], [0.5]]  # mean of the last 3 minus the first 3: 0.4/3 > 0
    candidate, generations = _bootstrap_probe(algorithm, improving)
    assert generations == 4 and 5 in algorithm.emitters and algorithm.emitters_promoted == 1
    assert candidate.improvement == pytest.approx(0.4 / 3) and not algorithm.candidates
    candidate, generations = _bootstrap_probe(algorithm, [[0.1]] * 4)  # no improvement: dropped
    assert generations == 4 and algorithm.emitters_promoted == 1 and algorithm.emitters == {5: algorithm.emitters[5]}
    assert algorithm.emitters[5] is not candidate
    algorithm.emitters = {}
    _, generations = _bootstrap_probe(algorithm, improving, stopped=True)  # stopped by its ES: dropped at once
    assert generations == 1 and algorithm.emitters == {} and algorithm.emitters_promoted == 1
    _bootstrap_probe(algorithm, improving)
    assert algorithm.emitters_promoted == 2


def test_emitter_generation_selects_then_keeps_the_active_emitter_until_the_chunk_is_spent():
    algorithm = SERENE(ENV_ID, seed=0, **TINY)
    calls: list[str] = []

    def select():
        calls.append("select")
        algorithm.active = 4

    algorithm._select_emitter = select
    algorithm._active_generation = lambda: calls.append(f"run {algorithm.active}")
    algorithm.emitters = {4: _emitter(algorithm, [0.0, 0.0])}
    algorithm.phase, algorithm.chunk_spent = "emitters", 0
    assert algorithm._emitter_generation() is True and calls == ["select", "run 4"]
    algorithm.chunk_spent = 59
    assert algorithm._emitter_generation() is True and calls == ["select", "run 4", "run 4"]
    algorithm.chunk_spent = 60  # spent: the chunk ends without another generation
    assert algorithm._emitter_generation() is False and calls == ["select", "run 4", "run 4"]
    assert algorithm.phase == "ns" and algorithm.active is None


def test_extra_novelty_reference_is_none_until_the_reward_archive_holds_something():
    algorithm = SERENE(ENV_ID, seed=0, **TINY)
    assert algorithm.extra_novelty_reference() is None
    algorithm.reward_archive.add(np.zeros(algorithm.genome_size), np.array([1.0, 2.0]), _result(0.5))
    assert algorithm.extra_novelty_reference().tolist() == [[1.0, 2.0]]


def test_summary_reports_each_counter_under_its_name():
    algorithm = SERENE(ENV_ID, seed=0, **TINY)
    (algorithm.ns_generations, algorithm.ns_evaluations, algorithm.emitter_evaluations, algorithm.emitters_created,
     algorithm.emitters_promoted, algorithm.emitters_terminated) = (2, 30, 40, 5, 3, 1)
    for _ in range(4):
        algorithm.reward_archive.add(np.zeros(algorithm.genome_size), np.zeros(2), _result(0.5))
    summary = algorithm.summary()
    assert {key: summary[key] for key in ("ns_generations", "ns_evaluations", "emitter_evaluations",
                                          "emitters_created", "emitters_promoted", "emitters_terminated",
                                          "reward_archive_size")} == {
        "ns_generations": 2, "ns_evaluations": 30, "emitter_evaluations": 40, "emitters_created": 5,
        "emitters_promoted": 3, "emitters_terminated": 1, "reward_archive_size": 4}


def test_serene_state_is_a_deep_copy_both_ways():
    algorithm = SERENE(ENV_ID, seed=0, **TINY)
    algorithm.reward_archive.add(np.zeros(algorithm.genome_size), np.zeros(2), _result(0.5))
    state = algorithm.state_dict()
    algorithm.reward_archive.add(np.zeros(algorithm.genome_size), np.zeros(2), _result(0.6))
    assert len(state["reward_archive"]) == 1  # later archiving does not reach the saved state
    restored = SERENE(ENV_ID, seed=1, **TINY)
    restored.load_state_dict(state)
    state["reward_archive"].add(np.zeros(algorithm.genome_size), np.zeros(2), _result(0.7))
    assert len(restored.reward_archive) == 1  # nor does a later change of the state reach the restored run


def test_offspring_evaluated_builds_each_candidate_with_the_algorithms_settings():
    algorithm = SERENE(ENV_ID, seed=0, **{**TINY, "emitter_pop_size": 4, "stagnation_window": 40})
    size = algorithm.genome_size
    parents = np.stack([np.full(size, 0.0), np.full(size, 0.3)])
    offspring = np.stack([np.full(size, 0.3), np.full(size, 0.9), np.full(size, -0.6)])  # the first duplicates a parent
    results = [_result(0.5), _result(0.0), _result(0.7)]
    descriptors = np.array([[1, 2], [3, 4], [5, 6]])
    twin = copy.deepcopy(algorithm.rng)
    algorithm.offspring_evaluated(parents, offspring, results, descriptors)
    assert list(algorithm.candidates) == [0, 1] and algorithm.next_emitter_id == 2 and algorithm.emitters_created == 2
    first, second = algorithm.candidates[0], algorithm.candidates[1]
    assert first.ancestor_result is results[0] and second.ancestor_result is results[2]
    assert first.sigma == TINY["mutation_sigma"]  # distance 0 to its parent twin: the mutation sigma
    assert second.sigma == pytest.approx(np.linalg.norm(np.full(size, 0.6)) / 3)  # nearest: the genome at 0.0
    expected = ElitistESEmitter(offspring[0], descriptors[0], sigma=0.2, bounds=algorithm.genome_bounds, pop_size=4,
                                seed=int(twin.integers(2**31)))  # seeded from the algorithm's generator
    assert first.rng.bit_generator.state == expected.rng.bit_generator.state
    for candidate in (first, second):
        assert candidate.pop_size == 4 and candidate.stagnation_window == 40 and len(candidate.ask()) == 4
    assert algorithm.offspring_results == results
    assert algorithm.offspring_descriptors.dtype == np.float64 and algorithm.offspring_descriptors.tolist() == \
        descriptors.tolist()


def test_ns_generations_count_one_per_step_and_a_chunk_end_resets_the_spent_evaluations():
    algorithm = SERENE(ENV_ID, seed=0, **TINY)  # chunk 60: the initial 10, then 20 per generation
    algorithm.step()
    algorithm.step()
    assert algorithm.ns_generations == 2 and algorithm.chunk_spent == 30
    algorithm.step()
    algorithm.step()
    assert algorithm.ns_generations == 4 and algorithm.chunk_spent == 0  # 70 >= 60: the chunk ended


def test_serene_and_reward_archive_defaults():
    algorithm = SERENE(ENV_ID)
    assert algorithm.seed == 0 and algorithm.pop_size == 100 and algorithm.phase == "ns"
    assert RewardArchive(7).genome_size == 7


def test_serene_passes_its_settings_on_and_starts_a_novelty_search_chunk():
    evaluator = SerialEvaluator(ENV_ID)
    algorithm = SERENE(ENV_ID, seed=3, evaluator=evaluator, pop_size=8, offspring_per_parent=3, mutation_sigma=0.4,
                       mutation_prob=0.5, archive_per_generation=1, archive_selection="random", k_neighbors=2,
                       chunk_size=1, emitter_pop_size=1, bootstrap_generations=1, stagnation_window=33)
    assert algorithm.evaluator is evaluator
    assert (algorithm.pop_size, algorithm.offspring_per_parent, algorithm.mutation_sigma, algorithm.mutation_prob,
            algorithm.archive_per_generation, algorithm.archive_selection, algorithm.k_neighbors) == \
        (8, 3, 0.4, 0.5, 1, "random", 2)
    assert (algorithm.chunk_size, algorithm.emitter_pop_size, algorithm.bootstrap_generations) == (1, 1, 1)
    assert algorithm.stagnation_window == 33
    assert algorithm.phase == "ns" and algorithm.chunk_spent == 0 and algorithm.ns_generations == 0
    assert algorithm.candidate_queue == [] and algorithm.pending_initial == [] and algorithm.offspring_results == []
    assert (algorithm.next_emitter_id, algorithm.emitters_created, algorithm.emitters_promoted,
            algorithm.emitters_terminated) == (0, 0, 0, 0)
    defaults = SERENE(ENV_ID)  # the authors' values
    assert (defaults.mutation_sigma, defaults.archive_per_generation, defaults.offspring_per_parent) == (0.05, 5, 2)
    for label in ("chunk_size", "emitter_pop_size", "bootstrap_generations"):
        with pytest.raises(ValueError, match=f"^{label} must be >= 1, got 0"):
            SERENE(ENV_ID, **{label: 0})
