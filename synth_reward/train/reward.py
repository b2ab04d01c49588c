"""Loading reward code for training: through the sandbox's vetting and loader.

`vet_and_load_reward` is what `synth-reward train --reward FILE` uses: the static policy
and the isolated probe (`synth_reward.sandbox.vet_reward`), then `load_reward`, which
compiles the vetted AST into a plain function for the hot loop. `load_reward_code` only
re-applies the static policy (cheap), for code a run folder already vetted.
"""

from __future__ import annotations

from pathlib import Path

from synth_reward.envs.batched import RewardFn
from synth_reward.envs.state import State
from synth_reward.envs.tasks import Task
from synth_reward.errors import SynthRewardError, UsageError


class RewardRejected(SynthRewardError):
    """The sandbox rejected the reward code; the message is its reason."""

    exit_code = 1


def read_reward_file(path: str | Path) -> str:
    """The text of a reward file, or UsageError in one line."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise UsageError(f"cannot read reward file {path}: {reason}") from None


def load_reward_code(code: str) -> RewardFn:
    """compute_reward from code, through the sandbox's static policy and loader (no probe)."""
    from synth_reward.sandbox import Rejected, load_reward

    try:
        return load_reward(code)
    except Rejected as exc:
        raise RewardRejected(f"reward rejected: {exc}") from None


def vet_and_load_reward(code: str, morphology: str, num_envs: int) -> RewardFn:
    """Vet code in the sandbox (static policy + isolated probe on real states), then load it."""
    from synth_reward.sandbox import vet_reward

    verdict = vet_reward(code, morphology, num_envs=num_envs)
    if not verdict.accepted:
        raise RewardRejected(verdict.feedback())
    return load_reward_code(verdict.code)


SPARSE = "sparse"
"""reward_source of a run trained on `sparse_reward`."""


def sparse_reward(task: Task) -> RewardFn:
    """The sparse baseline: 1 on a step where the task's success check holds, else 0.

    Built from the check function itself (the task's built-in check or its compiled success_code),
    so it is exactly the check the run is judged by. Eureka's human normalized score measures a
    reward against this baseline and the human-written one.
    """
    check = task.success_fn()

    def compute_reward(state: State, action: object) -> tuple:  # type: ignore[type-arg]
        hit = check(state).to(state.body_pos.dtype)
        return hit, {"success": hit}

    return compute_reward
