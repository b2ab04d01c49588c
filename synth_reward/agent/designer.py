"""The designer: K reward candidates per round, from an LLM or from the offline templates.

Both implement `Designer`: given the task, the round, the best candidate so far (its code
and the analyzer's typed record of how it trained) and the round's feedback, return K
replies. An LLM reply is raw text (the critic extracts the code from it); a template
reply is code. Replies are cached by the caller in the run folder, so a resumed run never
asks twice.

The offline designer is a labelled baseline, not a pretend LLM: it fills fixed templates
and adjusts their weights from the analysis (agent/offline.py).
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel

from synth_reward.agent.llm import LLMClient
from synth_reward.agent.offline import LABEL as OFFLINE_LABEL
from synth_reward.agent.offline import OfflineDesigner
from synth_reward.agent.prompts import Best, Feedback, designer_messages
from synth_reward.agent.records import Analysis, Design
from synth_reward.agent.resolve import ResolvedTask
from synth_reward.envs import describe_state


class BestSoFar(BaseModel):
    """The best candidate so far, as the next round sees it."""

    id: str
    code: str
    analysis: Analysis | None = None


class Designer(Protocol):
    """Writes one round of K reward candidates."""

    label: str
    """who writes them, for records and people ("offline template designer (...)", "LLM gpt-4o")."""

    def design(
        self,
        task: ResolvedTask,
        k: int,
        iteration: int,
        best: BestSoFar | None = None,
        feedback: Feedback | None = None,
    ) -> Design: ...


class LLMDesigner:
    """Eureka's designer: K samples of one prompt (system, task, State API; later the best code and its
    reward reflection)."""

    def __init__(self, client: LLMClient) -> None:
        self.client = client
        self.label = f"LLM {client.settings.model}"

    def design(
        self,
        task: ResolvedTask,
        k: int,
        iteration: int,
        best: BestSoFar | None = None,
        feedback: Feedback | None = None,
    ) -> Design:
        messages = designer_messages(
            task,
            best=Best(candidate=best.id, code=best.code) if best else None,
            feedback=feedback,
            iteration=iteration,
            state_description=describe_state(task.morphology),
        )
        replies = self.client.complete(messages, n=k)
        texts = [r.text if r.ok else f"# the LLM call failed: {r.error}\n" for r in replies]
        return Design(iteration=iteration, designer=self.label, replies=texts)


class TemplateDesigner:
    """The offline baseline: template rewards, variant 0 adjusted from the best candidate's analysis."""

    label = OFFLINE_LABEL

    def __init__(self, seed: int = 0) -> None:
        self.templates = OfflineDesigner(seed=seed)

    def design(
        self,
        task: ResolvedTask,
        k: int,
        iteration: int,
        best: BestSoFar | None = None,
        feedback: Feedback | None = None,
    ) -> Design:
        fb = None
        if best is not None:
            analysis = best.analysis.model_dump(mode="json") if best.analysis else None
            fb = {"code": best.code, "analysis": analysis}
        codes = [c.code for c in self.templates.propose(task, k, feedback=fb, iteration=iteration)]
        return Design(iteration=iteration, designer="offline", replies=codes)
