"""Hand-made poses and probe states, built with real MuJoCo.

`pose_qpos` turns a few named joint angles and a root orientation into a full qpos that
rests on the floor (its lowest geom touching the plane). Tests use the poses to check
the State API and every success check; the sandbox uses `probe_states` to run untrusted
reward code on standing, fallen, extreme and zero states before any training.
"""

from __future__ import annotations

import math
from typing import Any

import mujoco
import numpy as np
import torch

from synth_reward.envs.morphology import Morphology, get_morphology
from synth_reward.envs.state import State

# Named poses: joint angles in degrees (hinge) or metres (slide), root Euler angles in degrees.
POSES: dict[str, dict[str, dict[str, Any]]] = {
    "humanoid": {
        "standing": {"joints": {}},
        "kneeling": {"joints": {"right_knee": -90, "left_knee": -90}},
        "sitting": {"joints": {"right_hip_y": -90, "left_hip_y": -90, "right_knee": -2, "left_knee": -2}},
        "lying_back": {"joints": {}, "root": (0, -90, 0)},
        "lying_front": {"joints": {}, "root": (0, 90, 0)},
        "one_leg": {"joints": {"right_hip_y": -90, "right_knee": -90}},
        "arms_up": {
            "joints": {
                "right_shoulder1": -85,
                "right_shoulder2": 60,
                "left_shoulder1": 85,
                "left_shoulder2": -60,
            }
        },
        "splits": {
            "joints": {"right_hip_y": -100, "left_hip_y": 20, "right_knee": -2, "left_knee": -2},
            "root": (0, 40, 0),
        },
        "crouching": {
            "joints": {
                "right_hip_y": -100,
                "left_hip_y": -100,
                "right_knee": -130,
                "left_knee": -130,
            },
            "root": (0, 25, 0),
        },
    },
    "ant": {
        "standing": {"joints": {"ankle_1": 60, "ankle_2": -60, "ankle_3": -60, "ankle_4": 60}},
        "lying": {"joints": {"ankle_1": 30, "ankle_2": -30, "ankle_3": -30, "ankle_4": 30}},
        "one_leg_up": {"joints": {"ankle_1": 60, "ankle_2": -60, "ankle_3": -30, "ankle_4": 60}},
    },
}


def _euler_quat(roll: float, pitch: float, yaw: float) -> np.ndarray:
    quat = np.zeros(4)
    mujoco.mju_euler2Quat(quat, np.radians([roll, pitch, yaw]), "xyz")
    return quat


def _lowest_point(m: mujoco.MjModel, d: mujoco.MjData) -> float:
    """Lowest z over the robot's geoms (exact for spheres, capsules, boxes, cylinders, ellipsoids)."""
    low = math.inf
    for g in range(m.ngeom):
        if m.geom_bodyid[g] == 0:
            continue
        size, rot, kind = m.geom_size[g], d.geom_xmat[g].reshape(3, 3), int(m.geom_type[g])
        zrow = np.abs(rot[2])
        if kind == mujoco.mjtGeom.mjGEOM_SPHERE:
            extent = size[0]
        elif kind == mujoco.mjtGeom.mjGEOM_CAPSULE:
            extent = size[1] * zrow[2] + size[0]
        elif kind == mujoco.mjtGeom.mjGEOM_CYLINDER:
            extent = size[1] * zrow[2] + size[0] * math.sqrt(max(0.0, 1 - zrow[2] ** 2))
        elif kind in (mujoco.mjtGeom.mjGEOM_BOX, mujoco.mjtGeom.mjGEOM_ELLIPSOID):
            extent = float(zrow @ size)
        else:
            extent = m.geom_rbound[g]
        low = min(low, d.geom_xpos[g, 2] - extent)
    return low


