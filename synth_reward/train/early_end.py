"""Ending training episodes early when they can teach nothing more, derived from the task's own check.

A posture episode is 400 steps, and a humanoid that has fallen stays on the floor for the rest of it:
most of those samples teach nothing. This rule ends such an episode during training (never during
evaluation, which always runs the task's full episodes), using only the task's success check and its
success rule, with no per-task code:

- **lost**: a conjunct of the success check (see `train.analyzer.split_conditions`) that held on every
  step of the episode's first `patience` steps has since failed on every one of the last `patience` steps.
  (Every step of a window, not the first step: the ant starts in the air with its feet above the floor,
  and a condition that only the reset pose satisfies is not one the robot can keep.) The robot started with it
  and has fallen out of it (the torso's uprightness for kneel and sit, the torso's height for arms_up, the
  ant's upright torso for raise_leg); the condition is still needed for success, so this is a fall.
  Conditions that did not hold at the start (the knees on the floor, the leg raised, a flip) are the ones
  the policy has to reach and never end anything.
- **out of reach**: under the "half of the steps" rule, once more than half of the episode's steps have
  failed the check, the episode can no longer succeed.

An episode this rule ends is judged as if it had run its full length with the check failing from then on
(`TrainEnv` divides its success steps by the task's episode length), so training's success rate does not
rise by ending episodes: a short episode that held the pose for half of its few steps is not a success.

Ending is a termination (no bootstrap from the next state), so with a reward that is mostly positive the
policy learns to avoid the states that end it: Gymnasium's "healthy" termination, found from the check.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from synth_reward.envs.state import State
from synth_reward.envs.tasks import Task


class EarlyEnd:
    """termination_fn(state) -> bool (N,) for a BatchedEnv: the task's own rule, or lost / out of reach.

    Stateful per env: counters restart on an env's first step (`state.step == 1`)."""

    def __init__(
        self,
        task: Task,
        num_envs: int,
        patience_s: float,
        dt: float,
        base: Callable[[State], torch.Tensor] | None = None,
    ) -> None:
        from synth_reward.train.analyzer import split_conditions  # (analyzer imports evaluate, which imports this)

        parts = split_conditions(task.success_fn())
        self.labels = [label for label, _ in parts]
        self._conditions = parts[0][1]
        self.base = base
        self.patience = max(1, math.ceil(patience_s / dt - 1e-9))  # (0.3 / 0.1 is 2.9999999999999996)
        """consecutive failing steps of a condition held at the start that end the episode."""
        self.max_failed = task.episode_length // 2 if task.success_rule != "any_step" else None
        """failed steps after which the half-of-the-steps rule cannot be met (None: any_step rule)."""
        c = len(parts)
        self._held_at_start = torch.zeros(num_envs, c, dtype=torch.bool)
        self._failing_for = torch.zeros(num_envs, c, dtype=torch.int64)
        self._failed = torch.zeros(num_envs, dtype=torch.int64)
        self.ended_now = torch.zeros(num_envs, dtype=torch.bool)
        """(N,) the envs this rule ended on the last step (not the task's own termination)."""
        self.ended = {"lost": 0, "out_of_reach": 0}
        """episodes ended by each rule so far (for logs and tests)."""

    def state_dict(self) -> dict[str, Any]:
        """The per-env counters, for a checkpoint taken mid-episode."""
        return {
            "held_at_start": self._held_at_start.clone(),
            "failing_for": self._failing_for.clone(),
            "failed": self._failed.clone(),
            "ended_now": self.ended_now.clone(),
            "ended": dict(self.ended),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._held_at_start, self._failing_for = state["held_at_start"].clone(), state["failing_for"].clone()
        self._failed, self.ended_now = state["failed"].clone(), state["ended_now"].clone()
        self.ended = dict(state["ended"])

    def __call__(self, state: State) -> torch.Tensor:
        conds = torch.stack([c.to(torch.bool).cpu() for c in self._conditions(state)], dim=1)  # (N, C)
        step = state.step.cpu()
        first = step <= 1
        if first.any():
            self._held_at_start[first] = True
            self._failing_for[first] = 0
            self._failed[first] = 0
        opening = step <= self.patience
        self._held_at_start[opening] &= conds[opening]
        self._failing_for = torch.where(conds, 0, self._failing_for + 1)
        lost = (self._held_at_start & (self._failing_for >= self.patience)).any(dim=1) & ~opening
        done = lost
        self.ended["lost"] += int(lost.sum())
        if self.max_failed is not None:
            self._failed += ~conds.all(dim=1)
            out = (self._failed > self.max_failed) & ~lost
            self.ended["out_of_reach"] += int(out.sum())
            done = done | out
        self.ended_now = done
        if self.base is not None:
            done = done | self.base(state).to(torch.bool).cpu()
        return done.to(state.device)
