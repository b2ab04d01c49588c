"""Typed records the sandbox hands to the critic, the CLI and the run store."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from synth_reward.errors import SynthRewardError

Kind = Literal["reward", "success"]
"""What a piece of generated code is: a reward function or a success check."""
Stage = Literal["extract", "syntax", "policy", "probe", "accepted"]
"""Where vetting stopped: pulling code out of the reply, parsing it, the static policy,
the isolated probe run, or nowhere (accepted)."""

FUNCTION_NAMES: dict[str, str] = {"reward": "compute_reward", "success": "success"}
"""The function each kind of code must define."""
SIGNATURES: dict[str, str] = {
    "reward": "compute_reward(state, action) -> (reward[N], {name: tensor[N]})",
    "success": "success(state) -> bool tensor[N]",
}


class Finding(BaseModel):
    """One problem with a candidate: where it is and what to do instead."""

    stage: Stage
    reason: str
    """One paragraph a person and an LLM can act on: expected, found, what to write instead."""
    line: int | None = None
    """1-based line in the extracted code, where the problem has one."""
    culprit: str | None = None
    """The offending construct in a few words (`open(...)`, `while loop`, `reward shape`)."""


class Rejected(SynthRewardError):
    """Raised by `load_reward`/`load_success` when code fails the static policy."""

    exit_code = 1

    def __init__(self, finding: Finding) -> None:
        super().__init__(f"{finding.stage}: {finding.reason}")
        self.finding = finding


class IsolationReport(BaseModel):
    """Which isolation layers a sandboxed process ran under, and which were unavailable."""

    used: list[str] = Field(default_factory=list)
    """e.g. `bwrap (no network, read-only /, private /tmp, no pid view)`, `seccomp (...)`."""
    missing: list[str] = Field(default_factory=list)
    """Each missing layer with the reason, e.g. `bwrap: not installed (apt-get install bubblewrap)`."""


class Verdict(BaseModel):
    """The critic's answer for one candidate."""

    accepted: bool
    kind: Kind
    morphology: str
    stage: Stage
    """`accepted`, or the stage that rejected the code."""
    reason: str = ""
    line: int | None = None
    culprit: str | None = None
    components: list[str] = Field(default_factory=list)
    """Names of the reward's components (empty for success checks)."""
    num_envs: int
    """N, the production batch size the probe used."""
    ms_per_call: float | None = None
    """Median wall time of one call at N envs, in milliseconds (single-threaded torch)."""
    ms_per_call_4x: float | None = None
    """Median wall time of one call at 4N envs, in milliseconds."""
    isolation: IsolationReport = Field(default_factory=IsolationReport)
    code: str = ""
    """The code that was vetted, as extracted from the reply."""
    seconds: float = 0.0
    """Wall time to reach this verdict."""

    def feedback(self) -> str:
        """The text to give the LLM (or a person) about this candidate."""
        if self.accepted:
            parts = ", ".join(self.components) or "no components"
            return f"The {self.kind} code was accepted (components: {parts})."
        where = f" (line {self.line})" if self.line else ""
        return f"The {self.kind} code was rejected at the {self.stage} stage{where}: {self.reason}"

    @classmethod
    def rejected(cls, finding: Finding, **fields: Any) -> Verdict:
        return cls(
            accepted=False,
            stage=finding.stage,
            reason=finding.reason,
            line=finding.line,
            culprit=finding.culprit,
            **fields,
        )


class ProbeLimits(BaseModel):
    """Budgets for one probe; the defaults suit a 2-core CPU machine."""

    call_seconds: float = 1.0
    """Wall-clock limit for one call; a call still running is interrupted and the code rejected."""
    max_ms_per_call: float = 25.0
    """Median time per call allowed at the production batch size N (single torch thread)."""
    max_ms_per_call_4x: float = 100.0
    """Median time per call allowed at 4N."""
    timing_seconds: float = 0.15
    """How long to spend timing at each batch size."""


class ProbeResult(BaseModel):
    """What the worker sends back: a finding (rejected) or the measurements (accepted)."""

    finding: Finding | None = None
    components: list[str] = Field(default_factory=list)
    ms_per_call: float | None = None
    ms_per_call_4x: float | None = None
    used: list[str] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list)
