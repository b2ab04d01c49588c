"""Parent side of the probe: start the isolated worker, talk to it, restart it if needed.

Starting Python with torch costs ~2 s, so the worker is a fork server (see `worker.py`):
it imports torch and builds the probe states once, and runs each candidate in a fresh
fork of itself that the candidate cannot outlive or affect. The first verdict pays the
start; later ones take a fraction of a second.
"""

from __future__ import annotations

import atexit
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from synth_reward.errors import SynthRewardError
from synth_reward.sandbox.isolation import clean_env, isolated_command
from synth_reward.sandbox.records import IsolationReport, Kind, ProbeLimits, ProbeResult

READY_TIMEOUT_S = 120.0
"""How long a worker may take to import torch and build states (a loaded 2-core machine is slow)."""
RESULT_TIMEOUT_S = 20.0
"""Wall-clock limit for one candidate's probe; the worker kills the child after it."""


class SandboxError(SynthRewardError):
    """The sandbox itself failed (a worker could not start): not the candidate's fault."""


class _Worker:
    """One isolated worker process and its scratch folder."""

    def __init__(self, morphology: str | None, num_envs: int | None) -> None:
        self.scratch = tempfile.mkdtemp(prefix="synth-reward-probe-")
        self.hint = (morphology, num_envs)
        argv = [sys.executable, "-s", "-m", "synth_reward.sandbox.worker", "--scratch", self.scratch]
        if morphology and num_envs:
            argv += ["--morphology", morphology, "--num-envs", str(num_envs)]
        cmd, self.report = isolated_command(argv, [self.scratch])
        env = clean_env(self.scratch, PYTHONHASHSEED="0", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MUJOCO_GL="disable")
        self.log_path = Path(self.scratch) / "worker.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in close())
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            cwd=self.scratch,
            env=env,
            start_new_session=True,
        )
        self._buffer = b""
        self.ready = False

    def read_line(self, deadline: float) -> bytes | None:
        """One line from the worker's stdout, or None at EOF or when the deadline passes."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    return None
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    return None
                self._buffer += chunk
                if len(self._buffer) > 1 << 20:
                    return None
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace").strip()[-800:]
        except OSError:
            return ""

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
        self._log.close()
        shutil.rmtree(self.scratch, ignore_errors=True)


class ProbeRunner:
    """Runs candidates through one warm, isolated fork-server worker (restarted if it dies)."""

    def __init__(self) -> None:
        self._worker: _Worker | None = None
        self._lock = threading.Lock()

    def prewarm(self, morphology: str | None = None, num_envs: int | None = None) -> None:
        """Start the worker now (probe states prebuilt for `morphology` at N = `num_envs`)."""
        with self._lock:
            self._ensure(morphology, num_envs)

    def _ensure(self, morphology: str | None, num_envs: int | None) -> _Worker:
        if self._worker is not None and self._worker.proc.poll() is not None:
            self._worker.close()
            self._worker = None
        if self._worker is None:
            self._worker = _Worker(morphology, num_envs)
        return self._worker

    def probe(
        self,
        code: str,
        kind: Kind,
        morphology: str,
        num_envs: int,
        limits: ProbeLimits,
    ) -> tuple[ProbeResult, IsolationReport]:
        """Run one candidate; a child killed or out of time becomes a rejection, not an error."""
        with self._lock:
            worker = self._ensure(morphology, num_envs)
            try:
                if not worker.ready:
                    line = worker.read_line(time.monotonic() + READY_TIMEOUT_S)
                    if line is None or not json.loads(line).get("ready"):
                        raise SandboxError(f"the sandbox worker did not start: {worker.log_tail() or 'no output'}")
                    worker.ready = True
                request = {
                    "code": code,
                    "kind": kind,
                    "morphology": morphology,
                    "num_envs": num_envs,
                    "limits": limits.model_dump(),
                    "timeout": RESULT_TIMEOUT_S,
                }
                assert worker.proc.stdin is not None
                worker.proc.stdin.write((json.dumps(request) + "\n").encode())
                worker.proc.stdin.flush()
                line = worker.read_line(time.monotonic() + RESULT_TIMEOUT_S + 15)
            except (OSError, ValueError) as exc:
                line = None
                tail = worker.log_tail()
                self._drop()
                raise SandboxError(f"the sandbox worker failed: {exc}; {tail}") from None
            if line is None:
                tail = worker.log_tail()
                self._drop()
                raise SandboxError(f"the sandbox worker stopped answering: {tail or 'no output'}")
            message = json.loads(line)
            if "error" in message:
                raise SandboxError(message["error"])
            result = ProbeResult.model_validate(message)
        report = IsolationReport(used=worker.report.used + result.used, missing=worker.report.missing + result.missing)
        return result, report

    def _drop(self) -> None:
        if self._worker is not None:
            self._worker.close()
            self._worker = None

    def close(self) -> None:
        """Stop the worker (it also stops by itself when this process exits)."""
        with self._lock:
            self._drop()


_DEFAULT: ProbeRunner | None = None


def default_runner() -> ProbeRunner:
    """The process-wide runner (its worker is stopped at exit)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = ProbeRunner()
        atexit.register(_DEFAULT.close)
    return _DEFAULT
