"""The physics backend interface: the only thing a new backend (e.g. MuJoCo Warp) implements.

BatchedEnv owns episodes, resets, observations, rewards and success checks; a backend
only moves physics for N copies of one model and exposes MuJoCo's own fields as torch
tensors on its device. The CPU backend (cpu.py) is the reference implementation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

import numpy as np
import torch


class PhysicsBackend(Protocol):
    num_envs: int
    device: torch.device

    def step(self, ctrl: torch.Tensor) -> None:
        """Apply ctrl (N, nu) for frame_skip physics steps in every env.

        Contact forces (cfrc_ext, mj_rnePostConstraint) are filled here too, unless the backend
        was made with lazy_contact_forces: then a snapshot fills them when they are first read.
        """

    def set_state(self, env_ids: np.ndarray, qpos: np.ndarray, qvel: np.ndarray) -> None:
        """Reset the listed envs to (qpos, qvel) and recompute their derived fields (mj_forward)."""

    def raw(self) -> PackedFields:
        """Batched mjData fields named as in state.RAW_FIELDS, shape (N, *mjData shape), on `device`."""

    def snapshot(self, dtype: torch.dtype) -> PackedFields:
        """A copy of raw() in dtype, taken now: later steps do not change it (what State holds).

        A field not computed yet (lazy contact forces) is a pending field of the snapshot.
        """

    def unstable(self) -> np.ndarray:
        """(N,) bool on the host, a new array: envs whose physics blew up during the last step.

        (Host, not device: BatchedEnv keeps its episode bookkeeping in numpy.)"""

    def state_dict(self) -> dict[str, Any]:
        """Everything the next step depends on (MuJoCo's integration state of every env), for a checkpoint."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict()`: the next step is the one the saved backend would have taken."""
        ...

    def close(self) -> None:
        """Release threads or device memory."""


class PackedFields(Mapping[str, torch.Tensor]):
    """Named views into one (N, D) tensor, so a whole batched state is copied with one op.

    A State is built on every env step; as ~13 separate tensors, its later copies and reads
    would cost more than the physics of a small robot, so a snapshot packs the fields into
    one row per env (and BatchedEnv gathers the observation from the rows with one op).

    `pending` maps a field the backend has not computed yet to a function that writes it
    into the field's view; it runs on the field's first read (contact forces cost two more
    passes over the envs, and most rewards of most robots never read them).

    `host` is the numpy array that `packed` is a view of (the same memory, so a pending
    field filled through `packed` shows in it), when the fields are on the host; None for
    a device. BatchedEnv gathers the observation from it in numpy, because right after the
    physics a torch op costs several times a numpy op (docs/benchmarks.md, "The observation in numpy").
    """

    def __init__(
        self,
        packed: torch.Tensor,
        spec: Mapping[str, tuple[int, tuple[int, ...]]],
        pending: dict[str, Callable[[torch.Tensor], None]] | None = None,
        host: np.ndarray | None = None,
    ) -> None:
        self.packed, self.spec, self.host = packed, spec, host
        self._pending = pending or {}
        self._views: dict[str, torch.Tensor] = {}

    def __getitem__(self, name: str) -> torch.Tensor:
        view = self._views.get(name)
        if view is None:
            offset, shape = self.spec[name]
            size = math.prod(shape)
            view = self.packed[:, offset : offset + size].view(-1, *shape)
            fill = self._pending.pop(name, None)
            if fill is not None:
                fill(view)
            self._views[name] = view
        return view

    def columns(self, name: str) -> range:
        """The columns of `packed` that hold field `name` (flattened in mjData's order)."""
        offset, shape = self.spec[name]
        return range(offset, offset + math.prod(shape))

    def fill_pending(self) -> None:
        """Fill every pending field now, so the snapshot no longer depends on the backend's current physics."""
        for name in list(self._pending):
            self[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.spec)

    def __len__(self) -> int:
        return len(self.spec)


BACKENDS = ("cpu", "warp")
"""Physics backends: "cpu" (native MuJoCo, envs/cpu.py), "warp" (MuJoCo Warp, envs/warp.py)."""


def choose_backend(backend: str | None, device: str | None) -> tuple[str, str]:
    """The (backend, device) a command runs: checked here, so that bad input fails before any work.

    backend None (auto): "warp" when the device is CUDA and the gpu extra is installed, else "cpu".
    device None: "cuda" for the Warp backend when torch sees a CUDA device, else "cpu". With the
    Warp backend the device is Warp's and the networks'; with the CPU backend, the networks' only.
    Raises UsageError (one line, exit status 2): an unknown name, the Warp backend without its extra
    (what to install), a CUDA device where there is none.
    """
    from synth_reward.envs.warp import INSTALL, warp_installed
    from synth_reward.errors import UsageError

    if backend is not None and backend not in BACKENDS:
        raise UsageError(f"--backend must be one of: {', '.join(BACKENDS)}; got {backend!r}")
    if device is not None and device != "cpu" and not device.startswith("cuda"):
        raise UsageError(f"--device must be cpu or cuda (or cuda:N); got {device!r}")
    cuda = device is not None and device.startswith("cuda")
    if backend is None:
        backend = "warp" if cuda and warp_installed() else "cpu"
    if backend == "warp" and not warp_installed():
        raise UsageError(f"--backend warp needs MuJoCo Warp, which is not installed: {INSTALL}")
    if device is None:
        device = "cuda" if backend == "warp" and torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        build = " (this torch is a CPU build)" if torch.version.cuda is None else ""
        raise UsageError(f"--device {device}: torch sees no CUDA device{build}; use --device cpu")
    return backend, device
