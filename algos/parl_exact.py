"""PARL's bilevel problem solved exactly on a tabular MDP: the lower-level optimum, the upper objective, the
hypergradient, and the bilevel solution against the alternating one (reward learning without the correction).

PARL (Chakraborty, Bedi, Koppel, Wang, Huang, Manocha; "PARL: A Unified Framework for Policy Alignment in
Reinforcement Learning from Human Feedback", ICLR 2024, https://arxiv.org/abs/2308.02585) writes alignment as

    max_nu  G(nu, theta*(nu))   s.t.  theta*(nu) = argmax_theta V(theta, nu),

with G the alignment objective measured on trajectories of ``pi_theta*(nu)`` and V the value of the reward
``r_nu``. A-PARL ascends the hypergradient

    dG/dnu = d_nu G + (d theta*/d nu)^T d_theta G,   d theta*/d nu = -[Hessian_theta V]^-1 d^2_{theta,nu} V.

On a :class:`envs.preference_chain.TabularMDP` every term is computed exactly here, in float64 with autograd:

- Lower level: a softmax policy ``pi_theta(a|s) = softmax(theta[s])`` maximising the entropy-regularised
  discounted value from the start distribution, ``V = E[sum_t gamma^t (r_nu(s_t, a_t) - alpha log pi(a_t|s_t))]``
  (the entropy term makes the optimum unique, the strong concavity PARL assumes); ``theta*`` by soft value
  iteration, ``theta* = log pi*``.
- Upper level: the expected Bradley-Terry log-likelihood of the rater's preferences between two independent
  ``horizon``-step trajectories of ``pi_theta`` from the start distribution,
  ``G = E_{tau, tau' ~ pi_theta} [P*(tau > tau') log sigma(R_nu(tau) - R_nu(tau')) + (1 - P*) log sigma(...)]``
  with ``R`` the undiscounted segment return and ``P* = sigma((R*(tau) - R*(tau')) / temperature)``, minus
  ``l2 / 2 ||nu||^2``. It is a sum over every trajectory, so ``d_theta G`` is the score-function term exactly.
- Hypergradient: ``d_theta G`` and ``d_nu G`` by autograd; the implicit term ``M^T A^-1 d_theta G`` with
  ``A = -Hessian_theta V`` and ``M = d^2_{theta,nu} V``, the inverse by a direct solve (on the logits that change
  the policy) or by the same
  conjugate-gradient or Neumann solvers the deep version uses (:mod:`rl.inverse_hvp`), products by double
  backpropagation.

The tests check the hypergradient against central finite differences of ``G(nu, theta*(nu))``, which is what
makes the formula (and its signs) trustworthy before it is estimated from samples.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import torch as th
import torch.nn.functional as F

from envs.preference_chain import TabularMDP
from rl.inverse_hvp import solve

INVERSE_METHODS = ("direct", "cg", "neumann")
"""How :func:`hypergradient` applies ``A^-1``: a direct solve with the formed Hessian, or a solver on products."""


@dataclass(frozen=True)
class BilevelProblem:
    """A tabular PARL problem: the MDP and the settings of both levels.

    Attributes:
        mdp: the task.
        horizon: steps of each compared trajectory (the upper level enumerates ``(S A)^horizon`` of them).
        alpha: the lower level's entropy temperature (> 0).
        rater_temperature: the Bradley-Terry rater's temperature on true returns (> 0).
        l2: the upper level's weight decay on ``nu`` (>= 0).
    """

    mdp: TabularMDP
    horizon: int = 3
    alpha: float = 0.1
    rater_temperature: float = 1.0
    l2: float = 0.0
    _paths: dict[str, th.Tensor] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if int(self.horizon) != self.horizon or self.horizon < 1:
            raise ValueError(f"horizon must be an integer >= 1, got {self.horizon!r}.")
        if not self.alpha > 0:
            raise ValueError(f"alpha must be > 0 (the entropy term makes the lower level's optimum unique), "
                             f"got {self.alpha!r}.")
        if not self.rater_temperature > 0:
            raise ValueError(f"rater_temperature must be > 0, got {self.rater_temperature!r}.")
        if not self.l2 >= 0:
            raise ValueError(f"l2 must be >= 0, got {self.l2!r}.")
        self._paths.update(_enumerate_paths(self.mdp, self.horizon))

    # ----- the lower level ------------------------------------------------------------------------------------

    def reward(self, nu: th.Tensor) -> th.Tensor:
        """``r_nu[s, a] = phi(s, a) . nu``, shape (S, A)."""
        return _tensor(self.mdp.features) @ nu

    def value(self, theta: th.Tensor, nu: th.Tensor) -> th.Tensor:
        """``V(theta, nu)``: the entropy-regularised discounted value of ``pi_theta`` for ``r_nu`` from the start."""
        return entropy_regularised_value(self.mdp, theta, self.reward(nu), self.alpha)

    def best_response(self, nu: th.Tensor) -> th.Tensor:
        """``theta*(nu) = log pi*``: the soft-optimal policy of ``r_nu`` (soft value iteration to convergence)."""
        return soft_optimal_logits(self.mdp, self.reward(nu).detach(), self.alpha)

    # ----- the upper level ------------------------------------------------------------------------------------

    def objective(self, nu: th.Tensor, theta: th.Tensor) -> th.Tensor:
        """``G(nu, theta)``: the expected preference log-likelihood of ``r_nu`` on pairs of ``pi_theta``'s
        trajectories, minus ``l2 / 2 ||nu||^2``."""
        return self.pair_objective(nu, self.pair_weights(theta))

    def pair_weights(self, theta: th.Tensor) -> th.Tensor:
        """``p(tau) p(tau')`` for every pair of trajectories of ``pi_theta``: the comparisons' distribution."""
        paths = self._paths
        log_policy = th.log_softmax(theta, dim=1)
        probability = paths["structure"] * th.exp(log_policy[paths["states"], paths["actions"]].sum(dim=1))
        return probability[:, None] * probability[None, :]

    def pair_objective(self, nu: th.Tensor, weights: th.Tensor) -> th.Tensor:
        """The preference log-likelihood of ``r_nu`` under a distribution ``weights`` over trajectory pairs, minus
        ``l2 / 2 ||nu||^2``."""
        learned = self._paths["features"] @ nu
        true_return = self._paths["true_return"]
        preferred = th.sigmoid((true_return[:, None] - true_return[None, :]) / self.rater_temperature)
        margin = learned[:, None] - learned[None, :]
        likelihood = preferred * F.logsigmoid(margin) + (1 - preferred) * F.logsigmoid(-margin)
        return (weights * likelihood).sum() - 0.5 * self.l2 * (nu * nu).sum()

    def solution_value(self, nu: th.Tensor) -> th.Tensor:
        """``G(nu, theta*(nu))``: the upper objective at the lower level's optimum."""
        return self.objective(nu, self.best_response(nu))

    def true_return(self, theta: th.Tensor) -> float:
        """The true (unregularised) discounted return of ``pi_theta`` from the start distribution."""
        policy = th.softmax(theta.detach(), dim=1)
        return float(discounted_return(self.mdp, policy, _tensor(self.mdp.true_reward)))


@dataclass(frozen=True)
class Hypergradient:
    """``dG/dnu`` at ``theta*(nu)`` and its two parts: the direct term and the implicit (bilevel) term."""

    direct: th.Tensor
    implicit: th.Tensor

    @property
    def total(self) -> th.Tensor:
        return self.direct + self.implicit


def hypergradient(problem: BilevelProblem, nu: th.Tensor, *, method: str = "direct", iterations: int = 50,
                  damping: float = 0.0, scale: float = 1.0) -> Hypergradient:
    """A-PARL's hypergradient at ``nu``, exact up to the inverse's approximation.

    ``direct = d_nu G``; ``implicit = (d theta*/d nu)^T d_theta G = M^T A^-1 d_theta G`` with ``A = -Hessian_theta
    V`` and ``M = d^2_{theta, nu} V`` (from ``grad_theta V(theta*(nu), nu) = 0``: ``-A d theta* + M d nu = 0``).

    Args:
        problem: the bilevel problem.
        nu: the reward parameters, shape (K,).
        method: ``"direct"`` (a solve with the formed ``A``), ``"cg"`` or ``"neumann"`` (products only).
        iterations, damping, scale: the solver's settings (:func:`rl.inverse_hvp.solve`).
    """
    if method not in INVERSE_METHODS:
        raise ValueError(f"Unknown method {method!r}: choose one of {', '.join(INVERSE_METHODS)}.")
    nu = nu.detach().clone().requires_grad_(True)
    theta = problem.best_response(nu).requires_grad_(True)
    direct, score = th.autograd.grad(problem.objective(nu, theta), (nu, theta))
    (value_gradient,) = th.autograd.grad(problem.value(theta, nu), theta, create_graph=True)

    def negative_hessian_product(vector: th.Tensor) -> th.Tensor:
        (product,) = th.autograd.grad(value_gradient, theta, grad_outputs=vector.reshape(theta.shape),
                                      retain_graph=True)
        return -product.reshape(-1)

    flat_score = score.reshape(-1)
    if method == "direct":
        # Solve on the complement of the softmax's null space (one constant shift per state), where A is definite:
        # a pseudo-inverse would have to tell rounding-level null eigenvalues from real ones as small as 1e-8.
        basis = _shift_free_basis(problem.mdp.n_states, problem.mdp.n_actions)
        negative_hessian = th.stack([negative_hessian_product(column) for column in basis.T], dim=1)
        reduced = basis.T @ negative_hessian
        reduced = 0.5 * (reduced + reduced.T) + damping * th.eye(len(reduced), dtype=th.float64)
        solved = basis @ th.linalg.solve(reduced, basis.T @ flat_score)
    else:
        solved = solve(negative_hessian_product, flat_score, method=method, iterations=iterations, damping=damping,
                       scale=scale)
    (implicit,) = th.autograd.grad(value_gradient, nu, grad_outputs=solved.reshape(theta.shape))
    return Hypergradient(direct=direct.detach(), implicit=implicit.detach())


def finite_difference_gradient(problem: BilevelProblem, nu: th.Tensor, *, step: float = 1e-5) -> th.Tensor:
    """Central differences of ``G(nu, theta*(nu))``: the reference the hypergradient must match."""
    gradient = th.zeros_like(nu)
    for index in range(nu.numel()):
        offset = th.zeros_like(nu)
        offset[index] = step
        gradient[index] = (problem.solution_value(nu + offset) - problem.solution_value(nu - offset)) / (2 * step)
    return gradient


# ----- solutions ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Solution:
    """Reward parameters found by one method, with what they lead to."""

    method: str
    nu: np.ndarray
    upper_objective: float
    true_return: float
    iterations: int


def solve_bilevel(problem: BilevelProblem, nu0: np.ndarray, *, max_iterations: int = 200) -> Solution:
    """PARL's solution: maximise ``G(nu, theta*(nu))`` over ``nu`` with the exact hypergradient (SciPy L-BFGS-B
    from ``nu0``; a local optimum, the problem is not concave in ``nu``)."""
    from scipy.optimize import minimize

    def negative(nu: np.ndarray) -> tuple[float, np.ndarray]:
        point = th.as_tensor(nu, dtype=th.float64)
        return (-float(problem.solution_value(point)),
                -hypergradient(problem, point).total.numpy())

    result = minimize(negative, np.asarray(nu0, dtype=np.float64), jac=True, method="L-BFGS-B",
                      options={"maxiter": max_iterations, "gtol": 1e-10, "ftol": 1e-14})
    return _solution(problem, "bilevel (PARL)", result.x, int(result.nit))


def fit_reward(problem: BilevelProblem, weights: th.Tensor, nu0: np.ndarray) -> np.ndarray:
    """``argmax_nu`` of the preference log-likelihood under the pair distribution ``weights`` (see
    :meth:`BilevelProblem.pair_weights`): reward learning on a fixed set of comparisons, SciPy L-BFGS-B from
    ``nu0``."""
    from scipy.optimize import minimize

    weights = weights.detach()

    def negative(nu: np.ndarray) -> tuple[float, np.ndarray]:
        point = th.as_tensor(nu, dtype=th.float64).requires_grad_(True)
        value = problem.pair_objective(point, weights)
        (gradient,) = th.autograd.grad(value, point)
        return -float(value.detach()), -gradient.numpy()

    result = minimize(negative, np.asarray(nu0, dtype=np.float64), jac=True, method="L-BFGS-B",
                      options={"maxiter": 500, "gtol": 1e-10, "ftol": 1e-14})
    return result.x


def solve_alternating(problem: BilevelProblem, nu0: np.ndarray, *, max_rounds: int = 200,
                      tolerance: float = 1e-6) -> Solution:
    """Reward learning without the bilevel correction, as PEBBLE runs it: each round adds the comparisons of the
    current reward's optimal policy to the queue, refits ``nu`` on the whole queue, and repeats until ``nu``
    stops moving (or ``max_rounds``). Nothing in it differentiates through the policy's response to ``nu``.

    Refitting on the current policy's comparisons alone (no queue) cycles with period two on
    :func:`envs.preference_chain.slippery_chain`: the reward fitted to one policy's data makes a policy whose
    data asks for the other reward.
    """
    nu = np.asarray(nu0, dtype=np.float64)
    queue = th.zeros(())
    rounds = 0
    for rounds in range(1, max_rounds + 1):
        queue = queue + problem.pair_weights(problem.best_response(th.as_tensor(nu, dtype=th.float64)))
        updated = fit_reward(problem, queue / rounds, nu)
        moved = float(np.max(np.abs(updated - nu)))
        nu = updated
        if moved < tolerance:
            break
    return _solution(problem, "alternating (no correction)", nu, rounds)


def solve_on_fixed_data(problem: BilevelProblem, nu0: np.ndarray) -> Solution:
    """Reward learning on the uniform policy's comparisons only: the offline answer, which never looks at the
    trajectories of the policy it produces."""
    uniform = th.zeros(problem.mdp.n_states, problem.mdp.n_actions, dtype=th.float64)
    return _solution(problem, "uniform data (one fit)", fit_reward(problem, problem.pair_weights(uniform), nu0), 1)


def true_reward_policy(problem: BilevelProblem) -> float:
    """The true return of the soft-optimal policy of the true reward (same ``alpha``): the alignment target."""
    theta = soft_optimal_logits(problem.mdp, _tensor(problem.mdp.true_reward), problem.alpha)
    return problem.true_return(theta)


def _solution(problem: BilevelProblem, method: str, nu: np.ndarray, iterations: int) -> Solution:
    point = th.as_tensor(nu, dtype=th.float64)
    theta = problem.best_response(point)
    return Solution(method=method, nu=np.asarray(nu, dtype=np.float64),
                    upper_objective=float(problem.objective(point, theta)),
                    true_return=problem.true_return(theta), iterations=iterations)


# ----- tabular dynamic programming -----------------------------------------------------------------------------


def entropy_regularised_value(mdp: TabularMDP, theta: th.Tensor, reward: th.Tensor, alpha: float) -> th.Tensor:
    """``mu . (I - gamma P_pi)^-1 (r_pi + alpha H_pi)`` for ``pi = softmax(theta)``; differentiable in both."""
    log_policy = th.log_softmax(theta, dim=1)
    policy = log_policy.exp()
    reward_pi = (policy * (reward - alpha * log_policy)).sum(dim=1)
    return _value_of(mdp, policy, reward_pi)


def discounted_return(mdp: TabularMDP, policy: th.Tensor, reward: th.Tensor) -> th.Tensor:
    """``mu . (I - gamma P_pi)^-1 r_pi``: the expected discounted return of ``policy`` for ``reward``."""
    return _value_of(mdp, policy, (policy * reward).sum(dim=1))


def soft_optimal_logits(mdp: TabularMDP, reward: th.Tensor, alpha: float, *, tolerance: float = 1e-13,
                        max_iterations: int = 100_000) -> th.Tensor:
    """``log pi*`` of the entropy-regularised problem, by soft value iteration (a ``gamma``-contraction)."""
    transitions = _tensor(mdp.transitions)
    value = th.zeros(mdp.n_states, dtype=th.float64)
    for _ in range(max_iterations):
        q_values = reward + mdp.gamma * transitions @ value
        updated = alpha * th.logsumexp(q_values / alpha, dim=1)
        if float(th.max(th.abs(updated - value))) < tolerance:
            value = updated
            break
        value = updated
    q_values = reward + mdp.gamma * transitions @ value
    return th.log_softmax(q_values / alpha, dim=1).detach()


def _value_of(mdp: TabularMDP, policy: th.Tensor, reward_pi: th.Tensor) -> th.Tensor:
    transitions = th.einsum("sa,sat->st", policy, _tensor(mdp.transitions))
    system = th.eye(mdp.n_states, dtype=th.float64) - mdp.gamma * transitions
    return _tensor(mdp.initial) @ th.linalg.solve(system, reward_pi)


def _shift_free_basis(n_states: int, n_actions: int) -> th.Tensor:
    """An orthonormal basis (columns) of the logit directions that change the policy: per state, the vectors
    whose entries sum to zero."""
    centring = th.eye(n_actions, dtype=th.float64) - 1.0 / n_actions
    per_state = th.linalg.eigh(centring).eigenvectors[:, 1:]  # eigenvalue 0 (the constant) comes first
    return th.block_diag(*[per_state] * n_states)


def _enumerate_paths(mdp: TabularMDP, horizon: int) -> dict[str, th.Tensor]:
    """Every ``horizon``-step trajectory with non-zero probability under some policy: its states and actions, the
    part of its probability that does not depend on the policy, its feature sum and its true return."""
    states_actions = list(itertools.product(range(mdp.n_states), range(mdp.n_actions)))
    steps = np.array(list(itertools.product(range(len(states_actions)), repeat=horizon)))
    pairs = np.array(states_actions)[steps]  # (T, horizon, 2)
    states, actions = pairs[..., 0], pairs[..., 1]
    structure = mdp.initial[states[:, 0]].copy()
    for t in range(horizon - 1):
        structure *= mdp.transitions[states[:, t], actions[:, t], states[:, t + 1]]
    keep = structure > 0
    states, actions, structure = states[keep], actions[keep], structure[keep]
    return {
        "states": th.as_tensor(states), "actions": th.as_tensor(actions), "structure": _tensor(structure),
        "features": _tensor(mdp.features[states, actions].sum(axis=1)),
        "true_return": _tensor(mdp.true_reward[states, actions].sum(axis=1)),
    }


def _tensor(array: np.ndarray) -> th.Tensor:
    return th.as_tensor(array, dtype=th.float64)


# ----- the sanity table ---------------------------------------------------------------------------------------


def sanity_table(problem: BilevelProblem, nu_check: np.ndarray) -> list[str]:
    """The markdown lines of the sanity table: the true-reward target, the three solutions, and the hypergradient
    against finite differences at ``nu_check``."""
    start = np.zeros(problem.mdp.n_features)
    target = true_reward_policy(problem)
    rows = [solve_bilevel(problem, start), solve_alternating(problem, start), solve_on_fixed_data(problem, start)]
    lines = [
        "| reward learning | nu | G(nu, theta*(nu)) | true return of pi*(nu) | alignment gap | iterations |",
        "|---|---|---|---|---|---|",
        f"| (true reward, the target) | | | {target:.4f} | 0 | |",
    ]
    for row in rows:
        nu = ", ".join(f"{value:+.4f}" for value in row.nu)
        lines.append(f"| {row.method} | ({nu}) | {row.upper_objective:.6f} | {row.true_return:.4f} "
                     f"| {target - row.true_return:.4f} | {row.iterations} |")
    point = th.as_tensor(nu_check, dtype=th.float64)
    exact = hypergradient(problem, point)
    difference = finite_difference_gradient(problem, point)
    lines += [
        "",
        f"Hypergradient at nu = {tuple(float(v) for v in nu_check)}: max |exact - finite differences| = "
        f"{float((exact.total - difference).abs().max()):.1e}; max |implicit term| = "
        f"{float(exact.implicit.abs().max()):.1e}; max |direct term| = {float(exact.direct.abs().max()):.1e}.",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    """``python -m algos.parl_exact --out results/parl_exact``: the sanity table on the slippery chain."""
    import argparse
    import shlex
    import sys
    from pathlib import Path

    from envs.preference_chain import slippery_chain

    parser = argparse.ArgumentParser(prog="python -m algos.parl_exact", description=main.__doc__)
    parser.add_argument("--out", default=None, help="folder for README.md and command.txt (default: print only)")
    parser.add_argument("--n-states", type=int, default=4)
    parser.add_argument("--goal", type=int, default=2)
    parser.add_argument("--slip", type=float, default=0.1)
    parser.add_argument("--gamma", type=float, default=0.9)
    parser.add_argument("--horizon", type=int, default=3, help="steps per compared trajectory")
    parser.add_argument("--alpha", type=float, default=0.1, help="the lower level's entropy temperature")
    parser.add_argument("--l2", type=float, default=0.01, help="weight decay on nu")
    args = parser.parse_args(argv)
    try:
        problem = BilevelProblem(slippery_chain(args.n_states, goal=args.goal, slip=args.slip, gamma=args.gamma),
                                 horizon=args.horizon, alpha=args.alpha, l2=args.l2)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    lines = [
        "# PARL's bilevel problem, solved exactly on a tabular task",
        "",
        f"Slippery chain: {args.n_states} cells, goal {args.goal}, slip {args.slip}, gamma {args.gamma}; "
        f"compared trajectories of {args.horizon} steps; entropy temperature {args.alpha}; l2 {args.l2}. "
        "The learned reward is linear in (position, a == left, a == right) and cannot single out the goal cell. "
        "'alternating' refits the reward on all comparisons so far after each best response (PEBBLE's loop "
        "without the bilevel correction); 'uniform data' fits once on a uniform policy's comparisons.",
        "",
        *sanity_table(problem, np.array([0.5, -0.3, 0.2])[: problem.mdp.n_features]),
    ]
    print("\n".join(lines))
    if args.out is not None:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "README.md").write_text("\n".join(lines) + "\n")
        command = "python -m algos.parl_exact " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
        (out / "command.txt").write_text(command.strip() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
