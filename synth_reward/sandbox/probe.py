"""Dynamic checks: call the candidate on real states of its robot and inspect what comes back.

Runs inside the isolated worker process (`worker.py`), never in the caller. The states
come from `synth_reward.envs.poses.probe_states` (standing, fallen, zeros, extreme
velocities, random, ...), built in the worker from the morphology's name. Each
`check_*` function returns a `Finding` (what was expected, what was found, what to do)
or None. A candidate passes when, on every state: it returns the right types, shapes,
dtype and device, only finite values, the same values on a second call, leaves its
inputs unchanged, and is fast enough at the production batch size and at 4x it.
"""

from __future__ import annotations

import math
import signal
import statistics
import time
import traceback
from collections.abc import Callable
from types import FrameType
from typing import Any

import torch

from synth_reward.envs.state import STATE_ATTRIBUTES, State
from synth_reward.sandbox.loader import CODE_FILENAME, load_namespace
from synth_reward.sandbox.records import (
    FUNCTION_NAMES,
    SIGNATURES,
    Finding,
    Kind,
    ProbeLimits,
    ProbeResult,
    Rejected,
)

MAX_COMPONENTS = 16
"""A reward with more named terms than this is unreadable in the reflection and the logs."""
MAX_NAME_CHARS = 64


class CallTimeout(BaseException):
    """Raised inside a call that ran past its limit (BaseException: generated code cannot catch it anyway)."""


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise CallTimeout


def _probe(reason: str, culprit: str, line: int | None = None) -> Finding:
    return Finding(stage="probe", reason=reason[:1].upper() + reason[1:], culprit=culprit, line=line)


def probe_actions(state: State, num_actions: int, name: str) -> torch.Tensor:
    """An action batch suited to a probe state: zeros, full-scale extremes, or reproducible noise."""
    n = state.num_envs
    if name == "zeros":
        return torch.zeros(n, num_actions, device=state.device)
    if name.startswith("extreme"):
        signs = torch.where(torch.arange(n * num_actions) % 2 == 0, 1.0, -1.0).reshape(n, num_actions)
        return signs.to(state.device)
    gen = torch.Generator().manual_seed(0)
    return (torch.rand(n, num_actions, generator=gen) * 2 - 1).to(state.device)


def call_with_limit(fn: Callable[..., Any], args: tuple[Any, ...], seconds: float) -> Any:
    """Call `fn(*args)`; raise CallTimeout if it runs longer than `seconds` of wall time."""
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn(*args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def run_probe(
    code: str,
    kind: Kind,
    states: dict[str, State],
    num_actions: int,
    limits: ProbeLimits,
) -> ProbeResult:
    """Load `code` and run every check on every state; the first problem ends the probe."""
    name = FUNCTION_NAMES[kind]
    try:
        namespace = call_with_limit(load_namespace, (code, kind), limits.call_seconds)
    except Rejected as exc:
        return ProbeResult(finding=exc.finding)
    except BaseException as exc:  # noqa: BLE001 (anything the definitions raise is the candidate's fault)
        return ProbeResult(finding=_exception_finding(exc, "loading the code", name))
    fn = namespace[name]
    components: list[str] = []
    for state_name, state in states.items():
        args = (state, probe_actions(state, num_actions, state_name)) if kind == "reward" else (state,)
        before = _snapshot(args)
        outputs, elapsed = [], []
        for _ in range(2):
            try:
                start = time.perf_counter()
                outputs.append(call_with_limit(fn, args, limits.call_seconds))
                elapsed.append((time.perf_counter() - start) * 1e3)
            except CallTimeout:
                return ProbeResult(
                    finding=_probe(
                        f"Calling `{name}` on the `{state_name}` state did not return within {limits.call_seconds:g} s. "
                        f"Remove loops that depend on the data or the batch size; use vectorized torch operations.",
                        "time limit",
                    )
                )
            except BaseException as exc:  # noqa: BLE001
                return ProbeResult(
                    finding=_exception_finding(exc, f"calling `{name}` on the `{state_name}` state", name)
                )
        check = check_reward_output if kind == "reward" else check_success_output
        finding, found = check(outputs[0], state, state_name)
        finding = (
            finding
            or check_deterministic(outputs, state_name, name)
            or check_inputs_unchanged(before, args, state_name, name)
        )
        if finding is None and min(elapsed) > 2 * limits.max_ms_per_call:  # clearly too slow: skip the rest
            finding = check_speed(min(elapsed), None, state.num_envs, limits, name)
        if finding is not None:
            return ProbeResult(finding=finding)
        components = found
    first = next(iter(states.values()))
    big = first.index(torch.arange(4 * first.num_envs, device=first.device) % first.num_envs)
    times = []
    for state in (first, big):
        args = (state, probe_actions(state, num_actions, "random")) if kind == "reward" else (state,)
        times.append(time_per_call(fn, args, limits))
    finding = check_speed(times[0], times[1], first.num_envs, limits, name)
    return ProbeResult(finding=finding, components=components, ms_per_call=times[0], ms_per_call_4x=times[1])


def time_per_call(fn: Callable[..., Any], args: tuple[Any, ...], limits: ProbeLimits) -> float:
    """Median wall time of one call in ms, over repeated calls for about `timing_seconds`."""
    samples: list[float] = []
    end = time.perf_counter() + limits.timing_seconds
    while len(samples) < 3 or (time.perf_counter() < end and len(samples) < 200):
        start = time.perf_counter()
        call_with_limit(fn, args, limits.call_seconds)
        samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples)


