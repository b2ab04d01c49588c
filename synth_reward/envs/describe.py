"""Render a morphology's State description from the State class's own docstrings.

The text goes into the designer's prompt and `synth-reward envs NAME`; it lists every
name, shape, unit, frame and sign convention, and is never written by hand.
"""

from __future__ import annotations

import inspect

import numpy as np

from synth_reward.envs.morphology import Morphology, get_morphology
from synth_reward.envs.state import Body, Joint, State


def _doc_lines(cls: type, prefix: str) -> list[str]:
    lines = []
    for name, member in inspect.getmembers(cls):
        if name.startswith("_") or name in {"index", "to", "raw", "layout"}:
            continue
        doc = inspect.getdoc(member)
        if not doc:
            continue
        signature = f"{prefix}{name}(name)" if name in {"body", "joint"} else f"{prefix}{name}"
        lines.append(f"  {signature:<28} {doc.splitlines()[0]}")
    return lines


def _conventions() -> str:
    doc = inspect.getdoc(__import__("synth_reward.envs.state", fromlist=["x"])) or ""
    start = doc.find("Conventions")
    return doc[start:] if start >= 0 else ""


def describe_state(morphology: str | Morphology) -> str:
    """The State API for one morphology: fields with shape/unit/frame, then its bodies, joints, actuators."""
    morph = get_morphology(morphology)
    layout = morph.layout()
    out = [
        f"Morphology {morph.name}: {morph.description}".rstrip(),
        f"Control period dt = {morph.dt:.4f} s ({morph.frame_skip} physics steps of {layout.timestep} s); "
        f"total mass {layout.total_mass:.2f} kg; floor at z = {layout.floor_height:g} m.",
        "",
        "Reward code receives `state` (batched over N environments, torch float32 tensors) and `action` "
        f"(N, {layout.num_actions}) in [-1, 1]-like actuator units (clamped by MuJoCo to each ctrl range).",
        "Shapes use N = environments, B = bodies, J = joints, A = actuators. Fields of `state`:",
        *_doc_lines(State, "state."),
        "",
        "Fields of a body view `b = state.body(name)` (each (N, ...) like the batched field):",
        *_doc_lines(Body, "b."),
        "",
        "Fields of a joint view `j = state.joint(name)`:",
        *_doc_lines(Joint, "j."),
        "",
        _conventions(),
        "",
        f"Bodies (B = {len(layout.body_names)}), in order:",
        "  " + ", ".join(layout.body_names),
        f"Joints (J = {len(layout.joint_names)}), name [type, range]:",
    ]
    for name, kind, (lo, hi) in zip(layout.joint_names, layout.joint_types, layout.joint_range, strict=True):
        unit = "rad" if kind == "hinge" else "m"
        rng = "unlimited" if not np.isfinite(lo) else f"{lo:.3g} to {hi:.3g} {unit}"
        out.append(f"  {name} [{kind}, {rng}]")
    out.append(f"Actuators (A = {layout.num_actions}), name -> joint [ctrl range]:")
    for name, joint, (lo, hi) in zip(layout.actuator_names, layout.actuator_joint, layout.ctrl_range, strict=True):
        out.append(f"  {name} -> {joint} [{lo:g}, {hi:g}]")
    return "\n".join(out)
