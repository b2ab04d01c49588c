"""Trajectory analyzer: what the trained policy really does, in numbers short enough for a prompt.

Two parts, from the training record and the evaluation rollouts (the exported qpos/qvel/actions):

- Reward reflection (Eureka): each reward component's episode mean at every record point,
  with max, mean, min; components that stay flat; components that dominate the total.
- Failure analysis (Auto MC-Reward): when and how episodes end, falls, which bodies touch
  the floor and for how long, which sub-conditions of the success check fail most often,
  action saturation, joint limits, and how close the best episode came.

Everything is recomputed from the `.npz` export with MuJoCo alone (forward kinematics and
collision detection on each recorded qpos), so the analysis does not depend on the backend
that trained the policy. `analyze(run_dir)` writes RUN/analysis.json and RUN/analysis.txt.
"""

from __future__ import annotations

import ast
import copy
import inspect
import math
import textwrap
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import cast

import mujoco
import numpy as np
import torch
from pydantic import BaseModel

from synth_reward.atomic import write_text
from synth_reward.envs.morphology import get_morphology
from synth_reward.envs.state import State
from synth_reward.envs.tasks import Task
from synth_reward.train.evaluate import EvalResult, evaluate, load_npz, states_from_qpos
from synth_reward.train.records import (
    ANALYSIS_JSON,
    ANALYSIS_TEXT,
    EVAL_DIR,
    TrainRecord,
    read_records,
    run_task,
    write_model,
)

FLAT_RELATIVE = 0.05
"""A component is flat when max - min over the record points is within 5% of its largest magnitude."""
DOMINANT_SHARE = 0.5
"""A component dominates when it holds at least half of the sum of |component| at the last point."""
LABEL_CHARS = 100
"""A condition label longer than this keeps the check's own local names (`left`, `right`) rather than
what they read: one long label would crowd the analysis line."""
SATURATION_FRACTION = 0.01
"""An action is saturated within 1% of its ctrl range from either limit."""
LIMIT_FRACTION = 0.02
"""A joint is at its limit within 2% of its range from either end."""


# ---- records ------------------------------------------------------------------------------------
class ComponentReflection(BaseModel):
    """One reward component over training: mean episode sum at each record point."""

    name: str
    values: list[float]
    max: float
    mean: float
    min: float
    last_share: float
    """|last value| / sum over components of |last value|."""
    flat: bool
    dominant: bool


class Reflection(BaseModel):
    env_steps: list[int]
    """env steps at each record point."""
    success_rate: list[float | None]
    return_mean: list[float | None]
    length_mean: list[float | None]
    human_return: list[float | None]
    components: list[ComponentReflection]
    flat: list[str]
    dominant: list[str]


class BodyContact(BaseModel):
    body: str
    step_fraction: float
    """fraction of all evaluated steps on which the body touched the floor."""
    episodes: int
    """episodes in which it touched the floor at all."""
    longest_s: float
    """longest continuous touch, s."""


class ConditionStat(BaseModel):
    condition: str
    """one conjunct of the success check, as source text that reads alone (see `_label`)."""
    fail_fraction: float
    """fraction of evaluated steps on which this condition failed."""
    best_episode_hold: float
    """fraction of steps it held in the best episode."""


class Ranked(BaseModel):
    name: str
    fraction: float


class FailureAnalysis(BaseModel):
    episodes: int
    successes: int
    success_rule: str
    end_reasons: dict[str, int]
    end_time_s: dict[str, float]
    """median time at which episodes ended, per end reason, s."""
    falls: int
    """episodes in which the robot fell: see fall_rule."""
    fall_rule: str = ""
    """what counted as a fall, in words. Not tilt or height, which posture tasks ask for (kneel, sit, lie
    down): the root body on the floor while the success check failed, or the task's healthy rule ending
    the episode."""
    fall_time_s: float | None
    """median time of the first fall, s."""
    contacts: list[BodyContact]
    conditions: list[ConditionStat]
    action_saturation: float
    """fraction of (step, actuator) entries at a ctrl limit."""
    saturated_actuators: list[Ranked]
    joints_at_limit: float
    """fraction of (step, limited joint) entries at a joint limit."""
    limit_joints: list[Ranked]
    best_episode: int
    best_success_fraction: float
    needed_fraction: float
    best_longest_hold_s: float


class Analysis(BaseModel):
    task_id: str
    run_dir: str
    reflection: Reflection | None
    failure: FailureAnalysis
    eval_components: dict[str, float] = {}
    """mean episode sum of each reward component in the evaluation episodes (deterministic policy)."""
    text: str = ""


