"""Real isolation: unrestricted Python (as if the static policy had a gap) cannot reach the host.

Each test runs a snippet in a fresh process under one or more layers and checks the host
side: the loopback server saw no connection, the file outside the scratch folder does not
exist, and no process was started.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from synth_reward.sandbox import isolation

ROOT = str(Path(__file__).resolve().parents[1])
ATTACKS = """
import json, os, socket, subprocess, sys
out = {}
def attempt(name, fn):
    try:
        fn()
        out[name] = "ok"
    except BaseException as exc:
        out[name] = type(exc).__name__
def connect():
    s = socket.socket()
    s.settimeout(2)
    s.connect(("127.0.0.1", PORT))
    s.sendall(b"leak")
def fork():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
attempt("connect", connect)
attempt("udp", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", PORT)))
attempt("write_outside", lambda: open(OUTSIDE, "w").write("pwned"))
attempt("fork", fork)
attempt("exec", lambda: subprocess.run(["true"], check=True))
sys.__stdout__.write(json.dumps(out) + "\\n")
"""


@pytest.fixture
def host():
    """A loopback TCP server and a host folder outside /tmp that the sandbox must not write to."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    folder = tempfile.mkdtemp(dir="/var/tmp", prefix="synth-reward-host-")
    scratch = tempfile.mkdtemp(prefix="synth-reward-scratch-")
    yield SimpleHost(server, Path(folder) / "pwned.txt", scratch)
    server.close()
    shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(scratch, ignore_errors=True)


class SimpleHost:
    def __init__(self, server: socket.socket, outside: Path, scratch: str) -> None:
        self.server, self.outside, self.scratch = server, outside, scratch

    def snippet(self, setup: str) -> str:
        port = self.server.getsockname()[1]
        body = ATTACKS.replace("PORT", str(port)).replace("OUTSIDE", repr(str(self.outside)))
        return textwrap.dedent(setup) + body

    def run(self, argv: list[str]) -> dict[str, str]:
        env = {"PATH": os.environ["PATH"], "PYTHONPATH": ROOT, "PYTHONDONTWRITEBYTECODE": "1"}
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    def assert_untouched(self) -> None:
        with pytest.raises(BlockingIOError):
            self.server.accept()
        assert not self.outside.exists()


def test_bwrap_is_available_here():
    assert isolation.bwrap_problem() is None, f"{isolation.bwrap_problem()} -- CI needs the Debian package bubblewrap"


def test_probe_layers_together(host):
    """What a candidate's child runs under: bwrap + rlimits + Landlock + strict seccomp."""
    setup = f"from synth_reward.sandbox.worker import isolate\nused, missing = isolate({host.scratch!r})\n"
    cmd, report = isolation.isolated_command([sys.executable, "-c", host.snippet(setup)], [host.scratch])
    assert not report.missing
    out = host.run(cmd)
    assert out == {
        "connect": out["connect"],
        "udp": out["udp"],
        "write_outside": out["write_outside"],
        "fork": "PermissionError",
        "exec": "PermissionError",
    }
    assert "ok" not in out.values(), out
    host.assert_untouched()


def test_bwrap_alone(host):
    cmd, _ = isolation.isolated_command([sys.executable, "-c", host.snippet("")], [host.scratch])
    out = host.run(cmd)
    assert out["connect"] != "ok" and out["write_outside"] != "ok", out
    host.assert_untouched()


def test_in_process_layers_alone(host):
    """Without bwrap (a machine where it is missing), Landlock and seccomp still hold."""
    setup = f"from synth_reward.sandbox.worker import isolate\nused, missing = isolate({host.scratch!r})\n"
    out = host.run([sys.executable, "-c", host.snippet(setup)])
    assert set(out.values()) == {"PermissionError"}, out
    host.assert_untouched()


def test_isolate_current_process_for_training(host):
    """The trainer's mode: writes only in its run folder, no network, processes allowed."""
    run_dir = Path(host.scratch) / "run"
    run_dir.mkdir()
    setup = f"""
    from synth_reward.sandbox import isolate_current_process
    report = isolate_current_process({str(run_dir)!r})
    assert not report.missing, report.missing
    open({str(run_dir / "ok.txt")!r}, "w").write("fine")
    """
    out = host.run([sys.executable, "-c", host.snippet(setup)])
    assert out["connect"] == "PermissionError" and out["udp"] == "PermissionError", out
    assert out["write_outside"] == "PermissionError" and out["fork"] == "ok", out
    assert (run_dir / "ok.txt").read_text() == "fine"
    host.assert_untouched()


def test_missing_bwrap_is_reported_and_degrades(monkeypatch):
    monkeypatch.setattr(isolation, "bwrap_problem", lambda: "bwrap: not installed (Debian: apt-get install bubblewrap)")
    cmd, report = isolation.isolated_command(["true"], ["/tmp"])
    assert report.missing[0].startswith("bwrap: not installed")
    assert cmd[0] in ("unshare", "true")
    assert report.used == (["unshare (no network)"] if cmd[0] == "unshare" else [])


def test_api_keys_do_not_reach_the_worker(monkeypatch):
    from synth_reward.sandbox.runner import _Worker

    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    worker = _Worker(None, None)
    try:
        env = Path(f"/proc/{worker.proc.pid}/environ").read_bytes()
        assert b"sk-secret" not in env
    finally:
        worker.close()
