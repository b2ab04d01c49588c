"""CPU physics backend: N native MuJoCo envs, stepped in parallel on every core.

Every env's integration state (time, qpos, qvel, act, warm start: what MuJoCo needs to
reproduce a step exactly) lives in one shared array. A worker owns a single scratch
`MjData`; to step env i it loads i's state, applies its ctrl, runs mj_step with
frame_skip substeps and mj_rnePostConstraint (contact forces, as Gymnasium v5 does),
gathers the mjData fields into env i's packed row of a shared buffer (which torch views
without a copy) and stores the state back. mjSTATE_WARMSTART is included, so this is
bit-for-bit the same physics as one MjData per env.

Because any worker can step any env, envs are not split up front: on every step each
worker claims the next few unstepped envs from a shared counter (guided scheduling) until
none is left. A humanoid's step time varies several-fold with its contacts, and a worker
may wake late on a busy machine; with a fixed split the faster worker would wait for
the slower one on every step (measured: about 11% of humanoid throughput at N = 32).

Workers are processes by default (`parallel="process"`), woken by a semaphore; the
calling process is one of them. Threads (`parallel="thread"`) also work, since MuJoCo
releases the GIL in mj_step, but each env then costs two GIL hand-offs per step, which
on small models (half cheetah) costs a third of the throughput; benchmarks/bench_envs.py
measures both.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import signal
import threading
import time
import weakref
from typing import Any, Literal

import mujoco
import numpy as np
import torch

from synth_reward.envs.backend import PackedFields
from synth_reward.envs.state import RAW_FIELDS
from synth_reward.errors import SynthRewardError


class PhysicsWorkerError(SynthRewardError):
    """A physics worker process died (killed, or out of memory); the env cannot continue."""

Parallel = Literal["process", "thread"]

STATE_SPEC = int(mujoco.mjtState.mjSTATE_FULLPHYSICS) | int(mujoco.mjtState.mjSTATE_WARMSTART)
"""The per-env state kept between steps: with ctrl, all that mj_step reads (inputs such as
xfrc_applied are never set here and stay zero in every scratch MjData)."""

# Slots of the shared int64 counters: the next env to claim, envs finished this step, stop flag.
_NEXT, _DONE, _STOP = 0, 1, 2


class _Shared:
    """What every worker reads and writes: states, packed rows, ctrl and the claim counters."""

    def __init__(self, model: mujoco.MjModel, num_envs: int, frame_skip: int, workers: int,
                 copied: list[str], ncopied: int, packed: np.ndarray, ctrl: np.ndarray, time_column: int,
                 alloc: Any, lock: Any) -> None:
        self.model, self.num_envs, self.frame_skip, self.workers = model, num_envs, frame_skip, workers
        self.copied, self.ncopied = copied, ncopied  # the fields gathered each step: the first ncopied columns
        self.packed, self.ctrl, self.time_column = packed, ctrl, time_column
        self.states = alloc(num_envs, mujoco.mj_stateSize(model, STATE_SPEC))
        self.counters = alloc(3, dtype=np.int64)
        self.lock = lock


class _Worker:
    """One scratch MjData that steps whichever envs its process claims."""

    def __init__(self, shared: _Shared) -> None:
        self.shared = shared
        self.data = mujoco.MjData(shared.model)
        # mjData's arrays are views that stay valid for the data's life, so an env's fields
        # are gathered with one np.concatenate(out=row): one C call instead of one per field.
        self.sources = [getattr(self.data, f).reshape(-1) for f in shared.copied]

    def _store(self, i: int) -> None:
        """Gather the scratch data's fields into env i's packed row and save its state."""
        sh, d = self.shared, self.data
        np.concatenate(self.sources, out=sh.packed[i, : sh.ncopied])
        sh.packed[i, sh.time_column] = d.time
        mujoco.mj_getState(sh.model, d, sh.states[i], STATE_SPEC)

    def step_env(self, i: int) -> None:
        sh, d, m = self.shared, self.data, self.shared.model
        mujoco.mj_setState(m, d, sh.states[i], STATE_SPEC)
        d.ctrl[:] = sh.ctrl[i]
        mujoco.mj_step(m, d, nstep=sh.frame_skip)
        mujoco.mj_rnePostConstraint(m, d)  # fills cfrc_ext (contact forces)
        self._store(i)

    def reset_env(self, i: int, qpos: np.ndarray, qvel: np.ndarray, clock: float) -> None:
        m, d = self.shared.model, self.data
        mujoco.mj_resetData(m, d)
        d.time = clock
        d.qpos[:] = qpos
        d.qvel[:] = qvel
        mujoco.mj_forward(m, d)
        mujoco.mj_rnePostConstraint(m, d)
        self._store(i)

    def work(self) -> None:
        """Claim and step envs until none is left; report each batch as done when claiming the next."""
        sh, counters, n = self.shared, self.shared.counters, self.shared.num_envs
        batch = 0
        while True:
            with sh.lock:  # also the memory barrier that publishes the rows just written
                counters[_DONE] += batch
                first = int(counters[_NEXT])
                if first >= n:
                    return
                batch = max(1, (n - first) // (2 * sh.workers))  # guided: big batches first
                counters[_NEXT] = first + batch
            for i in range(first, first + batch):
                self.step_env(i)


def _serve(worker: _Worker, wake: Any, parent: int | None) -> None:
    """A worker's loop: each release of `wake` is one step to help with; the stop flag ends it."""
    if parent is not None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it stops us
    counters = worker.shared.counters
    while True:
        # A killed parent cannot tell us, so an idle worker process checks once a second.
        if not wake.acquire(timeout=1.0):
            if parent is not None and os.getppid() != parent:
                return
            continue
        if counters[_STOP]:
            return
        worker.work()


