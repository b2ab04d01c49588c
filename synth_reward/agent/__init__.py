"""The agent: LLM access, prompts, task resolution, designers, the run store (and the loop on top).

Modules, one per stage:
- `store`: the run folder runs/<run-id>/ (atomic writes, event log, candidate folders, LLM cache).
- `llm`: litellm with K concurrent samples, retries, timeouts, accounting and a spend cap.
- `prompts`: the prompt templates in synth_reward/prompts/ and the message lists built from them.
- `resolve`: a sentence (+ --env, --success) to a built-in or free-form task.
- `offline`: the offline template designer, a labelled baseline used when no LLM is configured.

Names are imported lazily so `import synth_reward.agent` costs nothing (litellm takes seconds).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "RunInfo": "store",
    "RunStore": "store",
    "CandidateStore": "store",
    "list_runs": "store",
    "check_writable": "store",
    "new_run_id": "store",
    "LLMClient": "llm",
    "LLMSettings": "llm",
    "Completion": "llm",
    "Usage": "llm",
    "LLMError": "llm",
    "SpendCapReached": "llm",
    "llm_available": "llm",
    "require_llm": "llm",
    "Best": "prompts",
    "Feedback": "prompts",
    "Note": "prompts",
    "Review": "prompts",
    "designer_messages": "prompts",
    "success_messages": "prompts",
    "review_messages": "prompts",
    "parse_review": "prompts",
    "ResolvedTask": "resolve",
    "resolve_task": "resolve",
    "OfflineDesigner": "offline",
    "OfflineCandidate": "offline",
}
__all__ = [
    "Best",
    "CandidateStore",
    "Completion",
    "Feedback",
    "LLMClient",
    "LLMError",
    "LLMSettings",
    "Note",
    "OfflineCandidate",
    "OfflineDesigner",
    "ResolvedTask",
    "Review",
    "RunInfo",
    "RunStore",
    "SpendCapReached",
    "Usage",
    "check_writable",
    "designer_messages",
    "list_runs",
    "llm_available",
    "new_run_id",
    "parse_review",
    "require_llm",
    "resolve_task",
    "review_messages",
    "success_messages",
]

if TYPE_CHECKING:
    from synth_reward.agent.llm import (
        Completion,
        LLMClient,
        LLMError,
        LLMSettings,
        SpendCapReached,
        Usage,
        llm_available,
        require_llm,
    )
    from synth_reward.agent.offline import OfflineCandidate, OfflineDesigner
    from synth_reward.agent.prompts import (
        Best,
        Feedback,
        Note,
        Review,
        designer_messages,
        parse_review,
        review_messages,
        success_messages,
    )
    from synth_reward.agent.resolve import ResolvedTask, resolve_task
    from synth_reward.agent.store import (
        CandidateStore,
        RunInfo,
        RunStore,
        check_writable,
        list_runs,
        new_run_id,
    )


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'synth_reward.agent' has no attribute {name!r}")
    return getattr(importlib.import_module(f"synth_reward.agent.{_EXPORTS[name]}"), name)
