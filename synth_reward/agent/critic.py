"""The critic: a candidate's reward is vetted before it may train.

Two parts, after Auto MC-Reward: the sandbox (synth_reward/sandbox: a static policy, then an
isolated probe on real states of the morphology: shapes, finiteness, speed) always; and,
when asked for (`--review`) and an LLM is configured, a semantic review that asks the LLM
whether the reward pays for the task's behaviour rather than a shortcut.

The critic writes the candidate's `reward.py` (the extracted code) only when it is
accepted, and its `verdict.json` (sandbox `Verdict`) and `review.json` (`Review`) as the
stage's commit records, last; a resumed run reads them back instead of vetting again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from synth_reward.agent.llm import LLMClient
from synth_reward.agent.prompts import Review, parse_review, review_messages
from synth_reward.agent.records import CandidateResult
from synth_reward.agent.resolve import ResolvedTask
from synth_reward.agent.runner import one_line
from synth_reward.agent.store import CandidateStore
from synth_reward.sandbox.records import Verdict

Event = Callable[[str, dict[str, Any]], None]


def _noop(event: str, data: dict[str, Any]) -> None:
    pass


class Critic:
    """Vets candidates for one task."""

    def __init__(
        self,
        task: ResolvedTask,
        num_envs: int,
        *,
        reviewer: LLMClient | None = None,
        emit: Event = _noop,
    ) -> None:
        self.task, self.num_envs, self.reviewer, self.emit = task, num_envs, reviewer, emit

    def verdict(self, cand: CandidateStore) -> Verdict:
        """The sandbox's verdict on the candidate's reply (reply.txt); reward.py is written when accepted."""
        saved = cand.read("verdict")
        if saved is not None:
            return Verdict.model_validate(saved)
        from synth_reward.sandbox import vet_reward

        self.emit("stage", {"id": cand.id, "stage": "vetting"})
        v = vet_reward(cand.code("reply.txt") or "", self.task.morphology, num_envs=self.num_envs)
        if v.accepted:
            cand.write_code(v.code, "reward.py")
        cand.write("verdict", v)  # the verdict is the stage's commit record: written last
        return v

    def review(self, cand: CandidateStore) -> Review | None:
        """The LLM's semantic review of an accepted reward (None without a reviewer)."""
        if self.reviewer is None:
            return None
        saved = cand.read("review")
        if saved is not None:
            return Review.model_validate(saved)
        self.emit("stage", {"id": cand.id, "stage": "review"})
        reply = self.reviewer.complete(review_messages(self.task, cand.code("reward.py") or ""), n=1)[0]
        r = parse_review(reply.text or "")
        cand.write("review", r)
        return r

    def vet(self, cand: CandidateStore) -> CandidateResult | None:
        """None when the candidate may train; else its result (rejected, or the review objected)."""
        base: dict[str, Any] = {"id": cand.id, "iteration": cand.iteration, "index": cand.index}
        v = self.verdict(cand)
        if not v.accepted:
            return CandidateResult(**base, stage="rejected", reason=f"rejected at {v.stage}: {one_line(v.reason)}")
        r = self.review(cand)
        if r is not None and not r.accepted:
            return CandidateResult(
                **base, stage="review_objected", components=list(v.components), reason="; ".join(r.objections)
            )
        return None
