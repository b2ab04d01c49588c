"""Hand-written success checks and termination rules for the built-in tasks.

Each check is `check(state) -> bool (N,)` with the same contract as generated code, and
its docstring is the check in words (it goes into the designer's prompt). Thresholds
were set on the hand-made poses in poses.py (tests/test_success.py checks each on a
pose where it must hold and one where it must not).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from synth_reward.envs.morphology import Morphology
from synth_reward.envs.state import State

Check = Callable[[State], torch.Tensor]
CHECKS: dict[str, Check] = {}


def check(fn: Check) -> Check:
    """Register a built-in success check under its function name."""
    CHECKS[fn.__name__] = fn
    return fn


def _upright(state: State, body: str = "torso") -> torch.Tensor:
    return state.body(body).up[:, 2]


def _forward_speed(state: State, body: str | None = None) -> torch.Tensor:
    """x velocity over the last control step (Gymnasium's finite difference): com, or one body."""
    if "rootx" in state.joint_names and body == "torso":
        return (state.joint("rootx").pos - state.joint("rootx").prev_pos) / state.dt
    if body is None:
        return (state.com_pos[:, 0] - state.prev_com_pos[:, 0]) / state.dt
    return (state.body(body).pos[:, 0] - state.body(body).prev_pos[:, 0]) / state.dt


# ---- humanoid postures -------------------------------------------------------------------
@check
def humanoid_kneel(state: State) -> torch.Tensor:
    """Both knees on the floor (shin origins below 0.15 m), torso upright (up z > 0.8) and held high (pelvis above 0.3 m, not sitting back)."""
    knees = (state.body("left_shin").height < 0.15) & (state.body("right_shin").height < 0.15)
    return knees & (_upright(state) > 0.8) & (state.body("pelvis").height > 0.3)


@check
def humanoid_sit(state: State) -> torch.Tensor:
    """Sitting on the floor: pelvis below 0.25 m, torso upright (up z > 0.7) and above 0.4 m."""
    return (state.body("pelvis").height < 0.25) & (_upright(state) > 0.7) & (state.body("torso").height > 0.4)


@check
def humanoid_lie_back(state: State) -> torch.Tensor:
    """Lying on the back: torso and pelvis below 0.3 m, chest facing up (torso forward axis z > 0.7)."""
    low = (state.body("torso").height < 0.3) & (state.body("pelvis").height < 0.3)
    return low & (state.body("torso").forward[:, 2] > 0.7)


@check
def humanoid_one_leg(state: State) -> torch.Tensor:
    """Standing on one leg: torso above 1.0 m and upright (up z > 0.8), one foot above 0.25 m and the other below 0.1 m."""
    left, right = state.body("left_foot").height, state.body("right_foot").height
    one = ((left > 0.25) & (right < 0.1)) | ((right > 0.25) & (left < 0.1))
    return one & (state.body("torso").height > 1.0) & (_upright(state) > 0.8)


@check
def humanoid_arms_up(state: State) -> torch.Tensor:
    """Both arms raised: both elbows (lower arm origins) at least 0.15 m above the torso origin, torso above 1.0 m."""
    torso = state.body("torso").height
    elbows = (state.body("left_lower_arm").height > torso + 0.15) & (
        state.body("right_lower_arm").height > torso + 0.15
    )
    return elbows & (torso > 1.0)


@check
def humanoid_splits(state: State) -> torch.Tensor:
    """Splits: feet at least 1.2 m apart, both feet on the floor (below 0.1 m), pelvis below 0.6 m."""
    left, right = state.body("left_foot"), state.body("right_foot")
    apart: torch.Tensor = (left.pos - right.pos).norm(dim=-1) > 1.2
    return apart & (left.height < 0.1) & (right.height < 0.1) & (state.body("pelvis").height < 0.6)


@check
def humanoid_crouch(state: State) -> torch.Tensor:
    """Crouching: feet on the floor (below 0.1 m) and within 0.6 m of each other, knees off it (shins above 0.2 m), pelvis between 0.2 and 0.6 m, torso up z > 0.7."""
    left, right = state.body("left_foot"), state.body("right_foot")
    feet: torch.Tensor = (left.height < 0.1) & (right.height < 0.1) & ((left.pos - right.pos).norm(dim=-1) < 0.6)
    knees = (state.body("left_shin").height > 0.2) & (state.body("right_shin").height > 0.2)
    pelvis = state.body("pelvis").height
    return feet & knees & (pelvis > 0.2) & (pelvis < 0.6) & (_upright(state) > 0.7)


# ---- ant postures ------------------------------------------------------------------------
ANT_FOOT_TIPS = (
    ("left_ankle", (0.4, 0.4, 0.0)),
    ("right_ankle", (-0.4, 0.4, 0.0)),
    ("third_ankle", (-0.4, -0.4, 0.0)),
    ("fourth_ankle", (0.4, -0.4, 0.0)),
)
"""Foot tips of ant.xml's lower legs in each lower-leg body's frame (the capsules' far ends)."""


def ant_foot_heights(state: State) -> torch.Tensor:
    """(N, 4) m: height of each foot tip's capsule centre above the floor."""
    heights = []
    for body, tip in ANT_FOOT_TIPS:
        b = state.body(body)
        local = torch.tensor(tip, dtype=b.pos.dtype, device=b.pos.device)
        heights.append((b.pos + b.rot @ local)[:, 2] - state.floor_height)
    return torch.stack(heights, dim=1)


@check
def ant_lie_down(state: State) -> torch.Tensor:
    """Lying down: torso centre below 0.4 m and right side up (torso up z > 0.7)."""
    return (state.body("torso").height < 0.4) & (_upright(state) > 0.7)


@check
def ant_raise_leg(state: State) -> torch.Tensor:
    """One leg raised: at least one foot tip above 0.2 m, at least three below 0.15 m, torso upright (up z > 0.7)."""
    feet = ant_foot_heights(state)
    raised = (feet > 0.2).any(dim=1) & ((feet < 0.15).sum(dim=1) >= 3)
    return raised & (_upright(state) > 0.7)


# ---- locomotion --------------------------------------------------------------------------
@check
def humanoid_walk_forward(state: State) -> torch.Tensor:
    """Walking forward: centre-of-mass x velocity above 1.0 m/s with the torso above 0.8 m."""
    return (_forward_speed(state) > 1.0) & (state.body("torso").height > 0.8)


@check
def humanoid_run_backward(state: State) -> torch.Tensor:
    """Running backward: centre-of-mass x velocity below -1.0 m/s with the torso above 0.8 m."""
    return (_forward_speed(state) < -1.0) & (state.body("torso").height > 0.8)


@check
def ant_forward(state: State) -> torch.Tensor:
    """Moving forward: torso x velocity above 1.0 m/s, right side up (torso up z > 0)."""
    return (_forward_speed(state, "torso") > 1.0) & (_upright(state) > 0.0)


@check
def hopper_forward(state: State) -> torch.Tensor:
    """Hopping forward: torso x velocity above 1.0 m/s with the torso above 0.7 m."""
    return (_forward_speed(state, "torso") > 1.0) & (state.body("torso").height > 0.7)


@check
def walker_forward(state: State) -> torch.Tensor:
    """Walking forward: torso x velocity above 1.0 m/s with the torso above 0.8 m."""
    return (_forward_speed(state, "torso") > 1.0) & (state.body("torso").height > 0.8)


@check
def cheetah_forward(state: State) -> torch.Tensor:
    """Running forward: torso x velocity above 2.0 m/s."""
    return _forward_speed(state, "torso") > 2.0


@check
def cheetah_backward(state: State) -> torch.Tensor:
    """Running backward: torso x velocity below -2.0 m/s."""
    return _forward_speed(state, "torso") < -2.0


@check
def front_flip(state: State) -> torch.Tensor:
    """A full front flip: the body has pitched forward by at least one full turn (root hinge rooty >= 2*pi rad)."""
    return state.joint("rooty").pos >= 2 * math.pi


@check
def back_flip(state: State) -> torch.Tensor:
    """A full back flip: the body has pitched backward by at least one full turn (root hinge rooty <= -2*pi rad)."""
    return state.joint("rooty").pos <= -2 * math.pi


@check
def any_flip(state: State) -> torch.Tensor:
    """A full flip either way: root hinge rooty has turned by at least 2*pi rad."""
    return state.joint("rooty").pos.abs() >= 2 * math.pi


# ---- termination rules -------------------------------------------------------------------
def healthy(morph: Morphology) -> Check:
    """Gymnasium's v5 is_healthy rule for a morphology, from its `healthy` config."""
    rule: dict[str, Any] = dict(morph.healthy)  # the value's type depends on its key: [low, high] or a bound
    root = morph.root_body

    def is_healthy(state: State) -> torch.Tensor:
        ok = torch.ones(state.num_envs, dtype=torch.bool, device=state.device)
        for key, value in rule.items():
            if key == "root_z":
                z = state.body(root).pos[:, 2]
                ok &= (z > value[0]) & (z < value[1])
            elif key == "state_abs_below":
                both = torch.cat([state.qpos, state.qvel], dim=1)[:, 2:]
                ok &= (both.abs() < value).all(dim=1)
            elif key == "finite":
                ok &= torch.isfinite(state.qpos).all(dim=1) & torch.isfinite(state.qvel).all(dim=1)
            else:
                q = state.joint(key).pos
                ok &= (q > value[0]) & (q < value[1])
        return ok

    return is_healthy


def termination_rule(name: str, morph: Morphology) -> Check | None:
    """`none`: episodes run to the time limit; `unhealthy`: Gymnasium's rule (falls end the episode)."""
    if name == "none":
        return None
    if name == "unhealthy":
        rule = healthy(morph)
        return lambda state: ~rule(state)
    raise ValueError(f"unknown termination rule {name!r}; choose one of: none, unhealthy")
