"""Human-written rewards: Gymnasium's v5 rewards, rewritten over the State API.

They give every Gymnasium task its "human" baseline (Eureka's human normalized score)
and are checked against Gymnasium's own reward, step by step, in tests/test_rewards.py.
Each returns the total and its named terms, and the total is the sum of the terms.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict

import torch

from synth_reward.envs.batched import RewardFn
from synth_reward.envs.morphology import Morphology, get_morphology
from synth_reward.envs.state import State
from synth_reward.envs.success import healthy


class GymRewardParams(TypedDict):
    """Weights of one robot's Gymnasium v5 reward terms (the `contact` cost's clip and cap may be None)."""

    forward: float
    ctrl: float
    healthy: NotRequired[float]
    contact: NotRequired[tuple[float, float | None, float | None]]
    com: NotRequired[bool]
    joint: NotRequired[str]


# Gymnasium v5 defaults per robot. com: the forward velocity is the whole-body centre
# of mass's (Humanoid), the root body's (Ant), or a root slide joint's (planar robots,
# whose Gymnasium envs difference qpos). contact: (weight, clip, cap).
GYM_REWARD: dict[str, GymRewardParams] = {
    "humanoid": {
        "forward": 1.25,
        "healthy": 5.0,
        "ctrl": 0.1,
        "contact": (5e-7, None, 10.0),
        "com": True,
    },
    "ant": {"forward": 1.0, "healthy": 1.0, "ctrl": 0.5, "contact": (5e-4, 1.0, None)},
    "hopper": {"forward": 1.0, "healthy": 1.0, "ctrl": 1e-3, "joint": "rootx"},
    "walker2d": {"forward": 1.0, "healthy": 1.0, "ctrl": 1e-3, "joint": "rootx"},
    "half_cheetah": {"forward": 1.0, "ctrl": 0.1, "joint": "rootx"},
}


def gymnasium_reward(morphology: str | Morphology, direction: float = 1.0) -> RewardFn:
    """Gymnasium's v5 reward for this robot; direction=-1 rewards moving backward instead."""
    morph = get_morphology(morphology)
    if morph.name not in GYM_REWARD:
        raise ValueError(f"no Gymnasium reward for {morph.name}; known: {', '.join(GYM_REWARD)}")
    p = GYM_REWARD[morph.name]
    is_healthy = healthy(morph) if "healthy" in p else None
    root = morph.root_body

    def compute_reward(state: State, action: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if p.get("com"):
            x_vel = (state.com_pos[:, 0] - state.prev_com_pos[:, 0]) / state.dt
        elif "joint" in p:
            x_vel = (state.joint(p["joint"]).pos - state.joint(p["joint"]).prev_pos) / state.dt
        else:
            x_vel = (state.body(root).pos[:, 0] - state.body(root).prev_pos[:, 0]) / state.dt
        terms = {
            "forward": direction * p["forward"] * x_vel,
            "ctrl": -p["ctrl"] * action.square().sum(dim=1),
        }
        if is_healthy is not None:
            terms["survive"] = p["healthy"] * is_healthy(state).to(x_vel.dtype)
        if "contact" in p:
            weight, clip, cap = p["contact"]
            forces = state.raw("cfrc_ext")
            if clip is not None:
                forces = forces.clamp(-clip, clip)
            cost = weight * forces.square().sum(dim=(1, 2))
            terms["contact"] = -(cost.clamp(max=cap) if cap is not None else cost)
        return torch.stack(list(terms.values())).sum(dim=0), terms

    compute_reward.__doc__ = f"Gymnasium {morph.gym_id} reward (direction {direction:+g})."
    return compute_reward


HUMAN_REWARDS = {
    "gymnasium": lambda morph: gymnasium_reward(morph, 1.0),
    "gymnasium_backward": lambda morph: gymnasium_reward(morph, -1.0),
}
"""Human-written rewards a task can name in its `human_reward` field."""
