"""CPU physics backend: N native MuJoCo envs on MuJoCo's own batch thread pool.

MuJoCo 4's batch API (mjbatch.py) keeps every env's integration state in a row, steps
the envs on a C++ thread pool that claims them as it goes (the calling thread is one of
its threads; no Python runs per env and the GIL is released), and copies the derived
mjData fields out to per-field buffers after every call. One env step is three calls:

1. `step`: mj_step with frame_skip substeps in every env;
2. `apply(mj_rnePostConstraint)`: contact forces (cfrc_ext), run after the step on each
   env's own MjData, as Gymnasium v5 does;
3. `forward(mjSTAGE_NONE)`: computes nothing, but refreshes the output buffers, which
   `apply` does not.

With `lazy_contact_forces` (robots whose observation has no contact forces), 2 and 3 run
only when a snapshot's cfrc_ext is first read, before the next step or reset: most
rewards never read it, and each pass over the envs costs a wake-up of the thread pool.

The batch is persistent (one MjData per env), because step 2 needs each env's derived
fields from step 1. The physics is bit-for-bit that of one MjData per env stepped in a
loop, and of Gymnasium's `*-v5` envs (tests/test_batched.py).

An env with more than one thread owns a thread pool: like any threaded object it must not
be used in a child forked after it was made (the sandbox's probe envs use one thread).

This replaced a backend of forked worker processes with one scratch MjData each, which
spent about 14 µs of Python per env step (state load and save, the control, gathering
the fields) on top of 70 µs of half-cheetah physics (docs/benchmarks.md, "The backend": the A/B of both).
"""

from __future__ import annotations

import functools
import math
import os
from typing import Any

import mujoco
import numpy as np
import torch

from synth_reward.envs.backend import PackedFields
from synth_reward.envs.mjbatch import MjBatch, function_address
from synth_reward.envs.state import RAW_FIELDS
from synth_reward.errors import SynthRewardError

_STATE = mujoco.mjtState
_NONE, _ACC = mujoco.mjtStage.mjSTAGE_NONE, mujoco.mjtStage.mjSTAGE_ACC
_NUMPY_DTYPES = {torch.float16: np.float16, torch.float32: np.float32, torch.float64: np.float64}


