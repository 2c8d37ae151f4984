"""rl.inverse_hvp: conjugate gradient and the Neumann series against direct solves and a hand computation."""

from __future__ import annotations

import pytest
import torch as th

from rl.inverse_hvp import conjugate_gradient, neumann_series, solve


def _spd(size: int, seed: int = 0) -> th.Tensor:
    generator = th.Generator().manual_seed(seed)
    root = th.randn(size, size, generator=generator, dtype=th.float64)
    return root @ root.T + 0.5 * th.eye(size, dtype=th.float64)


def test_conjugate_gradient_solves_a_positive_definite_system_in_its_dimension():
    matrix = _spd(6)
    b = th.arange(1.0, 7.0, dtype=th.float64)
    solution = conjugate_gradient(lambda v: matrix @ v, b, iterations=6)
    assert th.allclose(solution, th.linalg.solve(matrix, b), atol=1e-8)


def test_damping_solves_the_shifted_system():
    matrix = _spd(4, seed=1)
    b = th.ones(4, dtype=th.float64)
    shifted = th.linalg.solve(matrix + 2.0 * th.eye(4, dtype=th.float64), b)
    assert th.allclose(conjugate_gradient(lambda v: matrix @ v, b, iterations=20, damping=2.0), shifted, atol=1e-9)
    assert th.allclose(neumann_series(lambda v: matrix @ v, b, iterations=3000, damping=2.0,
                                      scale=1.0 / float(th.linalg.eigvalsh(matrix).max() + 2.0)), shifted, atol=1e-8)


def test_neumann_series_two_terms_by_hand():
    # A = diag(1, 2), b = (1, 1), scale 0.5: terms b, (I - A/2) b = (0.5, 0), (I - A/2)^2 b = (0.25, 0).
    matrix = th.diag(th.tensor([1.0, 2.0], dtype=th.float64))
    result = neumann_series(lambda v: matrix @ v, th.ones(2, dtype=th.float64), iterations=2, scale=0.5)
    assert th.allclose(result, th.tensor([0.5 * 1.75, 0.5 * 1.0], dtype=th.float64))


def test_a_singular_system_with_b_in_its_range_gives_the_minimum_norm_solution():
    # Rank 2 in 3 dimensions, (1, 1, 1) in the null space: a softmax's shift invariance.
    basis = th.tensor([[1.0, -1.0, 0.0], [1.0, 1.0, -2.0]], dtype=th.float64).T
    matrix = basis @ th.diag(th.tensor([2.0, 0.5], dtype=th.float64)) @ basis.T
    b = matrix @ th.tensor([0.3, -1.0, 2.0], dtype=th.float64)
    expected = th.linalg.pinv(matrix) @ b
    assert th.allclose(conjugate_gradient(lambda v: matrix @ v, b, iterations=10), expected, atol=1e-8)
    assert th.allclose(solve(lambda v: matrix @ v, b, method="neumann", iterations=2000, scale=0.1), expected,
                       atol=1e-8)


def test_a_zero_right_hand_side_gives_zero():
    assert th.equal(conjugate_gradient(lambda v: 3 * v, th.zeros(3)), th.zeros(3))


@pytest.mark.parametrize("call, message", [
    (lambda: conjugate_gradient(lambda v: v, th.ones(2), iterations=0), "iterations must be an integer >= 1"),
    (lambda: conjugate_gradient(lambda v: v, th.ones(2), damping=-1.0), "damping must be >= 0"),
    (lambda: neumann_series(lambda v: v, th.ones(2), scale=0.0), "scale must be > 0"),
    (lambda: solve(lambda v: v, th.ones(2), method="lu"), "Unknown inverse-HVP method 'lu'"),
])
def test_bad_settings_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_conjugate_gradient_stops_after_its_iterations():
    # One CG step from zero is the steepest-descent step: x = (b.b / b.A b) b.
    matrix = _spd(6)
    b = th.arange(1.0, 7.0, dtype=th.float64)
    expected = (b @ b) / (b @ matrix @ b) * b
    assert th.allclose(conjugate_gradient(lambda v: matrix @ v, b, iterations=1), expected, atol=1e-10)
