"""The offline template designer: a BASELINE that writes rewards without an LLM.

With no LLM configured the loop still runs end to end on a fresh machine, using this
designer. It is in the spirit of Language-to-Rewards' reward templates: for each
built-in task (keyed by its success check) a hand-written list of bounded terms over
the State API, composed into standalone reward code under the same contract as an LLM's
(`compute_reward(state, action) -> (reward (N,), {name: (N,)})`, torch and math only).
It is not a language model and understands only the built-in tasks; output and README
must call it "offline template designer (baseline)".

Every term is ``weight * score`` with ``score`` in [0, 1] from one primitive below,
shaped by a temperature in the squared unit of its quantity (m², (m/s)², rad²): the
score falls to 1/e when the error's square equals the temperature. Penalties have
negative weights. Between iterations `adjust` moves weights and temperatures from the
analyzer's numbers; `propose` then spreads K variants around the adjusted values.

The primitives are real functions here (tests call them), and their source is copied
into the generated code, so the library and what the policy is trained on never differ.
"""

from __future__ import annotations

import ast
import inspect
import math
import random
import re
from collections.abc import Callable, Mapping
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field

from synth_reward.errors import UsageError

LABEL = "offline template designer (baseline, no LLM)"
"""How output, reports and the README name this designer."""


# ---- primitives: each returns a score in [0, 1] of shape (N,) ----------------------------
def height_target(height: torch.Tensor, target: float, temperature: float) -> torch.Tensor:
    """1 at the target height (m), falling off as exp(-(height - target)^2 / temperature)."""
    return torch.exp(-torch.square(height - target) / temperature)


def height_above(height: torch.Tensor, minimum: float, temperature: float) -> torch.Tensor:
    """1 at or above `minimum` (m), exp(-shortfall^2 / temperature) below it."""
    shortfall = torch.clamp(minimum - height, min=0.0)
    return torch.exp(-torch.square(shortfall) / temperature)


def body_to_floor(height: torch.Tensor, maximum: float, temperature: float) -> torch.Tensor:
    """1 when a body is within `maximum` (m) of the floor, exp(-excess^2 / temperature) higher up."""
    excess = torch.clamp(height - maximum, min=0.0)
    return torch.exp(-torch.square(excess) / temperature)


def upright(axis_z: torch.Tensor, temperature: float) -> torch.Tensor:
    """1 when a unit body axis points straight up (its world z component is 1), falling as it tilts."""
    return torch.exp(-torch.square(1.0 - axis_z) / temperature)


def velocity_target(velocity: torch.Tensor, target: float, temperature: float) -> torch.Tensor:
    """1 at the target velocity (m/s or rad/s), exp(-(velocity - target)^2 / temperature) around it."""
    return torch.exp(-torch.square(velocity - target) / temperature)


def speed_at_least(velocity: torch.Tensor, minimum: float, temperature: float) -> torch.Tensor:
    """1 at or above `minimum` (m/s or rad/s), exp(-shortfall^2 / temperature) below: no cap on going faster."""
    shortfall = torch.clamp(minimum - velocity, min=0.0)
    return torch.exp(-torch.square(shortfall) / temperature)


def at_least(value: torch.Tensor, minimum: float, temperature: float) -> torch.Tensor:
    """1 at or above `minimum`, exp(-shortfall^2 / temperature) below (distances, angles)."""
    shortfall = torch.clamp(minimum - value, min=0.0)
    return torch.exp(-torch.square(shortfall) / temperature)


def at_most(value: torch.Tensor, maximum: float, temperature: float) -> torch.Tensor:
    """1 at or below `maximum`, exp(-excess^2 / temperature) above (distances, angles)."""
    excess = torch.clamp(value - maximum, min=0.0)
    return torch.exp(-torch.square(excess) / temperature)


def posture_target(joint_pos: torch.Tensor, targets: list[float], temperature: float) -> torch.Tensor:
    """1 when the joints (N, J) are at their target angles (rad), exp(-mean squared error / temperature)."""
    goal = torch.tensor(targets, dtype=joint_pos.dtype, device=joint_pos.device)
    return torch.exp(-torch.mean(torch.square(joint_pos - goal), dim=1) / temperature)


def effort_penalty(action: torch.Tensor, temperature: float) -> torch.Tensor:
    """0 for no effort, rising to 1 as the mean squared action grows past `temperature` (use a negative weight)."""
    return 1.0 - torch.exp(-torch.mean(torch.square(action), dim=1) / temperature)


PRIMITIVES: dict[str, Callable[..., torch.Tensor]] = {
    f.__name__: f
    for f in (
        height_target,
        height_above,
        body_to_floor,
        upright,
        velocity_target,
        speed_at_least,
        at_least,
        at_most,
        posture_target,
        effort_penalty,
    )
}


# ---- helpers some templates need (copied into the code like the primitives) -------------
def ant_foot_heights(state: Any) -> torch.Tensor:
    """(N, 4) m: height of each ant foot tip above the floor (tips at (+-0.4, +-0.4, 0) in each lower leg's frame)."""
    heights = []
    for name, sx, sy in (
        ("left_ankle", 1.0, 1.0),
        ("right_ankle", -1.0, 1.0),
        ("third_ankle", -1.0, -1.0),
        ("fourth_ankle", 1.0, -1.0),
    ):
        leg = state.body(name)
        heights.append(leg.height + 0.4 * (sx * leg.rot[:, 2, 0] + sy * leg.rot[:, 2, 1]))
    return torch.stack(heights, dim=1)


