"""OPPO: Offline Preference-guided Policy Optimization (Kang, Shi, Liu, He & Wang, ICML 2023).

"Beyond Reward: Offline Preference-guided Policy Optimization", https://arxiv.org/abs/2305.16217. Details the paper
leaves open follow the authors' scripted-label code (github bkkgbkjb/OPPO, oppo/scripted/gym: args.py,
experiment.py, decision_transformer/training/pdt_trainer.py); the networks are in :mod:`algos.oppo_policies`, the
loss terms in :mod:`algos.oppo_losses`, the data and labels in :mod:`algos.oppo_data`.

    python -m algos.oppo --dataset hopper-medium-replay-v2 -n 100000
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from typing import Any, ClassVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import safe_mean, update_learning_rate
from stable_baselines3.common.vec_env import VecEnv, unwrap_vec_normalize

from algos.oppo_data import (
    Batch,
    DatasetTensors,
    EpisodeIndex,
    LabelledPairs,
    OPPODataError,
    check_episodes,
    episode_index,
    sample_windows,
    scripted_comparisons,
)
from algos.oppo_losses import (
    TRIPLET_MARGIN,
    distance,
    encoder_policy_loss,
    hindsight_matching_loss,
    norm_loss,
    preference_triplet_loss,
)
from algos.oppo_policies import OPPOPolicy
from rl.datasets import OfflineDataset, load_dataset
from rl.offline import (
    NoOfflineDataError,
    OfflineEnvError,
    check_dataset_fits,
    dataset_spec,
    observation_statistics,
    run_offline_updates,
    setup_offline_data,
    setup_offline_learn,
)
from rl.preferences import ComparisonQueue


def warmup_factor(n_updates: int, warmup_steps: int) -> float:
    """``min((n + 1) / warmup_steps, 1)`` for the n-th update (from 0): the authors' ``LambdaLR`` warm-up of the
    policy's learning rate (experiment.py), stepped once per update."""
    return 1.0 if warmup_steps <= 0 else min((n_updates + 1) / warmup_steps, 1.0)


