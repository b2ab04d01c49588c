"""CPU physics backend: N native `mujoco.MjData`, stepped in parallel on every core.

The envs are split into chunks, one per worker. A `_Chunk` steps its envs (mj_step with
frame_skip substeps, then mj_rnePostConstraint for contact forces, as Gymnasium v5
does) and gathers their mjData fields into one packed row per env of a shared buffer,
which torch views without a copy.

Workers are processes by default (`parallel="process"`): each owns its chunk's MjData
and steps on a one-byte command, so no Python lock is shared and each worker runs at
full speed. Threads (`parallel="thread"`) also work, since MuJoCo releases the GIL in
mj_step, but every env costs two GIL hand-offs per step, which on small models (half
cheetah) costs a third of the throughput; benchmarks/bench_envs.py measures both.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import signal
import weakref
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Literal

import mujoco
import numpy as np
import torch

from synth_reward.envs.backend import PackedFields
from synth_reward.envs.state import RAW_FIELDS
from synth_reward.errors import SynthRewardError


class PhysicsWorkerError(SynthRewardError):
    """A physics worker process died (killed, or out of memory); the env cannot continue."""

Parallel = Literal["process", "thread"]


class _Chunk:
    """The MjData of a slice of envs, stepping into shared batched arrays (its rows only)."""

    def __init__(self, model: mujoco.MjModel, ids: np.ndarray, frame_skip: int, fields: list[str],
                 ctrl: np.ndarray, packed: np.ndarray, clock: np.ndarray) -> None:
        self.model, self.ids, self.frame_skip = model, ids, frame_skip
        self.ctrl, self.clock = ctrl, clock
        self.packed = packed  # (N, size of `fields`): the copied fields' columns of the packed rows
        self.datas = [mujoco.MjData(model) for _ in ids]
        # mjData's arrays are views that stay valid for the data's life, so each env's fields
        # are gathered with one np.concatenate(out=row): one C call instead of one per field.
        self.sources = [[getattr(d, f).reshape(-1) for f in fields] for d in self.datas]
        for k, d in enumerate(self.datas):
            d.time = 1.0  # see CpuBackend.step: clocks never run backwards except on a blow-up
            mujoco.mj_forward(model, d)
            self._read(k)

    def _read(self, k: int) -> None:
        i = self.ids[k]
        np.concatenate(self.sources[k], out=self.packed[i])
        self.clock[i] = self.datas[k].time

    def step(self) -> None:
        m, nstep, ctrl, packed, clock = self.model, self.frame_skip, self.ctrl, self.packed, self.clock
        mj_step, post, concat = mujoco.mj_step, mujoco.mj_rnePostConstraint, np.concatenate
        for k, i in enumerate(self.ids):
            d = self.datas[k]
            d.ctrl[:] = ctrl[i]
            mj_step(m, d, nstep=nstep)
            post(m, d)  # fills cfrc_ext (contact forces)
            concat(self.sources[k], out=packed[i])
            clock[i] = d.time

    def set_state(self, env_ids: np.ndarray, qpos: np.ndarray, qvel: np.ndarray, step_time: float) -> None:
        m = self.model
        where = {int(i): k for k, i in enumerate(self.ids)}
        for row, i in enumerate(env_ids):
            k = where.get(int(i))
            if k is None:
                continue
            d = self.datas[k]
            clock = max(d.time, 1.0) + step_time
            mujoco.mj_resetData(m, d)
            d.time = clock
            d.qpos[:] = qpos[row]
            d.qvel[:] = qvel[row]
            mujoco.mj_forward(m, d)
            mujoco.mj_rnePostConstraint(m, d)
            self._read(k)


def _serve(chunk: _Chunk, conn: Connection, parent: int) -> None:
    """A worker process's loop: b"s" steps; ("set", ...) resets envs; None, EOF or an orphaned worker ends it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it stops us
    while True:
        try:
            # A killed parent does not always close our pipe (forked siblings inherit its end),
            # so an idle worker also checks once a second that its parent is still there.
            while not conn.poll(1.0):
                if os.getppid() != parent:
                    return
            command = conn.recv()
        except EOFError:
            return
        if command is None:
            return
        if command == b"s":
            chunk.step()
        else:
            chunk.set_state(*command[1:])
        conn.send_bytes(b"k")  # any failure above ends this process, and the parent sees EOF