HELPERS: dict[str, Callable[..., torch.Tensor]] = {"ant_foot_heights": ant_foot_heights}


# ---- templates ---------------------------------------------------------------------------
class Term(BaseModel):
    """One reward term: weight * primitive(quantity, *args, temperature)."""

    model_config = ConfigDict(frozen=True)

    name: str
    primitive: str
    quantity: str
    """A State API expression in `state` and `action` (source code), e.g. 'state.body("pelvis").height'."""
    args: tuple[float | tuple[float, ...], ...] = ()
    """The primitive's arguments between the quantity and the temperature (target, minimum...)."""
    weight: float
    temperature: float
    condition: str | None = None
    """The success condition this term serves; `adjust` strengthens it when that condition fails most."""
    why: str = ""


class Template(BaseModel):
    """The terms for one built-in success check, and the helpers their quantities call."""

    model_config = ConfigDict(frozen=True)

    check: str
    terms: tuple[Term, ...]
    helpers: tuple[str, ...] = ()


class Params(BaseModel):
    """The tunable numbers of one template instance: weight and temperature per term name."""

    weights: dict[str, float]
    temperatures: dict[str, float]


class OfflineCandidate(BaseModel):
    """One proposed reward: its code and the numbers it was written with."""

    code: str
    params: Params
    task_id: str
    variant: int
    """0: the (adjusted) template itself; 1..K-1: perturbed copies."""
    label: str = LABEL


class Adjustment(BaseModel):
    """The result of `adjust`: new numbers and, for the report, what changed and why."""

    params: Params
    changes: list[str] = Field(default_factory=list)


def _h(body: str) -> str:
    return f'state.body("{body}").height'


def _stack(*joints: str) -> str:
    return "torch.stack([" + ", ".join(f'state.joint("{j}").pos' for j in joints) + "], dim=1)"


_UP = 'state.body("torso").up[:, 2]'
_COM_VX = "(state.com_pos[:, 0] - state.prev_com_pos[:, 0]) / state.dt"
_COM_SPEED = "torch.norm(state.com_vel, dim=-1)"
_ROOTX_V = 'state.joint("rootx").vel'
_PITCH = 'state.joint("rooty").pos'
_PITCH_V = 'state.joint("rooty").vel'
_FEET_APART = 'torch.norm(state.body("left_foot").pos - state.body("right_foot").pos, dim=-1)'


def _effort(temperature: float = 0.1, weight: float = -0.1) -> Term:
    return Term(
        name="action_cost",
        primitive="effort_penalty",
        quantity="action",
        weight=weight,
        temperature=temperature,
        why="discourage needless force",
    )


def _still(weight: float = 0.2, temperature: float = 1.0) -> Term:
    return Term(
        name="stillness",
        primitive="velocity_target",
        quantity=_COM_SPEED,
        args=(0.0,),
        weight=weight,
        temperature=temperature,
        why="a posture is held, not passed through",
    )


def _upright(weight: float = 1.0, temperature: float = 0.05, condition: str | None = "torso_upright") -> Term:
    return Term(
        name="torso_upright",
        primitive="upright",
        quantity=_UP,
        weight=weight,
        temperature=temperature,
        condition=condition,
        why="keep the torso vertical",
    )


def _forward(name: str, quantity: str, minimum: float, temperature: float, weight: float = 2.0) -> Term:
    return Term(
        name=name,
        primitive="speed_at_least",
        quantity=quantity,
        args=(minimum,),
        weight=weight,
        temperature=temperature,
        condition="speed",
        why="move at least this fast in the asked direction",
    )


def _flip(direction: str) -> tuple[Term, ...]:
    sign = {"front": "", "back": "-", "any": ""}[direction]
    angle = f"torch.abs({_PITCH})" if direction == "any" else f"{sign}{_PITCH}"
    rate = f"torch.abs({_PITCH_V})" if direction == "any" else f"{sign}{_PITCH_V}"
    return (
        Term(
            name="rotation",
            primitive="at_least",
            quantity=angle,
            args=(2 * math.pi + 0.3,),
            weight=2.0,
            temperature=10.0,
            condition="full_turn",
            why="pitch a full turn (2 pi rad) the asked way",
        ),
        Term(
            name="pitch_rate",
            primitive="speed_at_least",
            quantity=rate,
            args=(6.0,),
            weight=1.0,
            temperature=9.0,
            why="spin fast enough to finish the turn in the air",
        ),
        Term(
            name="jump_height",
            primitive="height_above",
            quantity=_h("torso"),
            args=(1.2,),
            weight=0.5,
            temperature=0.1,
            why="leave the ground to have room to turn",
        ),
        _effort(0.5, -0.05),
    )


