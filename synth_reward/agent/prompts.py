"""Prompts: templates in synth_reward/prompts/*.md, rendered with `string.Template`.

`string.Template` ($name placeholders) rather than str.format because prompts quote
Python code full of braces. Each template is a file a person can read and edit; this
module only fills in the blanks and assembles message lists:

- `designer_messages`: the reward designer's conversation. Eureka's "Markovian" context:
  system prompt, task prompt, then (from iteration 2) the best reward so far as the
  assistant's turn and the feedback on it as the next user turn. Nothing older.
- `success_messages`: the conversation that asks for a success check for a free-form
  instruction (written once, vetted, shown to the person, then frozen).
- `review_messages` / `parse_review`: Auto MC-Reward's semantic critic, an LLM reading a
  vetted reward against the task before training; its objections go back as feedback.
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Sequence
from importlib import resources

from pydantic import BaseModel, Field

from synth_reward.agent.llm import Message
from synth_reward.agent.resolve import ResolvedTask
from synth_reward.envs import describe_state, get_morphology

TEMPLATE_NAMES = (
    "system_reward",
    "system_success",
    "task",
    "success_request",
    "feedback",
    "feedback_no_best",
    "feedback_reflection",
    "feedback_failure",
    "feedback_rejections",
    "feedback_training_errors",
    "feedback_review",
    "feedback_human",
    "review_system",
    "review",
)
MAX_REASON_CHARS = 600
"""A rejection or training error is cut to this length in a prompt (tracebacks can be long)."""
MAX_REASONS = 8
"""At most this many distinct rejection reasons go into one feedback prompt."""


@functools.cache
def template(name: str) -> string.Template:
    """The template synth_reward/prompts/<name>.md (package data)."""
    if name not in TEMPLATE_NAMES:
        raise KeyError(f"unknown prompt template {name!r}; templates: {', '.join(TEMPLATE_NAMES)}")
    text = resources.files("synth_reward").joinpath("prompts", f"{name}.md").read_text(encoding="utf-8")
    return string.Template(text)


def render(name: str, **values: object) -> str:
    """Fill template `name`; a missing value raises KeyError (a template and its caller disagree)."""
    return template(name).substitute({k: str(v) for k, v in values.items()}).strip() + "\n"


def allowed_imports() -> str:
    """The modules generated code may import, from the sandbox's allowlist (one source of truth)."""
    from synth_reward.sandbox.allowlist import ALLOWED_MODULES

    preferred = ["torch", "torch.nn.functional", "torch.linalg", "math"]
    rest = sorted(m for m in ALLOWED_MODULES if m not in preferred)
    return ", ".join(f"`{m}`" for m in [*(m for m in preferred if m in ALLOWED_MODULES), *rest])


# ---- records the loop hands in -----------------------------------------------------------
class Note(BaseModel):
    """Something said about one candidate: why it was rejected, or how its training failed."""

    candidate: str
    """The candidate's id (i1c3) or any short label."""
    reason: str


class Feedback(BaseModel):
    """Everything the designer should hear about the last iteration. Every field is optional."""

    result: str | None = None
    """One line about the best candidate's outcome, e.g. "Success rate 25% over 64 episodes."."""
    success_rate: float | None = None
    """Used for the result line when `result` is not given."""
    reflection: str | None = None
    """The analyzer's reward reflection: each component's values over training (Eureka)."""
    failure_analysis: str | None = None
    """The analyzer's trajectory summary: which success conditions failed, how, how often."""
    rejections: list[Note] = Field(default_factory=list)
    """Candidates the critic rejected, with its reasons."""
    training_errors: list[Note] = Field(default_factory=list)
    review_objections: list[str] = Field(default_factory=list)
    """The semantic reviewer's objections to the best (or a) candidate."""
    human: str | None = None
    """A person's words after watching the policy (a feedback session, agent/session.py)."""
    human_candidate: str | None = None
    """The candidate the person's words are about (the base of this iteration)."""


