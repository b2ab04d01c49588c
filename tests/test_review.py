"""The review page (synth_reward/web) in a real browser: Debian's Chromium driven by Playwright.

`synth-reward review` serves a copy of the small real run of tests/feedback_run.py; the test looks at the
candidates (the video has loaded a frame, the screenshot is not blank), submits feedback from the page,
waits for the next iteration, and finds the words in its prompt in the run folder. Bad requests get a 4xx
and change nothing. Set SYNTH_REWARD_SCREENSHOTS=DIR to keep the screenshots there (docs/images).
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from synth_reward.web.cli import is_loopback
from tests import feedback_run
from tests.browser import chromium, keep, not_blank
from tests.feedback_run import cli, copy_run
from tests.test_feedback import WORDS, prompts_with, snapshot


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    return feedback_run.small_run(tmp_path_factory.mktemp("feedback_run"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(port: int, path: str) -> tuple[int, bytes]:
    """GET a raw path (not normalised by a client library, so `..` reaches the server as it is)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path)
    response = conn.getresponse()
    return response.status, response.read()


def post(port: int, fields: dict[str, str]) -> tuple[int, str]:
    data = urllib.parse.urlencode(fields).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/act", data=data, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait_ready(port: int, server: subprocess.Popen, latest: int, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, "the review server exited"
        try:
            status, body = get(port, "/progress")
            state = json.loads(body)
            if status == 200 and not state["busy"] and state["latest"] == latest and "ready" in state["lines"][-1]:
                return state
            assert not state["error"], state["error"]
        except (ConnectionError, OSError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"iteration {latest} not ready after {timeout} s")


def test_review_page_in_chromium_drives_the_session(small_run, tmp_path) -> None:
    run = copy_run(small_run, tmp_path)
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "synth_reward.cli",
            "review",
            run.name,
            "--out",
            str(run.parent),
            "--port",
            str(port),
            "--name",
            "bea",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=feedback_run.env(),
        preexec_fn=feedback_run.default_sigint,
    )
    try:
        wait_ready(port, server, latest=1)
        # ---- bad requests: 4xx with a message, nothing changed -------------------------------------------
        before = snapshot(run)
        for path in (
            "/file/../../../../etc/passwd",
            "/file/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
            "/file//etc/passwd",
            "/file/iter_01",
            "/file/no-such-file",
            "/plot/i9c9.png",
            "/nowhere",
        ):
            status, _ = get(port, path)
            assert status == 404, path
        assert get(port, "/file/run.json")[0] == 200
        status, body = post(port, {"act": "feedback", "candidate": "i1c0", "text": "   "})
        assert status == 400 and "feedback text is empty" in body
        status, body = post(port, {"act": "choose", "candidate": "../../x"})
        assert status == 400 and "no candidate" in body
        other = cli("feedback", run.name, "--out", str(run.parent), "--text", "x")
        assert other.returncode == 2 and f"in use by PID {server.pid}" in other.stderr + other.stdout
        busy_port = cli("review", small_run.name, "--out", str(small_run.parent), "--port", str(port))
        assert (
            busy_port.returncode == 2 and f"port {port} on 127.0.0.1 is in use" in busy_port.stdout + busy_port.stderr
        )
        assert snapshot(run) == before
        # ---- the page in Chromium ------------------------------------------------------------------------
        with chromium() as browser:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/")
            assert page.locator("#i1c0").is_visible() and page.locator("#i1c1").is_visible()  # side by side
            page.wait_for_function("document.querySelector('video') && document.querySelector('video').readyState >= 2")
            page.evaluate("v => { v.currentTime = 1.0; }", page.query_selector("video"))
            page.wait_for_function(
                "document.querySelector('video').readyState >= 2 && !document.querySelector('video').seeking"
            )
            plots = page.eval_on_selector_all("img[src^='/plot/']", "els => els.map(e => e.complete && e.naturalWidth)")
            assert plots and all(plots), plots
            shot = tmp_path / "review.png"
            page.screenshot(path=str(shot))
            assert not_blank(shot)
            keep(shot)
            page.fill("textarea[aria-label='feedback on i1c0']", WORDS)
            page.click("#i1c0 button[value='feedback']")
            wait_ready(port, server, latest=2)
            page.goto(f"http://127.0.0.1:{port}/")
            assert page.locator("text=Iteration 2 (latest)").count() == 1
            assert WORDS in page.content()
        (prompt,) = prompts_with(run, WORDS)
        assert "about candidate i1c0" in prompt["messages"][-1]["content"]
        acts = [json.loads(line) for line in (run / "session.jsonl").read_text().splitlines()]
        assert [(a["act"], a["candidate"], a["who"], a["via"]) for a in acts] == [("feedback", "i1c0", "bea", "page")]
    finally:
        server.send_signal(signal.SIGINT)
        out, _ = server.communicate(timeout=60)
    assert not (run / "run.lock").exists(), out


def test_a_non_loopback_host_prints_a_warning(small_run, tmp_path) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")
    run = copy_run(small_run, tmp_path)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "synth_reward.cli",
            "review",
            run.name,
            "--out",
            str(run.parent),
            "--host",
            "0.0.0.0",
            "--port",
            str(free_port()),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=feedback_run.env(),
        preexec_fn=feedback_run.default_sigint,
    )
    try:
        assert server.stdout is not None
        first = server.stdout.readline()
        assert first.startswith("warning:") and "no login" in first, first
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=60)
