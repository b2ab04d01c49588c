"""CPU physics backend: N native `mujoco.MjData`, stepped by a small thread pool.

MuJoCo's Python bindings release the GIL inside `mj_step`, so threads around the C
calls use every core with no process overhead and no copies between processes
(benchmarks/bench_envs.py measures this against `mujoco.rollout`). Results are
copied into batched numpy buffers that torch views without a copy.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import mujoco
import numpy as np
import torch

from synth_reward.envs.state import RAW_FIELDS


class CpuBackend:
    """Batched native MuJoCo, implementing backend.PhysicsBackend."""

    device = torch.device("cpu")

    def __init__(
        self,
        model: mujoco.MjModel,
        num_envs: int,
        frame_skip: int,
        num_threads: int | None = None,
        fields: tuple[str, ...] = RAW_FIELDS,
    ) -> None:
        self.model = model
        self.num_envs = num_envs
        self.frame_skip = frame_skip
        self.datas = [mujoco.MjData(model) for _ in range(num_envs)]
        for d in self.datas:
            d.time = 1.0
            mujoco.mj_forward(model, d)
        threads = num_threads or min(os.cpu_count() or 1, num_envs)
        self._chunks = [c for c in np.array_split(np.arange(num_envs), threads) if len(c)]
        self._pool = ThreadPoolExecutor(len(self._chunks)) if len(self._chunks) > 1 else None
        # Every field of one env lives in one row of a packed buffer, and each batched field is a
        # strided view into it. Per env and step, one np.concatenate(out=row) gathers all fields
        # from mjData's own arrays (views that stay valid for the data's life): one C call
        # instead of one per field, which matters because the GIL is held while copying.
        # Fields left out (cinert, qfrc_actuator when no observation reads them) stay zero.
        arrays = [f for f in RAW_FIELDS if f != "time"]
        shapes = {f: np.shape(getattr(self.datas[0], f)) for f in arrays}
        sizes = {f: int(np.prod(shapes[f])) for f in arrays}
        copied = [f for f in arrays if f in fields]
        self._packed = np.zeros((num_envs, sum(sizes[f] for f in copied)))
        self._buf: dict[str, np.ndarray] = {}
        offset = 0
        for f in copied:
            self._buf[f] = self._packed[:, offset : offset + sizes[f]].reshape(num_envs, *shapes[f])
            offset += sizes[f]
        for f in arrays:
            self._buf.setdefault(f, np.zeros((num_envs, *shapes[f])))
        self._buf["time"] = np.zeros(num_envs)
        self._torch = {name: torch.from_numpy(arr) for name, arr in self._buf.items()}
        self._sources = [[getattr(d, f).reshape(-1) for f in copied] for d in self.datas]
        self._ctrl = np.zeros((num_envs, model.nu))
        self._ctrl_views = [d.ctrl for d in self.datas]
        self._time = self._buf["time"]
        self._expected_time = np.zeros(num_envs)
        self._step_time = model.opt.timestep * frame_skip
        self._unstable = np.zeros(num_envs, dtype=bool)
        for i, d in enumerate(self.datas):
            self._read(i, d)

    @property
    def num_threads(self) -> int:
        return len(self._chunks)

    def _read(self, i: int, d: mujoco.MjData) -> None:
        np.concatenate(self._sources[i], out=self._packed[i])
        self._time[i] = d.time

    def _step_chunk(self, ids: np.ndarray) -> None:
        m, nstep, ctrl, datas, ctrl_views = (
            self.model,
            self.frame_skip,
            self._ctrl,
            self.datas,
            self._ctrl_views,
        )
        step, post, copyto, concat = (
            mujoco.mj_step,
            mujoco.mj_rnePostConstraint,
            np.copyto,
            np.concatenate,
        )
        sources, packed, time = self._sources, self._packed, self._time
        for i in ids:
            d = datas[i]
            copyto(ctrl_views[i], ctrl[i])
            step(m, d, nstep=nstep)
            post(m, d)  # fills cfrc_ext (contact forces), as Gymnasium v5 does
            concat(sources[i], out=packed[i])
            time[i] = d.time

    def _map(self, fn, chunks) -> None:
        if self._pool is None:
            for c in chunks:
                fn(c)
        else:
            list(self._pool.map(fn, chunks))

    def step(self, ctrl: torch.Tensor) -> None:
        """Apply ctrl (N, nu) for frame_skip physics steps in every env."""
        self._ctrl[:] = ctrl.detach().to("cpu", torch.float64).numpy()
        self._expected_time = self._time + self._step_time
        self._map(self._step_chunk, self._chunks)
        # After a blow-up (non-finite or huge qpos/qvel/qacc) MuJoCo warns and resets the data,
        # which sets its clock back to 0: a clock behind schedule is the sign, at no per-env cost.
        # (Each env's clock runs on across episodes, starting at 1 s, so that a reset never
        # looks like a blow-up; the episode's own time is State.time = step * dt.)
        self._unstable = self._time < self._expected_time - 0.5 * self.model.opt.timestep

    def set_state(self, env_ids: np.ndarray, qpos: np.ndarray, qvel: np.ndarray) -> None:
        """Reset the given envs to (qpos, qvel) at time 0, as Gymnasium's reset does."""
        m = self.model
        for k, i in enumerate(env_ids):
            d = self.datas[i]
            clock = max(d.time, 1.0) + self._step_time
            mujoco.mj_resetData(m, d)
            d.time = clock
            d.qpos[:] = qpos[k]
            d.qvel[:] = qvel[k]
            mujoco.mj_forward(m, d)
            mujoco.mj_rnePostConstraint(m, d)
            self._read(i, d)
            self._unstable[i] = False

    def raw(self) -> dict[str, torch.Tensor]:
        """The batched mjData fields as torch views of the backend's buffers (valid until the next step)."""
        return self._torch

    def unstable(self) -> torch.Tensor:
        """(N,) bool: envs whose physics diverged during the last step (MuJoCo's bad qpos/qvel/qacc warnings)."""
        return torch.from_numpy(self._unstable.copy())

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
