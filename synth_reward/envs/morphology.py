"""Morphologies: the robots, loaded from MJCF, with Gymnasium's v5 settings.

A `Morphology` is an MJCF file plus a few lines of config (morphologies.yaml). Its
`layout()` holds every name and index the State API needs, read from the compiled model,
so nothing about a robot is written by hand anywhere else.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, cast

import mujoco
import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from synth_reward.errors import UsageError

_REGISTRY_FILE = Path(__file__).with_name("morphologies.yaml")
ObsExtra = Literal["cinert", "cvel", "qfrc_actuator", "cfrc_ext"]


class Layout(BaseModel):
    """Names and indices of one compiled model: what the State API resolves names with."""

    model_config = ConfigDict(frozen=True)

    body_names: tuple[str, ...]
    """Bodies in MuJoCo order, without the world body (index 0 in MuJoCo)."""
    joint_names: tuple[str, ...]
    """One-degree-of-freedom joints (hinge, slide) in MuJoCo order; free joints are read through the root body."""
    joint_types: tuple[Literal["hinge", "slide"], ...]
    joint_qpos_index: tuple[int, ...]
    joint_dof_index: tuple[int, ...]
    joint_range: tuple[tuple[float, float], ...]
    """(low, high) per joint, rad or m; (-inf, inf) where the joint is unlimited."""
    actuator_names: tuple[str, ...]
    actuator_joint: tuple[str, ...]
    """The joint each actuator drives."""
    ctrl_range: tuple[tuple[float, float], ...]
    body_mass: tuple[float, ...]
    body_root: tuple[int, ...]
    """Per body, the MuJoCo id of the root of its kinematic tree (for cvel's reference point)."""
    floor_height: float
    nq: int
    nv: int
    timestep: float

    @property
    def num_actions(self) -> int:
        return len(self.actuator_names)

    @functools.cached_property
    def body_index(self) -> dict[str, int]:
        """Body name -> index in body_names (State looks names up here on every step)."""
        return {name: i for i, name in enumerate(self.body_names)}

    @functools.cached_property
    def joint_index(self) -> dict[str, int]:
        """Joint name -> index in joint_names."""
        return {name: i for i, name in enumerate(self.joint_names)}

    @property
    def total_mass(self) -> float:
        return float(sum(self.body_mass))


class WarpSettings(BaseModel):
    """MuJoCo Warp's buffer sizes for one morphology (envs/warp_model.py); None: measured when first needed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    nconmax: int | None = Field(default=None, ge=1)
    """contacts per world; the Warp backend allocates a pool of nconmax * N shared by all worlds."""
    njmax: int | None = Field(default=None, ge=1)
    """constraint rows per world: no world can hold more (the Warp backend stops with an error that names this)."""
    elliptic_cones: bool = False
    """make pyramidal friction cones elliptic for the Warp backend, where MuJoCo Warp's contact axes differ from
    MuJoCo's (3D robots; envs/warp_model.py says why)."""
    note: str = ""
    """What the Warp backend changes in this robot's model and why (documentation; envs/warp_model.py does it)."""


class Morphology(BaseModel):
    """One robot: its MJCF file and Gymnasium's v5 settings for it."""

    model_config = ConfigDict(frozen=True)

    name: str
    mjcf: str
    """Path to the MJCF file, or gymnasium:<file> for the files Gymnasium ships."""
    gym_id: str | None = None
    """Gymnasium's env id for the same robot, if any (for parity tests and baselines)."""
    frame_skip: int = Field(ge=1)
    """Physics steps per control step; control period dt = timestep * frame_skip."""
    reset_noise_scale: float = Field(ge=0)
    reset_qvel_noise: Literal["uniform", "normal"] = "uniform"
    """Gymnasium adds uniform noise to qpos, and uniform or normal noise to qvel."""
    root_body: str
    """The body that carries the root joint (torso)."""
    obs_skip_qpos: int = 0
    """Leading qpos entries left out of the observation (Gymnasium excludes the x, y position)."""
    obs_qvel_clip: float | None = None
    obs_extras: tuple[ObsExtra, ...] = ()
    """Extra mjData fields (world body excluded) appended to the observation, in this order."""
    obs_cfrc_clip: float | None = None
    healthy: dict[str, list[float] | float | bool] = Field(default_factory=dict)
    """Gymnasium's is_healthy rule: root_z range, ranges of named joints, state_abs_below, finite."""
    description: str = ""
    warp: WarpSettings = WarpSettings()
    """Sizes for the MuJoCo Warp backend (the GPU backend); the CPU backend ignores them."""
    source_dir: str = ""
    """Folder a relative mjcf path is resolved against."""

    @property
    def source(self) -> str:
        return self.mjcf

    @property
    def mjcf_path(self) -> Path:
        if self.mjcf.startswith("gymnasium:"):
            import gymnasium.envs.mujoco as gym_mujoco

            return Path(gym_mujoco.__file__).parent / "assets" / self.mjcf.split(":", 1)[1]
        path = Path(os.path.expanduser(self.mjcf))
        return path if path.is_absolute() else Path(self.source_dir) / path

    def model(self) -> mujoco.MjModel:
        """The compiled model (cached per morphology; MjModel is read-only during stepping)."""
        return _compile(self.mjcf_path)

    def layout(self) -> Layout:
        return _layout(self.mjcf_path, self.root_body, self.name)

    @property
    def dt(self) -> float:
        return cast(float, self.model().opt.timestep * self.frame_skip)  # mujoco is untyped

    def obs_size(self) -> int:
        m = self.model()
        sizes = {
            "cinert": 10 * (m.nbody - 1),
            "cvel": 6 * (m.nbody - 1),
            "qfrc_actuator": m.nv - 6,
            "cfrc_ext": 6 * (m.nbody - 1),
        }
        return cast(int, m.nq - self.obs_skip_qpos + m.nv + sum(sizes[e] for e in self.obs_extras))


@functools.cache
def _compile(path: Path) -> mujoco.MjModel:
    if not path.is_file():
        raise UsageError(f"MJCF file not found: {path}")
    try:
        text = path.read_text()
        total_mass = re.search(r'settotalmass="([^"]+)"', text)
        if total_mass is None:
            return mujoco.MjModel.from_xml_path(str(path))
        # MuJoCo deprecates the settotalmass attribute and logs a warning to MUJOCO_LOG.TXT in the
        # working folder; do exactly what it suggests instead (same model, tested against Gymnasium).
        model = mujoco.MjModel.from_xml_string(text.replace(total_mass.group(0), ""), _assets(path.parent))
        data = mujoco.MjData(model)
        mujoco.mj_setTotalmass(model, float(total_mass.group(1)))
        mujoco.mj_setConst(model, data)
        return model
    except ValueError as exc:  # mujoco reports compile errors as ValueError
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unknown error"
        raise UsageError(f"MJCF file {path} does not compile: {first}") from None


def _assets(folder: Path) -> dict[str, bytes]:
    """Files beside an MJCF (meshes, includes), for compiling it from a string."""
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and p.suffix != ".xml"}