class CpuBackend:
    """Batched native MuJoCo, implementing backend.PhysicsBackend."""

    device = torch.device("cpu")

    def __init__(
        self,
        model: mujoco.MjModel,
        num_envs: int,
        frame_skip: int,
        num_threads: int | None = None,
        lazy_contact_forces: bool = False,
    ) -> None:
        self.model, self.num_envs, self.frame_skip = model, num_envs, frame_skip
        self.lazy_contact_forces = lazy_contact_forces
        self._step_time = model.opt.timestep * frame_skip
        # A step advances every clock by _step_time; one that advanced less than this blew up.
        self._min_advance = self._step_time - 0.5 * model.opt.timestep
        self._generation = 0  # counts steps and resets: a snapshot's pending field fills only in its own
        self._contacts_fresh = False  # cfrc_ext computed for the physics as it is now
        threads = max(1, min(num_threads or os.cpu_count() or 1, num_envs))
        self._batch = MjBatch(model, num_envs, threads)
        # mjfBatchFunc is f(m, d, sim, arg); mj_rnePostConstraint(m, d) ignores the two extra
        # arguments, which the C calling conventions of MuJoCo's platforms pass in registers.
        self._rne_post = function_address("mj_rnePostConstraint")
        b = self._batch
        self._ctrl = b.component(_STATE.mjSTATE_CTRL)
        cols_t, cols_q, cols_v = (b.columns(c) for c in (_STATE.mjSTATE_TIME, _STATE.mjSTATE_QPOS, _STATE.mjSTATE_QVEL))
        self._clock, self._qpos, self._qvel = b.state[:, cols_t.start], b.state[:, cols_q], b.state[:, cols_v]
        # A snapshot packs every field into one row per env (_spec): one concatenation of numpy
        # views of the batch's buffers (_parts, in column order). time, qpos and qvel lead the
        # packed row as they lead the state rows (mj_getState's order), so one view holds all
        # three; the other fields are the batch's outputs.
        probe = mujoco.MjData(model)
        leading = ("time", "qpos", "qvel")
        self._spec: dict[str, tuple[int, tuple[int, ...]]] = {}
        offset = 0
        for f in leading + tuple(f for f in RAW_FIELDS if f not in leading):
            shape = () if f == "time" else np.shape(getattr(probe, f))
            self._spec[f] = (offset, shape)
            offset += math.prod(shape)
        self._width = offset
        assert cols_t.stop == cols_q.start and cols_q.stop == cols_v.start, "mj_getState's order: time, qpos, qvel"
        head = b.state[:, cols_t.start : cols_v.stop]
        outputs = {f: b.output(f) for f in self._spec if f not in leading}
        self._parts = [head, *outputs.values()]
        self._cfrc_ext = outputs["cfrc_ext"]
        self._expected = np.empty(num_envs)
        self._unstable = np.zeros(num_envs, dtype=bool)
        self._blew_up_at_reset: np.ndarray | None = None  # (N,) bool, None while no env did
        self._clock[:] = 1.0 - self._step_time  # clocks start at 1 s; see step()
        self.set_state(np.arange(num_envs), np.tile(model.qpos0, (num_envs, 1)), np.zeros((num_envs, model.nv)))

    @property
    def num_threads(self) -> int:
        """Threads that step the envs (the caller's included)."""
        return self._batch.nthread

    def _check_open(self) -> None:
        if self._batch.closed:
            raise SynthRewardError("this env was closed; make a new one")

    def _contact_forces(self, ids: np.ndarray | None = None) -> None:
        """mj_rnePostConstraint on each env's data, then refresh the outputs (forward computes nothing here)."""
        self._batch.apply(self._rne_post, ids)
        self._batch.forward(_NONE, ids)

    def _physics_changed(self, ids: np.ndarray | None = None) -> None:
        """After a step or reset of envs `ids` (None: all): old snapshots' pending fields expire."""
        self._generation += 1
        self._contacts_fresh = not self.lazy_contact_forces
        if self._contacts_fresh:  # (the other envs' contact forces are still those of their physics)
            self._contact_forces(ids)

    def step(self, ctrl: torch.Tensor) -> None:
        """Apply ctrl (N, nu) for frame_skip physics steps in every env."""
        self._check_open()
        self._ctrl[:] = ctrl.numpy(force=True)
        np.add(self._clock, self._min_advance, out=self._expected)
        self._batch.step(self.frame_skip)
        self._physics_changed()
        # After a blow-up (non-finite or huge qpos/qvel/qacc) MuJoCo warns and resets the data,
        # which sets its clock back to 0; an env whose call raised a MuJoCo error kept its old
        # state. Either way its clock is behind schedule: the sign, at no per-env cost.
        # (Each env's clock runs on across episodes, starting at 1 s, so that a reset never
        # looks like a blow-up; the episode's own time is State.time = step * dt.)
        np.less(self._clock, self._expected, out=self._unstable)
        if self._blew_up_at_reset is not None:
            self._unstable |= self._blew_up_at_reset
            self._blew_up_at_reset = None

    def set_state(self, env_ids: np.ndarray, qpos: np.ndarray, qvel: np.ndarray) -> None:
        """Reset the given envs to (qpos, qvel), as Gymnasium's reset does (mj_resetData, set, mj_forward)."""
        self._check_open()
        ids = np.asarray(env_ids, dtype=np.int32)
        clock = np.maximum(self._clock[ids], 1.0) + self._step_time
        self._batch.reset(ids)
        self._clock[ids] = clock
        self._qpos[ids] = qpos
        self._qvel[ids] = qvel
        self._batch.forward(_ACC, ids)
        self._physics_changed(ids)
        self._unstable[ids] = False
        # The batch's forward pass also resets an env whose given state is already blown up
        # (huge qvel, NaN); the next step reports it as unstable.
        blew_up = self._clock[ids] < clock - 0.5 * self.model.opt.timestep
        if self._blew_up_at_reset is not None:
            self._blew_up_at_reset[ids] = blew_up
        elif blew_up.any():
            self._blew_up_at_reset = np.zeros(self.num_envs, dtype=bool)
            self._blew_up_at_reset[ids] = blew_up

    def raw(self) -> PackedFields:
        """The batched mjData fields, gathered now in float64."""
        return self.snapshot(torch.float64)

    def snapshot(self, dtype: torch.dtype) -> PackedFields:
        """A copy of every field in dtype, taken now: one row per env (numpy copies and casts the fields)."""
        # (allocated by numpy: torch.empty and .numpy() cost more than the copy here)
        np_dtype = _NUMPY_DTYPES.get(dtype)
        if np_dtype is None:
            raise SynthRewardError(f"state dtype must be one of {', '.join(map(str, _NUMPY_DTYPES))}, got {dtype}")
        out = np.empty((self.num_envs, self._width), np_dtype)
        np.concatenate(self._parts, axis=1, out=out, casting="same_kind")
        packed = torch.from_numpy(out)
        if self._contacts_fresh:
            return PackedFields(packed, self._spec, host=out)
        fill = functools.partial(self._fill_contact_forces, self._generation)
        return PackedFields(packed, self._spec, {"cfrc_ext": fill}, host=out)

    def _fill_contact_forces(self, generation: int, out: torch.Tensor) -> None:
        """Compute the contact forces of the physics a snapshot was taken of, into its cfrc_ext view."""
        if generation != self._generation or self._batch.closed:
            raise SynthRewardError(
                "contact forces (cfrc_ext) are computed when a state first reads them, which must be before its "
                "env steps or resets again: read them earlier, or keep a copy made then (state.to(state.device))"
            )
        if not self._contacts_fresh:
            self._contact_forces()
            self._contacts_fresh = True
        out.copy_(torch.from_numpy(self._cfrc_ext).view(out.shape))

    def state_dict(self) -> dict[str, Any]:
        """MuJoCo's integration state rows (qpos, qvel, act, warm start, ctrl, time...) and the instability flags."""
        blew = self._blew_up_at_reset
        return {
            "rows": torch.from_numpy(self._batch.state.copy()),
            "unstable": torch.from_numpy(self._unstable.copy()),
            "blew_up": None if blew is None else torch.from_numpy(blew.copy()),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._check_open()
        rows = state["rows"].numpy()
        if rows.shape != self._batch.state.shape:
            raise ValueError(f"saved physics has shape {rows.shape}, this backend {self._batch.state.shape}")
        self._batch.state[:] = rows
        self._unstable[:] = state["unstable"].numpy()
        self._blew_up_at_reset = None if state["blew_up"] is None else state["blew_up"].numpy().copy()
        self._physics_changed()  # derived fields (and contact forces) are those of the saved snapshot now

    def unstable(self) -> np.ndarray:
        """(N,) bool: envs whose physics blew up during the last step (MuJoCo reset them); a copy."""
        return self._unstable.copy()

    def close(self) -> None:
        self._batch.close()