TEMPLATES: dict[str, Template] = {
    t.check: t
    for t in (
        Template(
            check="humanoid_kneel",
            terms=(
                Term(
                    name="knees_down",
                    primitive="body_to_floor",
                    quantity=f"torch.maximum({_h('left_shin')}, {_h('right_shin')})",
                    args=(0.1,),
                    weight=2.0,
                    temperature=0.05,
                    condition="knees_on_floor",
                    why="both knees on the floor",
                ),
                _upright(),
                Term(
                    name="pelvis_height",
                    primitive="height_target",
                    quantity=_h("pelvis"),
                    args=(0.5,),
                    weight=1.0,
                    temperature=0.05,
                    condition="pelvis_high",
                    why="hips above the knees, not sitting back on the heels",
                ),
                Term(
                    name="knee_bend",
                    primitive="posture_target",
                    quantity=_stack("left_knee", "right_knee"),
                    args=((-1.57, -1.57),),
                    weight=0.5,
                    temperature=0.5,
                    why="shins flat behind the thighs",
                ),
                _still(),
                _effort(),
            ),
        ),
        Template(
            check="humanoid_sit",
            terms=(
                Term(
                    name="pelvis_down",
                    primitive="body_to_floor",
                    quantity=_h("pelvis"),
                    args=(0.2,),
                    weight=2.0,
                    temperature=0.05,
                    condition="pelvis_low",
                    why="seat on the floor",
                ),
                _upright(weight=1.0, temperature=0.1),
                Term(
                    name="torso_height",
                    primitive="height_above",
                    quantity=_h("torso"),
                    args=(0.45,),
                    weight=1.0,
                    temperature=0.02,
                    condition="torso_high",
                    why="sitting up, not lying",
                ),
                Term(
                    name="hip_bend",
                    primitive="posture_target",
                    quantity=_stack("left_hip_y", "right_hip_y"),
                    args=((-1.57, -1.57),),
                    weight=0.3,
                    temperature=1.0,
                    why="legs forward, as when sitting",
                ),
                _still(),
                _effort(),
            ),
        ),
        Template(
            check="humanoid_lie_back",
            terms=(
                Term(
                    name="body_down",
                    primitive="body_to_floor",
                    quantity=f"torch.maximum({_h('torso')}, {_h('pelvis')})",
                    args=(0.25,),
                    weight=2.0,
                    temperature=0.1,
                    condition="low",
                    why="torso and pelvis on the floor",
                ),
                Term(
                    name="chest_up",
                    primitive="upright",
                    quantity='state.body("torso").forward[:, 2]',
                    weight=1.5,
                    temperature=0.2,
                    condition="chest_up",
                    why="facing the sky: the torso's forward axis points up",
                ),
                _still(weight=0.3),
                _effort(),
            ),
        ),
        Template(
            check="humanoid_one_leg",
            terms=(
                Term(
                    name="foot_raised",
                    primitive="height_above",
                    quantity=f"torch.maximum({_h('left_foot')}, {_h('right_foot')})",
                    args=(0.3,),
                    weight=1.5,
                    temperature=0.02,
                    condition="foot_raised",
                    why="one foot well off the floor",
                ),
                Term(
                    name="foot_planted",
                    primitive="body_to_floor",
                    quantity=f"torch.minimum({_h('left_foot')}, {_h('right_foot')})",
                    args=(0.05,),
                    weight=1.0,
                    temperature=0.01,
                    condition="foot_planted",
                    why="the other foot on the floor",
                ),
                Term(
                    name="torso_height",
                    primitive="height_above",
                    quantity=_h("torso"),
                    args=(1.1,),
                    weight=1.0,
                    temperature=0.02,
                    condition="torso_high",
                    why="standing tall",
                ),
                _upright(),
                _still(),
                _effort(),
            ),
        ),
        Template(
            check="humanoid_arms_up",
            terms=(
                Term(
                    name="arms_raised",
                    primitive="height_above",
                    quantity=f"torch.minimum({_h('left_lower_arm')}, {_h('right_lower_arm')}) - {_h('torso')}",
                    args=(0.25,),
                    weight=2.0,
                    temperature=0.02,
                    condition="elbows_up",
                    why="both elbows above the torso",
                ),
                Term(
                    name="torso_height",
                    primitive="height_above",
                    quantity=_h("torso"),
                    args=(1.1,),
                    weight=1.0,
                    temperature=0.02,
                    condition="torso_high",
                    why="keep standing",
                ),
                _upright(weight=0.5),
                _still(),
                _effort(),
            ),
        ),
        Template(
            check="humanoid_splits",
            terms=(
                Term(
                    name="feet_apart",
                    primitive="at_least",
                    quantity=_FEET_APART,
                    args=(1.3,),
                    weight=2.0,
                    temperature=0.1,
                    condition="feet_apart",
                    why="feet far apart",
                ),
                Term(
                    name="feet_down",
                    primitive="body_to_floor",
                    quantity=f"torch.maximum({_h('left_foot')}, {_h('right_foot')})",
                    args=(0.05,),
                    weight=1.0,
                    temperature=0.01,
                    condition="feet_on_floor",
                    why="both feet on the floor",
                ),
                Term(
                    name="pelvis_low",
                    primitive="body_to_floor",
                    quantity=_h("pelvis"),
                    args=(0.5,),
                    weight=1.0,
                    temperature=0.05,
                    condition="pelvis_low",
                    why="hips sink towards the floor",
                ),
                _effort(),
            ),
        ),
        Template(
            check="humanoid_crouch",
            terms=(
                Term(
                    name="pelvis_height",
                    primitive="height_target",
                    quantity=_h("pelvis"),
                    args=(0.42,),
                    weight=2.0,
                    temperature=0.02,
                    condition="pelvis_mid",
                    why="hips low, between 0.2 and 0.6 m",
                ),
                Term(
                    name="feet_down",
                    primitive="body_to_floor",
                    quantity=f"torch.maximum({_h('left_foot')}, {_h('right_foot')})",
                    args=(0.05,),
                    weight=1.0,
                    temperature=0.01,
                    condition="feet_on_floor",
                    why="both feet on the floor",
                ),
                Term(
                    name="knees_up",
                    primitive="height_above",
                    quantity=f"torch.minimum({_h('left_shin')}, {_h('right_shin')})",
                    args=(0.25,),
                    weight=1.0,
                    temperature=0.01,
                    condition="knees_off_floor",
                    why="knees stay off the floor (not kneeling)",
                ),
                Term(
                    name="feet_together",
                    primitive="at_most",
                    quantity=_FEET_APART,
                    args=(0.4,),
                    weight=0.5,
                    temperature=0.05,
                    condition="feet_close",
                    why="feet under the body",
                ),
                _upright(temperature=0.1),
                _still(),
                _effort(),
            ),
        ),
        Template(
            check="ant_lie_down",
            terms=(
                Term(
                    name="torso_down",
                    primitive="body_to_floor",
                    quantity=_h("torso"),
                    args=(0.33,),
                    weight=2.0,
                    temperature=0.01,
                    condition="torso_low",
                    why="lower the body to the floor",
                ),
                _upright(temperature=0.1),
                _still(),
                _effort(0.5),
            ),
        ),
        Template(
            check="ant_raise_leg",
            helpers=("ant_foot_heights",),
            terms=(
                Term(
                    name="leg_raised",
                    primitive="height_above",
                    quantity="torch.amax(ant_foot_heights(state), dim=1)",
                    args=(0.25,),
                    weight=2.0,
                    temperature=0.01,
                    condition="leg_up",
                    why="one foot tip well off the floor",
                ),
                Term(
                    name="others_down",
                    primitive="body_to_floor",
                    quantity="torch.sort(ant_foot_heights(state), dim=1).values[:, 2]",
                    args=(0.1,),
                    weight=1.0,
                    temperature=0.005,
                    condition="three_down",
                    why="the other three feet stay down",
                ),
                _upright(temperature=0.1),
                _effort(0.5),
            ),
        ),
        Template(
            check="humanoid_walk_forward",
            terms=(
                _forward("forward_speed", _COM_VX, 1.5, 0.5),
                Term(
                    name="torso_height",
                    primitive="height_above",
                    quantity=_h("torso"),
                    args=(1.0,),
                    weight=1.0,
                    temperature=0.02,
                    condition="torso_high",
                    why="stay on the feet",
                ),
                _upright(weight=0.5, temperature=0.1),
                _effort(),
            ),
        ),
        Template(
            check="humanoid_run_backward",
            terms=(
                _forward("backward_speed", f"-({_COM_VX})", 1.5, 0.5),
                Term(
                    name="torso_height",
                    primitive="height_above",
                    quantity=_h("torso"),
                    args=(1.0,),
                    weight=1.0,
                    temperature=0.02,
                    condition="torso_high",
                    why="stay on the feet",
                ),
                _upright(weight=0.5, temperature=0.1),
                _effort(),
            ),
        ),
        Template(
            check="ant_forward",
            terms=(
                _forward("forward_speed", 'state.body("torso").lin_vel[:, 0]', 1.5, 0.5),
                _upright(weight=0.5, temperature=0.5),
                _effort(0.5),
            ),
        ),
        Template(
            check="hopper_forward",
            terms=(
                _forward("forward_speed", _ROOTX_V, 1.5, 0.5),
                Term(
                    name="torso_height",
                    primitive="height_above",
                    quantity=_h("torso"),
                    args=(0.9,),
                    weight=1.0,
                    temperature=0.02,
                    condition="torso_high",
                    why="do not fall",
                ),
                _upright(weight=0.5, temperature=0.1),
                _effort(0.5, -0.05),
            ),
        ),
        Template(
            check="walker_forward",
            terms=(
                _forward("forward_speed", _ROOTX_V, 1.5, 0.5),
                Term(
                    name="torso_height",
                    primitive="height_above",
                    quantity=_h("torso"),
                    args=(1.0,),
                    weight=1.0,
                    temperature=0.02,
                    condition="torso_high",
                    why="do not fall",
                ),
                _upright(weight=0.5, temperature=0.1),
                _effort(0.5, -0.05),
            ),
        ),
        Template(
            check="cheetah_forward",
            terms=(
                _forward("forward_speed", _ROOTX_V, 3.0, 1.0),
                _upright(weight=0.3, temperature=0.5, condition=None),
                _effort(0.5),
            ),
        ),
        Template(
            check="cheetah_backward",
            terms=(
                _forward("backward_speed", f"-{_ROOTX_V}", 3.0, 1.0),
                _upright(weight=0.3, temperature=0.5, condition=None),
                _effort(0.5),
            ),
        ),
        Template(check="front_flip", terms=_flip("front")),
        Template(check="back_flip", terms=_flip("back")),
        Template(check="any_flip", terms=_flip("any")),
    )
}
"""One template per built-in success check; every built-in task with one of these checks is understood."""