class OPPO(BaseAlgorithm):
    """Offline Preference-guided Policy Optimization, trained from a dataset and labelled pairs of its segments.

    The labels: ``n_comparisons`` pairs of ``segment_length``-step segments cut uniformly from the dataset's
    episodes, the larger true return preferred (ties, 0.5, are kept in the count but give no triplet), drawn once per
    model with the seed by :func:`algos.oppo_data.scripted_comparisons` through :mod:`rl.preferences`
    (``BradleyTerryRater(temperature=0)``, a ``ComparisonQueue`` counting the comparisons used). They are saved with
    the model. ``comparisons_used`` goes into the run record.

    Each gradient step (``pdt_trainer.py`` ``train_step``):

    1. Hindsight information matching: two batches of ``batch_size`` windows of ``context_length`` steps from the
       dataset (a row uniformly, then its next steps, shorter and left-padded at an episode's end); each window
       tau is encoded, z = E(tau), and the policy regresses the window's actions:
       ``recon = MSE(pi(s, z), a)`` summed over the two batches (the authors' two batches).
    2. Preference modelling: ``batch_size`` labelled pairs that do not tie, encoded as z+ (preferred) and z- (other):
       ``triplet = mean max(||z* - z+|| - ||z* - z-|| + 1, 0)`` with z* detached, and
       ``norm = mean (||z+|| - 1)^2 + mean (||z-|| - 1)^2``.
    3. The encoder and the policy take one AdamW step each on ``recon + 0.1 triplet + 0.1 norm`` (gradients clipped
       to norm 0.25 per network; the policy's learning rate warms up linearly over ``warmup_steps``).
    4. z*: the pairs are encoded again by the updated encoder (no gradient to it) and z* takes one AdamW step on the
       same triplet loss.

    At evaluation the policy conditions on z*: ``predict`` keeps the last ``context_length`` steps of each env and
    returns them as its ``state`` (see :class:`algos.oppo_policies.OPPOPolicy`); ``evaluate_policy`` passes it back.

    Built on SB3's BaseAlgorithm, not OffPolicyAlgorithm with :class:`rl.offline.OfflineAlgorithmMixin` as the
    project's other offline algorithms: OPPO samples windows of whole episodes, not transitions from a replay
    buffer, and has no online phase (the shared runner's ``--online-steps`` is refused). It reuses the offline core's
    checks (dataset vs env, no VecNormalize), its dataset handling (only the dataset's spec is saved; ``load``
    reads the data again), its episode ends and its loop of gradient steps under SB3's callbacks.

    Deviations from the paper and the authors' code (each also commented where it is made):

    - Labels: a fixed set of ``n_comparisons`` pairs, each side a ``segment_length``-step segment labelled by its own
      true return. The authors label every sampled batch afresh (about 6.4M comparisons in 100k steps) by the sum of
      the next 200 rewards from each window's start (``foresee=200``), while the encoder sees 20 steps.
    - Hindsight matching runs on windows of the whole dataset and the triplet on the labelled pairs: the paper's
      Algorithm 1 takes an unlabelled dataset and a labelled one; the authors' code, where every window is
      labelled, uses the same windows for both. The norm term is taken on the labelled pairs' encodings.
    - The encoder sums its outputs over real tokens only (theirs includes the padding of short windows).
    - Observations are standardised with the dataset's std + 1e-3 (the project's offline core; theirs + 1e-6), and
      actions are scaled to [-1, 1] by the action space's bounds (MuJoCo's are [-1, 1] already).
    - The timestep embedding covers ``max_ep_len`` steps; an episode in the data longer than that is refused (the
      authors assert it), and at evaluation later steps reuse the last embedding (their "padding cutoff").

    :param policy: policy alias or class (``MlpPolicy`` = :class:`~algos.oppo_policies.OPPOPolicy`)
    :param env: the env to evaluate in (one env: OPPO never steps it)
    :param dataset: offline data (an :class:`~rl.datasets.OfflineDataset` or a spec for ``load_dataset``)
    :param n_comparisons: labelled pairs (comparisons used)
    :param segment_length: steps of each labelled segment (20)
    :param context_length: steps of each window and of the policy's context, K (20)
    :param max_ep_len: steps the timestep embeddings cover (1000)
    :param preference_weight: weight of the triplet loss in the encoder's and policy's loss (0.1)
    :param norm_weight: weight of the norm term (0.1)
    :param triplet_margin: the triplet loss's margin (1.0)
    :param learning_rate: AdamW learning rate of the encoder and the policy (1e-4)
    :param z_star_learning_rate: AdamW learning rate of z* (1e-3)
    :param weight_decay: AdamW weight decay of all three (1e-4)
    :param warmup_steps: updates over which the policy's learning rate rises linearly to ``learning_rate`` (10,000)
    :param max_grad_norm: gradient norm clip of the encoder and of the policy (0.25)
    :param batch_size: labelled pairs per update, and windows per hindsight batch (64)
    :param buffer_size: set by the shared runner, which sizes every offline algorithm's replay buffer as the dataset
        plus the online steps: OPPO keeps no buffer, and a size above the dataset's means online steps were asked
        for, which are refused
    :param policy_kwargs: keyword arguments of the policy (``z_dim``, ``hidden_size``, ``n_layer``, ``n_head``,
        ``encoder_layers``, ``encoder_heads``, ``dropout``, ``activation``)
    :param stats_window_size: episodes averaged in the rollout logs
    :param tensorboard_log: tensorboard log folder
    :param verbose: 0 silent, 1 info, 2 debug
    :param seed: random seed (also draws the labelled pairs)
    :param device: torch device
    :param _init_setup_model: build the networks at construction (False inside ``load``)
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": OPPOPolicy}
    policy: OPPOPolicy

    def __init__(
        self,
        policy: str | type[OPPOPolicy],
        env: GymEnv | str | None,
        dataset: OfflineDataset | str | None = None,
        n_comparisons: int = 10_000,
        segment_length: int = 20,
        context_length: int = 20,
        max_ep_len: int = 1000,
        preference_weight: float = 0.1,
        norm_weight: float = 0.1,
        triplet_margin: float = TRIPLET_MARGIN,
        learning_rate: float | Schedule = 1e-4,
        z_star_learning_rate: float = 1e-3,
        weight_decay: float = 1e-4,
        warmup_steps: int = 10_000,
        max_grad_norm: float = 0.25,
        batch_size: int = 64,
        buffer_size: int | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        for name, value in (("n_comparisons", n_comparisons), ("segment_length", segment_length),
                            ("context_length", context_length), ("max_ep_len", max_ep_len),
                            ("batch_size", batch_size)):
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")
        for name, value in (("preference_weight", preference_weight), ("norm_weight", norm_weight),
                            ("weight_decay", weight_decay)):
            if not value >= 0:
                raise ValueError(
                    f"{name} must be >= 0 (the paper uses 0.1 for the weights, 1e-4 for decay), got {value!r}."
                )
        for name, value in (("triplet_margin", triplet_margin), ("z_star_learning_rate", z_star_learning_rate),
                            ("max_grad_norm", max_grad_norm)):
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value!r}.")
        if not callable(learning_rate) and not learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0 (the paper uses 1e-4), got {learning_rate!r}.")
        if int(warmup_steps) != warmup_steps or warmup_steps < 0:
            raise ValueError(f"warmup_steps must be an integer >= 0, got {warmup_steps!r}.")
        for name, value in (("segment_length", segment_length), ("context_length", context_length)):
            if value > max_ep_len:
                raise ValueError(
                    f"{name} ({value}) must not exceed max_ep_len ({max_ep_len}), the timestep embedding's size."
                )
        _check_env(env)
        self.n_comparisons, self.segment_length = int(n_comparisons), int(segment_length)
        self.context_length, self.max_ep_len = int(context_length), int(max_ep_len)
        self.preference_weight, self.norm_weight = float(preference_weight), float(norm_weight)
        self.triplet_margin = float(triplet_margin)
        self.z_star_learning_rate, self.weight_decay = float(z_star_learning_rate), float(weight_decay)
        self.warmup_steps, self.max_grad_norm = int(warmup_steps), float(max_grad_norm)
        self.batch_size = int(batch_size)
        self._dataset = dataset if isinstance(dataset, OfflineDataset) else None
        self.dataset_spec = dataset_spec(dataset) if isinstance(dataset, OfflineDataset) else dataset
        if buffer_size is not None and self._dataset is not None and buffer_size > len(self._dataset) + 1:
            # The runner passes len(dataset) + online steps + 1 (rl.runner._set_up): anything above the dataset's
            # size asks for an online phase, which OPPO does not have.
            raise ValueError(
                f"OPPO learns offline only: --online-steps must be 0 (got {buffer_size - len(self._dataset) - 1}); "
                "-n sets its gradient steps."
            )
        self.offline_updates = 0
        self.labelled_pairs: LabelledPairs | None = None
        """The labelled pairs (saved with the model); drawn from the dataset when it is first loaded."""
        self.labels_fingerprint: str | None = None
        """The fingerprint of the dataset the pairs' rows index."""
        policy_kwargs = dict(policy_kwargs or {})
        policy_kwargs.update(context_length=self.context_length, max_ep_len=self.max_ep_len,
                             weight_decay=self.weight_decay, z_star_learning_rate=self.z_star_learning_rate)
        super().__init__(
            policy, env, learning_rate=learning_rate, policy_kwargs=policy_kwargs, stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log, verbose=verbose, device=device, support_multi_env=False, seed=seed,
            supported_action_spaces=(spaces.Box,),
        )
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        self._setup_lr_schedule()
        self.set_random_seed(self.seed)
        action_space = self.action_space
        assert isinstance(action_space, spaces.Box)
        if not (np.all(np.isfinite(action_space.low)) and np.all(np.isfinite(action_space.high))):
            raise ValueError(
                f"OPPO's policy outputs tanh-bounded actions: the action space must be bounded, got {action_space}."
            )
        self.policy = self.policy_class(self.observation_space, action_space, self.lr_schedule, **self.policy_kwargs)
        self.policy = self.policy.to(self.device)
        self._data: DatasetTensors | None = None
        self._episodes: EpisodeIndex | None = None
        setup_offline_data(self, needs="learning", stacklevel=2)  # the warning points at the caller of _setup_model

    # ----- data ---------------------------------------------------------------------------------------------

    @property
    def dataset(self) -> OfflineDataset | None:
        """The offline dataset, if it was loaded in this process."""
        return self._dataset

    def load_offline_data(self, dataset: OfflineDataset | str) -> OfflineDataset:
        """Train from ``dataset`` (an OfflineDataset or a spec for :func:`rl.datasets.load_dataset`).

        Sets the policy's observation statistics, cuts the episodes, and draws the labelled pairs unless the model
        already holds ``n_comparisons`` pairs of ``segment_length`` steps of this very dataset (same fingerprint).

        Raises:
            DatasetMismatchError: observations or actions that do not fit the env's spaces.
            OPPODataError: no episode as long as a segment, an episode longer than ``max_ep_len``, or labelled pairs
                that all tie.
        """
        if not isinstance(dataset, OfflineDataset):
            dataset = load_dataset(dataset)
        check_dataset_fits(dataset, self.observation_space, self.action_space)
        episodes = episode_index(dataset)
        check_episodes(dataset, episodes, segment_length=self.segment_length, max_ep_len=self.max_ep_len)
        fingerprint = dataset.fingerprint()
        pairs = self.labelled_pairs
        if (pairs is None or self.labels_fingerprint != fingerprint or len(pairs.rows) != self.n_comparisons
                or pairs.segment_length != self.segment_length):
            # Deviation: a fixed set of labelled pairs, each segment judged by its own return; the authors label every
            # batch afresh by the next 200 rewards from each window's start (experiment.py foresee=200).
            self.labelled_pairs = scripted_comparisons(
                dataset, episodes, n_pairs=self.n_comparisons, segment_length=self.segment_length, seed=self.seed
            )
            self.labels_fingerprint = fingerprint
        if len(self.labelled_pairs.decided) == 0:
            raise OPPODataError(
                f"Dataset {dataset.name!r}: all {self.n_comparisons} labelled pairs tie (equal true returns), so the "
                "triplet loss has nothing to learn from; pass more comparisons (-params n_comparisons:...) or data "
                "whose segments differ in return."
            )
        # Deviation: the project's statistics (std + 1e-3, as CORL), not the authors' std + 1e-6.
        mean, std = observation_statistics(dataset.observations)
        self.policy.set_observation_statistics(mean, std)
        observations = (dataset.observations.reshape(len(dataset), -1) - mean) / std
        low, high = self.action_space.low, self.action_space.high
        actions = self.policy.scale_action(np.clip(dataset.actions.reshape(len(dataset), -1), low, high))
        self._data = DatasetTensors(observations, actions, episodes, self.device)
        self._episodes = episodes
        self._dataset = dataset
        self.dataset_spec = dataset_spec(dataset)
        return dataset

    def comparisons(self) -> ComparisonQueue:
        """The labelled pairs as a :class:`~rl.preferences.ComparisonQueue` of the dataset's segments."""
        if self.labelled_pairs is None or self._dataset is None or self._episodes is None:
            raise NoOfflineDataError("No dataset is loaded: pass dataset=... or call load_offline_data(...) first.")
        return self.labelled_pairs.queue(self._dataset, self._episodes)

    def _sample_pairs(self, batch_size: int) -> tuple[Batch, Batch]:
        """``batch_size`` labelled pairs that do not tie, drawn uniformly with replacement: (preferred, other)."""
        assert self.labelled_pairs is not None and self._data is not None
        decided = self.labelled_pairs.decided
        chosen = decided[np.random.randint(0, len(decided), size=batch_size)]
        return (self._data.segments(chosen[:, 0], self.segment_length),
                self._data.segments(chosen[:, 1], self.segment_length))

    # ----- the update ---------------------------------------------------------------------------------------

    def _encode(self, batch: Batch) -> th.Tensor:
        return self.policy.encoder(batch.observations, batch.actions, batch.timesteps, batch.mask)

    def _hindsight_matching(self, windows: Batch) -> th.Tensor:
        """``MSE(pi(s, E(tau)), a)`` of each half of ``windows``, summed (the authors' two batches)."""
        z = self._encode(windows)
        predicted = self.policy.actor(windows.observations, windows.actions, z, windows.timesteps, windows.mask)
        half = len(windows) // 2
        return sum(
            hindsight_matching_loss(predicted[part], windows.actions[part], windows.mask[part])
            for part in (slice(0, half), slice(half, None))
        )

    def update_z_star(self, z_preferred: th.Tensor, z_other: th.Tensor) -> th.Tensor:
        """One AdamW step of z* on the triplet loss with the given (detached) encodings; returns the loss."""
        loss = preference_triplet_loss(self.policy.z_star, z_preferred.detach(), z_other.detach(), self.triplet_margin)
        self.policy.z_star_optimizer.zero_grad()
        loss.backward()
        self.policy.z_star_optimizer.step()
        return loss

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        """``gradient_steps`` OPPO updates (see the class docstring)."""
        if self._data is None or self.labelled_pairs is None:
            raise NoOfflineDataError(
                "OPPO has no dataset to learn from: pass dataset=... to the constructor or call load_offline_data(...)."
            )
        self.policy.set_training_mode(True)
        actor, encoder, z_star = self.policy.actor, self.policy.encoder, self.policy.z_star
        learning_rate = self.lr_schedule(self._current_progress_remaining)
        logs: dict[str, list[float]] = defaultdict(list)
        for _ in range(gradient_steps):
            actor_learning_rate = learning_rate * warmup_factor(self._n_updates, self.warmup_steps)
            update_learning_rate(actor.optimizer, actor_learning_rate)
            update_learning_rate(encoder.optimizer, learning_rate)  # the authors' encoder optimizer has no warm-up

            # 1. Hindsight information matching on windows of the whole dataset. Deviation: the authors match on the
            #    labelled windows themselves (every window of theirs is labelled); here labels are few, the data many.
            recon = self._hindsight_matching(sample_windows(self._data, 2 * batch_size, self.context_length))
            # 2. Preference modelling on labelled pairs: triplet with z* as the (fixed) anchor, and the norm term.
            preferred, other = self._sample_pairs(batch_size)
            z_preferred, z_other = self._encode(preferred), self._encode(other)
            triplet = preference_triplet_loss(z_star.detach(), z_preferred, z_other, self.triplet_margin)
            norm = norm_loss(z_preferred) + norm_loss(z_other)  # on the labelled pairs (theirs: the same windows)
            # 3. One step of the encoder and the policy on the sum.
            loss = encoder_policy_loss(
                recon, triplet, norm, preference_weight=self.preference_weight, norm_weight=self.norm_weight
            )
            encoder.optimizer.zero_grad()
            actor.optimizer.zero_grad()
            loss.backward()
            th.nn.utils.clip_grad_norm_(encoder.parameters(), self.max_grad_norm)
            th.nn.utils.clip_grad_norm_(actor.parameters(), self.max_grad_norm)
            encoder.optimizer.step()
            actor.optimizer.step()
            # 4. z* on the triplet loss, the pairs encoded by the updated encoder (in training mode, as the authors).
            with th.no_grad():
                z_preferred, z_other = self._encode(preferred), self._encode(other)
            z_star_loss = self.update_z_star(z_preferred, z_other)
            self._n_updates += 1

            with th.no_grad():
                closer = distance(z_star, z_preferred) < distance(z_star, z_other)
            logs["recon_loss"].append(recon.item())
            logs["triplet_loss"].append(triplet.item())
            logs["norm_loss"].append(norm.item())
            logs["loss"].append(loss.item())
            logs["z_star_loss"].append(z_star_loss.item())
            logs["preference_accuracy"].append(closer.float().mean().item())

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/learning_rate", learning_rate)
        self.logger.record("train/actor_learning_rate", actor_learning_rate)
        self.logger.record("train/z_star_norm", z_star.detach().norm().item())
        for key, values in logs.items():
            self.logger.record(f"train/{key}", float(np.mean(values)))

    # ----- learn --------------------------------------------------------------------------------------------

    def learn(
        self,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1000,
        tb_log_name: str = "OPPO",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> OPPO:
        """Take ``total_timesteps`` gradient steps on the dataset (OPPO never steps the env); ``learn_offline`` is the
        same method, under the name the project's offline runner calls (:func:`rl.offline.offline_then_online`).

        Each gradient step counts as one timestep for callbacks, logs and the progress bar: ``on_step`` after every
        update, ``on_rollout_start`` before it (where the runner's checkpoints are taken). Logs are dumped every
        ``log_interval`` updates; ``time/fps`` is then updates per second. The loop is the offline algorithms'
        (:func:`rl.offline.run_offline_updates`), and so is the setup of a model loaded without an env.
        """
        if self._data is None:
            raise NoOfflineDataError(
                "OPPO has no dataset to learn from: pass dataset=... to the constructor or call load_offline_data(...)."
            )
        total_timesteps, callback = setup_offline_learn(
            self, total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar
        )
        callback.on_training_start(locals(), globals())
        run_offline_updates(self, total_timesteps, callback, log_interval)
        callback.on_training_end()
        return self

    learn_offline = learn

    def dump_logs(self) -> None:
        elapsed = max((time.time_ns() - self.start_time) / 1e9, sys.float_info.epsilon)
        fps = int((self.num_timesteps - self._num_timesteps_at_start) / elapsed)
        self.logger.record("time/updates", self.num_timesteps, exclude="tensorboard")
        self.logger.record("time/fps", fps)
        self.logger.record("time/time_elapsed", int(elapsed), exclude="tensorboard")
        self.logger.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")
        if self.ep_info_buffer:
            self.logger.record("rollout/ep_rew_mean", safe_mean([info["r"] for info in self.ep_info_buffer]))
        self.logger.dump(step=self.num_timesteps)

    def set_env(self, env: GymEnv, force_reset: bool = True) -> None:
        """SB3's ``set_env``, refusing several envs and a VecNormalize env (see :func:`_check_env`)."""
        _check_env(env)
        super().set_env(env, force_reset=force_reset)

    # ----- run folder and save hooks ------------------------------------------------------------------------

    def write_run_artifacts(self, run_dir: str, eval_env: VecEnv) -> dict[str, Any]:
        """What the shared runner adds to run.json (:data:`rl.runner.ARTIFACTS_HOOK`): the labels' count and digest."""
        pairs = self.labelled_pairs
        if pairs is None:
            return {}
        return {
            "comparisons_used": pairs.comparisons_used,
            "comparisons_tied": pairs.n_tied,
            "segment_length": pairs.segment_length,
            "labels_digest": pairs.digest(),
            "z_star": self.policy.z_star.detach().cpu().tolist(),
        }

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_dataset", "_data", "_episodes"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        return ["policy", "policy.actor.optimizer", "policy.encoder.optimizer", "policy.z_star_optimizer"], []


def _check_env(env: Any) -> None:
    """Refuse several envs (OPPO counts one timestep per gradient step and never steps its env) and a VecNormalize
    env (OPPO standardises observations with the dataset's statistics), as :func:`rl.offline.check_offline_env`
    does for the replay-buffer algorithms.

    Raises:
        OfflineEnvError: one line naming the fix.
    """
    if isinstance(env, VecEnv) and env.num_envs != 1:
        raise OfflineEnvError(
            f"n_envs must be 1 for OPPO: it takes one gradient step per timestep and never steps its env; got "
            f"{env.num_envs} envs. Drop --n-envs (or set n_envs: 1); predict() and evaluate_policy take any number."
        )
    if isinstance(env, VecEnv) and unwrap_vec_normalize(env) is not None:
        raise OfflineEnvError(
            "OPPO trains on raw dataset observations: do not wrap the env in VecNormalize (set normalize: false); it "
            "standardises observations with the dataset's statistics inside its policy."
        )


if __name__ == "__main__":
    from rl.cli import main

    sys.exit(main("oppo"))