# ---- reward reflection ----------------------------------------------------------------------
def reflect(records: list[TrainRecord]) -> Reflection:
    """Eureka-style reflection over the record points that saw episodes."""
    points = [r for r in records if r.episodes > 0]
    names = list(dict.fromkeys(k for r in points for k in r.components))
    last = points[-1].components if points else {}
    total_abs = sum(abs(v) for v in last.values()) or 1.0
    comps = []
    for name in names:
        values = [r.components.get(name, math.nan) for r in points]
        finite = [v for v in values if math.isfinite(v)]
        hi, lo = max(finite), min(finite)
        magnitude = max(abs(hi), abs(lo))
        flat = (hi - lo) <= FLAT_RELATIVE * magnitude or magnitude < 1e-9
        share = abs(last.get(name, 0.0)) / total_abs
        comps.append(
            ComponentReflection(
                name=name,
                values=values,
                max=hi,
                mean=float(np.mean(finite)),
                min=lo,
                last_share=share,
                flat=flat,
                dominant=len(names) > 1 and share >= DOMINANT_SHARE,
            )
        )
    return Reflection(
        env_steps=[r.env_steps for r in points],
        success_rate=[r.success_rate for r in points],
        return_mean=[r.return_mean for r in points],
        length_mean=[r.length_mean for r in points],
        human_return=[r.human_return_mean for r in points],
        components=comps,
        flat=[c.name for c in comps if c.flat],
        dominant=[c.name for c in comps if c.dominant],
    )


# ---- sub-conditions of the success check -----------------------------------------------------
def split_conditions(
    check: Callable[[State], torch.Tensor],
) -> list[tuple[str, Callable[[State], tuple[torch.Tensor, ...]]]]:
    """The top-level `&` conjuncts of a check's return expression (following local names), each with a label.

    Returns [(label, fn)] where fn(state) gives a tuple of all conjuncts' bool tensors (N,); a check
    whose source is not available, or that is not a conjunction, is one condition: itself.
    """
    whole: list[tuple[str, Callable[[State], tuple[torch.Tensor, ...]]]] = [
        ("success check", lambda state: (check(state),))
    ]
    try:
        source = textwrap.dedent(inspect.getsource(check))
        fdef = ast.parse(source).body[0]
    except (OSError, TypeError, SyntaxError, IndexError):
        return whole
    if not isinstance(fdef, ast.FunctionDef):
        return whole
    returns = [n for n in fdef.body if isinstance(n, ast.Return)]
    if len(returns) != 1 or returns[0].value is None:
        return whole
    # local names bound once, by a top-level `name = value` or `a, b = x, y`: their value is known
    stores = Counter(n.id for n in ast.walk(fdef) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store))
    assigned: dict[str, ast.expr] = {}
    for node in fdef.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
            same = (
                isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple) and len(target.elts) == len(value.elts)
            )
            pairs = zip(target.elts, value.elts, strict=True) if same else [(target, value)]  # type: ignore[attr-defined]  # same: both are Tuples
            assigned |= {t.id: v for t, v in pairs if isinstance(t, ast.Name) and stores[t.id] == 1}

    def flatten(expr: ast.expr) -> list[ast.expr]:
        if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.BitAnd):
            return flatten(expr.left) + flatten(expr.right)
        if isinstance(expr, ast.Name) and expr.id in assigned:
            return flatten(assigned[expr.id])
        return [expr]

    conjuncts = flatten(returns[0].value)
    handles = {k: v for k, v in assigned.items() if _is_accessor(v)}
    if len(conjuncts) < 2:
        return [(_label(conjuncts[0], check.__globals__, handles), whole[0][1])]
    fdef.body = [n for n in fdef.body if n is not returns[0]]
    fdef.body.append(ast.Return(value=ast.Tuple(elts=conjuncts, ctx=ast.Load())))
    fdef.decorator_list, fdef.name = [], "_conditions"
    namespace = dict(check.__globals__)
    exec(
        compile(ast.fix_missing_locations(ast.Module(body=[fdef], type_ignores=[])), "<conditions>", "exec"), namespace
    )  # noqa: S102 - the task's own check, re-assembled from its source
    fn = namespace["_conditions"]
    return [(_label(c, check.__globals__, handles), fn) for c in conjuncts]