# ---- checks ------------------------------------------------------------------------------


def check_tensor(value: Any, what: str, state: State, state_name: str, dtype: torch.dtype | None) -> Finding | None:
    """A tensor of shape (N,), on the state's device, of `dtype` (None: the state's float dtype), finite."""
    n = state.num_envs
    expected_dtype = dtype or state.body_pos.dtype
    if not isinstance(value, torch.Tensor):
        hint = (
            " A Python number is one value for the whole batch, not one per environment; "
            "use a tensor, e.g. `torch.full((state.num_envs,), x, device=state.device)`."
            if isinstance(value, (int, float, bool))
            else ""
        )
        return _probe(
            f"{what} must be a torch tensor of shape ({n},) (one value per environment), but on the "
            f"`{state_name}` state it is a {type(value).__name__}.{hint}",
            f"{what} type",
        )
    if tuple(value.shape) != (n,):
        return _probe(
            f"{what} must have shape ({n},) (one value per environment), but on the `{state_name}` "
            f"state it has shape {tuple(value.shape)}. Reduce over the other dimensions (e.g. "
            f"`.sum(dim=-1)`, `torch.linalg.norm(x, dim=-1)`) or index `[:, k]`.",
            f"{what} shape",
        )
    if value.dtype != expected_dtype:
        fix = (
            "compare values (`height > 1.0`) or call `.bool()`"
            if expected_dtype == torch.bool
            else f"keep the state's dtype ({expected_dtype}); convert with `.to(state.body_pos.dtype)`"
        )
        return _probe(
            f"{what} must have dtype {expected_dtype}, but on the `{state_name}` state it is {value.dtype}; {fix}.",
            f"{what} dtype",
        )
    if value.device != state.device:
        return _probe(
            f"{what} is on {value.device} but the state is on {state.device}. Create tensors with "
            f"`device=state.device` (or `torch.zeros_like(x)`); never call `.cpu()` or `.cuda()`.",
            f"{what} device",
        )
    if value.dtype.is_floating_point and not bool(torch.isfinite(value).all()):
        bad = int((~torch.isfinite(value)).sum())
        kinds = sorted({"nan" if math.isnan(v) else "inf" for v in value[~torch.isfinite(value)].tolist()})
        return _probe(
            f"{what} has {bad} non-finite values ({'/'.join(kinds)}) of {n} on the `{state_name}` "
            f"state. Guard divisions and logs (`x / (d + 1e-6)`, `torch.log(x.clamp(min=1e-6))`), "
            f"clamp exponents, and use `torch.nan_to_num` for quantities that can be undefined.",
            f"{what} non-finite",
        )
    return None


def check_reward_output(out: Any, state: State, state_name: str) -> tuple[Finding | None, list[str]]:
    """`(reward[N], {name: tensor[N]})` with at most MAX_COMPONENTS string-named components."""
    if not isinstance(out, tuple) or len(out) != 2:
        found = f"a tuple of {len(out)}" if isinstance(out, tuple) else f"a {type(out).__name__}"
        return _probe(
            f"`compute_reward` must return a pair `(reward, components)` as in "
            f"`{SIGNATURES['reward']}`, but it returned {found}. End with `return total, {{'name': term, "
            f"...}}`.",
            "return value",
        ), []
    reward, components = out
    finding = check_tensor(reward, "the reward", state, state_name, None)
    if finding:
        return finding, []
    if not isinstance(components, dict):
        return _probe(
            f"The second value returned must be a dict of named reward terms, but it is a "
            f"{type(components).__name__}. Return e.g. `{{'upright': upright, 'height': height}}`.",
            "components type",
        ), []
    if len(components) > MAX_COMPONENTS:
        return _probe(
            f"The components dict has {len(components)} entries; at most {MAX_COMPONENTS} are allowed. "
            f"Group related terms into fewer named components.",
            "components count",
        ), []
    for key, value in components.items():
        if not isinstance(key, str) or not 0 < len(key) <= MAX_NAME_CHARS:
            return _probe(
                f"Component names must be strings of 1 to {MAX_NAME_CHARS} characters, but one is "
                f"{str(key)[:40]!r} ({type(key).__name__}).",
                "component name",
            ), []
        finding = check_tensor(value, f"component {key!r}", state, state_name, None)
        if finding:
            return finding, []
    return None, list(components)