# ---- which instructions are understood ---------------------------------------------------
def supported_tasks() -> dict[str, Any]:
    """Built-in tasks (id -> Task) whose success check has a template."""
    from synth_reward.envs import all_tasks

    return {tid: t for tid, t in all_tasks().items() if t.success in TEMPLATES}


def understood() -> str:
    """What the offline designer understands, one robot per clause, for its error message."""
    by_morph: dict[str, list[str]] = {}
    for task in supported_tasks().values():
        if task.id.startswith("gym/"):
            continue
        by_morph.setdefault(task.morphology, []).append(task.id.split("/", 1)[1].replace("_", " "))
    return "; ".join(f"{m}: {', '.join(names)}" for m, names in by_morph.items())


def _template_for(task: Any) -> tuple[Template, str, str]:
    """(template, task id, instruction) for a Task or ResolvedTask; UsageError when there is none."""
    builtin = getattr(task, "task", task)  # ResolvedTask.task, or the Task itself
    instruction = getattr(task, "instruction", "")
    success_code = getattr(task, "success_code", None) if builtin is not task else None
    if builtin is not None and getattr(builtin, "success", None) in TEMPLATES and success_code is None:
        return TEMPLATES[builtin.success], builtin.id, builtin.instruction
    raise UsageError(
        f"the {LABEL} has no template for {instruction!r}; it understands only built-in tasks ({understood()}); "
        "configure an LLM (--model) for any other instruction"
    )