def _label(expr: ast.expr, namespace: dict[str, object], handles: dict[str, ast.expr]) -> str:
    """A conjunct's source as the designer can read it alone: local handles (`left`, `torso`) put back as
    what they read, private helpers spelled out. `_upright(state) > 0.8` means nothing in a prompt;
    `state.body('torso').up[:, 2] > 0.8` is the State API the designer writes rewards in."""
    spelled = ast.unparse(_SpellOut(namespace).visit(_Substitute(handles).visit(copy.deepcopy(expr))))
    if len(spelled) <= LABEL_CHARS:
        return spelled
    return ast.unparse(_SpellOut(namespace).visit(copy.deepcopy(expr)))  # the check's docstring names them


def _is_accessor(expr: ast.expr) -> bool:
    """A plain read (`state.body("left_foot")`, `....height`, `f(state)`): no arithmetic, comparison or logic."""
    return not any(
        isinstance(n, ast.BinOp | ast.UnaryOp | ast.BoolOp | ast.Compare | ast.IfExp | ast.Lambda)
        for n in ast.walk(expr)
    )


class _Substitute(ast.NodeTransformer):
    """Puts expressions in for names (parameters, local handles), recursively."""

    def __init__(self, values: dict[str, ast.expr], depth: int = 4) -> None:
        self.values, self.depth = values, depth

    def visit_Name(self, node: ast.Name) -> ast.expr:
        if node.id not in self.values or self.depth == 0:
            return node
        return cast(ast.expr, _Substitute(self.values, self.depth - 1).visit(copy.deepcopy(self.values[node.id])))


class _SpellOut(ast.NodeTransformer):
    """Replaces each call of a private helper (`_name(...)`) by its return expression, the arguments put in
    for its parameters, where the helper is one `return`; else by its docstring's first phrase.
    A private module constant becomes its value."""

    def __init__(self, namespace: dict[str, object], depth: int = 3) -> None:
        self.namespace, self.depth = namespace, depth

    def visit_Name(self, node: ast.Name) -> ast.expr:
        value = self.namespace.get(node.id) if node.id.startswith("_") else None
        if isinstance(value, int | float | str):
            return ast.copy_location(ast.Constant(value), node)
        return node

    def visit_Call(self, node: ast.Call) -> ast.expr:
        if not (isinstance(node.func, ast.Name) and node.func.id.startswith("_")):
            return self.generic_visit(node)  # type: ignore[return-value]
        node.args = [self.visit(a) for a in node.args]
        node.keywords = [self.visit(k) for k in node.keywords]
        helper = self.namespace.get(node.func.id)
        inlined = _inline(helper, node) if self.depth > 0 and callable(helper) else None
        if inlined is not None:
            return cast(
                ast.expr, _SpellOut(getattr(helper, "__globals__", self.namespace), self.depth - 1).visit(inlined)
            )
        doc = (inspect.getdoc(helper) or "") if callable(helper) else ""
        phrase = doc.split("\n")[0].split(" (")[0].split(":")[0].rstrip(" .") or node.func.id.lstrip("_")
        args = [ast.unparse(a) for a in node.args if not isinstance(a, ast.Name)]  # `state` is implied
        args += [f"{k.arg}={ast.unparse(k.value)}" for k in node.keywords]
        return ast.copy_location(ast.Name(id=phrase + (f" of {', '.join(args)}" if args else "")), node)


def _inline(helper: Callable[..., object], call: ast.Call) -> ast.expr | None:
    """The helper's single `return` expression with the call's arguments (or the defaults) for its parameters."""
    try:
        fdef = ast.parse(textwrap.dedent(inspect.getsource(helper))).body[0]
        bound = inspect.signature(helper).bind(*call.args, **{k.arg: k.value for k in call.keywords if k.arg})
    except (OSError, TypeError, SyntaxError, IndexError, ValueError):
        return None
    if not isinstance(fdef, ast.FunctionDef) or any(isinstance(a, ast.Starred) for a in call.args):
        return None
    body = fdef.body[1:] if ast.get_docstring(fdef) is not None else fdef.body
    if len(body) != 1 or not isinstance(body[0], ast.Return) or body[0].value is None:
        return None
    bound.apply_defaults()
    values: dict[str, ast.expr] = {}
    for name, value in bound.arguments.items():
        if isinstance(value, ast.expr):
            values[name] = value
        elif value is None or isinstance(value, int | float | str):
            values[name] = ast.Constant(value)
        else:
            return None  # *args, **kwargs or a default that is not a plain constant

    return cast(ast.expr, _Substitute(values, depth=1).visit(body[0].value))


