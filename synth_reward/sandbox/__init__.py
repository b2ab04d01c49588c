"""Vetting untrusted generated code: extraction, static policy, isolated probe, loading.

Public API:
- `vet_reward(reply, morphology, num_envs=...)` / `vet_success(...)` -> `Verdict`
- `load_reward(code)` / `load_success(code)` -> the plain function, for the hot loop
- `isolated_command(argv, writable)` / `isolate_current_process(write_dir)`: the same OS
  isolation for a training process

Names are imported lazily, so `synth_reward.sandbox.runner` (no torch) can start a warm
worker while the caller is still importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "DEFAULT_NUM_ENVS": "critic",
    "prewarm": "critic",
    "vet_code": "critic",
    "vet_reward": "critic",
    "vet_success": "critic",
    "isolate_current_process": "isolation",
    "isolated_command": "isolation",
    "load_reward": "loader",
    "load_success": "loader",
    "Finding": "records",
    "IsolationReport": "records",
    "Kind": "records",
    "ProbeLimits": "records",
    "Rejected": "records",
    "Verdict": "records",
    "ProbeRunner": "runner",
    "SandboxError": "runner",
}
__all__ = [
    "DEFAULT_NUM_ENVS",
    "Finding",
    "IsolationReport",
    "Kind",
    "ProbeLimits",
    "ProbeRunner",
    "Rejected",
    "SandboxError",
    "Verdict",
    "isolate_current_process",
    "isolated_command",
    "load_reward",
    "load_success",
    "prewarm",
    "vet_code",
    "vet_reward",
    "vet_success",
]

if TYPE_CHECKING:
    from synth_reward.sandbox.critic import (
        DEFAULT_NUM_ENVS,
        prewarm,
        vet_code,
        vet_reward,
        vet_success,
    )
    from synth_reward.sandbox.isolation import isolate_current_process, isolated_command
    from synth_reward.sandbox.loader import load_reward, load_success
    from synth_reward.sandbox.records import (
        Finding,
        IsolationReport,
        Kind,
        ProbeLimits,
        Rejected,
        Verdict,
    )
    from synth_reward.sandbox.runner import ProbeRunner, SandboxError


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'synth_reward.sandbox' has no attribute {name!r}")
    return getattr(importlib.import_module(f"synth_reward.sandbox.{_EXPORTS[name]}"), name)
