"""A morphology's model as MuJoCo Warp runs it: the conversion at load and the Warp buffer sizes.

This module does not import Warp: the CPU backend runs the same converted model as the
reference for the Warp backend's parity (benchmarks/bench_warp.py, tests/test_warp.py), and
the sizes are plain numbers.

**Conversion.** Gymnasium's MJCF files use one feature MuJoCo Warp 4.0 does not run: the
PGS solver (humanoid.xml; `mujoco_warp.put_model` raises "mjSOL_PGS is unsupported"). Every
other option of the five built-in models (RK4 and Euler integrators, pyramidal cones, condim
1 and 3, fixed tendons, plane/sphere/capsule geoms, dense Jacobians) loads as it is. PGS
becomes **Newton**, not CG: Newton is MuJoCo's default and the solver of the other four
Gymnasium models, converges in a few iterations where CG needs many (each iteration costs a
pass of the whole batch on a GPU), and it is the solver MuJoCo Warp's own humanoid
benchmark runs. Iteration counts and tolerances stay those of the MJCF.

Pyramidal friction cones run, but not always as MuJoCo runs them: MuJoCo Warp picks other
tangent axes for some contacts of 3D robots (capsule-plane: MuJoCo takes them from the
capsule's axis), and a pyramid's facets follow the axes. From the same state the contact
forces then differ by up to half (ant: one efc_force 5.9 N on the CPU, 3.0 N on Warp), and
one control step later qvel by up to 1.9 rad/s (ant) and 0.57 (humanoid) where the planar
robots agree to float32 rounding (2e-6 to 4e-3). With elliptic cones on both backends the
same ant steps agree to 2e-5: an elliptic cone is the same about any axes. So ant and
humanoid set `warp: {elliptic_cones: true}` (morphologies.yaml) and run elliptic cones on
the Warp backend; hopper, walker2d and half_cheetah keep Gymnasium's pyramid. Then every
difference between the backends is either a change listed here, measured on the CPU
backend (docs/warp.md, "Model conversion"), or float32 rounding.

**Sizes.** MuJoCo Warp allocates its contact and constraint buffers once: `nconmax`
contacts per world (a pool of nconmax * N shared by all worlds, so one world may hold more
than nconmax) and `njmax` constraint rows per world (a hard limit of each world). The
built-in morphologies set both in morphologies.yaml (`warp:`) from contact counts measured
by `measure_constraints` with three times headroom; a morphology without them gets the same
measurement at load. An overflow is never truncated silently: the Warp backend raises an
error that names the setting (warp.py).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import mujoco
import numpy as np

from synth_reward.envs.morphology import Morphology, get_morphology

HEADROOM = 3
"""Sizes are the measured maximum times this, rounded up to a multiple of 8."""


@dataclass(frozen=True)
class WarpModel:
    """A morphology's model converted for MuJoCo Warp, what was changed, and the Warp buffer sizes."""

    model: mujoco.MjModel
    """A converted copy (the morphology's own compiled model is left as it is)."""
    changes: tuple[str, ...]
    """One line per change, e.g. "solver PGS -> Newton (MuJoCo Warp has no PGS)"; empty: none."""
    nconmax: int
    """contacts per world (the pool is nconmax * N)."""
    njmax: int
    """constraint rows per world (a hard limit per world)."""


def converted_model(model: mujoco.MjModel, elliptic_cones: bool = False) -> tuple[mujoco.MjModel, tuple[str, ...]]:
    """A copy of `model` with the options MuJoCo Warp cannot run (or runs differently) replaced; one line per change."""
    out = copy.deepcopy(model)
    changes = []
    if out.opt.solver == mujoco.mjtSolver.mjSOL_PGS:
        out.opt.solver = mujoco.mjtSolver.mjSOL_NEWTON
        changes.append("solver PGS -> Newton (MuJoCo Warp has no PGS; iterations and tolerance kept)")
    if elliptic_cones and out.opt.cone == mujoco.mjtCone.mjCONE_PYRAMIDAL:
        out.opt.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
        changes.append(
            "friction cone pyramidal -> elliptic (MuJoCo Warp orients the tangent axes of some 3D contacts, "
            "e.g. capsule-plane, differently from MuJoCo; a pyramid follows the axes, an elliptic cone does not)"
        )
    return out, tuple(changes)


def warp_model(morphology: str | Morphology) -> WarpModel:
    """The converted model of a morphology and its Warp sizes (measured here when morphologies.yaml has none)."""
    morph = get_morphology(morphology)
    key = morph.model_dump_json()  # (a Morphology is not hashable; a replaced registration is a new key)
    if key not in _CACHE:
        _CACHE[key] = _convert(morph)
    return _CACHE[key]


_CACHE: dict[str, WarpModel] = {}


def _convert(morph: Morphology) -> WarpModel:
    model, changes = converted_model(morph.model(), morph.warp.elliptic_cones)
    nconmax, njmax = morph.warp.nconmax, morph.warp.njmax
    if nconmax is None or njmax is None:
        ncon, nefc = measure_constraints(model, morph.frame_skip, morph.reset_noise_scale)
        nconmax = nconmax or sized(ncon)
        njmax = njmax or sized(nefc)
    return WarpModel(model, changes, nconmax, njmax)


def sized(measured: int) -> int:
    """HEADROOM times a measured maximum, rounded up to a multiple of 8 (at least 8)."""
    return max(8, 8 * math.ceil(HEADROOM * measured / 8))


def measure_constraints(
    model: mujoco.MjModel, frame_skip: int, noise: float, *, envs: int = 8, steps: int = 1000, seed: int = 0
) -> tuple[int, int]:
    """(max contacts, max constraint rows) of any world over `envs` episodes of random control on the CPU.

    Half the episodes draw each control uniformly in its range, half at the range's ends (bang-bang),
    with no early ending, so the robots fall and lie on the floor, where contacts are most. One MjData per
    episode, reset with the morphology's uniform qpos noise; every physics step is counted.
    """
    rng = np.random.default_rng(seed)
    low, high = model.actuator_ctrlrange.T
    max_con = max_efc = 0
    for episode in range(envs):
        data = mujoco.MjData(model)
        data.qpos[:] = model.qpos0 + rng.uniform(-noise, noise, model.nq)
        for _ in range(steps):
            if episode % 2:
                data.ctrl[:] = rng.uniform(low, high)
            else:
                data.ctrl[:] = np.where(rng.random(model.nu) < 0.5, low, high)
            for _ in range(frame_skip):
                mujoco.mj_step(model, data)
                max_con, max_efc = max(max_con, data.ncon), max(max_efc, data.nefc)
    return max_con, max_efc