def _condition_matrix(check: Callable[[State], torch.Tensor], state: State) -> tuple[list[str], np.ndarray]:
    """(names, (C, T) bool) for one episode's states."""
    parts = split_conditions(check)
    values = parts[0][1](state)
    rows = [torch.as_tensor(v).to(torch.bool).expand(state.num_envs).cpu().numpy() for v in values]
    return [p[0] for p in parts], np.stack(rows)


# ---- failure analysis -----------------------------------------------------------------------
def _runs(mask: np.ndarray) -> int:
    """Length of the longest run of True in a 1-D bool array."""
    best = cur = 0
    for v in mask:
        cur = cur + 1 if v else 0
        best = max(best, cur)
    return best


def _floor_contacts(model: mujoco.MjModel, qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
    """(T, nbody) bool: which bodies touch a world geom (the floor) at each recorded step."""
    data = mujoco.MjData(model)
    out = np.zeros((len(qpos), model.nbody), dtype=bool)
    geom_body = model.geom_bodyid
    for t in range(len(qpos)):
        data.qpos[:], data.qvel[:] = qpos[t], qvel[t]
        mujoco.mj_forward(model, data)
        n = data.ncon
        if n == 0:
            continue
        b1, b2 = geom_body[data.contact.geom1[:n]], geom_body[data.contact.geom2[:n]]
        out[t, b2[b1 == 0]] = True
        out[t, b1[b2 == 0]] = True
    out[:, 0] = False
    return out


def analyze_rollouts(task: Task, data: dict[str, np.ndarray]) -> FailureAnalysis:
    """Failure analysis of exported rollouts (the `.npz` layout of evaluate.py)."""
    morph = get_morphology(task.morphology)
    model, layout = morph.model(), morph.layout()
    dt = float(data["dt"])
    lengths = data["lengths"].astype(int)
    episodes = len(lengths)
    reasons = [str(r) for r in data["end_reason"]]
    check = task.success_fn()
    root = layout.body_names.index(morph.root_body) + 1  # MuJoCo body id: 0 is the world
    fall_rule = f"{morph.root_body} on the floor while the success check failed"
    if task.termination == "unhealthy":
        fall_rule = f"episode ended by the healthy rule, or {fall_rule}"
    needed = 0.5 if task.success_rule == "half_of_steps" else 1.0 / task.episode_length
    cond_names: list[str] = []
    cond_fail = None
    contact_steps = np.zeros(model.nbody)
    contact_eps = np.zeros(model.nbody, dtype=int)
    contact_longest = np.zeros(model.nbody, dtype=int)
    fall_times: list[float] = []
    fractions, holds, cond_holds = [], [], []
    sat_counts = np.zeros(layout.num_actions)
    ctrl = np.array(layout.ctrl_range)
    span = ctrl[:, 1] - ctrl[:, 0]
    limited = [i for i, (lo, hi) in enumerate(layout.joint_range) if math.isfinite(lo) and math.isfinite(hi)]
    limit_counts = np.zeros(len(limited))
    total_steps = int(lengths.sum())
    for e, length in enumerate(lengths):
        qpos, qvel = data["qpos"][e, :length], data["qvel"][e, :length]
        state = states_from_qpos(morph.name, qpos, qvel)
        names, conds = _condition_matrix(check, state)
        if cond_fail is None:
            cond_names, cond_fail = names, np.zeros(len(names))
        cond_fail += (~conds).sum(axis=1)
        success = check(state).to(torch.bool).cpu().numpy()
        fractions.append(float(success.mean()))
        holds.append(_runs(success))
        cond_holds.append(conds.mean(axis=1))
        # floor contacts and falls
        touching = _floor_contacts(model, qpos, qvel)
        fallen = touching[:, root] & ~success
        fallen[-1] |= reasons[e] == "terminated"
        if fallen.any():
            fall_times.append((int(np.argmax(fallen)) + 1) * dt)
        contact_steps += touching.sum(axis=0)
        contact_eps += touching.any(axis=0)
        contact_longest = np.maximum(contact_longest, [_runs(touching[:, b]) for b in range(model.nbody)])
        # actions and joint limits
        actions = data["actions"][e, :length]
        sat = (actions <= ctrl[:, 0] + SATURATION_FRACTION * span) | (
            actions >= ctrl[:, 1] - SATURATION_FRACTION * span
        )
        sat_counts += sat.sum(axis=0)
        if limited:
            jpos = state.joint_pos[:, limited].cpu().numpy()
            rng = np.array([layout.joint_range[i] for i in limited])
            margin = LIMIT_FRACTION * (rng[:, 1] - rng[:, 0])
            limit_counts += ((jpos <= rng[:, 0] + margin) | (jpos >= rng[:, 1] - margin)).sum(axis=0)
    best = int(np.argmax(fractions))
    order = np.argsort(-(cond_fail if cond_fail is not None else np.zeros(0)))
    body_names = ("world", *layout.body_names)
    contacts = [
        BodyContact(
            body=body_names[b],
            step_fraction=float(contact_steps[b] / total_steps),
            episodes=int(contact_eps[b]),
            longest_s=float(contact_longest[b] * dt),
        )
        for b in np.argsort(-contact_steps)
        if contact_steps[b] > 0
    ]
    end_time = {
        r: float(np.median([lengths[i] * dt for i in range(episodes) if reasons[i] == r])) for r in sorted(set(reasons))
    }
    joint_names = [layout.joint_names[i] for i in limited]
    return FailureAnalysis(
        episodes=episodes,
        successes=int(sum(f >= needed for f in fractions)),
        success_rule=task.success_rule,
        end_reasons={r: reasons.count(r) for r in sorted(set(reasons))},
        end_time_s=end_time,
        falls=len(fall_times),
        fall_rule=fall_rule,
        fall_time_s=float(np.median(fall_times)) if fall_times else None,
        contacts=contacts,
        conditions=[
            ConditionStat(
                condition=cond_names[i],
                fail_fraction=float(cond_fail[i] / total_steps),  # type: ignore[index]  # order is empty while None
                best_episode_hold=float(cond_holds[best][i]),
            )
            for i in order
        ],
        action_saturation=float(sat_counts.sum() / (total_steps * layout.num_actions)),
        saturated_actuators=_top(layout.actuator_names, sat_counts / total_steps),
        joints_at_limit=float(limit_counts.sum() / max(total_steps * len(limited), 1)),
        limit_joints=_top(joint_names, limit_counts / total_steps),
        best_episode=best,
        best_success_fraction=fractions[best],
        needed_fraction=needed,
        best_longest_hold_s=holds[best] * dt,
    )


def _top(names: tuple[str, ...] | list[str], fractions: np.ndarray, k: int = 3) -> list[Ranked]:
    return [Ranked(name=names[i], fraction=float(fractions[i])) for i in np.argsort(-fractions)[:k] if fractions[i] > 0]


# ---- text ----------------------------------------------------------------------------------------
def _g(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}g}"


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def render_text(analysis: Analysis) -> str:
    """The compact text for the designer prompt and for people: numbers, one fact per line."""
    return "\n".join(x for x in (render_reflection(analysis), render_failures(analysis)) if x)