class Best(BaseModel):
    """The best candidate so far: its code and id."""

    candidate: str
    code: str


class Review(BaseModel):
    """The semantic reviewer's verdict on one reward."""

    accepted: bool
    objections: list[str] = Field(default_factory=list)
    parsed: bool = True
    """False when the reply had no VERDICT line; the reward is then accepted and the reply kept."""
    raw: str = ""


# ---- pieces ------------------------------------------------------------------------------
def success_section(resolved: ResolvedTask) -> str:
    """How success is judged, in words (and in code for a check written for this run)."""
    task = resolved.task
    rule = task.success_rule if task is not None else "half_of_steps"
    when = (
        "An episode succeeds when the check holds on at least half of its steps."
        if rule == "half_of_steps"
        else "An episode succeeds when the check holds on any one step."
    )
    if resolved.success_code is not None:
        return (
            f"{resolved.success_text}\n{when} The check is this code; it is fixed for the whole run:\n\n"
            f"```python\n{resolved.success_code.strip()}\n```"
        )
    if task is not None:
        return f"{task.success_text}\n{when}"
    return "No success check has been written yet; reward the behaviour the instruction describes."


def _termination(resolved: ResolvedTask) -> str:
    task = resolved.task
    if task is not None and task.termination == "unhealthy":
        return "An episode ends early when the robot falls (Gymnasium's healthy rule for this robot)."
    return "Episodes run to the end whatever the robot does; there is no early termination."


def task_prompt(resolved: ResolvedTask, state_description: str | None = None) -> str:
    """The task message: instruction, robot, success check, and the generated State description."""
    morph = get_morphology(resolved.morphology)
    return render(
        "task",
        instruction=resolved.instruction,
        morphology=morph.name,
        episode_length=resolved.episode_length,
        episode_seconds=f"{resolved.episode_length * morph.dt:g}",
        termination=_termination(resolved),
        success_section=success_section(resolved),
        state_description=state_description if state_description is not None else describe_state(morph.name),
    )


def system_prompt(kind: str = "reward") -> str:
    """The designer's system prompt for writing a reward (kind="reward") or a success check ("success")."""
    if kind not in {"reward", "success"}:
        raise ValueError(f"kind must be 'reward' or 'success', got {kind!r}")
    return render(f"system_{kind}", allowed_imports=allowed_imports())


def _bullets(notes: Sequence[Note]) -> str:
    """One line per distinct reason (cut to MAX_REASON_CHARS), naming the candidates that hit it."""
    by_reason: dict[str, list[str]] = {}
    for note in notes:
        reason = " ".join(note.reason.split())
        if len(reason) > MAX_REASON_CHARS:
            reason = reason[: MAX_REASON_CHARS - 3] + "..."
        by_reason.setdefault(reason, []).append(note.candidate)
    lines = [f"- {', '.join(cands)}: {reason}" for reason, cands in list(by_reason.items())[:MAX_REASONS]]
    if len(by_reason) > MAX_REASONS:
        lines.append(f"- ... and {len(by_reason) - MAX_REASONS} more reasons")
    return "\n".join(lines)


def feedback_sections(feedback: Feedback) -> str:
    """The feedback sub-prompts that have something to say, in a fixed order (the person last, loudest)."""
    parts: list[str] = []
    if feedback.reflection:
        parts.append(render("feedback_reflection", reflection=feedback.reflection.strip()))
    if feedback.failure_analysis:
        parts.append(render("feedback_failure", analysis=feedback.failure_analysis.strip()))
    if feedback.review_objections:
        parts.append(
            render("feedback_review", objections="\n".join(f"- {o.strip()}" for o in feedback.review_objections))
        )
    if feedback.rejections:
        parts.append(render("feedback_rejections", rejections=_bullets(feedback.rejections)))
    if feedback.training_errors:
        parts.append(render("feedback_training_errors", errors=_bullets(feedback.training_errors)))
    if feedback.human and feedback.human.strip():
        about = f" about candidate {feedback.human_candidate}" if feedback.human_candidate else ""
        words = " ".join(feedback.human.split()).replace('"', "'")
        parts.append(render("feedback_human", feedback=words, about=about))
    return "\n".join(parts).strip() or "(no further feedback was recorded)"


