"""Training, evaluation and analysis: PPO (rsl_rl 5.5.1) over batched envs, and what the policy really does.

Public API (imported lazily: rsl_rl and tensorboard load only when used):
- `TrainConfig`, `default_config(morphology, **overrides)`            (config.py)
- `train(task, reward_fn, config, out_dir, ...) -> TrainResult`, `Trainer`  (trainer.py)
- `evaluate(run_dir, episodes, ...) -> EvalResult`, `rollout`, `export_npz`, `replay_success`,
  `render_video`                                                         (evaluate.py)
- `analyze(run_dir) -> Analysis`, `reflect`, `analyze_rollouts`         (analyzer.py)
- `RewardFault`, `TrainEnv`                                              (vecenv.py)
- `vet_and_load_reward`, `load_reward_code`                              (reward.py)
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TrainConfig": "config",
    "default_config": "config",
    "MORPHOLOGY_DEFAULTS": "config",
    "Trainer": "trainer",
    "train": "trainer",
    "Progress": "trainer",
    "load_checkpoint": "trainer",
    "evaluate": "evaluate",
    "rollout": "evaluate",
    "export_npz": "evaluate",
    "load_npz": "evaluate",
    "replay_success": "evaluate",
    "render_video": "evaluate",
    "EvalResult": "evaluate",
    "analyze": "analyzer",
    "reflect": "analyzer",
    "analyze_rollouts": "analyzer",
    "Analysis": "analyzer",
    "RewardFault": "vecenv",
    "TrainEnv": "vecenv",
    "vet_and_load_reward": "reward",
    "load_reward_code": "reward",
    "TrainRecord": "records",
    "TrainResult": "records",
    "RunManifest": "records",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'synth_reward.train' has no attribute {name!r}")
    return getattr(importlib.import_module(f"synth_reward.train.{_EXPORTS[name]}"), name)