def render_reflection(analysis: Analysis) -> str:
    """Eureka's reward reflection: success and each reward component over training (empty without training)."""
    lines: list[str] = []
    r = analysis.reflection
    if r is not None and r.env_steps:
        sr = [x for x in r.success_rate if x is not None]
        lines.append(
            f"Training: {len(r.env_steps)} record points, {r.env_steps[0]:,} to {r.env_steps[-1]:,} env steps; "
            f"success rate {_g(sr[0] if sr else None, 2)} -> {_g(sr[-1] if sr else None, 2)} "
            f"(max {_g(max(sr) if sr else None, 2)}); episode length {_g(r.length_mean[0])} -> "
            f"{_g(r.length_mean[-1])}"
            + (
                f"; human return {_g(r.human_return[0])} -> {_g(r.human_return[-1])}"
                if r.human_return and r.human_return[-1] is not None
                else ""
            )
        )
        lines.append(
            "Reward components (episode sum at each record point; max, mean, min; share of |total| at the end):"
        )
        for c in r.components:
            tag = " FLAT" if c.flat else ""
            tag += " DOMINANT" if c.dominant else ""
            values = ", ".join(_g(v) for v in _thin(c.values))
            lines.append(
                f"  {c.name}: [{values}] max {_g(c.max)} mean {_g(c.mean)} min {_g(c.min)} "
                f"share {_pct(c.last_share)}{tag}"
            )
    elif r is not None:
        lines.append("Training: no episode finished at any record point.")
    return "\n".join(lines)


