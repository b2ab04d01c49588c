"""MuJoCo's batched simulation (C API `mjbatch.h`, MuJoCo 4), called through ctypes.

MuJoCo 4 steps many simulations of one model on its own C++ thread pool: each simulation
is a state row (mjSTATE_INTEGRATION, warm start included), so the results are
bit-identical to one MjData per simulation at any thread count, and derived mjData fields
are copied out to (nsim, size) buffers after every call. No Python runs per simulation and
the GIL is released for the whole call.

Why ctypes and not `mujoco.batch.Batch`, the Python binding of the same API: the binding
has no `mjb_apply`, and Gymnasium's v5 envs fill contact forces with
`mj_rnePostConstraint` *after* `mj_step`, from that step's derived fields. Only
`mjb_apply` on a persistent batch (one MjData per simulation) can run it there, so that
`cfrc_ext` matches Gymnasium's bit for bit (tests/test_batched.py).
"""

from __future__ import annotations

import ctypes
import functools
import glob
import os
import weakref
from typing import Any

import mujoco
import numpy as np

from synth_reward.errors import SynthRewardError

_P = ctypes.c_void_p
_INT_P = ctypes.POINTER(ctypes.c_int)


class _Config(ctypes.Structure):  # mjBatchConfig
    _fields_ = [("nthread", ctypes.c_int), ("persistent", ctypes.c_bool)]


_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "mjb_makeBatch": (_P, [_P, ctypes.c_int, ctypes.POINTER(_Config), ctypes.c_char_p, ctypes.c_int]),
    "mjb_deleteBatch": (None, [_P]),
    "mjb_nstate": (ctypes.c_int, [_P]),
    "mjb_nthread": (ctypes.c_int, [_P]),
    "mjb_state": (ctypes.POINTER(ctypes.c_double), [_P]),
    "mjb_stateComponent": (ctypes.POINTER(ctypes.c_double), [_P, ctypes.c_int, _INT_P]),
    "mjb_output": (_P, [_P, ctypes.c_char_p, _INT_P, _INT_P]),
    "mjb_step": (ctypes.c_int, [_P, _INT_P, ctypes.c_int, ctypes.c_int, ctypes.c_int]),
    "mjb_forward": (ctypes.c_int, [_P, _INT_P, ctypes.c_int, ctypes.c_int]),
    "mjb_reset": (ctypes.c_int, [_P, _INT_P, ctypes.c_int, _INT_P, ctypes.c_int]),
    "mjb_apply": (ctypes.c_int, [_P, _INT_P, ctypes.c_int, _P, _P, ctypes.c_int]),
}


@functools.cache
def library() -> ctypes.CDLL:
    """The libmujoco that the `mujoco` package already loaded (same file, so the same handle), typed."""
    folder = os.path.dirname(mujoco.__file__)
    found = sorted(
        glob.glob(os.path.join(folder, "libmujoco.so*"))
        + glob.glob(os.path.join(folder, "libmujoco*.dylib"))
        + glob.glob(os.path.join(folder, "mujoco.dll"))
    )
    if not found:
        raise SynthRewardError(f"the MuJoCo library was not found in {folder}")
    lib = ctypes.CDLL(found[0])
    for name, (restype, argtypes) in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    return lib


class MjBatch:
    """nsim persistent simulations of a copy of `model`, on nthread threads (the caller's included)."""

    def __init__(self, model: mujoco.MjModel, nsim: int, nthread: int) -> None:
        if np.dtype(mujoco.MJTNUM_DTYPE) != np.float64:
            raise SynthRewardError("synth-reward needs MuJoCo's standard build (mjtNum = double)")
        lib = self._lib = library()
        error = ctypes.create_string_buffer(1000)
        ptr = lib.mjb_makeBatch(model._address, nsim, ctypes.byref(_Config(nthread, True)), error, len(error))
        if not ptr:
            raise SynthRewardError(f"MuJoCo could not make a batch of {nsim} simulations: {error.value.decode()}")
        self._ptr: int = ptr
        self.nsim = nsim
        self.nthread = int(lib.mjb_nthread(ptr))
        self.state = np.ctypeslib.as_array(lib.mjb_state(ptr), (nsim, lib.mjb_nstate(ptr)))
        """(nsim, nstate) the state rows: a write is the simulation's state at its next call."""
        self._finalizer = weakref.finalize(self, lib.mjb_deleteBatch, ptr)

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def columns(self, bit: mujoco.mjtState) -> slice:
        """The columns of the state rows that hold one state component (mjSTATE_QPOS, ...)."""
        size = ctypes.c_int()
        address = ctypes.cast(self._lib.mjb_stateComponent(self._ptr, int(bit), ctypes.byref(size)), _P).value
        offset = (address - self.state.ctypes.data) // self.state.itemsize  # type: ignore[operator]
        return slice(offset, offset + size.value)

    def component(self, bit: mujoco.mjtState) -> np.ndarray:
        """(nsim, size) view of one state component in the state rows."""
        return self.state[:, self.columns(bit)]

    def output(self, field: str) -> np.ndarray:
        """(nsim, size) buffer of a derived mjData field (flattened), refreshed after every call."""
        size, elemsize = ctypes.c_int(), ctypes.c_int()
        address = self._lib.mjb_output(self._ptr, field.encode(), ctypes.byref(size), ctypes.byref(elemsize))
        if not address or elemsize.value != 8:
            raise SynthRewardError(f"MuJoCo's batch cannot output mjData field {field!r}")
        return np.ctypeslib.as_array(ctypes.cast(address, ctypes.POINTER(ctypes.c_double)), (self.nsim, size.value))

    def step(self, nstep: int, ids: np.ndarray | None = None) -> int:
        """nstep calls to mj_step; returns how many simulations failed."""
        return int(self._lib.mjb_step(self._ptr, *_ids(ids), nstep, int(mujoco.mjtStage.mjSTAGE_NONE)))

    def forward(self, stage: mujoco.mjtStage, ids: np.ndarray | None = None) -> int:
        """Compute the forward stages up to `stage` (mjSTAGE_NONE: none; the outputs are still refreshed)."""
        return int(self._lib.mjb_forward(self._ptr, *_ids(ids), int(stage)))

    def reset(self, ids: np.ndarray | None = None) -> int:
        """mj_resetData (the model's defaults), no forward pass."""
        return int(self._lib.mjb_reset(self._ptr, *_ids(ids), None, int(mujoco.mjtStage.mjSTAGE_NONE)))

    def apply(self, function: int, ids: np.ndarray | None = None) -> int:
        """Run the C function at address `function` on each simulation's MjData (its outputs refresh on the next call)."""
        return int(self._lib.mjb_apply(self._ptr, *_ids(ids), function, None, 0))

    def close(self) -> None:
        self._finalizer()


def function_address(name: str) -> int:
    """The address of a libmujoco function, to pass to `MjBatch.apply`."""
    return ctypes.cast(getattr(library(), name), _P).value  # type: ignore[return-value]


def _ids(ids: np.ndarray | None) -> tuple[Any, int]:
    if ids is None:
        return None, 0
    ids = np.ascontiguousarray(ids, dtype=np.int32)
    return ids.ctypes.data_as(_INT_P), len(ids)