class CpuBackend:
    """Batched native MuJoCo, implementing backend.PhysicsBackend."""

    device = torch.device("cpu")

    def __init__(self, model: mujoco.MjModel, num_envs: int, frame_skip: int, num_threads: int | None = None,
                 fields: tuple[str, ...] = RAW_FIELDS, parallel: Parallel = "process") -> None:
        self.model, self.num_envs, self.frame_skip = model, num_envs, frame_skip
        self._step_time = model.opt.timestep * frame_skip
        workers = max(1, min(num_threads or os.cpu_count() or 1, num_envs))
        self.parallel: Parallel = parallel if workers > 1 else "thread"
        ctx = mp.get_context("fork") if self.parallel == "process" else None

        def alloc(*shape: int, dtype: type = np.float64) -> np.ndarray:
            size = int(np.prod(shape))
            if ctx is None:
                return np.zeros(shape, dtype=dtype)
            raw = ctx.RawArray("d" if dtype is np.float64 else "q", max(size, 1))
            return np.frombuffer(raw, dtype=dtype)[:size].reshape(shape)

        # One packed row per env holds every field: those copied each step first, then those
        # left out (cinert, qfrc_actuator when no observation reads them; they stay zero),
        # then the clock. Each batched field is a strided view; a snapshot is one tensor copy.
        probe = mujoco.MjData(model)
        arrays = [f for f in RAW_FIELDS if f != "time"]
        shapes: dict[str, tuple[int, ...]] = {f: np.shape(getattr(probe, f)) for f in arrays}
        shapes["time"] = ()
        copied = [f for f in arrays if f in fields]
        self._spec: dict[str, tuple[int, tuple[int, ...]]] = {}
        offset = 0
        for f in copied + [f for f in arrays if f not in fields] + ["time"]:
            self._spec[f] = (offset, shapes[f])
            offset += math.prod(shapes[f])
        self._packed = alloc(num_envs, offset)
        self._ctrl = alloc(num_envs, model.nu)
        self._clock = self._packed[:, self._spec["time"][0]]
        self._fields = PackedFields(torch.from_numpy(self._packed), self._spec)
        self._ctrl_t = torch.from_numpy(self._ctrl)
        self._unstable = np.zeros(num_envs, dtype=bool)
        self._unstable_t = torch.from_numpy(self._unstable)

        lock = ctx.Lock() if ctx is not None else threading.Lock()
        ncopied = sum(math.prod(shapes[f]) for f in copied)
        self._shared = _Shared(model, num_envs, frame_skip, workers, copied, ncopied, self._packed, self._ctrl,
                               self._spec["time"][0], alloc, lock)
        self._local = _Worker(self._shared)  # the calling process (or thread) is worker 0
        for i in range(num_envs):
            self._local.reset_env(i, model.qpos0, np.zeros(model.nv), 1.0)  # see step(): clocks start at 1 s
        self._wakes: list[Any] = []
        self._helpers: list[Any] = []
        self._broken = False
        for _ in range(workers - 1):
            wake = ctx.Semaphore(0) if ctx is not None else threading.Semaphore(0)
            if ctx is not None:
                helper = ctx.Process(target=_serve, args=(_Worker(self._shared), wake, os.getpid()), daemon=True)
            else:
                helper = threading.Thread(target=_serve, args=(_Worker(self._shared), wake, None), daemon=True)
            helper.start()
            self._wakes.append(wake)
            self._helpers.append(helper)
        self._finalizer = weakref.finalize(self, _stop_workers, self._shared.counters, self._wakes, self._helpers)

    @property
    def num_threads(self) -> int:
        """Number of parallel workers (threads or processes, the caller included)."""
        return 1 + len(self._helpers)

    def _check_helpers(self) -> None:
        if not all(h.is_alive() for h in self._helpers):  # a process killed or out of memory, a thread that raised
            self._broken = True
            raise PhysicsWorkerError(f"a physics worker {self.parallel} died (killed, out of memory, or an error)")

    def _step_all(self) -> None:
        """Step every env: wake the helpers, work here too, then wait until all envs are done."""
        shared, counters, n = self._shared, self._shared.counters, self.num_envs
        with shared.lock:
            counters[_NEXT] = 0
            counters[_DONE] = 0
        for wake in self._wakes:
            wake.release()
        self._local.work()
        # The helpers finish their last envs (at most a few env steps). Spin, not sleep: this
        # is shorter than a wake-up; check now and then that no helper died mid-env.
        spins = 0
        while counters[_DONE] < n:
            spins += 1
            if spins % 4096 == 0:
                self._check_helpers()
                time.sleep(0)
        with shared.lock:  # a memory barrier: the helpers' rows are visible after it
            assert counters[_DONE] == n

    def step(self, ctrl: torch.Tensor) -> None:
        """Apply ctrl (N, nu) for frame_skip physics steps in every env."""
        if self._broken:
            raise PhysicsWorkerError("the physics workers were stopped mid-step; make a new env")
        self._check_helpers()
        self._ctrl_t.copy_(ctrl.detach())
        expected = self._clock + self._step_time
        try:
            self._step_all()
        except BaseException:  # e.g. KeyboardInterrupt while helpers still step: counters are stale
            self._broken = True
            raise
        # After a blow-up (non-finite or huge qpos/qvel/qacc) MuJoCo warns and resets the data,
        # which sets its clock back to 0: a clock behind schedule is the sign, at no per-env cost.
        # (Each env's clock runs on across episodes, starting at 1 s, so that a reset never
        # looks like a blow-up; the episode's own time is State.time = step * dt.)
        np.less(self._clock, expected - 0.5 * self.model.opt.timestep, out=self._unstable)

    def set_state(self, env_ids: np.ndarray, qpos: np.ndarray, qvel: np.ndarray) -> None:
        """Reset the given envs to (qpos, qvel), as Gymnasium's reset does (mj_resetData, then set)."""
        env_ids = np.asarray(env_ids)
        qpos, qvel = np.asarray(qpos, dtype=np.float64), np.asarray(qvel, dtype=np.float64)
        for row, i in enumerate(env_ids):
            clock = max(float(self._clock[i]), 1.0) + self._step_time
            self._local.reset_env(int(i), qpos[row], qvel[row], clock)
        self._unstable[env_ids] = False

    def raw(self) -> PackedFields:
        """The batched mjData fields as torch views of the backend's buffers (valid until the next step)."""
        return self._fields

    def snapshot(self, dtype: torch.dtype) -> PackedFields:
        """A copy of every field in dtype, taken now (one tensor op)."""
        return self._fields.copy(dtype)

    def unstable(self) -> torch.Tensor:
        """(N,) bool: envs whose physics blew up during the last step (MuJoCo reset them)."""
        return self._unstable_t.clone()

    def close(self) -> None:
        self._finalizer()


def _stop_workers(counters: np.ndarray, wakes: list[Any], helpers: list[Any]) -> None:
    counters[_STOP] = 1
    for wake in wakes:
        wake.release()
    for helper in helpers:
        helper.join(timeout=5)
        if isinstance(helper, mp.process.BaseProcess) and helper.is_alive():
            helper.kill()
