"""Networks for MDPO: SB3's policies with the extra parts MDPO needs.

- On-policy: SB3's actor-critic policy, but the value function has its own optimizer (the authors' code
  trains it separately, with its own epochs and minibatches) and no features extractor is shared.
- Off-policy: SB3's SAC policy plus a frozen copy of the actor, the "old policy" pi_k of the mirror
  descent step, refreshed by the algorithm every ``m`` env steps.
"""

from __future__ import annotations

import copy
from typing import Any

import torch as th
from stable_baselines3.common.policies import ActorCriticCnnPolicy, ActorCriticPolicy, MultiInputActorCriticPolicy
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.sac.policies import Actor, CnnPolicy, MultiInputPolicy, SACPolicy

_VALUE_PREFIXES = ("mlp_extractor.value_net.", "value_net.", "vf_features_extractor.")


class _SeparateValueOptimizer:
    """Mixin for SB3 actor-critic policies: ``optimizer`` updates the actor, ``value_optimizer`` the critic."""

    value_optimizer: th.optim.Optimizer

    def _build(self, lr_schedule: Schedule) -> None:  # type: ignore[override]
        super()._build(lr_schedule)  # type: ignore[misc]
        actor_params = [p for name, p in self.named_parameters() if not name.startswith(_VALUE_PREFIXES)]
        value_params = [p for name, p in self.named_parameters() if name.startswith(_VALUE_PREFIXES)]
        # The value learning rate is set by the algorithm (vf_learning_rate) before every update.
        self.optimizer = self.optimizer_class(actor_params, lr=lr_schedule(1), **self.optimizer_kwargs)
        self.value_optimizer = self.optimizer_class(value_params, lr=lr_schedule(1), **self.optimizer_kwargs)

    def actor_parameters(self) -> list[th.nn.Parameter]:
        """Parameters the policy (actor) loss updates."""
        return [p for group in self.optimizer.param_groups for p in group["params"]]

    def value_parameters(self) -> list[th.nn.Parameter]:
        """Parameters the value loss updates."""
        return [p for group in self.value_optimizer.param_groups for p in group["params"]]


def _separate_extractors(kwargs: dict[str, Any]) -> dict[str, Any]:
    kwargs.setdefault("share_features_extractor", False)
    return kwargs


class MDPOActorCriticPolicy(_SeparateValueOptimizer, ActorCriticPolicy):
    """SB3's ActorCriticPolicy ([64, 64] tanh by default) with a separate value optimizer."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **_separate_extractors(kwargs))


class MDPOActorCriticCnnPolicy(_SeparateValueOptimizer, ActorCriticCnnPolicy):
    """CNN variant of :class:`MDPOActorCriticPolicy`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **_separate_extractors(kwargs))


class MDPOMultiInputActorCriticPolicy(_SeparateValueOptimizer, MultiInputActorCriticPolicy):
    """Dict-observation variant of :class:`MDPOActorCriticPolicy`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **_separate_extractors(kwargs))


class _WithOldActor:
    """Mixin for SAC policies: a frozen copy of the actor (pi_k), never trained by gradient."""

    actor: Actor
    old_actor: Actor

    def _build(self, lr_schedule: Schedule) -> None:  # type: ignore[override]
        super()._build(lr_schedule)  # type: ignore[misc]
        self.old_actor = copy.deepcopy(self.actor)
        self.old_actor.optimizer = None  # type: ignore[assignment]
        self.old_actor.set_training_mode(False)
        self.old_actor.requires_grad_(False)

    def refresh_old_actor(self) -> None:
        """pi_k <- pi_theta: start a new mirror-descent iteration."""
        self.old_actor.load_state_dict(self.actor.state_dict())

    def set_training_mode(self, mode: bool) -> None:
        super().set_training_mode(mode)  # type: ignore[misc]
        self.old_actor.set_training_mode(False)


class MDPOSACPolicy(_WithOldActor, SACPolicy):
    """SAC's policy ([256, 256] ReLU, twin critics, target critics) plus the old actor."""


class MDPOSACCnnPolicy(_WithOldActor, CnnPolicy):
    """CNN variant of :class:`MDPOSACPolicy`."""


class MDPOSACMultiInputPolicy(_WithOldActor, MultiInputPolicy):
    """Dict-observation variant of :class:`MDPOSACPolicy`."""