class CpuBackend:
    """Batched native MuJoCo, implementing backend.PhysicsBackend."""

    device = torch.device("cpu")

    def __init__(self, model: mujoco.MjModel, num_envs: int, frame_skip: int, num_threads: int | None = None,
                 fields: tuple[str, ...] = RAW_FIELDS, parallel: Parallel = "process") -> None:
        self.model, self.num_envs, self.frame_skip = model, num_envs, frame_skip
        self._step_time = model.opt.timestep * frame_skip
        workers = max(1, min(num_threads or os.cpu_count() or 1, num_envs))
        self.parallel: Parallel = parallel if workers > 1 else "thread"
        shared = mp.get_context("fork") if self.parallel == "process" else None

        def array(*shape: int) -> np.ndarray:
            size = int(np.prod(shape))
            if shared is None:
                return np.zeros(shape)
            return np.frombuffer(shared.RawArray("d", max(size, 1)), dtype=np.float64)[:size].reshape(shape)

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
        ncopied = sum(math.prod(shapes[f]) for f in copied)  # the columns a worker writes
        self._packed = array(num_envs, offset)
        self._ctrl = array(num_envs, model.nu)
        self._clock = self._packed[:, self._spec["time"][0]]
        self._fields = PackedFields(torch.from_numpy(self._packed), self._spec)
        self._ctrl_t = torch.from_numpy(self._ctrl)
        self._unstable = np.zeros(num_envs, dtype=bool)
        self._unstable_t = torch.from_numpy(self._unstable)

        chunks = [c for c in np.array_split(np.arange(num_envs), workers) if len(c)]
        self._chunks = [_Chunk(model, c, frame_skip, copied, self._ctrl, self._packed[:, :ncopied], self._clock)
                        for c in chunks]
        self._pool: ThreadPoolExecutor | None = None
        self._conns: list[Connection] = []
        self._broken = False
        if self.parallel == "thread" and len(chunks) > 1:
            self._pool = ThreadPoolExecutor(len(chunks))
        elif self.parallel == "process":
            assert shared is not None
            procs = []
            for chunk in self._chunks[1:]:  # the calling process steps the first chunk itself
                parent, child = shared.Pipe()
                proc = shared.Process(target=_serve, args=(chunk, child, os.getpid()), daemon=True)
                proc.start()
                child.close()
                self._conns.append(parent)
                procs.append(proc)
            self._finalizer = weakref.finalize(self, _stop_workers, self._conns, procs)

    @property
    def num_threads(self) -> int:
        """Number of parallel workers (threads or processes, the caller included)."""
        return len(self._chunks)

    def _run(self, command: bytes | tuple) -> None:
        """Run a command on every chunk: workers in parallel, the first chunk here."""
        local = self._chunks[0]
        if self._conns:
            if self._broken:
                raise PhysicsWorkerError("the physics workers were stopped mid-step; make a new env")
            try:
                for conn in self._conns:
                    conn.send(command)
                local.step() if command == b"s" else local.set_state(*command[1:])
                for conn in self._conns:
                    conn.recv_bytes()
            except (EOFError, OSError):  # BrokenPipeError included
                self._broken = True
                raise PhysicsWorkerError("a physics worker process died (killed, or out of memory)") from None
            except BaseException:  # e.g. KeyboardInterrupt between send and reply: replies are unread
                self._broken = True
                raise
        elif self._pool is not None:
            fn = (lambda c: c.step()) if command == b"s" else (lambda c: c.set_state(*command[1:]))
            list(self._pool.map(fn, self._chunks))
        else:
            local.step() if command == b"s" else local.set_state(*command[1:])

    def step(self, ctrl: torch.Tensor) -> None:
        """Apply ctrl (N, nu) for frame_skip physics steps in every env."""
        self._ctrl_t.copy_(ctrl.detach())
        expected = self._clock + self._step_time
        self._run(b"s")
        # After a blow-up (non-finite or huge qpos/qvel/qacc) MuJoCo warns and resets the data,
        # which sets its clock back to 0: a clock behind schedule is the sign, at no per-env cost.
        # (Each env's clock runs on across episodes, starting at 1 s, so that a reset never
        # looks like a blow-up; the episode's own time is State.time = step * dt.)
        np.less(self._clock, expected - 0.5 * self.model.opt.timestep, out=self._unstable)

    def set_state(self, env_ids: np.ndarray, qpos: np.ndarray, qvel: np.ndarray) -> None:
        """Reset the given envs to (qpos, qvel), as Gymnasium's reset does (mj_resetData, then set)."""
        env_ids = np.asarray(env_ids)
        self._run(("set", env_ids, np.asarray(qpos, dtype=np.float64), np.asarray(qvel, dtype=np.float64),
                   self._step_time))
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
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._conns:
            self._finalizer()
            self._conns = []


def _stop_workers(conns: list[Connection], procs: list) -> None:
    for conn in conns:
        try:
            conn.send(None)
        except OSError:
            pass
        finally:
            conn.close()
    for proc in procs:
        proc.join(timeout=5)
        if proc.is_alive():
            proc.kill()