def supports(task: Any) -> bool:
    """Whether `propose` can write rewards for this Task or ResolvedTask."""
    try:
        _template_for(task)
    except UsageError:
        return False
    return True


# ---- code generation ---------------------------------------------------------------------
def default_params(template: Template) -> Params:
    return Params(
        weights={t.name: t.weight for t in template.terms}, temperatures={t.name: t.temperature for t in template.terms}
    )


def _fmt(x: float | tuple[float, ...]) -> str:
    if isinstance(x, tuple):
        return "[" + ", ".join(_fmt(v) for v in x) + "]"
    return repr(_sig(x))


def _sig(x: float) -> float:
    """x to 6 significant digits: what the generated code holds, so params read back equal."""
    return float(f"{float(x):.6g}")


def _rounded(params: Params) -> Params:
    return Params(
        weights={n: _sig(w) for n, w in params.weights.items()},
        temperatures={n: _sig(t) for n, t in params.temperatures.items()},
    )


OPENING_S = 0.5
"""s: the opening over which a term must hold to be one to keep (as train/early_end.py's patience)."""
SUCCESS_BONUS = 2.0
"""Weight of the term that pays while the task's whole success check holds (the hand-written kneel reward's
`in_pose` term has this weight too): the shaped terms lead towards the pose, the bonus marks having reached it."""


class Composition(BaseModel):
    """How a template's terms combine for one task (see `composition`)."""

    model_config = ConfigDict(frozen=True)

    keep: tuple[str, ...] = ()
    """Terms already satisfied in the task's initial state (score >= 0.9 there): conditions to keep."""
    bonus: str | None = None
    """A bool (N,) expression of the task's success check in the State API, or None when it cannot be written."""


