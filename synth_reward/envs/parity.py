"""Parity of the Warp backend with the CPU backend, and of the converted model with the original.

`backend_parity(morphology)` runs N worlds from Gymnasium's reset distribution for `steps`
control steps with the same uniformly random controls (seeded) on four backends:

- the CPU backend with the converted model (envs/warp_model.py): the reference;
- the Warp backend, loaded before every step with the reference's MuJoCo integration state
  (mjSTATE_INTEGRATION: qpos, qvel, act, warm start, ctrl..., the rows of a checkpoint), so
  that each step starts from the same state: its error is one control step's float32 error
  (`one_step`, what the tests bound);
- the Warp backend running freely from the same first state (`free_run`: the trajectories
  part as float32 rounding grows, fastest where contacts make the dynamics chaotic);
- the CPU backend with the original model, loaded with the reference's state before every step
  (`conversion`: what the conversion changes in one control step, in float64).

Errors are maxima of |a - b| over worlds, steps and entries, for qpos, qvel, body positions
(xpos, m) and contact forces (cfrc_ext, N and N m); `scale` is the reference's max |value|.
benchmarks/bench_warp.py prints them; tests/test_warp.py bounds them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from synth_reward.envs.backend import PhysicsBackend
from synth_reward.envs.cpu import CpuBackend
from synth_reward.envs.morphology import get_morphology
from synth_reward.envs.warp_model import warp_model

FIELDS = ("qpos", "qvel", "xpos", "cfrc_ext")
"""The compared mjData fields."""
TOLERANCE = 1e-3
"""The float32 tolerance of `one_step`: each field's max abs error at most TOLERANCE times the reference's max
|value| of that field (float32's epsilon is 1.2e-7; measured, the worst is 5e-5: docs/warp.md)."""


@dataclass
class Parity:
    """Max absolute errors per field (FIELDS) of one morphology's comparison (module docstring)."""

    morphology: str
    envs: int
    steps: int
    changes: tuple[str, ...]
    one_step: dict[str, float] = field(default_factory=dict)
    free_run: dict[str, float] = field(default_factory=dict)
    conversion: dict[str, float] = field(default_factory=dict)
    scale: dict[str, float] = field(default_factory=dict)
    unstable: int = 0
    """worlds the Warp backend reported as blown up (0 expected)."""

    def worst(self) -> float:
        """The largest `one_step` error as a fraction of its field's scale (at most TOLERANCE passes)."""
        return max(self.one_step[f] / max(self.scale[f], 1e-12) for f in FIELDS)


def _update(errors: dict[str, float], a: PhysicsBackend, b: PhysicsBackend) -> None:
    sa, sb = a.snapshot(torch.float64), b.snapshot(torch.float64)
    for f in FIELDS:
        error = float((sa[f].cpu() - sb[f].cpu()).abs().max())
        errors[f] = max(errors.get(f, 0.0), error)


def backend_parity(
    morphology: str,
    *,
    envs: int = 8,
    steps: int = 100,
    seed: int = 0,
    device: str = "cpu",
    elliptic_cones: bool | None = None,
    free_run: bool = True,
    conversion: bool = True,
) -> Parity:
    """Compare the backends on one morphology (module docstring); Warp on `device`.

    elliptic_cones: override the morphology's `warp.elliptic_cones` (None: as shipped). free_run, conversion:
    also run those comparisons (False: `one_step` only, half the work)."""
    from synth_reward.envs.warp import WarpBackend

    morph = get_morphology(morphology)
    if elliptic_cones is not None:
        morph = morph.model_copy(update={"warp": morph.warp.model_copy(update={"elliptic_cones": elliptic_cones})})
    converted = warp_model(morph)
    model, skip = converted.model, morph.frame_skip
    reference = CpuBackend(model, envs, skip, 1)
    one = WarpBackend(converted, envs, skip, device)
    original = CpuBackend(morph.model(), envs, skip, 1) if conversion else None
    free = WarpBackend(converted, envs, skip, device) if free_run else None
    rng = np.random.default_rng(seed)
    noise = morph.reset_noise_scale
    qpos = model.qpos0 + rng.uniform(-noise, noise, (envs, model.nq))
    if morph.reset_qvel_noise == "normal":
        qvel = noise * rng.standard_normal((envs, model.nv))
    else:
        qvel = rng.uniform(-noise, noise, (envs, model.nv))
    ids = np.arange(envs)
    reference.set_state(ids, qpos, qvel)
    if free is not None:
        free.load_state_dict(reference.state_dict())
    low, high = model.actuator_ctrlrange.T
    result = Parity(morph.name, envs, steps, converted.changes)
    backends = [b for b in (reference, original, one, free) if b is not None]
    try:
        for _ in range(steps):
            ctrl = torch.from_numpy(low + (high - low) * rng.random((envs, model.nu)))
            state = reference.state_dict()
            one.load_state_dict(state)
            if original is not None:
                original.load_state_dict(state)
            for backend in backends:
                backend.step(ctrl)
            _update(result.one_step, reference, one)
            if free is not None:
                _update(result.free_run, reference, free)
            if original is not None:
                _update(result.conversion, reference, original)
            snap = reference.snapshot(torch.float64)
            for f in FIELDS:
                result.scale[f] = max(result.scale.get(f, 0.0), float(snap[f].abs().max()))
            result.unstable += int(one.unstable().sum())
    finally:
        for backend in backends:
            backend.close()
    return result