def feedback_prompt(iteration: int, feedback: Feedback, best: Best | None = None) -> str:
    """The user turn after the best reward: outcome, reflection, analysis, rejections, errors, the person."""
    sections = feedback_sections(feedback)
    if best is None:
        return render("feedback_no_best", iteration=iteration, sections=sections)
    result = feedback.result
    if result is None:
        result = (
            f"Its policy succeeded in {feedback.success_rate:.0%} of the evaluation episodes."
            if feedback.success_rate is not None
            else ""
        )
    return render("feedback", iteration=iteration, candidate=best.candidate, result=result, sections=sections)


# ---- conversations -----------------------------------------------------------------------
def designer_messages(
    resolved: ResolvedTask,
    *,
    best: Best | None = None,
    feedback: Feedback | None = None,
    iteration: int = 1,
    state_description: str | None = None,
) -> list[Message]:
    """The reward designer's messages for one iteration (the same list for each of its K samples).

    Iteration 1: [system, task]. Later: [system, task, assistant: best code, user: feedback]
    when there is a best candidate, or [system, task, user: feedback] when none trained yet.
    """
    messages: list[Message] = [
        {"role": "system", "content": system_prompt("reward")},
        {"role": "user", "content": task_prompt(resolved, state_description)},
    ]
    if best is not None:
        messages.append({"role": "assistant", "content": f"```python\n{best.code.strip()}\n```"})
    if best is not None or feedback is not None:
        messages.append({"role": "user", "content": feedback_prompt(iteration, feedback or Feedback(), best)})
    return messages


def success_messages(resolved: ResolvedTask, state_description: str | None = None) -> list[Message]:
    """Messages asking for `success(state)` for a free-form instruction."""
    morph = get_morphology(resolved.morphology)
    user = render(
        "success_request",
        instruction=resolved.instruction,
        morphology=morph.name,
        episode_length=resolved.episode_length,
        episode_seconds=f"{resolved.episode_length * morph.dt:g}",
        state_description=state_description if state_description is not None else describe_state(morph.name),
    )
    return [{"role": "system", "content": system_prompt("success")}, {"role": "user", "content": user}]


def review_messages(resolved: ResolvedTask, code: str) -> list[Message]:
    """Messages asking the semantic reviewer whether `code` serves the task."""
    user = render(
        "review",
        instruction=resolved.instruction,
        morphology=resolved.morphology,
        success_section=success_section(resolved),
        code=code.strip(),
    )
    return [{"role": "system", "content": render("review_system")}, {"role": "user", "content": user}]


_VERDICT = re.compile(r"^\W*verdict\W*(accept|object)", re.IGNORECASE | re.MULTILINE)


def parse_review(text: str) -> Review:
    """Read a reviewer's reply: VERDICT: ACCEPT, or VERDICT: OBJECT followed by "- objection" lines.

    A reply without a verdict line counts as accepted (parsed=False): a reviewer that
    cannot follow the format must not block every candidate.
    """
    match = _VERDICT.search(text or "")
    if match is None:
        return Review(accepted=True, parsed=False, raw=text or "")
    accepted = match.group(1).lower() == "accept"
    after = (text or "")[match.end() :]
    objections = [m.group(1).strip() for m in re.finditer(r"^\s*(?:[-*•]|\d+[.)])\s+(.+)$", after, re.MULTILINE)]
    if not accepted and not objections:
        rest = " ".join(after.split())
        objections = [rest] if rest else ["the reviewer objected without saying why"]
    return Review(accepted=accepted, objections=[] if accepted else objections, raw=text)