@functools.cache
def _layout(path: Path, root_body: str, morph_name: str) -> Layout:
    m = _compile(path)
    name: Callable[[Any, int], str] = lambda kind, i: mujoco.mj_id2name(m, kind, i) or f"{kind.name.lower()}{i}"  # noqa: E731
    hinge, slide = int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE)
    one_dof = [j for j in range(m.njnt) if int(m.jnt_type[j]) in (hinge, slide)]
    ranges = [
        (float(m.jnt_range[j, 0]), float(m.jnt_range[j, 1])) if m.jnt_limited[j] else (-np.inf, np.inf) for j in one_dof
    ]
    planes = [
        g for g in range(m.ngeom) if int(m.geom_type[g]) == int(mujoco.mjtGeom.mjGEOM_PLANE) and m.geom_bodyid[g] == 0
    ]
    body_names = tuple(_body_name(m, b) for b in range(1, m.nbody))
    if root_body not in body_names:
        raise UsageError(
            f"morphology {morph_name}: root_body {root_body!r} is not a body; bodies: {', '.join(body_names)}"
        )
    return Layout(
        body_names=body_names,
        joint_names=tuple(name(mujoco.mjtObj.mjOBJ_JOINT, j) for j in one_dof),
        joint_types=tuple("hinge" if int(m.jnt_type[j]) == hinge else "slide" for j in one_dof),
        joint_qpos_index=tuple(int(m.jnt_qposadr[j]) for j in one_dof),
        joint_dof_index=tuple(int(m.jnt_dofadr[j]) for j in one_dof),
        joint_range=tuple(ranges),
        actuator_names=tuple(name(mujoco.mjtObj.mjOBJ_ACTUATOR, a) for a in range(m.nu)),
        actuator_joint=tuple(name(mujoco.mjtObj.mjOBJ_JOINT, int(m.actuator_trnid[a, 0])) for a in range(m.nu)),
        ctrl_range=tuple((float(lo), float(hi)) for lo, hi in m.actuator_ctrlrange),
        body_mass=tuple(float(x) for x in m.body_mass[1:]),
        body_root=tuple(int(x) for x in m.body_rootid),
        floor_height=float(m.geom_pos[planes[0], 2]) if planes else 0.0,
        nq=m.nq,
        nv=m.nv,
        timestep=float(m.opt.timestep),
    )


