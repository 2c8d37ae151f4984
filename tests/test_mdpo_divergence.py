"""MDPO's proximity term: KL(pi_theta || pi_k) in the paper's direction, and the Tsallis q-log."""

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.distributions import CategoricalDistribution, DiagGaussianDistribution

from algos.mdpo import MDPO, policy_kl
from rl.tsallis import log_q


def _gaussian_kl(mean_p, std_p, mean_q, std_q):
    """KL(N(mean_p, std_p) || N(mean_q, std_q)) summed over dimensions, by the textbook formula."""
    return np.sum(np.log(std_q / std_p) + (std_p**2 + (mean_p - mean_q) ** 2) / (2 * std_q**2) - 0.5, axis=-1)


def test_gaussian_kl_is_new_to_old():
    new_mean, new_std = np.array([[0.5, -1.0], [0.0, 2.0]]), np.array([[0.3, 1.5], [1.0, 0.5]])
    old_mean, old_std = np.array([[0.0, 0.0], [1.0, 1.0]]), np.array([[1.0, 1.0], [2.0, 0.7]])
    new = DiagGaussianDistribution(2).proba_distribution(th.tensor(new_mean), th.tensor(np.log(new_std)))
    old = th.distributions.Normal(th.tensor(old_mean), th.tensor(old_std))
    kl = policy_kl(new, old).numpy()
    expected = _gaussian_kl(new_mean, new_std, old_mean, old_std)
    reverse = _gaussian_kl(old_mean, old_std, new_mean, new_std)
    np.testing.assert_allclose(kl, expected, rtol=1e-10)
    assert not np.allclose(kl, reverse)  # the two directions differ on this batch, so the test can tell


def test_categorical_kl_is_new_to_old():
    new_probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    old_probs = np.array([[0.2, 0.5, 0.3], [0.3, 0.3, 0.4]])
    new = CategoricalDistribution(3).proba_distribution(th.tensor(np.log(new_probs)))
    old = th.distributions.Categorical(probs=th.tensor(old_probs))
    expected = np.sum(new_probs * np.log(new_probs / old_probs), axis=-1)
    np.testing.assert_allclose(policy_kl(new, old).numpy(), expected, rtol=1e-10)


def test_mdpo_divergence_uses_closed_form_kl_or_tsallis():
    model = MDPO("MlpPolicy", "Pendulum-v1", n_steps=64, policy_kwargs=dict(net_arch=[8]), seed=0)
    new = DiagGaussianDistribution(1).proba_distribution(th.tensor([[0.4]]), th.tensor([[np.log(0.5)]]))
    old = th.distributions.Normal(th.tensor([[0.0]]), th.tensor([[1.0]]))
    new_log_prob, old_log_prob = th.tensor([-0.3]), th.tensor([-1.2])
    kl = model._divergence(new, old, new_log_prob, old_log_prob)
    np.testing.assert_allclose(kl.numpy(), _gaussian_kl(np.array([[0.4]]), np.array([[0.5]]), 0.0, 1.0))
    model.tsallis_q = 1.5  # q = 2 - 1.5 = 0.5: (x^0.5 - 1) / 0.5
    tsallis = model._divergence(new, old, new_log_prob, old_log_prob)
    expected = (np.exp(-0.3) ** 0.5 - 1) / 0.5 - (np.exp(-1.2) ** 0.5 - 1) / 0.5
    np.testing.assert_allclose(tsallis.numpy(), [expected], rtol=1e-6)


@pytest.mark.parametrize("q", [1.0, 0.5, 2.0])
def test_log_q(q):
    x = th.tensor([1e-9, 0.5, 1.0, 3.0], dtype=th.float64)
    safe = np.maximum(x.numpy(), 1e-6)
    expected = np.log(safe) if q == 1.0 else (safe ** (1 - q) - 1) / (1 - q)
    np.testing.assert_allclose(log_q(x, q).numpy(), expected, rtol=1e-10)
    assert log_q(th.tensor([1.0]), q).item() == pytest.approx(0.0)  # every q-log vanishes at 1