def pose_qpos(
    morphology: str | Morphology,
    joints: dict[str, float],
    root: tuple[float, float, float] = (0, 0, 0),
    sink: float = 0.0,
) -> np.ndarray:
    """A qpos with the given joint angles (deg / m) and root Euler angles (deg), resting on the floor.

    The root is lowered or raised until the lowest geom touches the floor, then sunk by
    `sink` metres (a little penetration makes contact forces appear in a static pose).
    """
    morph = get_morphology(morphology)
    m = morph.model()
    d = mujoco.MjData(m)
    qpos: np.ndarray = m.qpos0.copy()
    for name, value in joints.items():
        j = m.joint(name)
        qpos[j.qposadr[0]] = math.radians(value) if int(j.type[0]) == mujoco.mjtJoint.mjJNT_HINGE else value
    free = [j for j in range(m.njnt) if int(m.jnt_type[j]) == mujoco.mjtJoint.mjJNT_FREE]
    if free:
        adr = m.jnt_qposadr[free[0]]
        qpos[adr + 3 : adr + 7] = _euler_quat(*root)
        height_index = adr + 2
    else:
        height_index = m.joint("rootz").qposadr[0] if "rootz" in morph.layout().joint_names else None
    d.qpos[:] = qpos
    mujoco.mj_forward(m, d)
    if height_index is not None:
        qpos[height_index] += morph.layout().floor_height - _lowest_point(m, d) - sink
    return qpos


def pose_state(
    morphology: str | Morphology,
    name: str,
    num_envs: int = 1,
    qvel_scale: float = 0.0,
    seed: int = 0,
) -> State:
    """The State of a named pose (see POSES), replicated over num_envs, optional random velocities."""
    morph = get_morphology(morphology)
    poses = POSES.get(morph.name, {"standing": {"joints": {}}})
    if name not in poses:
        raise KeyError(f"no pose {name!r} for {morph.name}; poses: {', '.join(poses)}")
    qpos = pose_qpos(morph, **poses[name])
    rng = np.random.default_rng(seed)
    qvel = qvel_scale * rng.standard_normal((num_envs, morph.layout().nv))
    return _state_of(morph, np.tile(qpos, (num_envs, 1)), qvel)


def _state_of(morph: Morphology, qpos: np.ndarray, qvel: np.ndarray) -> State:
    from synth_reward.envs.batched import BatchedEnv

    with BatchedEnv(morph, len(qpos), num_threads=1) as env:
        env.set_state(qpos, qvel)
        return env.state


def probe_states(morphology: str | Morphology, num_envs: int, seed: int = 0) -> dict[str, State]:
    """Named edge-case and recorded states for vetting untrusted code, N = num_envs each.

    standing, fallen, every named pose of the morphology, zeros (all-zero qpos and qvel,
    the robot half inside the floor), extreme_velocity (|qvel| up to 100), random (joint
    angles uniform in their ranges) and rollout (after 30 random-action steps).
    """
    from synth_reward.envs.batched import BatchedEnv

    morph = get_morphology(morphology)
    layout = morph.layout()
    rng = np.random.default_rng(seed)
    n, nq, nv = num_envs, layout.nq, layout.nv
    standing = pose_qpos(morph, **POSES.get(morph.name, {}).get("standing", {"joints": {}}))
    fallen_root = (0, 90, 0)
    fallen = pose_qpos(morph, {}, root=fallen_root) if morph.layout().nq >= 7 and _has_free_root(morph) else standing
    out: dict[str, State] = {
        "standing": _state_of(morph, np.tile(standing, (n, 1)), 0.01 * rng.standard_normal((n, nv))),
        "fallen": _state_of(morph, np.tile(fallen, (n, 1)), 0.01 * rng.standard_normal((n, nv))),
    }
    for name in POSES.get(morph.name, {}):
        if name != "standing":
            out[name] = pose_state(morph, name, n, qvel_scale=0.01, seed=seed)
    zeros = np.zeros((n, nq))
    if _has_free_root(morph):
        zeros[:, 3] = 1.0  # a unit quaternion; an all-zero one is not a rotation
    out["zeros"] = _state_of(morph, zeros, np.zeros((n, nv)))
    out["extreme_velocity"] = _state_of(morph, np.tile(standing, (n, 1)), rng.uniform(-100, 100, (n, nv)))
    random_q = np.tile(standing, (n, 1))
    for qi, (lo, hi) in zip(layout.joint_qpos_index, layout.joint_range, strict=True):
        if np.isfinite(lo):
            random_q[:, qi] = rng.uniform(lo, hi, n)
    out["random"] = _state_of(morph, random_q, rng.standard_normal((n, nv)))
    with BatchedEnv(morph, n, seed=seed, num_threads=1) as env:
        gen = torch.Generator().manual_seed(seed)
        for _ in range(30):
            env.step(torch.rand(n, env.num_actions, generator=gen) * 2 - 1)
        out["rollout"] = env.state
    return out


def _has_free_root(morph: Morphology) -> bool:
    m = morph.model()
    return any(int(m.jnt_type[j]) == mujoco.mjtJoint.mjJNT_FREE for j in range(m.njnt))
