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