def render_code(
    template: Template, params: Params, task_id: str, instruction: str, comp: Composition | None = None
) -> str:
    """Standalone reward source for the template with these numbers (torch and math only).

    With a `comp`, the terms to reach are multiplied by the product of the scores of the terms to keep, and a
    success bonus is added. Why: an additive sum lets the policy trade a kept condition for a reached one. The
    analyzer found this again and again (the humanoid collapses onto its knees with the torso flat: knees term
    76% of the total, torso-upright failing 93% of steps; it sits back; it lies down): a goal term worth more
    than the uprightness it costs is a local optimum. Gated, a goal term pays only while what the robot
    started with still holds."""
    comp = comp or Composition()
    used = sorted({t.primitive for t in template.terms}, key=list(PRIMITIVES).index)
    keep = [t.name for t in template.terms if t.name in comp.keep]
    lines = [
        f'"""Reward for "{instruction}" ({task_id}).',
        "",
        f"Written by synth-reward's {LABEL}: a fixed template of bounded",
        "terms, not an LLM design. Each term is WEIGHTS[name] * score with score in [0, 1];",
        "TEMPERATURES are in the squared unit of each term's quantity.",
        *(
            [
                f"Terms to reach count only while the terms to keep hold (times {' * '.join(keep)}: both",
                "held at the start), so the policy cannot trade what it started with for the goal;",
            ]
            if keep
            else []
        ),
        *(
            [f"success_bonus pays {_fmt(SUCCESS_BONUS)} while the task's whole success check holds."]
            if comp.bonus
            else []
        ),
        "",
        *(f"- {t.name}: {t.why}" for t in template.terms),
        '"""',
        "",
        "import math" if comp.bonus and "math." in comp.bonus else "",
        "import torch",
        "",
        "WEIGHTS = {",
        *(f'    "{t.name}": {_fmt(params.weights[t.name])},' for t in template.terms),
        "}",
        "TEMPERATURES = {",
        *(f'    "{t.name}": {_fmt(params.temperatures[t.name])},' for t in template.terms),
        "}",
        "",
    ]
    lines = [line for i, line in enumerate(lines) if line or i == 0 or lines[i - 1]]
    for name in (*used, *template.helpers):
        fn = PRIMITIVES.get(name) or HELPERS[name]
        lines += ["", _untyped_source(fn), ""]
    lines += ["", "def compute_reward(state, action):", "    score = {"]
    for t in template.terms:
        args = ", ".join([t.quantity, *(_fmt(a) for a in t.args), f'TEMPERATURES["{t.name}"]'])
        lines.append(f'        "{t.name}": {t.primitive}({args}),')
    lines.append("    }")
    if keep:
        lines.append("    keep = " + " * ".join(f'score["{n}"]' for n in keep))
    lines.append("    components = {")
    for t in template.terms:
        gate = " * keep" if keep and t.condition and t.name not in comp.keep else ""
        lines.append(f'        "{t.name}": WEIGHTS["{t.name}"]{gate} * score["{t.name}"],')
    if comp.bonus:
        lines.append(f'        "success_bonus": {_fmt(SUCCESS_BONUS)} * ({comp.bonus}).float(),')
    lines += [
        "    }",
        "    reward = "
        + " + ".join(
            f'components["{n}"]'
            for n in [*(t.name for t in template.terms), *(["success_bonus"] if comp.bonus else [])]
        ),
        "    return reward, components",
        "",
    ]
    return "\n".join(lines)


def composition(template: Template, task: Any) -> Composition:
    """Which of the template's terms are conditions to keep, and the success bonus, for a built-in task.

    Measured, not declared per task: a term with a success condition whose score is at least 0.9 on every step of
    the task's first OPENING_S seconds with zero actions (Gymnasium's reset noise, 16 envs, mean) is kept; 0.9, not 0.5: a
    soft term can score 0.5 short of its condition; the others are reached. The bonus is the
    conjunction of the task's success-check conditions as the analyzer labels them (State API source), kept only
    if it evaluates on those states with the template's own helpers."""
    from synth_reward.envs.tasks import get_task
    from synth_reward.train.analyzer import split_conditions

    task = get_task(task) if isinstance(task, str) else task  # a task id, or the Task (a user's suite's too)
    task_id = task.id
    env = task.make_env(16, seed=0)
    try:
        env.reset(seed=0)
        action = torch.zeros(env.num_envs, env.num_actions)
        namespace: dict[str, Any] = {}
        exec(render_code(template, default_params(template), task_id, ""), namespace)  # noqa: S102 - our template
        weights = default_params(template).weights
        lowest = {t.name: math.inf for t in template.terms if t.condition and weights[t.name] > 0}
        for _ in range(max(1, math.ceil(OPENING_S / env.dt))):  # the opening, with zero actions
            state = env.step(action).state
            _, components = namespace["compute_reward"](state, action)
            for name in lowest:
                lowest[name] = min(lowest[name], float((components[name] / weights[name]).mean()))
        keep = tuple(name for name, score in lowest.items() if score >= 0.9)
        reach = [t for t in template.terms if t.condition and t.name not in keep]
        if not reach:  # nothing to reach: nothing to gate
            keep = ()
        labels = [label for label, _ in split_conditions(task.success_fn())]
        bonus: str | None = " & ".join(f"({label})" for label in labels)
        try:
            value = eval(str(bonus), {"torch": torch, "math": math, **namespace}, {"state": state})  # noqa: S307
            if not (isinstance(value, torch.Tensor) and value.shape == (env.num_envs,)):
                bonus = None
        except Exception:  # a label that needs a name the template does not have: no bonus
            bonus = None
        return Composition(keep=keep, bonus=bonus)
    finally:
        env.close()


def _untyped_source(fn: Callable[..., Any]) -> str:
    """A function's source without annotations (generated code stays plain and needs no typing imports)."""
    tree = ast.parse(inspect.getsource(fn))
    node = tree.body[0]
    assert isinstance(node, ast.FunctionDef)
    for arg in node.args.args:
        arg.annotation = None
    node.returns = None
    return ast.unparse(node)


def params_from_code(code: str) -> Params | None:
    """The WEIGHTS and TEMPERATURES a template wrote into its code (None for code not from a template)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    found: dict[str, dict[str, float]] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id in {"WEIGHTS", "TEMPERATURES"}:
                try:
                    found[node.targets[0].id] = {str(k): float(v) for k, v in ast.literal_eval(node.value).items()}
                except (ValueError, TypeError, AttributeError, SyntaxError):
                    return None
    if set(found) != {"WEIGHTS", "TEMPERATURES"}:
        return None
    return Params(weights=found["WEIGHTS"], temperatures=found["TEMPERATURES"])


# ---- adjusting from the analyzer's numbers -------------------------------------------------
FLAT_SPREAD = 0.05
"""A term whose score moved less than this (fraction of its weight) over training was flat."""
LOW_SCORE = 0.2
DOMINANT_EFFORT = 0.5
"""An effort penalty larger than this fraction of the task terms' mean total dominates."""


