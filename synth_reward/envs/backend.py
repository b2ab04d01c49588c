"""The physics backend interface: the only thing a new backend (e.g. MuJoCo Warp) implements.

BatchedEnv owns episodes, resets, observations, rewards and success checks; a backend
only moves physics for N copies of one model and exposes MuJoCo's own fields as torch
tensors on its device. The CPU backend (cpu.py) is the reference implementation.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch


class PhysicsBackend(Protocol):
    num_envs: int
    device: torch.device

    def step(self, ctrl: torch.Tensor) -> None:
        """Apply ctrl (N, nu) for frame_skip physics steps in every env, then fill contact forces (cfrc_ext)."""

    def set_state(self, env_ids: np.ndarray, qpos: np.ndarray, qvel: np.ndarray) -> None:
        """Reset the listed envs to (qpos, qvel) and recompute their derived fields (mj_forward)."""

    def raw(self) -> dict[str, torch.Tensor]:
        """Batched mjData fields named as in state.RAW_FIELDS, shape (N, *mjData shape), on `device`."""

    def unstable(self) -> torch.Tensor:
        """(N,) bool: envs whose physics blew up (and were reset by MuJoCo) during the last step."""

    def close(self) -> None:
        """Release threads or device memory."""