def render_failures(analysis: Analysis) -> str:
    """The trajectory analysis: how the evaluated episodes ended, falls, contacts, failing conditions."""
    lines: list[str] = []
    f = analysis.failure
    ends = ", ".join(f"{k} {v} (median {f.end_time_s[k]:.2f} s)" for k, v in f.end_reasons.items())
    lines.append(
        f"Evaluation: {f.episodes} episodes, deterministic policy; success {f.successes}/{f.episodes} "
        f"(check held on >= {_pct(f.needed_fraction)} of steps); ends: {ends}."
    )
    if analysis.eval_components:
        lines.append(
            "Evaluation reward components (mean episode sum): "
            + ", ".join(f"{k} {_g(v)}" for k, v in analysis.eval_components.items())
        )
    rule = f" (fall: {f.fall_rule})" if f.fall_rule else ""
    if f.falls:
        lines.append(f"Falls: {f.falls}/{f.episodes} episodes, first fall at median {f.fall_time_s:.2f} s{rule}.")
    else:
        lines.append(f"Falls: 0/{f.episodes} episodes{rule}.")
    if f.contacts:
        lines.append(
            "Floor contact (share of steps, episodes, longest): "
            + "; ".join(f"{c.body} {_pct(c.step_fraction)}, {c.episodes}, {c.longest_s:.1f} s" for c in f.contacts[:6])
        )
    if f.conditions:
        lines.append(
            "Success-check conditions, share of steps failing (held in best episode): "
            + "; ".join(f"`{c.condition}` {_pct(c.fail_fraction)} ({_pct(c.best_episode_hold)})" for c in f.conditions)
        )
    lines.append(
        f"Best episode #{f.best_episode}: check held on {_pct(f.best_success_fraction)} of steps "
        f"(needs {_pct(f.needed_fraction)}), longest hold {f.best_longest_hold_s:.2f} s."
    )
    lines.append(
        f"Action saturation: {_pct(f.action_saturation)} of actions at a ctrl limit"
        + (
            " (most: " + ", ".join(f"{a.name} {_pct(a.fraction)}" for a in f.saturated_actuators) + ")"
            if f.saturated_actuators
            else ""
        )
        + "."
    )
    lines.append(
        f"Joint limits: {_pct(f.joints_at_limit)} of joint-steps at a limit"
        + (
            " (most: " + ", ".join(f"{a.name} {_pct(a.fraction)}" for a in f.limit_joints) + ")"
            if f.limit_joints
            else ""
        )
        + "."
    )
    return "\n".join(lines)


def _thin(values: list[float], most: int = 10) -> list[float]:
    """At most `most` values, evenly spaced, always keeping the last (Eureka shows about 10 points)."""
    if len(values) <= most:
        return values
    idx = np.unique(np.linspace(0, len(values) - 1, most).round().astype(int))
    return [values[i] for i in idx]


# ---- entry point ---------------------------------------------------------------------------------
def analyze(
    run_dir: str | Path,
    *,
    episodes: int = 8,
    states: str | Path | None = None,
    backend: str = "cpu",
    device: str = "cpu",
) -> Analysis:
    """Analyze a run folder: training records + the evaluation export (evaluates first if there is none).

    backend, device: the physics of that evaluation (the run's own, so that a Warp run is judged on Warp);
    the analysis itself replays the exported states on native MuJoCo, whatever ran them."""
    from synth_reward.train.evaluate import read_manifest

    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    task = run_task(manifest)
    states_path = Path(states) if states else run_dir / EVAL_DIR / "states.npz"
    if not states_path.exists():
        result: EvalResult = evaluate(run_dir, episodes, backend=backend, device=device)
        states_path = Path(result.states_file or states_path)
    data = load_npz(states_path)
    records = read_records(run_dir)
    eval_json = states_path.parent / "eval.json"
    components: dict[str, float] = {}
    if eval_json.exists():
        episodes_ = EvalResult.model_validate_json(eval_json.read_text()).per_episode
        names = list(dict.fromkeys(k for e in episodes_ for k in e.components))
        components = {k: float(np.mean([e.components.get(k, 0.0) for e in episodes_])) for k in names}
    analysis = Analysis(
        task_id=task.id,
        run_dir=str(run_dir),
        reflection=reflect(records) if records else None,
        failure=analyze_rollouts(task, data),
        eval_components=components,
    )
    analysis.text = render_text(analysis)
    write_model(run_dir / ANALYSIS_JSON, analysis)
    write_text(run_dir / ANALYSIS_TEXT, analysis.text + "\n")
    return analysis


__all__ = [
    "Analysis",
    "FailureAnalysis",
    "Reflection",
    "analyze",
    "analyze_rollouts",
    "reflect",
    "render_text",
    "split_conditions",
]