def _stats(value: Any) -> dict[str, Any]:
    """min/max/mean (and `flat` if the analyzer said) of one component's numbers over training.

    Accepts {"values" or "series": [...]}, {"mean", "min", "max"}, a plain list, or a number.
    """
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        series = value.get("series") or value.get("values")
        xs = [float(x) for x in series or [] if x is not None and math.isfinite(float(x))]
        if xs:
            out = {"min": min(xs), "max": max(xs), "mean": sum(xs) / len(xs)}
        for key in ("min", "max", "mean"):
            if value.get(key) is not None and math.isfinite(float(value[key])):
                out[key] = float(value[key])
        if isinstance(value.get("flat"), bool):
            out["flat"] = value["flat"]
        if isinstance(value.get("dominant"), bool):
            out["dominant"] = value["dominant"]
        return out if "mean" in out else {}
    if isinstance(value, (list, tuple)) and value:
        return _stats({"series": list(value)})
    if isinstance(value, (int, float)) and math.isfinite(float(value)):
        return {"mean": float(value)}
    return {}


def _last(values: Any) -> float | None:
    for v in reversed(list(values or [])):
        if isinstance(v, (int, float)) and math.isfinite(float(v)):
            return float(v)
    return None


def read_analysis(analysis: Any) -> tuple[dict[str, dict[str, Any]], dict[str, float], float | None, float]:
    """(component stats, condition failure fractions, success rate, steps per value) from the analyzer's output.

    Two shapes are read. The train analyzer's `Analysis` (or its JSON): reflection.components
    [{name, values, min, max, mean, flat, dominant}] of per-episode sums, reflection.length_mean,
    failure.conditions [{condition (source text), fail_fraction}], failure.successes/episodes.
    Or a plain dict: {"components": {name: stats}, "condition_failures": {name: fraction},
    "success_rate": x, "episode_length": steps the values were summed over (default 1: per step)}.
    """
    if isinstance(analysis, BaseModel):
        analysis = analysis.model_dump(mode="json")
    analysis = dict(analysis or {})
    comps: dict[str, dict[str, Any]] = {}
    failures: dict[str, float] = {}
    success = analysis.get("success_rate")
    steps = float(analysis.get("episode_length") or 1.0)
    reflection = analysis.get("reflection") or {}
    if isinstance(reflection, Mapping):
        for c in reflection.get("components") or []:
            if isinstance(c, Mapping) and c.get("name"):
                comps[str(c["name"])] = _stats(c)
        steps = _last(reflection.get("length_mean")) or steps
        success = _last(reflection.get("success_rate")) if success is None else success
    failure = analysis.get("failure") or {}
    if isinstance(failure, Mapping):
        for c in failure.get("conditions") or []:
            if isinstance(c, Mapping) and c.get("condition") is not None and c.get("fail_fraction") is not None:
                failures[str(c["condition"])] = float(c["fail_fraction"])
        if failure.get("episodes"):
            success = float(failure.get("successes") or 0) / float(failure["episodes"])
    for name, value in (analysis.get("components") or {}).items():
        comps[str(name)] = _stats(value)
    for name, value in (analysis.get("condition_failures") or {}).items():
        if isinstance(value, (int, float)) and math.isfinite(float(value)):
            failures[str(name)] = float(value)
    comps = {name.rsplit("/", 1)[-1]: st for name, st in comps.items() if st}
    return comps, failures, (float(success) if isinstance(success, (int, float)) else None), max(steps, 1.0)


_QUOTED = re.compile(r"""["']([A-Za-z_][\w.-]*)["']""")


def serves(term: Term, condition: str) -> bool:
    """Does this task term work towards this success condition (a name, or a conjunct's source text)?

    By name (the term's `condition` or its own name), else by what both read: a condition
    on the forward speed is served by the speed terms, `_upright(state)` by the torso's
    uprightness, and otherwise a term serves a condition that reads the same body or joint.
    """
    if term.weight <= 0:
        return False
    if condition in {term.condition, term.name}:
        return True
    text = condition.lower()
    if "speed" in text or "vel" in text:
        return term.condition == "speed"
    if "upright" in text:
        return term.primitive == "upright" and "torso" in term.quantity
    return bool(set(_QUOTED.findall(condition)) & set(_QUOTED.findall(term.quantity)))


