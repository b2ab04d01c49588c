"""Render a morphology's State description from the State class's own docstrings.

The text goes into the designer's prompt and `synth-reward envs NAME`; it lists every
name, shape, unit, frame and sign convention, and is never written by hand.
`state_api_markdown` renders the same docstrings as docs/state-api.md (written by
`python scripts/gen_state_api.py`; tests/test_docs.py checks that the file is current).
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import numpy as np
import yaml

from synth_reward.envs import morphology as _morphology
from synth_reward.envs.morphology import Morphology, get_morphology
from synth_reward.envs.state import RAW_FIELDS, Body, Joint, State

_NOT_FOR_REWARDS = ("index", "to", "raw")
"""Public State methods for library code; the sandbox does not let reward code call them."""
_ARGUMENTS = {"body": "name", "joint": "name", "raw": "field", "index": "indices", "to": "device"}
"""The argument each method takes, as its signature shows it."""


def _members(cls: type, prefix: str, names: tuple[str, ...] | None = None) -> list[tuple[str, str]]:
    """(signature, docstring) of each public documented member, by name; `names` picks others than the default."""
    out = []
    for name, member in inspect.getmembers(cls):
        if names is not None:
            if name not in names:
                continue
        elif name.startswith("_") or name in {*_NOT_FOR_REWARDS, "layout"}:
            continue
        doc = inspect.getdoc(member)
        if not doc:
            continue
        signature = f"{prefix}{name}({_ARGUMENTS[name]})" if name in _ARGUMENTS else f"{prefix}{name}"
        out.append((signature, doc))
    return out


def _doc_lines(cls: type, prefix: str) -> list[str]:
    return [f"  {signature:<28} {doc.splitlines()[0]}" for signature, doc in _members(cls, prefix)]


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


# ---- Markdown (docs/state-api.md) ------------------------------------------------------------


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _table(members: list[tuple[str, str]]) -> list[str]:
    """One row per member: its name, the shape its docstring starts with, and the rest (unit, frame, meaning)."""
    rows = ["| attribute | shape | unit, frame: meaning |", "|---|---|---|"]
    for signature, doc in members:
        match = re.match(r"^(\([^)]*\))\s+(.*)$", " ".join(doc.split()))
        shape, rest = (match.group(1), match.group(2)) if match else ("", doc)
        rows.append(f"| `{signature}` | {f'`{shape}`' if shape else ''} | {_cell(rest)} |")
    return rows


def _builtin_morphologies() -> list[Morphology]:
    """The morphologies of the package's morphologies.yaml, in file order (user files left out)."""
    registry = _morphology._REGISTRY_FILE
    entries = yaml.safe_load(Path(registry).read_text())
    return [Morphology(name=name, source_dir=str(registry.parent), **fields) for name, fields in entries.items()]


def _range(lo: float, hi: float, unit: str) -> str:
    return "unlimited" if not np.isfinite(lo) else f"{lo:.3g} to {hi:.3g} {unit}"


def _morphology_section(morph: Morphology) -> list[str]:
    layout = morph.layout()
    out = [
        f"### {morph.name}",
        "",
        f"{morph.description}".rstrip(),
        "",
        f"dt = {morph.dt:.4f} s ({morph.frame_skip} physics steps of {layout.timestep} s); "
        f"total mass {layout.total_mass:.2f} kg; floor at z = {layout.floor_height:g} m; "
        f"A = {layout.num_actions} actions; observation of {morph.obs_size()} numbers.",
        "",
        f"Bodies (B = {len(layout.body_names)}), in the order of the `body_*` tensors: "
        + ", ".join(f"`{name}`" for name in layout.body_names)
        + ".",
        "",
        f"Joints (J = {len(layout.joint_names)}), in the order of `joint_pos` / `joint_vel`:",
        "",
        "| joint | type | range |",
        "|---|---|---|",
    ]
    for name, kind, (lo, hi) in zip(layout.joint_names, layout.joint_types, layout.joint_range, strict=True):
        out.append(f"| `{name}` | {kind} | {_range(lo, hi, 'rad' if kind == 'hinge' else 'm')} |")
    out += [
        "",
        f"Actuators (A = {layout.num_actions}), in the order of `action` / `actuator_force`:",
        "",
        "| actuator | joint | ctrl range |",
        "|---|---|---|",
    ]
    for name, joint, (lo, hi) in zip(layout.actuator_names, layout.actuator_joint, layout.ctrl_range, strict=True):
        out.append(f"| `{name}` | `{joint}` | [{lo:g}, {hi:g}] |")
    return [*out, ""]


def state_api_markdown() -> str:
    """docs/state-api.md: every public State, body-view and joint-view attribute with its docstring, then the
    built-in morphologies' bodies, joints and actuators. Rendered from the code, never edited by hand."""
    module_doc = inspect.getdoc(__import__("synth_reward.envs.state", fromlist=["x"])) or ""
    intro, _, conventions = module_doc.partition("Conventions")
    out = [
        "# State API",
        "",
        "<!-- Generated from the docstrings of synth_reward/envs/state.py by `python scripts/gen_state_api.py`;",
        "     do not edit by hand. tests/test_docs.py fails when this file is out of date. -->",
        "",
        intro.strip(),
        "",
        "Reward code is `compute_reward(state, action) -> (reward (N,), {name: (N,)})` and a success check is",
        "`success(state) -> bool (N,)`; `action` is (N, A). Shapes use N = environments, B = bodies,",
        "J = joints, A = actuators; `()` is a plain Python value, the same for the whole batch.",
        "`synth-reward envs NAME` prints the same description for one robot as the LLM sees it.",
        "",
        "## Conventions",
        "",
        ("Conventions" + conventions).split("\n", 1)[1].strip() if conventions else "",
        "",
        "## `state`: the batched state",
        "",
        *_table(_members(State, "state.")),
        "",
        "## `b = state.body(name)`: one body",
        "",
        "Each field is (N, ...) like the batched field it is a slice of.",
        "",
        *_table(_members(Body, "b.")),
        "",
        "## `j = state.joint(name)`: one hinge or slide joint",
        "",
        *_table(_members(Joint, "j.")),
        "",
        "## For library code only",
        "",
        "These methods are public for Python code that uses synth-reward (analysis, adapters); the sandbox's",
        "static policy rejects them in reward code and success checks.",
        "",
        *_table(_members(State, "state.", names=_NOT_FOR_REWARDS)),
        "",
        "`raw(field)` takes one of: " + ", ".join(f"`{name}`" for name in RAW_FIELDS) + ".",
        "",
        "## Morphologies",
        "",
        "The built-in robots (synth_reward/envs/morphologies.yaml); a robot of your own gets the same API from its",
        "MJCF names (see docs/tasks.md).",
        "",
    ]
    for morph in _builtin_morphologies():
        out += _morphology_section(morph)
    return "\n".join(out).rstrip() + "\n"
