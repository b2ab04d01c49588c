"""The critic's sandbox stages in order: extract, parse, static policy, isolated probe.

`vet_reward` / `vet_success` take an LLM reply (or plain source) and return a `Verdict`.
The cheap stages run in this process and never execute the code; only code that passes
them is sent to an isolated worker. Rejections stop at the first stage that fails, with
one paragraph the designer's next prompt can quote.
"""

from __future__ import annotations

import time
from typing import Any

from synth_reward.envs.morphology import get_morphology
from synth_reward.sandbox.extract import extract
from synth_reward.sandbox.policy import first_problem
from synth_reward.sandbox.records import Finding, Kind, ProbeLimits, Verdict
from synth_reward.sandbox.runner import ProbeRunner, default_runner

DEFAULT_NUM_ENVS = 64
"""Production batch size the probe times at (and at 4x); pass the trainer's own."""


def vet_code(
    code_or_reply: str,
    morphology: str,
    *,
    kind: Kind = "reward",
    num_envs: int = DEFAULT_NUM_ENVS,
    limits: ProbeLimits | None = None,
    runner: ProbeRunner | None = None,
) -> Verdict:
    """Vet one candidate. Raises UsageError for an unknown morphology; never raises for bad code."""
    start = time.perf_counter()
    morph = get_morphology(morphology).name
    fields: dict[str, Any] = {"kind": kind, "morphology": morph, "num_envs": num_envs}
    got = extract(code_or_reply, kind)
    if isinstance(got, Finding):
        return Verdict.rejected(got, **fields, seconds=time.perf_counter() - start)
    code, tree = got
    fields["code"] = code
    problem = first_problem(tree, kind)
    if problem is not None:
        return Verdict.rejected(problem, **fields, seconds=time.perf_counter() - start)
    result, isolation = (runner or default_runner()).probe(code, kind, morph, num_envs, limits or ProbeLimits())
    fields |= {"isolation": isolation, "ms_per_call": result.ms_per_call, "ms_per_call_4x": result.ms_per_call_4x}
    if result.finding is not None:
        return Verdict.rejected(result.finding, **fields, seconds=time.perf_counter() - start)
    return Verdict(
        accepted=True, stage="accepted", components=result.components, **fields, seconds=time.perf_counter() - start
    )


def vet_reward(
    code_or_reply: str,
    morphology: str,
    *,
    num_envs: int = DEFAULT_NUM_ENVS,
    limits: ProbeLimits | None = None,
    runner: ProbeRunner | None = None,
) -> Verdict:
    """Vet `compute_reward(state, action) -> (reward[N], {name: tensor[N]})`."""
    return vet_code(code_or_reply, morphology, kind="reward", num_envs=num_envs, limits=limits, runner=runner)


def vet_success(
    code_or_reply: str,
    morphology: str,
    *,
    num_envs: int = DEFAULT_NUM_ENVS,
    limits: ProbeLimits | None = None,
    runner: ProbeRunner | None = None,
) -> Verdict:
    """Vet `success(state) -> bool tensor[N]`."""
    return vet_code(code_or_reply, morphology, kind="success", num_envs=num_envs, limits=limits, runner=runner)


def prewarm(morphology: str, num_envs: int = DEFAULT_NUM_ENVS) -> None:
    """Start the default runner's spare worker now, so the first verdict is warm too."""
    default_runner().prewarm(get_morphology(morphology).name, num_envs)
