"""H2O: Dynamics-Aware Hybrid Offline-and-Online RL (Niu, Sharma, Qiu, Li, Zhou, Hu & Zhan, NeurIPS 2022).

"When to Trust Your Simulator: Dynamics-Aware Hybrid Offline-and-Online Reinforcement Learning",
https://arxiv.org/abs/2206.13464. Defaults follow the authors' code, github t6-thu/H2O (SimpleSAC/
sim2real_sac.py ``Sim2realSAC.get_default_config``, SimpleSAC/sim2real_sac_main.py flags,
SimpleSAC/mixed_replay_buffer.py, Network/Weight_net.py); ``algos/hyperparams/h2o.yml`` gives each value's
source. Training happens in a simulator variant (:mod:`sim2real`), with an offline dataset of the real env as
real data; evaluation is in the real env::

    python -m algos.h2o --env HalfCheetah-v4 --sim gravity=2.0 --dataset halfcheetah-medium-replay-v2
"""

from __future__ import annotations

import math
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch as th
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.preprocessing import get_action_dim, get_flattened_obs_dim
from stable_baselines3.common.type_aliases import GymEnv, ReplayBufferSamples, Schedule
from stable_baselines3.common.utils import polyak_update, update_learning_rate

from algos.cql import CQL
from algos.h2o_policies import DISCRIMINATOR_NET_ARCH, DynamicsDiscriminators, H2OPolicy
from rl.datasets import OfflineDataset
from rl.offline import NoOfflineDataError, observation_statistics
from sim2real import RealSimReplayBuffer

DYNAMICS_RATIO_PLOT = "dynamics_ratio.png"
"""File name of :meth:`H2O.write_run_artifacts`' histogram in the run folder."""
DYNAMICS_RATIO_SAMPLES = "dynamics_ratio.npz"
"""File name of the log ratios behind that histogram (keys "real", "sim"), for plots across runs."""


