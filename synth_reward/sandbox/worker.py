"""The probe worker: a warm fork server inside the sandbox; each candidate runs in a fresh fork.

Run as `python -m synth_reward.sandbox.worker --scratch DIR [--morphology M --num-envs N]`
under `isolated_command` (bwrap: no network, read-only file system). The server imports
torch once, builds the probe states (trusted code only) and then, for every request line
on stdin (code, kind, morphology, N, limits), forks a child that:

1. points stdin/stdout at /dev/null and closes the server's pipes, so its only way out
   is a private result pipe;
2. applies the in-process layers (rlimits, Landlock, seccomp);
3. loads and probes the candidate, writes one JSON `ProbeResult`, and exits.

The server never runs candidate code: a child is a copy-on-write snapshot of a pristine
process, so a warm start is as clean as a cold one, at ~20 ms instead of ~2 s. The
server enforces the wall clock (SIGKILL on timeout) and turns a child killed by a
limit into a rejection.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import shutil
import signal
import sys
import tempfile
import time
from typing import Any

PROBE_MEMORY_BYTES = 2 << 30
"""Address space a candidate may add on top of the warm worker (torch maps ~0.7 GiB itself)."""
PROBE_CPU_SECONDS = 30.0
PROBE_FILE_BYTES = 1 << 20
STATE_ENVS = 8
"""Distinct environments simulated per probe state; they are tiled up to the requested N."""
CHILD_TIMEOUT_S = 25.0
"""Wall-clock limit for one child; it is killed after it."""


def build_states(morphology: str, num_envs: int) -> tuple[dict[str, Any], int]:
    """Probe states with N = num_envs rows (STATE_ENVS distinct ones, tiled) and the action size."""
    import torch

    from synth_reward.envs.morphology import get_morphology
    from synth_reward.envs.poses import probe_states

    base = probe_states(morphology, min(num_envs, STATE_ENVS))
    states = {}
    for name, state in base.items():
        rows = torch.arange(num_envs, device=state.device) % state.num_envs
        states[name] = state if state.num_envs == num_envs else state.index(rows)
    return states, get_morphology(morphology).layout().num_actions


def isolate(scratch: str) -> tuple[list[str], list[str]]:
    """Apply the in-process layers to this process; return (used, missing)."""
    from synth_reward.sandbox import isolation

    used, missing = [], []
    seccomp_problem = isolation.preload_seccomp()
    used.append(
        isolation.apply_rlimits(
            cpu_seconds=PROBE_CPU_SECONDS, memory_bytes=PROBE_MEMORY_BYTES, file_bytes=PROBE_FILE_BYTES
        )
    )
    try:
        used.append(isolation.apply_landlock([scratch]))
    except OSError as exc:
        missing.append(f"landlock: {exc.strerror or exc}")
    if seccomp_problem:
        missing.append(seccomp_problem)
    else:
        try:
            used.append(isolation.apply_seccomp(strict=True))
        except (OSError, RuntimeError) as exc:
            missing.append(f"seccomp: {exc}")
    return used, missing


def _child(
    request: dict[str, Any],
    states: dict[str, Any],
    num_actions: int,
    result_fd: int,
    scratch: str,
    close_fds: list[int],
) -> None:
    """Runs in the forked child; never returns."""
    status = 1
    try:
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)
        for fd in close_fds:
            os.close(fd)
        from synth_reward.sandbox.probe import run_probe
        from synth_reward.sandbox.records import ProbeLimits

        used, missing = isolate(scratch)
        result = run_probe(
            request["code"], request["kind"], states, num_actions, ProbeLimits.model_validate(request["limits"])
        )
        result.used, result.missing = used, missing
        data = (result.model_dump_json() + "\n").encode()
        while data:
            data = data[os.write(result_fd, data) :]
        status = 0
    finally:
        os._exit(status)


def _wait_child(pid: int, read_fd: int, timeout: float) -> tuple[bytes, int | None]:
    """The child's output and its wait status (None: killed here for running past `timeout`)."""
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    timed_out = False
    with selectors.DefaultSelector() as sel:
        sel.register(read_fd, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                timed_out = True
                break
            chunk = os.read(read_fd, 1 << 16)
            if not chunk or sum(map(len, chunks)) > 1 << 20:
                break
            chunks.append(chunk)
    if timed_out:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    return b"".join(chunks), None if timed_out else status


def _no_result(status: int | None, timeout: float) -> dict[str, Any]:
    """A ProbeResult (as a dict) for a child that gave no result: killed by a limit, or crashed."""
    if status is None:
        why = (
            f"it did not finish within {timeout:g} s and was killed. The code must return quickly on every "
            f"state: no long or data-dependent loops"
        )
        culprit = "wall-clock limit"
    else:
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)  # type: ignore[arg-type]  # a member is not None
        why = {
            "SIGXCPU": "it used up its CPU-time limit",
            "SIGKILL": "it was killed (memory or time limit)",
            "SIGSEGV": "it crashed",
            "SIGSYS": "it made a forbidden system call",
        }.get(name, "")
        why = why or (f"it died of {name}" if sig else f"it exited with status {os.WEXITSTATUS(status)}")
        why += ". The code must run in bounded time and memory and must not try to stop or escape the process"
        culprit = "probe process died"
    return {
        "finding": {"stage": "probe", "culprit": culprit, "reason": f"The probe process ended without a result: {why}."}
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scratch", required=True)
    parser.add_argument("--morphology")
    parser.add_argument("--num-envs", type=int)
    args = parser.parse_args()
    out_fd = os.dup(1)  # the only channel to the parent
    os.dup2(2, 1)  # anything printed by libraries goes to the log, never into the protocol
    sys.stdout = sys.stderr

    import torch

    torch.set_num_threads(1)  # also keeps OpenMP's pool from starting, which makes fork() safe
    from synth_reward.sandbox.isolation import preload_seccomp

    preload_seccomp()  # once here rather than in every child
    import synth_reward.sandbox.probe  # noqa: F401 (imported once here, shared by every child)

    cache: dict[tuple[str, int], tuple[dict[str, Any], int]] = {}
    if args.morphology and args.num_envs:
        try:  # only a hint: a wrong one costs the first request a build, never a failure here
            cache[(args.morphology, args.num_envs)] = build_states(args.morphology, args.num_envs)
        except Exception as exc:  # noqa: BLE001
            print(f"prebuilding states for {args.morphology} failed: {exc}", file=sys.stderr)
    _send(out_fd, {"ready": True})
    for line in sys.stdin:
        request = json.loads(line)
        key = (request["morphology"], int(request["num_envs"]))
        try:
            if key not in cache:
                cache[key] = build_states(*key)
        except Exception as exc:  # noqa: BLE001 (a bad morphology is the caller's error)
            _send(out_fd, {"error": f"cannot build probe states for {key[0]}: {exc}"})
            continue
        states, num_actions = cache[key]
        scratch = tempfile.mkdtemp(dir=args.scratch)
        read_fd, write_fd = os.pipe()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            _child(request, states, num_actions, write_fd, scratch, [out_fd])
        os.close(write_fd)
        timeout = float(request.get("timeout", CHILD_TIMEOUT_S))
        data, status = _wait_child(pid, read_fd, timeout)
        os.close(read_fd)
        shutil.rmtree(scratch, ignore_errors=True)
        try:
            result = json.loads(data.decode().strip().splitlines()[-1]) if status == 0 and data else None
        except (ValueError, IndexError):
            result = None
        _send(out_fd, result if isinstance(result, dict) else _no_result(status, timeout))


def _send(fd: int, message: dict[str, Any]) -> None:
    data = (json.dumps(message) + "\n").encode()
    while data:
        data = data[os.write(fd, data) :]


if __name__ == "__main__":
    main()