def _body_name(m: mujoco.MjModel, b: int) -> str:
    """The MJCF name; for an unnamed body its first named geom (ant's lower legs), else parent_child."""
    given: str | None = mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_BODY, b)
    if given:
        return given
    for g in range(m.ngeom):
        geom: str | None = mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_GEOM, g)
        if m.geom_bodyid[g] == b and geom:
            return geom.removesuffix("_geom")
    return f"{_body_name(m, int(m.body_parentid[b]))}_child"


_MORPHOLOGIES: dict[str, Morphology] = {}


def register_morphology(morph: Morphology) -> Morphology:
    """Add (or replace) a morphology; it compiles on first use."""
    _MORPHOLOGIES[morph.name] = morph
    return morph


def load_morphologies(path: Path) -> list[Morphology]:
    """Register every morphology in a YAML file (same format as morphologies.yaml)."""
    try:
        entries = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as exc:
        raise UsageError(f"cannot read morphology file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"morphology file {path} is not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(entries, dict):
        raise UsageError(f"morphology file {path} must map names to settings (see synth_reward/envs/morphologies.yaml)")
    out = []
    for name, fields in entries.items():
        try:
            out.append(register_morphology(Morphology(name=name, source_dir=str(Path(path).parent), **fields)))
        except (ValidationError, TypeError) as exc:
            detail = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            where = ".".join(str(x) for x in exc.errors()[0]["loc"]) + ": " if isinstance(exc, ValidationError) else ""
            raise UsageError(f"morphology {name!r} in {path}: {where}{detail}") from None
    return out


def _ensure_builtin() -> None:
    """Load the built-in registry, then any files named in SYNTH_REWARD_MORPHOLOGIES (os.pathsep-separated)."""
    if not _MORPHOLOGIES:
        load_morphologies(_REGISTRY_FILE)
        for extra in filter(None, os.environ.get("SYNTH_REWARD_MORPHOLOGIES", "").split(os.pathsep)):
            load_morphologies(Path(extra))


def list_morphologies() -> list[Morphology]:
    _ensure_builtin()
    return list(_MORPHOLOGIES.values())


def get_morphology(name: str | Morphology) -> Morphology:
    """Look a morphology up by name; unknown names raise a UsageError listing the valid ones."""
    if isinstance(name, Morphology):
        return name
    _ensure_builtin()
    if name not in _MORPHOLOGIES:
        raise UsageError(f"unknown morphology {name!r}; choose one of: {', '.join(_MORPHOLOGIES)}")
    return _MORPHOLOGIES[name]
