"""algos.parl_exact: PARL's bilevel problem on a tabular MDP. The hypergradient against finite differences of
G(nu, theta*(nu)); the objective, value and best response against hand computations; the solvers' answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch as th

from algos.parl_exact import (
    BilevelProblem,
    entropy_regularised_value,
    finite_difference_gradient,
    hypergradient,
    soft_optimal_logits,
    solve_alternating,
    solve_bilevel,
    solve_on_fixed_data,
    true_reward_policy,
)
from envs.preference_chain import TabularMDP, TabularMDPEnv, slippery_chain

NU = th.tensor([0.5, -0.3, 0.2], dtype=th.float64)


@pytest.fixture(scope="module")
def chain() -> BilevelProblem:
    return BilevelProblem(slippery_chain(), horizon=3, alpha=0.1, l2=0.01)


def _one_state(reward: list[float], gamma: float = 0.5) -> TabularMDP:
    n_actions = len(reward)
    return TabularMDP(transitions=np.ones((1, n_actions, 1)), initial=np.ones(1),
                      features=np.eye(n_actions)[None], true_reward=np.array([reward]), gamma=gamma)


def test_entropy_regularised_value_by_hand():
    # One state that loops: V = sum_a pi(a) (r(a) - alpha log pi(a)) / (1 - gamma).
    mdp = _one_state([1.0, 0.0], gamma=0.5)
    theta = th.tensor([[math.log(3.0), 0.0]], dtype=th.float64)  # pi = (0.75, 0.25)
    expected = (0.75 * (1.0 - 0.2 * math.log(0.75)) + 0.25 * (0.0 - 0.2 * math.log(0.25))) / 0.5
    value = entropy_regularised_value(mdp, theta, th.tensor([[1.0, 0.0]], dtype=th.float64), 0.2)
    assert float(value) == pytest.approx(expected, rel=1e-12)


def test_soft_optimal_policy_of_a_single_state_is_the_boltzmann_policy():
    # Q(a) = r(a) + gamma V for every a, so pi*(a) is proportional to exp(r(a) / alpha).
    mdp = _one_state([1.0, 0.0, -0.5])
    logits = soft_optimal_logits(mdp, th.tensor([[1.0, 0.0, -0.5]], dtype=th.float64), 0.5)
    expected = th.log_softmax(th.tensor([2.0, 0.0, -1.0], dtype=th.float64), dim=0)
    assert th.allclose(logits[0], expected, atol=1e-12)


def test_best_response_is_a_maximum_of_the_lower_level(chain):
    theta = chain.best_response(NU).requires_grad_(True)
    (gradient,) = th.autograd.grad(chain.value(theta, NU), theta)
    assert float(gradient.abs().max()) < 1e-9
    generator = th.Generator().manual_seed(0)
    for _ in range(5):
        other = theta.detach() + 0.1 * th.randn(theta.shape, generator=generator, dtype=th.float64)
        assert float(chain.value(other, NU)) < float(chain.value(theta.detach(), NU))


def test_objective_by_hand():
    # Horizon 1, one action: the trajectories are the two start states, p = (0.25, 0.75).
    mdp = TabularMDP(transitions=np.ones((2, 1, 2)) / 2, initial=np.array([0.25, 0.75]),
                     features=np.array([[[1.0]], [[0.0]]]), true_reward=np.array([[1.0], [0.0]]))
    problem = BilevelProblem(mdp, horizon=1, alpha=0.1, rater_temperature=2.0, l2=0.5)
    nu = th.tensor([2.0], dtype=th.float64)

    def log_sigmoid(x: float) -> float:
        return -math.log1p(math.exp(-x))

    def sigmoid(x: float) -> float:
        return 1.0 / (1.0 + math.exp(-x))

    # Pair (state 0, state 1): true margin 1 / temperature 2, learned margin 2; ties on the diagonal.
    off_diagonal = sigmoid(0.5) * log_sigmoid(2.0) + sigmoid(-0.5) * log_sigmoid(-2.0)
    expected = (0.25 ** 2 + 0.75 ** 2) * math.log(0.5) + 2 * 0.25 * 0.75 * off_diagonal - 0.25 * 4.0
    assert float(problem.objective(nu, th.zeros(2, 1, dtype=th.float64))) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("nu", [NU, th.tensor([-1.0, 0.4, 0.0], dtype=th.float64)])
def test_hypergradient_matches_finite_differences_of_the_bilevel_objective(chain, nu):
    exact = hypergradient(chain, nu)
    reference = finite_difference_gradient(chain, nu)
    assert th.allclose(exact.total, reference, atol=1e-8)
    # The implicit (bilevel) term is far above that tolerance: leaving it out fails.
    assert float((exact.direct - reference).abs().max()) > 1e-5


def test_products_only_solvers_match_the_direct_inverse(chain):
    direct = hypergradient(chain, NU, method="direct").implicit
    assert th.allclose(hypergradient(chain, NU, method="cg", iterations=50).implicit, direct, atol=1e-9)
    damped = hypergradient(chain, NU, method="direct", damping=0.05).implicit
    neumann = hypergradient(chain, NU, method="neumann", damping=0.05, iterations=400, scale=1.0).implicit
    assert th.allclose(neumann, damped, atol=1e-9)
    # Truncated early the two solvers differ: the method asked for is the one used.
    short = {m: hypergradient(chain, NU, method=m, iterations=2, scale=1.0).implicit for m in ("cg", "neumann")}
    assert not th.allclose(short["cg"], short["neumann"], atol=1e-12)


def test_bilevel_solution_is_stationary_and_beats_the_methods_without_the_correction(chain):
    start = np.zeros(3)
    bilevel = solve_bilevel(chain, start)
    alternating = solve_alternating(chain, start)
    fixed = solve_on_fixed_data(chain, start)
    assert float(hypergradient(chain, th.as_tensor(bilevel.nu)).total.abs().max()) < 1e-6
    assert bilevel.upper_objective > alternating.upper_objective > fixed.upper_objective
    # On this task the aligned reward also yields the better policy (the sanity table's claim).
    assert true_reward_policy(chain) > bilevel.true_return > max(alternating.true_return, fixed.true_return)
    # The alternating fixed point zeroes only the direct term.
    at_alternating = hypergradient(chain, th.as_tensor(alternating.nu))
    assert float(at_alternating.direct.abs().max()) < 1e-3 < float(at_alternating.implicit.abs().max())


def test_env_steps_follow_the_model():
    env = TabularMDPEnv(slippery_chain(slip=0.0))
    env.reset(seed=0)
    env._state = 1
    state, reward, terminated, truncated, info = env.step(np.int64(1))
    assert (int(state), reward, terminated, truncated) == (2, 0.0, False, False)
    assert info["features"].tolist() == [1 / 3, 0.0, 1.0]
    assert env.step(np.int64(0))[1] == 1.0  # acting on the goal cell


@pytest.mark.parametrize("build, message", [
    (lambda: slippery_chain(goal=4), "goal must be a cell"),
    (lambda: BilevelProblem(slippery_chain(), alpha=0.0), "alpha must be > 0"),
    (lambda: BilevelProblem(slippery_chain(), horizon=0), "horizon must be an integer >= 1"),
    (lambda: TabularMDP(transitions=np.ones((1, 1, 1)) * 2, initial=np.ones(1), features=np.ones((1, 1, 1)),
                        true_reward=np.zeros((1, 1))), "probability distribution"),
    (lambda: hypergradient(BilevelProblem(slippery_chain(), horizon=1), NU, method="qr"), "Unknown method 'qr'"),
])
def test_bad_input_is_named(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_sanity_table_command_writes_the_table_and_its_command(tmp_path, capsys):
    from algos.parl_exact import main

    assert main(["--out", str(tmp_path), "--horizon", "2"]) == 0
    text = (tmp_path / "README.md").read_text()
    assert "| bilevel (PARL) |" in text and "| alternating (no correction) |" in text
    assert (tmp_path / "command.txt").read_text() == f"python -m algos.parl_exact --out {tmp_path} --horizon 2\n"


def test_sanity_table_command_refuses_bad_settings_in_one_line(tmp_path, capsys):
    from algos.parl_exact import main

    assert main(["--out", str(tmp_path / "table"), "--alpha", "0"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "alpha must be > 0" in error
    assert not (tmp_path / "table").exists()