class H2O(CQL):
    """H2O on SAC: offline real data plus online steps in an imperfect simulator, weighted by a learned dynamics ratio.

    Built on :class:`~algos.cql.CQL` (SAC with its target, learning rates and Lagrange weight); CQL's own
    penalty on sampled actions is replaced by H2O's penalty on the sim pairs.

    Real data (the offline dataset, from the real env) and sim transitions (collected by ``learn`` in
    ``env``, the simulator) live in one :class:`~sim2real.RealSimReplayBuffer`: the dataset fills its first
    rows (``OfflineAlgorithmMixin``, so ``replay_buffer`` holds the dataset as in every offline algorithm
    here) and the env steps of ``learn`` go after it, into a circular sim region that never overwrites the
    dataset (the authors' ``MixedReplayBuffer``). The two are sampled separately. Being one SB3 buffer, it is
    saved and restored by ``save_replay_buffer`` / ``load_replay_buffer`` with its boundary; while it holds
    the dataset alone, checkpoints skip it and ``load`` reads the dataset again (:mod:`rl.offline`).

    Every gradient step, on ``batch_size * (1 - sim_ratio)`` real and ``batch_size * sim_ratio`` sim
    transitions (128 + 128), in the authors' order:

    1. Discriminators (:meth:`discriminator_step`) on ``discriminator_batch_size`` other real and sim
       transitions each, inputs ``(s, a, s')`` plus Gaussian noise of std ``discriminator_noise``:
       cross-entropy of ``D_sa(s, a)`` and of ``D_sas(s, a, s') + D_sa(s, a)`` with labels real / sim.
    2. The dynamics ratio of a transition, from the updated discriminators (:meth:`dynamics_log_ratio`),
       ``P_real/P_sim(s'|s,a) = [p_sas(real)/p_sas(sim)] / [p_sa(real)/p_sa(sim)]``.
    3. Entropy temperature and actor: SAC's losses over the real and the sim states together.
    4. Critics: ``sum_i [MSE_real(Q_i, y) + mean_sim(w * (Q_i - y)^2) + alpha_cql * gap_i]``, with the target
       ``y = r + gamma * (1 - d) * min_i Q'_i(s', a')``, ``a' ~ pi(.|s')``, the Bellman weights of sim
       transitions ``w = clip(P_real/P_sim, dynamics_ratio_min, dynamics_ratio_max)`` (:meth:`sim_bellman_weights`),
       and the dynamics-aware penalty (:meth:`h2o_penalty`)::

           gap_i = clip(T * logsumexp_sim((Q_i(s, a) + log omega(s, a)) / T) - mean_real Q_i(s, a))
           omega = u / sum_sim u,   u(s, a) = clip(mean_k log(P_sim/P_real)(s, a, s' + eps_k), 1e-45, 10)

       with ``n_next_state_samples`` (10) perturbations ``eps_k ~ N(0, (next_state_noise * std)^2)``, ``std``
       the dataset's per-dimension observation std (:meth:`sim_state_weights`). The penalty pushes Q down on
       the sim pairs whose dynamics look least real and up on the real data. With ``cql_lagrange`` the weight
       is tuned by dual descent (:meth:`~algos.cql.CQL.cql_weight`), as in CQL.
    5. Targets: Polyak averaging with ``tau``.

    With ``dynamics_aware=False`` the dynamics ratio is taken as 1 everywhere, which makes the naive mix of the
    H2O benchmark (:mod:`algos.h2o_benchmark`): no discriminator is trained, every sim transition's Bellman error
    has weight 1 and ``omega`` is uniform over the sim pairs, so the penalty is a plain soft maximum of Q over
    the sim pairs minus the mean Q of the real ones. Everything else (batches, SAC, the penalty weight) is
    H2O's, so the difference to H2O is the dynamics ratio alone.

    While the buffer holds no sim transition (``learn_offline``, i.e. ``-n > 0`` before the online phase),
    the update keeps only its real-data terms: SAC on the dataset (Bellman error on real transitions, actor
    and temperature on real states), no discriminator or penalty. H2O has no such phase; its default is
    ``offline_steps: 0``, the runner then going straight to the sim steps.

    Defaults, from the authors' code (``Sim2realSAC.get_default_config`` unless said): penalty weight
    ``cql_min_q_weight = 0.01``, temperature 1, clip of the gap to [-1000, 1000], Lagrange off (threshold
    1.0), Bellman weights clipped to [1e-5, 1] (``clip_dynamics_ratio_min/max``), ``u`` clipped to
    [1e-45, 10] (``sim_q_coeff_min/max``), 10 next-state samples at 1 std (``sampling_n_next_states``,
    ``s_prime_std_ratio``), discriminators 256-256 with logits ``2 tanh(.)``, Adam 3e-4 (``d_sa_lr``,
    ``d_sas_lr``), input noise 0.1 (``noise_std_discriminator``), their batch 256 real + 256 sim (``batch_size``
    of the config, while the agent's batch is main's ``batch_size=256`` times ``batch_ratio=0.5``), actor and
    critics 256-256 with Adam 3e-4 (``policy_lr``, ``qf_lr``), learned entropy temperature from 1 towards ``-|A|``,
    no entropy in the backup, gamma 0.99, tau 5e-3, no state normalisation (``scale_state=False``), rewards
    as they are (``reward_scale=1``, ``reward_bias=0``), the whole dataset as real data
    (``real_residual_ratio=1``). With logits bounded by ``2 tanh``, ``log P_real/P_sim`` lies in [-4, 4] (the
    sa logits cancel: it is the difference of ``D_sas``'s two logits), so the ratio lies in [0.018, 54.6] and
    ``u`` in [1e-45, 4]: the clips at 1e-5 and 10 are kept as in the code but never bind.

    Deviations and choices:

    - Schedule: the authors alternate 1000 sim steps and 1000 gradient steps per epoch (1000 epochs); here
      one gradient step follows each sim step (SB3's ``train_freq=1, gradient_steps=1``, the same ratio; SB3
      would overshoot a budget that is not a multiple of ``train_freq=(1000, "step")``, which reproduces
      the epochs otherwise). The first updates therefore see a few sim transitions where the authors' first
      update sees 1000. As there, the current policy acts from the first step (``learning_starts=0``).
    - Next-state perturbations: the authors scale them by the state std of their buffer array, computed over
      the dataset rows *and* the empty (zero) sim rows (``MixedReplayBuffer.normalize_states`` runs on an
      array 11 times the dataset's size), which shrinks it (about ``sqrt(1/11)`` for zero-mean features);
      here the dataset's own std (+1e-3, the authors' eps) is used: ``next_state_noise`` can reproduce it.
    - ``u`` and ``log omega`` are computed in float64 (1e-45 is below float32's normal range).
    - One Adam optimizer holds both discriminators (same rate; Adam being per-parameter, identical to the
      authors' two), trained on ``L_sa + L_sas``: ``D_sa`` receives both losses' gradients, as in the authors'
      code where ``dsas_loss.backward()`` accumulates into ``D_sa``'s gradients before ``d_sa_optimizer.step()``.
    - SB3's policy and twin critics (:class:`~algos.h2o_policies.H2OPolicy`): the actor has separate mean and
      log-std layers and no learned log-std multiplier; one Adam for both critics on the summed loss
      (the authors: one Adam over both critics' parameters too). SB3's stored actions are scaled to [-1, 1],
      the env's own actions on MuJoCo; the discriminators see observations as stored (raw unless a VecNormalize
      env normalises them) and these actions.
    - Time-limit ends of sim episodes bootstrap (SB3's ``handle_timeout_termination``), as the authors'
      sampler does by running the unwrapped env (its ``done`` is termination only).
    - The sim variants change the simulator at run time (:mod:`sim2real`); the authors copy modified XML files
      over the installed gym assets.

    :param policy: policy alias or class (``MlpPolicy``: :class:`~algos.h2o_policies.H2OPolicy`)
    :param env: the simulator to collect sim transitions in (a :class:`~sim2real.SimVariant`; None to load)
    :param dataset: real data (an :class:`~rl.datasets.OfflineDataset` or a spec for ``load_dataset``)
    :param sim_ratio: share of sim transitions in each batch (the authors' ``batch_ratio``: 0.5)
    :param dynamics_aware: weight sim transitions by the learned dynamics ratio (True: H2O; False: the naive mix,
        a ratio of 1 everywhere and no discriminator training)
    :param cql_alpha: weight of the dynamics-aware penalty (``cql_min_q_weight``: 0.01)
    :param cql_temp: temperature of the penalty's logsumexp (1.0)
    :param cql_lagrange: tune the weight by dual gradient descent (False)
    :param cql_target_action_gap: threshold of the Lagrange version (the authors: 1.0)
    :param cql_clip_diff_min: lower clip of each critic's gap (-1000)
    :param cql_clip_diff_max: upper clip of each critic's gap (1000)
    :param dynamics_ratio_min: lower clip of the Bellman weights of sim transitions (1e-5)
    :param dynamics_ratio_max: upper clip of the Bellman weights of sim transitions (1)
    :param sim_weight_min: lower clip of ``u`` (``sim_q_coeff_min``: 1e-45)
    :param sim_weight_max: upper clip of ``u`` (``sim_q_coeff_max``: 10)
    :param n_next_state_samples: perturbed next states per sim transition in ``u`` (10)
    :param next_state_noise: std of the perturbations in dataset observation stds (``s_prime_std_ratio``: 1)
    :param discriminator_lr: Adam learning rate of the discriminators (3e-4)
    :param discriminator_noise: std of the Gaussian noise added to the discriminators' inputs in training (0.1)
    :param discriminator_batch_size: real and (as many) sim transitions per discriminator step (256)
    :param discriminator_net_arch: hidden layers of each discriminator (256-256)
    :param backup_entropy: subtract ``alpha * log pi(a'|s')`` in the target (False)
    :param normalize_observations: standardise the policy's observations with the dataset's statistics (False)
    :param reward_scale: rewards are used as ``reward_scale * r + reward_bias`` (1.0)
    :param reward_bias: see ``reward_scale`` (0.0)
    :param policy_lr: Adam learning rate of the actor and of the entropy temperature (3e-4)
    :param learning_rate: Adam learning rate of the critics and of the Lagrange multiplier (3e-4)
    :param buffer_size: replay buffer capacity: the dataset plus the sim steps kept
    :param learning_starts: sim steps of uniform random actions before learning (0: the policy acts)
    :param batch_size: real plus sim transitions per gradient step (256)
    :param tau: target smoothing coefficient (0.005)
    :param gamma: discount factor (0.99)
    :param train_freq: update every ``train_freq`` sim steps (1)
    :param gradient_steps: gradient steps per update (1)
    :param action_noise: extra exploration noise (None: the policy's own sampling explores)
    :param replay_buffer_class: a :class:`~sim2real.RealSimReplayBuffer` subclass (None: that class)
    :param replay_buffer_kwargs: its keyword arguments
    :param ent_coef: entropy temperature, ``"auto"`` to learn it from 1.0 (the authors: learned, from 1)
    :param target_update_interval: update the targets every this many gradient steps (1)
    :param target_entropy: target entropy of the temperature tuning (``"auto"``: ``-|A|``)
    :param stats_window_size: episodes averaged in the rollout logs
    :param tensorboard_log: tensorboard log directory
    :param policy_kwargs: policy keyword arguments (``net_arch``, ``orthogonal_init``, ``log_std_offset``, ...)
    :param verbose: verbosity level
    :param seed: seed of every random generator
    :param device: torch device
    :param _init_setup_model: build the networks now (False when loading)
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": H2OPolicy}
    vec_normalize_supported = True
    """Sim steps from the first update (no offline phase by default): a VecNormalize env's running statistics then
    normalise real and sim rows alike, as for any online SB3 algorithm (``learn_offline`` still refuses it)."""
    policy: H2OPolicy
    replay_buffer: RealSimReplayBuffer
    discriminators: DynamicsDiscriminators
    discriminator_optimizer: th.optim.Adam
    next_state_std: np.ndarray | None

    def __init__(
        self,
        policy: str | type[H2OPolicy],
        env: GymEnv | str | None,
        dataset: OfflineDataset | str | None = None,
        sim_ratio: float = 0.5,
        dynamics_aware: bool = True,
        cql_alpha: float = 0.01,
        cql_temp: float = 1.0,
        cql_lagrange: bool = False,
        cql_target_action_gap: float = 1.0,
        cql_clip_diff_min: float = -1000.0,
        cql_clip_diff_max: float = 1000.0,
        dynamics_ratio_min: float = 1e-5,
        dynamics_ratio_max: float = 1.0,
        sim_weight_min: float = 1e-45,
        sim_weight_max: float = 10.0,
        n_next_state_samples: int = 10,
        next_state_noise: float = 1.0,
        discriminator_lr: float = 3e-4,
        discriminator_noise: float = 0.1,
        discriminator_batch_size: int = 256,
        discriminator_net_arch: Sequence[int] | None = None,
        backup_entropy: bool = False,
        normalize_observations: bool = False,
        reward_scale: float = 1.0,
        reward_bias: float = 0.0,
        policy_lr: float | Schedule = 3e-4,
        learning_rate: float | Schedule = 3e-4,
        buffer_size: int = 2_000_000,
        learning_starts: int = 0,
        batch_size: int = 256,
        tau: float = 0.005,
        gamma: float = 0.99,
        train_freq: int | tuple[int, str] = 1,
        gradient_steps: int = 1,
        action_noise: ActionNoise | None = None,
        replay_buffer_class: type[ReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        ent_coef: str | float = "auto",
        target_update_interval: int = 1,
        target_entropy: str | float = "auto",
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        if not 0.0 < sim_ratio < 1.0:
            raise ValueError(f"sim_ratio must lie in (0, 1) (the authors' batch_ratio: 0.5), got {sim_ratio}.")
        if not 0.0 < dynamics_ratio_min <= dynamics_ratio_max:
            raise ValueError(
                f"Need 0 < dynamics_ratio_min <= dynamics_ratio_max (1e-5, 1), got {dynamics_ratio_min}, "
                f"{dynamics_ratio_max}."
            )
        if not 0.0 < sim_weight_min <= sim_weight_max:
            raise ValueError(
                f"Need 0 < sim_weight_min <= sim_weight_max (1e-45, 10), got {sim_weight_min}, {sim_weight_max}."
            )
        if n_next_state_samples < 1 or discriminator_batch_size < 1:
            raise ValueError(
                f"n_next_state_samples (10) and discriminator_batch_size (256) must be >= 1, got "
                f"{n_next_state_samples}, {discriminator_batch_size}."
            )
        if next_state_noise < 0 or discriminator_noise < 0:
            raise ValueError(f"Noise stds must be >= 0, got {next_state_noise}, {discriminator_noise}.")
        if batch_size < 2:
            raise ValueError(f"batch_size must be >= 2 (a real and a sim transition; authors: 256), got {batch_size}.")
        if replay_buffer_class is not None and not issubclass(replay_buffer_class, RealSimReplayBuffer):
            raise ValueError(
                f"H2O samples real and sim data separately: replay_buffer_class must be a RealSimReplayBuffer, "
                f"got {replay_buffer_class.__name__}."
            )
        self.sim_ratio = sim_ratio
        self.dynamics_aware = dynamics_aware
        self.dynamics_ratio_min = dynamics_ratio_min
        self.dynamics_ratio_max = dynamics_ratio_max
        self.sim_weight_min = sim_weight_min
        self.sim_weight_max = sim_weight_max
        self.n_next_state_samples = n_next_state_samples
        self.next_state_noise = next_state_noise
        self.discriminator_lr = discriminator_lr
        self.discriminator_noise = discriminator_noise
        self.discriminator_batch_size = discriminator_batch_size
        self.discriminator_net_arch = list(discriminator_net_arch or DISCRIMINATOR_NET_ARCH)
        self.next_state_std = None
        super().__init__(
            policy, env, dataset=dataset, cql_alpha=cql_alpha, cql_temp=cql_temp, cql_lagrange=cql_lagrange,
            cql_target_action_gap=cql_target_action_gap, cql_clip_diff_min=cql_clip_diff_min,
            cql_clip_diff_max=cql_clip_diff_max, backup_entropy=backup_entropy,
            normalize_observations=normalize_observations, reward_scale=reward_scale, reward_bias=reward_bias,
            policy_lr=policy_lr, learning_rate=learning_rate, buffer_size=buffer_size,
            learning_starts=learning_starts, batch_size=batch_size, tau=tau, gamma=gamma, train_freq=train_freq,
            gradient_steps=gradient_steps, action_noise=action_noise,
            replay_buffer_class=replay_buffer_class or RealSimReplayBuffer, replay_buffer_kwargs=replay_buffer_kwargs,
            ent_coef=ent_coef, target_update_interval=target_update_interval, target_entropy=target_entropy,
            stats_window_size=stats_window_size, tensorboard_log=tensorboard_log, policy_kwargs=policy_kwargs,
            verbose=verbose, seed=seed, device=device, _init_setup_model=False,
        )
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        super()._setup_model()  # CQL's: SAC's networks, the actor's learning rate, the dataset into the buffer
        observation_dim, action_dim = get_flattened_obs_dim(self.observation_space), get_action_dim(self.action_space)
        self.discriminators = DynamicsDiscriminators(observation_dim, action_dim, self.discriminator_net_arch)
        self.discriminators.to(self.device)
        self.discriminator_optimizer = th.optim.Adam(self.discriminators.parameters(), lr=self.discriminator_lr)

    def _on_offline_data(self, dataset: OfflineDataset) -> None:
        """Mark the dataset's rows as the real data; keep its observation std for the next-state perturbations."""
        super()._on_offline_data(dataset)
        self.replay_buffer.set_real_size(len(dataset))
        self.next_state_std = observation_statistics(dataset.observations)[1]

    def load_replay_buffer(self, path: Any, truncate_last_traj: bool = True) -> None:
        super().load_replay_buffer(path, truncate_last_traj)
        if not isinstance(self.replay_buffer, RealSimReplayBuffer):
            raise TypeError(
                f"H2O needs a RealSimReplayBuffer (real and sim regions); {path} holds a "
                f"{type(self.replay_buffer).__name__}."
            )

    # The dynamics ratio and the weights derived from it.

    def dynamics_log_ratio(
        self, observations: th.Tensor, actions: th.Tensor, next_observations: th.Tensor
    ) -> th.Tensor:
        """``log P_real(s'|s,a) / P_sim(s'|s,a)`` from the discriminators, shape (batch,), no gradient."""
        with th.no_grad():
            return self.discriminators.log_ratio(observations.float(), actions.float(), next_observations.float())

    def sim_bellman_weights(
        self, observations: th.Tensor, actions: th.Tensor, next_observations: th.Tensor
    ) -> th.Tensor:
        """The weights of sim transitions' squared Bellman errors: ``clip(P_real/P_sim, ratio_min, ratio_max)``."""
        ratio = self.dynamics_log_ratio(observations, actions, next_observations).exp()
        return ratio.clamp(self.dynamics_ratio_min, self.dynamics_ratio_max)

    def sim_state_weights(
        self, observations: th.Tensor, actions: th.Tensor, next_observations: th.Tensor
    ) -> tuple[th.Tensor, th.Tensor]:
        """``(u, log omega)`` of sim pairs, float64, shape (batch,) each, no gradient.

        ``u = clip(mean_k log(P_sim/P_real)(s, a, s' + eps_k), sim_weight_min, sim_weight_max)`` over
        ``n_next_state_samples`` perturbations ``eps_k ~ N(0, (next_state_noise * std)^2)`` (``std``: the
        dataset's observation std; no perturbation without a dataset), and ``omega = u / sum(u)``.
        """
        batch, n = len(observations), self.n_next_state_samples
        next_states = next_observations.float().repeat_interleave(n, dim=0)
        if self.next_state_std is not None and self.next_state_noise > 0:
            std = th.as_tensor(self.next_state_std, dtype=th.float32, device=next_states.device)
            next_states = next_states + th.randn_like(next_states) * std.view_as(next_states[0]) * self.next_state_noise
        log_real_over_sim = self.dynamics_log_ratio(
            observations.repeat_interleave(n, dim=0), actions.repeat_interleave(n, dim=0), next_states
        ).view(batch, n)
        u = (-log_real_over_sim).double().mean(dim=1).clamp(self.sim_weight_min, self.sim_weight_max)
        return u, u.log() - u.sum().log()

    def h2o_penalty(self, sim_q: th.Tensor, real_q: th.Tensor, log_omega: th.Tensor) -> th.Tensor:
        """Each critic's gap ``clip(T * logsumexp_sim((Q + log omega) / T) - mean_real Q)``, shape (n_critics,).

        ``sim_q`` (n_critics, n_sim) and ``real_q`` (n_critics, n_real) are Q of the sampled pairs, ``log_omega``
        (n_sim,) the log weights of :meth:`sim_state_weights`. With ``T = 1`` the first term is
        ``log sum_j omega_j exp(Q(s_j, a_j))``, a soft maximum of Q over the sim pairs weighted by omega.
        """
        logits = (sim_q + log_omega.to(sim_q.dtype)) / self.cql_temp
        soft_max = th.logsumexp(logits, dim=1) * self.cql_temp
        return (soft_max - real_q.mean(dim=1)).clamp(self.cql_clip_diff_min, self.cql_clip_diff_max)

    def discriminator_step(
        self, real: Sequence[th.Tensor], sim: Sequence[th.Tensor]
    ) -> tuple[th.Tensor, th.Tensor]:
        """One Adam step of both discriminators on real and sim ``(s, a, s')`` with input noise; returns the losses."""
        noisy = [
            [x.float() + self.discriminator_noise * th.randn_like(x.float()) for x in transitions]
            for transitions in (real, sim)
        ]
        sa_loss, sas_loss = self.discriminators.losses(*noisy)
        self.discriminator_optimizer.zero_grad()
        (sa_loss + sas_loss).backward()
        self.discriminator_optimizer.step()
        return sa_loss.detach(), sas_loss.detach()

    def train_discriminators(self) -> tuple[th.Tensor, th.Tensor]:
        """:meth:`discriminator_step` on ``discriminator_batch_size`` real and as many sim transitions of the buffer."""
        real = self.replay_buffer.sample_real(self.discriminator_batch_size, env=self._vec_normalize_env)
        sim = self.replay_buffer.sample_sim(self.discriminator_batch_size, env=self._vec_normalize_env)
        return self.discriminator_step(
            (real.observations, real.actions, real.next_observations),
            (sim.observations, sim.actions, sim.next_observations),
        )

    def _sample(self, batch_size: int) -> tuple[ReplayBufferSamples, ReplayBufferSamples | None]:
        """Real and sim transitions of one gradient step (real only while there is no sim transition)."""
        buffer = self.replay_buffer
        if buffer.real_size == 0:
            raise NoOfflineDataError(
                "H2O's real data is an offline dataset: pass dataset=... to the constructor or call "
                "load_offline_data(...) first."
            )
        if buffer.sim_size == 0:
            return buffer.sample_real(batch_size, env=self._vec_normalize_env), None
        n_sim = min(max(round(batch_size * self.sim_ratio), 1), batch_size - 1)
        real = buffer.sample_real(batch_size - n_sim, env=self._vec_normalize_env)
        return real, buffer.sample_sim(n_sim, env=self._vec_normalize_env)

    def train(self, gradient_steps: int, batch_size: int = 256) -> None:
        self.policy.set_training_mode(True)
        q_optimizers = [self.critic.optimizer]
        if self.cql_alpha_optimizer is not None:
            q_optimizers.append(self.cql_alpha_optimizer)
        self._update_learning_rate(q_optimizers)
        policy_lr = self.policy_lr_schedule(self._current_progress_remaining)
        for optimizer in self._policy_optimizers():
            update_learning_rate(optimizer, policy_lr)
        self.logger.record("train/policy_learning_rate", policy_lr)

        logs: dict[str, list[float]] = defaultdict(list)
        for _ in range(gradient_steps):
            self._n_updates += 1
            real, sim = self._sample(batch_size)
            step_logs: dict[str, th.Tensor] = {}
            if sim is not None and self.dynamics_aware:
                step_logs["discriminator_sa_loss"], step_logs["discriminator_sas_loss"] = self.train_discriminators()
            data = real if sim is None else ReplayBufferSamples(*(
                th.cat([r, s]) if r is not None else None for r, s in zip(real, sim)
            ))
            n_real = len(real.observations)
            discounts = data.discounts if data.discounts is not None else self.gamma
            rewards = self.scale_rewards(data.rewards)

            # Entropy temperature and actor (SAC) over the real and the sim states.
            actions_pi, log_prob = self.actor.action_log_prob(data.observations)
            log_prob = log_prob.reshape(-1, 1)
            ent_coef_loss = None
            if self.ent_coef_optimizer is not None and self.log_ent_coef is not None:
                ent_coef = th.exp(self.log_ent_coef.detach())
                ent_coef_loss = -(self.log_ent_coef * (log_prob + self.target_entropy).detach()).mean()
            else:
                ent_coef = self.ent_coef_tensor
            q_pi = th.cat(self.critic(data.observations, actions_pi), dim=1).min(dim=1, keepdim=True).values
            actor_loss = (ent_coef * log_prob - q_pi).mean()

            # Critics: Bellman error on real data, ratio-weighted on sim data, plus the dynamics-aware penalty.
            target_q = self.critic_target_q(data.next_observations, rewards, data.dones, discounts, ent_coef)
            current_q = th.cat(self.critic(data.observations, data.actions), dim=1).T  # (n_critics, batch)
            target_q = target_q.view(1, -1)
            real_td_loss = ((current_q[:, :n_real] - target_q[:, :n_real]) ** 2).mean(dim=1).sum()
            critic_loss = real_td_loss
            cql_weight = None
            if sim is not None:
                if self.dynamics_aware:
                    weights = self.sim_bellman_weights(sim.observations, sim.actions, sim.next_observations)
                    u, log_omega = self.sim_state_weights(sim.observations, sim.actions, sim.next_observations)
                else:  # the naive mix: a dynamics ratio of 1, i.e. unit weights and a uniform omega
                    weights = th.ones(len(sim.observations), device=self.device)
                    u = th.ones(len(sim.observations), dtype=th.float64, device=self.device)
                    log_omega = th.full_like(u, -math.log(len(u)))
                sim_td_loss = (weights * (current_q[:, n_real:] - target_q[:, n_real:]) ** 2).mean(dim=1).sum()
                gap = self.h2o_penalty(current_q[:, n_real:], current_q[:, :n_real], log_omega)
                cql_weight = self.cql_weight()
                critic_loss = critic_loss + sim_td_loss + cql_weight * gap.sum()
                step_logs.update(
                    sim_td_loss=sim_td_loss, h2o_gap=gap.mean(), cql_weight=cql_weight, bellman_weight=weights.mean(),
                    u=u.mean(), omega_std=log_omega.exp().std(), q_sim=current_q[0, n_real:].mean(),
                )

            if ent_coef_loss is not None and self.ent_coef_optimizer is not None:
                self.ent_coef_optimizer.zero_grad()
                ent_coef_loss.backward()
                self.ent_coef_optimizer.step()
                step_logs["ent_coef_loss"] = ent_coef_loss
            if self.cql_alpha_optimizer is not None and cql_weight is not None:
                cql_alpha_loss = self.cql_alpha_loss(gap)
                self.cql_alpha_optimizer.zero_grad()
                cql_alpha_loss.backward()
                self.cql_alpha_optimizer.step()
                step_logs["cql_alpha_loss"] = cql_alpha_loss
            self.actor.optimizer.zero_grad()
            actor_loss.backward()
            self.actor.optimizer.step()
            self.critic.optimizer.zero_grad()
            critic_loss.backward()
            self.critic.optimizer.step()

            if self._n_updates % self.target_update_interval == 0:
                polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
                polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)

            step_logs.update(
                ent_coef=ent_coef, actor_loss=actor_loss, log_pi=log_prob.mean(), critic_loss=critic_loss,
                real_td_loss=real_td_loss, q_real=current_q[0, :n_real].mean(), q_target=target_q.mean(),
            )
            values = th.stack([value.detach().reshape(()).float() for value in step_logs.values()]).tolist()  # one sync
            for key, value in zip(step_logs, values):
                logs[key].append(value)
            logs["sim_fraction"].append(0.0 if sim is None else 1.0 - n_real / batch_size)

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        for key, values in logs.items():
            self.logger.record(f"train/{key}", np.mean(values))

    # Run artefacts and the save hooks.

    def dynamics_ratios(self, n: int = 5000, seed: int = 0) -> dict[str, np.ndarray]:
        """``log P_real/P_sim`` of up to ``n`` real and ``n`` sim transitions of the buffer (keys "real", "sim").

        Drawn with their own generator (``seed``), so that this leaves training's random streams alone.
        """
        buffer, rng = self.replay_buffer, np.random.default_rng(seed)
        regions = {"real": (0, buffer.real_size), "sim": (buffer.real_size, buffer.size())}
        result = {}
        for name, (low, high) in regions.items():
            if high <= low:
                result[name] = np.zeros(0)
                continue
            index = np.sort(rng.choice(np.arange(low, high), size=min(n, high - low), replace=False))
            observations, next_observations = buffer.observations[index, 0], buffer.next_observations[index, 0]
            if self._vec_normalize_env is not None:  # as the discriminators saw them in training
                observations = self._vec_normalize_env.normalize_obs(observations)
                next_observations = self._vec_normalize_env.normalize_obs(next_observations)
            tensors = [
                th.as_tensor(np.asarray(x).reshape(len(index), -1), device=self.device)
                for x in (observations, buffer.actions[index, 0], next_observations)
            ]
            result[name] = self.dynamics_log_ratio(*tensors).cpu().numpy().astype(np.float64)
        return result

    def write_run_artifacts(self, run_dir: str, eval_env: Any = None) -> dict[str, Any]:
        """``dynamics_ratio.png`` (histograms of the learned ratio on real and sim transitions), the log ratios behind
        it (``dynamics_ratio.npz``) and a summary; nothing for the naive mix (``dynamics_aware=False``).

        Returns ``{"dynamics_ratio": {...}}`` for run.json: the mean ratio ``P_real/P_sim`` on real and on sim
        samples, the mean clipped Bellman weight of the sim samples, and the sample counts.
        """
        if self.replay_buffer is None or self.replay_buffer.real_size == 0 or not self.dynamics_aware:
            return {}  # the naive mix trains no discriminator: there is no learned ratio to show
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        log_ratios = self.dynamics_ratios()
        np.savez_compressed(Path(run_dir) / DYNAMICS_RATIO_SAMPLES, **log_ratios)
        summary: dict[str, Any] = {"plot": DYNAMICS_RATIO_PLOT}
        for name, values in log_ratios.items():
            summary[f"n_{name}"] = len(values)
            summary[f"{name}_mean"] = float(np.exp(values).mean()) if len(values) else None
            summary[f"{name}_clipped_mean"] = (
                float(np.clip(np.exp(values), self.dynamics_ratio_min, self.dynamics_ratio_max).mean())
                if len(values) else None
            )
        figure, axis = plt.subplots(figsize=(6.4, 4.0))
        shown = [values for values in log_ratios.values() if len(values)]
        bins = np.linspace(min(v.min() for v in shown) - 1e-6, max(v.max() for v in shown) + 1e-6, 50)
        for name, values in log_ratios.items():
            if len(values):
                axis.hist(values / math.log(10), bins=bins / math.log(10), alpha=0.6, density=True,
                          label=f"{name} ({len(values)}), mean ratio {np.exp(values).mean():.3g}")
        for bound in (self.dynamics_ratio_min, self.dynamics_ratio_max):
            axis.axvline(math.log10(bound), color="black", linestyle="--", linewidth=0.8)
        axis.set_xlabel("log10 P_real(s'|s,a) / P_sim(s'|s,a)  (dashed: Bellman-weight clip)")
        axis.set_ylabel("density")
        axis.set_title("H2O's learned dynamics ratio")
        axis.legend()
        figure.tight_layout()
        figure.savefig(Path(run_dir) / DYNAMICS_RATIO_PLOT, dpi=100)
        plt.close(figure)
        return {"dynamics_ratio": summary}

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, variables = super()._get_torch_save_params()
        return [*state_dicts, "discriminators", "discriminator_optimizer"], variables


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m algos.h2o --env <id> --sim <spec> --dataset <real data> [runner flags]``."""
    import shlex

    from rl.cli import build_parser, config_from_args, run_and_report
    from rl.runner import train
    from sim2real import SimSpecError, configure_sim, describe_parameters

    parser = build_parser("h2o")
    parser.add_argument(
        "--sim", default=None, metavar="SPEC",
        help=f"the simulator: the env with these dynamics changes (default: the env as it is). {describe_parameters()}",
    )
    args = parser.parse_args(argv)

    def start() -> object:
        config = configure_sim(config_from_args(args, "h2o"), args.sim)
        config.command = shlex.join(["python", "-m", "algos.h2o", *(sys.argv[1:] if argv is None else argv)])
        return train(config)

    return run_and_report(start, (SimSpecError,))


if __name__ == "__main__":
    # Run the importable module, not this ``__main__`` copy: what it pickles must name
    # ``algos.h2o``'s classes to load elsewhere, and its isinstance checks must see one class.
    from algos.h2o import main as module_main

    sys.exit(module_main())
