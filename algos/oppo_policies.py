"""OPPO's networks: the trajectory encoder E, the z-conditioned decision transformer pi(a | s, z) and the policy
that holds both with the learned context z* (Kang et al., ICML 2023).

Sizes and layouts follow the authors' scripted-label code (bkkgbkjb/OPPO, oppo/scripted/gym: args.py,
experiment.py, decision_transformer/models/encoder_transformer.py and preference_decision_transformer.py), which
builds on Decision Transformer:

- E: a BERT-style (bidirectional, post-norm) transformer, 3 layers, 2 heads, width 128, over the tokens
  (s_1, a_1, s_2, a_2, ...), each token plus an embedding of its step within the episode; the outputs are summed
  over the tokens and projected to z (dimension 8).
- pi: a GPT-2-style (causal, pre-norm) transformer, 3 layers, 1 head, width 128, over (z, s_1, a_1, z, s_2, a_2,
  ...) with the same timestep embeddings; the action a_t is read (through tanh) from the output at s_t, so it sees
  z, the states up to s_t and the actions before a_t, over the last ``context_length`` (20) steps.
- z*: a free vector, initialised as ``2 * N(0, I)`` (experiment.py ``w = randn(z_dim) * 2``).

Both transformers are PyTorch's ``nn.TransformerEncoderLayer`` (dropout 0.1, ReLU, feed-forward 4 x width) with
Hugging Face's initialisation (normal, std 0.02) rather than the ``transformers`` package; see the deviations in
:class:`TrajectoryEncoder` and :class:`ZConditionedTransformer`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn

MASKED = -1e9
"""Added to the attention scores of masked keys: finite (as Hugging Face's large negative), so that a padded query
whose keys are all masked still has a defined softmax; its output is never used."""
INIT_STD = 0.02
"""Hugging Face's ``initializer_range`` for GPT-2 and BERT, which the authors' models inherit."""

History = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""What :meth:`OPPOPolicy.predict` keeps per env between calls (its ``state``): the last ``context_length``
observations (n_envs, K, obs_dim, raw), actions (n_envs, K, act_dim, scaled to [-1, 1]), steps within the episode
(n_envs, K) and a mask (n_envs, K), 1 for a real step; the newest step is last."""


def _init_transformer(module: nn.Module) -> None:
    """Hugging Face's ``_init_weights`` on the transformer layers: Linear weights N(0, 0.02), biases 0."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            nn.init.normal_(layer.weight, std=INIT_STD)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.LayerNorm):
            nn.init.ones_(layer.weight)
            nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.MultiheadAttention):
            nn.init.normal_(layer.in_proj_weight, std=INIT_STD)
            nn.init.zeros_(layer.in_proj_bias)


def _layers(width: int, n_layer: int, n_head: int, dropout: float, activation: str, *, norm_first: bool,
            layer_norm_eps: float) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(
        d_model=width, nhead=n_head, dim_feedforward=4 * width, dropout=dropout, activation=activation,
        layer_norm_eps=layer_norm_eps, batch_first=True, norm_first=norm_first,
    )
    stack = nn.TransformerEncoder(layer, num_layers=n_layer, enable_nested_tensor=False)
    _init_transformer(stack)
    return stack


def _padding_mask(mask: th.Tensor, repeats: int) -> th.Tensor:
    """(B, T) 1/0 step mask -> (B, repeats * T) additive key mask (0 for real tokens, MASKED for padding)."""
    tokens = mask.repeat_interleave(repeats, dim=1)
    return (1.0 - tokens) * MASKED


def _shift(history: np.ndarray) -> np.ndarray:
    """Drop the oldest step of each env's history (axis 1) and append an empty one."""
    return np.concatenate([history[:, 1:], np.zeros_like(history[:, :1])], axis=1)


class TrajectoryEncoder(nn.Module):
    """E(tau): a segment of (s, a) steps -> z.

    Deviations from the authors' ``EncoderTransformer``: padded tokens are left out of the sum over tokens (theirs
    sums every token, padding included, of windows that reach an episode's end); PyTorch's encoder layer instead of
    their copy of Hugging Face's ``BertModel`` (same post-norm layout, LayerNorm eps 1e-12, ReLU; BERT's
    embedding LayerNorm and dropout are kept; the position and token-type embeddings, which they removed, are
    absent here too).

    :param state_dim: observation size.
    :param act_dim: action size.
    :param z_dim: size of z (8).
    :param hidden_size: token width (128).
    :param n_layer: transformer layers (3).
    :param n_head: attention heads (2).
    :param dropout: dropout of the layers and the embeddings (0.1).
    :param activation: feed-forward activation (``"relu"``, the authors' ``activation_function``).
    :param max_ep_len: steps the timestep embedding covers (1000).
    """

    def __init__(self, state_dim: int, act_dim: int, *, z_dim: int = 8, hidden_size: int = 128, n_layer: int = 3,
                 n_head: int = 2, dropout: float = 0.1, activation: str = "relu", max_ep_len: int = 1000) -> None:
        super().__init__()
        self.embed_timestep = nn.Embedding(max_ep_len, hidden_size)
        self.embed_state = nn.Linear(state_dim, hidden_size)
        self.embed_action = nn.Linear(act_dim, hidden_size)
        self.embed_ln = nn.LayerNorm(hidden_size)
        self.bert_embeddings_ln = nn.LayerNorm(hidden_size, eps=1e-12)
        self.dropout = nn.Dropout(dropout)
        self.transformer = _layers(hidden_size, n_layer, n_head, dropout, activation, norm_first=False,
                                   layer_norm_eps=1e-12)
        self.to_z = nn.Linear(hidden_size, z_dim)
        self.hidden_size = hidden_size

    def forward(self, observations: th.Tensor, actions: th.Tensor, timesteps: th.Tensor, mask: th.Tensor) -> th.Tensor:
        """(B, T, obs_dim), (B, T, act_dim), (B, T), (B, T) -> z, (B, z_dim)."""
        batch, steps = mask.shape
        time = self.embed_timestep(timesteps)
        tokens = th.stack((self.embed_state(observations) + time, self.embed_action(actions) + time), dim=2)
        x = self.embed_ln(tokens.reshape(batch, 2 * steps, self.hidden_size))
        x = self.dropout(self.bert_embeddings_ln(x))
        x = self.transformer(x, src_key_padding_mask=_padding_mask(mask, 2))
        real = mask.repeat_interleave(2, dim=1)[..., None]
        return self.to_z((x * real).sum(dim=1))  # deviation: the authors' sum includes the padded tokens


class ZConditionedTransformer(nn.Module):
    """pi(a_t | z, s_<=t, a_<t): Decision Transformer with z in place of the return-to-go token.

    Deviations from the authors' ``PreferenceDecisionTransformer``: PyTorch's pre-norm encoder layer with a causal
    mask instead of their copy of Hugging Face's ``GPT2Model`` (same layout: embedding dropout, pre-norm blocks, final
    LayerNorm; GPT-2's extra down-scaling of the residual projections at initialisation is not applied); the heads
    they define but never train (next state, return) are left out.

    Arguments as :class:`TrajectoryEncoder`'s (``z_dim``: the size of the z it is conditioned on), except that
    ``n_head`` defaults to 1.
    """

    def __init__(self, state_dim: int, act_dim: int, *, z_dim: int = 8, hidden_size: int = 128, n_layer: int = 3,
                 n_head: int = 1, dropout: float = 0.1, activation: str = "relu", max_ep_len: int = 1000) -> None:
        super().__init__()
        self.embed_timestep = nn.Embedding(max_ep_len, hidden_size)
        self.embed_z = nn.Linear(z_dim, hidden_size)
        self.embed_state = nn.Linear(state_dim, hidden_size)
        self.embed_action = nn.Linear(act_dim, hidden_size)
        self.embed_ln = nn.LayerNorm(hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.transformer = _layers(hidden_size, n_layer, n_head, dropout, activation, norm_first=True,
                                   layer_norm_eps=1e-5)
        self.ln_f = nn.LayerNorm(hidden_size)
        self.predict_action = nn.Sequential(nn.Linear(hidden_size, act_dim), nn.Tanh())
        self.hidden_size = hidden_size

    def forward(self, observations: th.Tensor, actions: th.Tensor, z: th.Tensor, timesteps: th.Tensor,
                mask: th.Tensor) -> th.Tensor:
        """(B, T, obs_dim), (B, T, act_dim), z (B, z_dim), (B, T), (B, T) -> actions in [-1, 1], (B, T, act_dim)."""
        batch, steps = mask.shape
        time = self.embed_timestep(timesteps)
        z_tokens = self.embed_z(z)[:, None, :].expand(batch, steps, self.hidden_size)
        tokens = th.stack(
            (z_tokens + time, self.embed_state(observations) + time, self.embed_action(actions) + time), dim=2
        )
        x = self.dropout(self.embed_ln(tokens.reshape(batch, 3 * steps, self.hidden_size)))
        causal = th.triu(th.full((3 * steps, 3 * steps), MASKED, device=x.device), diagonal=1)
        x = self.transformer(x, mask=causal, src_key_padding_mask=_padding_mask(mask, 3))
        x = self.ln_f(x).reshape(batch, steps, 3, self.hidden_size)
        return self.predict_action(x[:, :, 1])


class OPPOPolicy(BasePolicy):
    """The encoder E, the policy pi(a | s, z) and z*, with the dataset's observation statistics.

    ``predict`` conditions on z* and needs the recent history of each env: it returns that history as its
    ``state`` (see :data:`History`), which the caller passes back with ``episode_start`` on the next call, as with
    SB3's recurrent policies (``evaluate_policy`` does this). Without a state it starts a new history from the given
    observations (then the policy sees one step: pass the state back). Actions are deterministic: the transformer's
    output (``deterministic`` is accepted and ignored, as the authors evaluate).

    :param observation_space: a Box.
    :param action_space: a bounded Box.
    :param lr_schedule: learning rate of the encoder and the policy (AdamW).
    :param z_dim: size of z and z* (8).
    :param hidden_size: width of both transformers (128).
    :param n_layer: layers of the policy transformer (3).
    :param n_head: heads of the policy transformer (1).
    :param encoder_layers: layers of the encoder (3).
    :param encoder_heads: heads of the encoder (2).
    :param dropout: dropout in both (0.1).
    :param activation: feed-forward activation (``"relu"``).
    :param context_length: steps the policy sees (K = 20).
    :param max_ep_len: steps the timestep embeddings cover (1000); later steps use the last embedding.
    :param weight_decay: AdamW weight decay of all three optimizers (1e-4).
    :param z_star_learning_rate: AdamW learning rate of z* (1e-3).
    """

    def __init__(
        self,
        observation_space: spaces.Box,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        z_dim: int = 8,
        hidden_size: int = 128,
        n_layer: int = 3,
        n_head: int = 1,
        encoder_layers: int = 3,
        encoder_heads: int = 2,
        dropout: float = 0.1,
        activation: str = "relu",
        context_length: int = 20,
        max_ep_len: int = 1000,
        weight_decay: float = 1e-4,
        z_star_learning_rate: float = 1e-3,
    ) -> None:
        super().__init__(observation_space, action_space, squash_output=True)
        if hidden_size % n_head or hidden_size % encoder_heads:
            raise ValueError(
                f"hidden_size ({hidden_size}) must be divisible by n_head ({n_head}) and by encoder_heads "
                f"({encoder_heads})."
            )
        self.z_dim, self.hidden_size, self.n_layer, self.n_head = z_dim, hidden_size, n_layer, n_head
        self.encoder_layers, self.encoder_heads, self.dropout, self.activation = (
            encoder_layers, encoder_heads, dropout, activation)
        self.context_length, self.max_ep_len = context_length, max_ep_len
        self.weight_decay, self.z_star_learning_rate = weight_decay, z_star_learning_rate
        state_dim = int(np.prod(observation_space.shape))
        act_dim = int(np.prod(action_space.shape))
        self.encoder = TrajectoryEncoder(
            state_dim, act_dim, z_dim=z_dim, hidden_size=hidden_size, n_layer=encoder_layers, n_head=encoder_heads,
            dropout=dropout, activation=activation, max_ep_len=max_ep_len,
        )
        self.actor = ZConditionedTransformer(
            state_dim, act_dim, z_dim=z_dim, hidden_size=hidden_size, n_layer=n_layer, n_head=n_head,
            dropout=dropout, activation=activation, max_ep_len=max_ep_len,
        )
        self.z_star = nn.Parameter(th.randn(z_dim) * 2.0)
        self.register_buffer("obs_mean", th.zeros(state_dim))
        self.register_buffer("obs_std", th.ones(state_dim))
        learning_rate = lr_schedule(1)
        self.actor.optimizer = th.optim.AdamW(self.actor.parameters(), lr=learning_rate, weight_decay=weight_decay)
        self.encoder.optimizer = th.optim.AdamW(self.encoder.parameters(), lr=learning_rate, weight_decay=weight_decay)
        self.z_star_optimizer = th.optim.AdamW([self.z_star], lr=z_star_learning_rate, weight_decay=weight_decay)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return dict(
            observation_space=self.observation_space, action_space=self.action_space,
            lr_schedule=self._dummy_schedule,  # the optimizers' state is saved apart (as SB3's policies do)
            z_dim=self.z_dim, hidden_size=self.hidden_size, n_layer=self.n_layer, n_head=self.n_head,
            encoder_layers=self.encoder_layers, encoder_heads=self.encoder_heads, dropout=self.dropout,
            activation=self.activation, context_length=self.context_length, max_ep_len=self.max_ep_len,
            weight_decay=self.weight_decay, z_star_learning_rate=self.z_star_learning_rate,
        )

    def set_observation_statistics(self, mean: np.ndarray, std: np.ndarray) -> None:
        """The dataset's observation mean and std, applied to raw observations in :meth:`predict`."""
        self.obs_mean.copy_(th.as_tensor(np.asarray(mean).reshape(-1), dtype=th.float32))
        self.obs_std.copy_(th.as_tensor(np.asarray(std).reshape(-1), dtype=th.float32))

    def standardize(self, observations: th.Tensor) -> th.Tensor:
        return (observations - self.obs_mean) / self.obs_std

    def empty_history(self, n_envs: int) -> History:
        """No step yet for ``n_envs`` envs."""
        k, obs_dim = self.context_length, int(np.prod(self.observation_space.shape))
        act_dim = int(np.prod(self.action_space.shape))
        return (np.zeros((n_envs, k, obs_dim), dtype=np.float32), np.zeros((n_envs, k, act_dim), dtype=np.float32),
                np.zeros((n_envs, k), dtype=np.int64), np.zeros((n_envs, k), dtype=np.float32))

    def _advance(self, history: History, observations: np.ndarray, episode_start: np.ndarray | None) -> History:
        """A new history: envs that start an episode forget theirs; every env shifts one step and appends the new
        observation, a zero action (the one about to be chosen) and its step index."""
        past_obs, past_actions, past_steps, past_mask = history
        if past_obs.shape[0] != len(observations):
            raise ValueError(
                f"the state holds the history of {past_obs.shape[0]} envs but {len(observations)} observations were "
                "given; pass state=None to start new histories"
            )
        if episode_start is not None:
            restart = np.asarray(episode_start, dtype=bool).reshape(-1)
            if restart.any():
                past_mask = np.where(restart[:, None], 0.0, past_mask).astype(np.float32)
        step = np.where(past_mask[:, -1] > 0, past_steps[:, -1] + 1, 0)
        obs, actions, steps, mask = (_shift(past) for past in (past_obs, past_actions, past_steps, past_mask))
        obs[:, -1], steps[:, -1], mask[:, -1] = observations, step, 1.0
        obs *= mask[..., None]
        actions *= mask[..., None]
        steps *= mask.astype(np.int64)
        return obs, actions, steps, mask

    def _act(self, history: History) -> th.Tensor:
        """The action (scaled to [-1, 1]) at the newest step of each env's history, conditioned on z*."""
        obs, actions, steps, mask = (th.as_tensor(x, device=self.device) for x in history)
        steps = steps.clamp(max=self.max_ep_len - 1)  # the authors' "padding cutoff" for longer episodes
        z_star = self.z_star[None, :].expand(len(mask), -1)
        with th.no_grad():
            predicted = self.actor(self.standardize(obs) * mask[..., None], actions, z_star, steps, mask)
        return predicted[:, -1]

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: History | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, History]:
        """Actions for ``observation`` given each env's history ``state``; returns (actions, new history)."""
        self.set_training_mode(False)
        obs_tensor, vectorized = self.obs_to_tensor(observation)
        observations = obs_tensor.reshape(obs_tensor.shape[0], -1).float().cpu().numpy()
        history = self._advance(
            state if state is not None else self.empty_history(len(observations)), observations, episode_start
        )
        scaled = self._act(history).cpu().numpy()
        history[1][:, -1] = scaled
        actions = np.clip(self.unscale_action(scaled), self.action_space.low, self.action_space.high)
        actions = actions.reshape((-1, *self.action_space.shape))
        return (actions if vectorized else actions[0]), history

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        """One step without history (SB3's interface): the observations as the first step of an episode."""
        observations = th.as_tensor(observation).reshape(len(observation), -1).float().cpu().numpy()
        history = self._advance(self.empty_history(len(observations)), observations, None)
        return self._act(history)

    def forward(self, obs: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        return self._predict(obs, deterministic)


MlpPolicy = OPPOPolicy