def adjust(params: Params, analysis: Any, template: Template | None = None) -> Adjustment:
    """New weights and temperatures from the analyzer's numbers, with the reasons for each change.

    `analysis` is the train analyzer's `Analysis` or a plain dict (see `read_analysis`).
    Rules, after Eureka's reward reflection:
    - a task term that stayed flat during training at a low score (below 0.2 of its
      weight per step) gets a 4x wider temperature: it gave the policy no gradient;
    - an effort penalty larger than half of the task terms together (or flagged dominant)
      gets half its weight: the policy was learning to do nothing;
    - the success condition that failed most often (above 20% of steps) gets the weights
      of the terms that serve it times (1 + failure fraction).
    At a success rate of 0.9 or more only the last rule applies.
    """
    weights, temps = dict(params.weights), dict(params.temperatures)
    changes: list[str] = []
    comps, failures, success, steps = read_analysis(analysis)
    settled = success is not None and success >= 0.9

    if not settled:
        for name, st in comps.items():
            w = weights.get(name)
            if w is None or w <= 0 or name not in temps:
                continue
            score = st["mean"] / (w * steps)
            spread = (st.get("max", st["mean"]) - st.get("min", st["mean"])) / (w * steps)
            flat = st.get("flat", spread < FLAT_SPREAD)
            if flat and score < LOW_SCORE:
                temps[name] = temps[name] * 4.0
                changes.append(
                    f"{name}: flat at score {score:.2f} during training, temperature x4 -> {temps[name]:.3g}"
                )
        task_total = sum(abs(st["mean"]) for n, st in comps.items() if weights.get(n, 0) > 0)
        for name, st in comps.items():
            if weights.get(name, 0) >= 0:
                continue
            if st.get("dominant") or (task_total > 0 and abs(st["mean"]) > DOMINANT_EFFORT * task_total):
                weights[name] = weights[name] * 0.5
                changes.append(
                    f"{name}: penalty |{st['mean']:.3g}| dominated the task terms ({task_total:.3g}), "
                    f"weight halved -> {weights[name]:.3g}"
                )

    if failures:
        worst, fraction = max(failures.items(), key=lambda kv: kv[1])
        terms = (
            template.terms
            if template is not None
            else tuple(
                Term(name=n, primitive="", quantity="", weight=w, temperature=temps[n]) for n, w in weights.items()
            )
        )
        targets = [
            t.name
            for t in terms
            if t.name in weights and serves(t.model_copy(update={"weight": weights[t.name]}), worst)
        ]
        if fraction > 0.2:
            for name in targets:
                weights[name] = weights[name] * (1.0 + fraction)
                changes.append(
                    f"{name}: serves '{worst}', which failed {fraction:.0%} of the time, "
                    f"weight x{1 + fraction:.2f} -> {weights[name]:.3g}"
                )
    return Adjustment(params=Params(weights=weights, temperatures=temps), changes=changes)


# ---- the designer ------------------------------------------------------------------------
class OfflineDesigner:
    """Proposes K template rewards per iteration for the built-in tasks; a labelled baseline.

    Deterministic for a given seed, task and iteration, so a resumed run proposes the
    same candidates again (and finds them already trained).
    """

    label = LABEL

    def __init__(self, seed: int = 0, weight_spread: float = 0.4, temperature_spread: float = 0.7) -> None:
        self.seed = seed
        self.weight_spread = weight_spread
        """Variants scale each weight by exp(U(-s, s))."""
        self.temperature_spread = temperature_spread
        """Variants scale each temperature by exp(U(-s, s))."""
        self._compositions: dict[str, Composition] = {}

    def supports(self, task: Any) -> bool:
        return supports(task)

    def template(self, task: Any) -> Template:
        return _template_for(task)[0]

    def propose(
        self, task: Any, k: int, feedback: Mapping[str, Any] | None = None, iteration: int = 1
    ) -> list[OfflineCandidate]:
        """K reward candidates for a Task or ResolvedTask. UsageError naming what it understands otherwise.

        `feedback` (optional): {"params": Params or dict, or "code": the best code so far
        (its WEIGHTS/TEMPERATURES are read back), "analysis": the analyzer's numbers (see
        `adjust`)}. Variant 0 is the adjusted template; the others spread around it.
        """
        if k < 1:
            raise ValueError("k must be at least 1")
        template, task_id, instruction = _template_for(task)
        params = default_params(template)
        if feedback:
            given = feedback.get("params")
            if given is None and feedback.get("code"):
                given = params_from_code(str(feedback["code"]))
            if given is not None:
                given = given if isinstance(given, Params) else Params.model_validate(given)
                params = Params(
                    weights={**params.weights, **given.weights},
                    temperatures={**params.temperatures, **given.temperatures},
                )
            if feedback.get("analysis"):
                params = adjust(params, feedback["analysis"], template).params
        comp = self._composition(template, getattr(task, "task", None) or task)
        rng = random.Random(f"{self.seed}:{task_id}:{iteration}")
        out: list[OfflineCandidate] = []
        for variant in range(k):
            p = _rounded(params if variant == 0 else self._perturb(params, rng))
            out.append(
                OfflineCandidate(
                    code=render_code(template, p, task_id, instruction, comp),
                    params=p,
                    task_id=task_id,
                    variant=variant,
                )
            )
        return out

    def _composition(self, template: Template, task: Any) -> Composition:
        if task.id not in self._compositions:
            self._compositions[task.id] = composition(template, task)
        return self._compositions[task.id]

    def _perturb(self, params: Params, rng: random.Random) -> Params:
        ws = self.weight_spread
        ts = self.temperature_spread
        return Params(
            weights={n: w * math.exp(rng.uniform(-ws, ws)) for n, w in params.weights.items()},
            temperatures={n: t * math.exp(rng.uniform(-ts, ts)) for n, t in params.temperatures.items()},
        )