def check_success_output(out: Any, state: State, state_name: str) -> tuple[Finding | None, list[str]]:
    """A bool tensor of shape (N,)."""
    return check_tensor(out, "the success check's result", state, state_name, torch.bool), []


def check_deterministic(outputs: list[Any], state_name: str, name: str) -> Finding | None:
    """Two calls on the same inputs return identical values."""
    first, second = (_flat(o) for o in outputs)
    if first.keys() != second.keys() or any(not torch.equal(first[k], second[k]) for k in first):
        return _probe(
            f"Two calls of `{name}` on the same `{state_name}` state returned different values. The "
            f"reward must be a function of `state` and `action` only: no random numbers, no values "
            f"kept between calls.",
            "determinism",
        )
    return None


def _flat(out: Any) -> dict[str, torch.Tensor]:
    if isinstance(out, tuple):
        return {"reward": out[0], **{f"c:{k}": v for k, v in out[1].items()}}
    return {"result": out}


def _snapshot(args: tuple[Any, ...]) -> dict[str, torch.Tensor]:
    state = args[0]
    snap = {
        name: getattr(state, name).clone()
        for name in sorted(STATE_ATTRIBUTES)
        if isinstance(getattr(state, name, None), torch.Tensor)
    }
    if len(args) > 1:
        snap["action"] = args[1].clone()
    return snap


def check_inputs_unchanged(
    before: dict[str, torch.Tensor],
    args: tuple[Any, ...],
    state_name: str,
    name: str,
) -> Finding | None:
    """Every tensor of the state and the action is bit-for-bit what it was before the calls."""
    after = _snapshot(args)
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    if changed:
        return _probe(
            f"Calling `{name}` on the `{state_name}` state changed its inputs in place "
            f"({', '.join(changed[:4])}). Never write into state or action tensors or views of them; "
            f"build new tensors with arithmetic, `torch.where` or `.clone()`.",
            "input mutation",
        )
    return None


def check_speed(ms: float, ms_4x: float | None, n: int, limits: ProbeLimits, name: str) -> Finding | None:
    """Fast enough for the hot loop at N and at 4N (None: not measured, N alone decides)."""
    if ms > limits.max_ms_per_call or (ms_4x or 0.0) > limits.max_ms_per_call_4x:
        at_4x = f" and {ms_4x:.1f} ms at {4 * n}" if ms_4x is not None else ""
        return _probe(
            f"`{name}` takes {ms:.1f} ms per call at {n} environments{at_4x}; "
            f"the limits are {limits.max_ms_per_call:g} ms and {limits.max_ms_per_call_4x:g} ms. "
            f"Replace Python loops over environments or bodies with batched tensor operations.",
            "speed",
        )
    return None


def _exception_finding(exc: BaseException, during: str, name: str) -> Finding:
    """A finding naming the candidate's line and the error; tracebacks through our code are hidden."""
    line = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename == CODE_FILENAME:
            line = lineno
    text = f"{type(exc).__name__}: {exc}".strip().splitlines()[0][:300] if str(exc) else type(exc).__name__
    where = f" at line {line}" if line else ""
    if isinstance(exc, MemoryError) or "allocate" in str(exc).lower():
        return _probe(
            f"{during.capitalize()} ran out of memory{where} ({text}). Reward code should only "
            f"need tensors the size of the batch; avoid huge allocations and list repetition.",
            "memory limit",
            line,
        )
    if isinstance(exc, RecursionError):
        return _probe(
            f"{during.capitalize()} recursed too deeply{where}. Do not call functions recursively.", "recursion", line
        )
    if isinstance(exc, CallTimeout):
        return _probe(f"{during.capitalize()} did not finish in time{where}. Remove long loops.", "time limit", line)
    if isinstance(exc, SystemExit | KeyboardInterrupt):
        return _probe(
            f"{during.capitalize()} tried to stop the process{where}. Return a value instead.", "process exit", line
        )
    if isinstance(exc, PermissionError | OSError):
        return _probe(
            f"{during.capitalize()} tried a forbidden operating-system action{where} ({text}). Reward "
            f"code may not touch files, network or processes.",
            "forbidden system call",
            line,
        )
    return _probe(
        f"{during.capitalize()} raised {text}{where}. Fix the code so that it runs on every state "
        f"(check tensor shapes: every state tensor has the batch dimension first; `state.body(name)` "
        f"and `state.joint(name)` take the MJCF names listed in the prompt).",
        "exception",
        line,
    )
