"""Feedback sessions (agent/session.py) in the terminal (`synth-reward feedback`), and the HTML report.

One small real run (tests/feedback_run.py, about 50 s, made once per test session and copied by each test)
with the real LLM client against tests/fake_llm.py, so that the person's words can be found in the next
iteration's prompt in the run folder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from synth_reward.agent.session import LOCK_FILE, SESSION_PAUSED, Act, RunLock, Session, check_not_in_use, make_act
from synth_reward.agent.store import RunStore
from synth_reward.errors import UsageError
from tests import feedback_run
from tests.feedback_run import cli, copy_run

WORDS = "the legs flail about; keep them still and lower the torso slowly"


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    return feedback_run.small_run(tmp_path_factory.mktemp("feedback_run"))


def prompts_with(run: Path, text: str) -> list[dict]:
    found = []
    for path in sorted((run / "llm" / "prompts").glob("*.json")):
        record = json.loads(path.read_text())
        if any(text in str(m.get("content")) for m in record["messages"]):
            found.append(record)
    return found


def snapshot(folder: Path) -> dict[str, float]:
    return {str(p.relative_to(folder)): p.stat().st_mtime for p in folder.rglob("*")}


# ---- the session model, no training ------------------------------------------------------------------
def test_lock_refuses_a_live_holder_and_takes_over_a_dead_ones(tmp_path) -> None:
    store = RunStore.create(tmp_path, "make the ant lie down", run_id="r")
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (store.path / LOCK_FILE).write_text(f"{holder.pid}\nsynth-reward review\n")
        with pytest.raises(UsageError, match=rf"in use by PID {holder.pid} \(synth-reward review\)"):
            check_not_in_use(store)
        with pytest.raises(UsageError, match="in use by PID"):
            RunLock(store, "test").acquire()
    finally:
        holder.kill()
        holder.wait()
    check_not_in_use(store)  # the holder died: its lock is stale
    with RunLock(store, "test"):
        with RunLock(store, "test again"):  # re-entrant in one process
            assert (store.path / LOCK_FILE).read_text().startswith(str(os.getpid()))
        assert (store.path / LOCK_FILE).exists()
    assert not (store.path / LOCK_FILE).exists()


def test_acts_are_checked_before_they_are_recorded(tmp_path) -> None:
    from synth_reward.agent.records import CandidateResult

    results = {
        "i2c0": CandidateResult(id="i2c0", iteration=2, index=0, stage="analyzed", success_rate=0.5),
        "i2c1": CandidateResult(id="i2c1", iteration=2, index=1, stage="rejected", reason="bad"),
        "i1c0": CandidateResult(id="i1c0", iteration=1, index=0, stage="analyzed", success_rate=0.2),
    }
    bad = [
        ("feedback", "i2c0", "   ", "empty"),
        ("feedback", "i1c0", "x", "not in the latest iteration 2|no candidate 'i1c0'"),
        ("choose", "i9c9", "", "no candidate 'i9c9'"),
        ("choose", "i2c1", "", "was not trained"),
        ("dance", None, "", "unknown act"),
    ]
    for act, cand, text, message in bad:
        with pytest.raises(UsageError, match=message):
            make_act(act, iteration=2, results=results, candidate=cand, text=text)
    act = make_act("feedback", iteration=2, results=results, text="  sits\n back ", default_candidate="i2c0", who="ana")
    assert (act.candidate, act.text, act.who) == ("i2c0", "sits back", "ana")
    store = RunStore.create(tmp_path, "x", run_id="r")
    Session(store).append(act)
    with open(store.path / "session.jsonl", "ab") as fh:
        fh.write(b'{"torn": ')  # a kill mid-append
    Session(store).append(make_act("skip", iteration=3, results=results))
    assert [a.act for a in Session(store).acts()] == ["feedback", "skip"]
    assert isinstance(Session(store).rounds()[0], Act)


# ---- the terminal ------------------------------------------------------------------------------------
def test_terminal_session_stopped_half_way_resumes_and_an_accept_finishes_it(small_run, tmp_path) -> None:
    """Typed into the terminal (stdin): feedback on i1c0; Ctrl-C while the next iteration trains; the same
    command again finishes that iteration (the prompt is not sent twice) and shows it; accept ends it."""
    run = copy_run(small_run, tmp_path)
    runs = str(run.parent)
    assert prompts_with(run, WORDS) == []
    proc = subprocess.Popen(
        [sys.executable, "-m", "synth_reward.cli", "feedback", run.name, "--out", runs, "--name", "ana"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=feedback_run.env(),
        preexec_fn=feedback_run.default_sigint,
    )
    assert proc.stdin is not None
    proc.stdin.write(f"f\ni1c0\n{WORDS}\n")
    proc.stdin.flush()
    deadline = time.monotonic() + 120
    while not (run / "iter_02" / "cand_00" / "train.log").exists():  # half-way: the next iteration is training
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0]
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    assert "iteration 1: 2 candidates" in out and "video:" in out and "frames (best" in out, out
    assert "best of iteration 1: i1c0; its reward code" in out
    assert not (run / LOCK_FILE).exists()
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "stopped" and "resume" in info["message"]
    (act,) = Session(RunStore.open(run)).acts()
    assert (act.act, act.candidate, act.who, act.via, act.text, act.iteration) == (
        "feedback",
        "i1c0",
        "ana",
        "terminal",
        WORDS,
        1,
    )
    (prompt,) = prompts_with(run, WORDS)
    last = prompt["messages"][-1]["content"]
    assert "What a person watching the policy said about candidate i1c0" in last and "most important" in last
    assert "The person chose i1c0, success rate" in last  # next to the analyzer's numbers about their candidate
    design = json.loads((run / "iter_02" / "design.json").read_text())
    assert design["parent"] == "i1c0" and design["feedback"]["human"] == WORDS

    requests = feedback_run.fake_llm().count
    again = cli("feedback", run.name, "--out", runs, "--name", "ana", input="a\n\n")  # accept the latest best
    assert again.returncode == 0, again.stdout + again.stderr
    assert "iteration 2: 2 candidates" in again.stdout
    assert feedback_run.fake_llm().count == requests  # answered before the stop: not asked again
    assert len(prompts_with(run, WORDS)) == 1
    summary = json.loads((run / "summary.json").read_text())
    assert summary["best"].startswith("i2c") and summary["status"] == "finished" and "accepted" in summary["message"]
    assert [a.act for a in Session(RunStore.open(run)).acts()] == ["feedback", "accept"]
    html = (run / "report.html").read_text()
    assert WORDS in html and summary["best"] in html
    shown = cli("show", run.name, "--out", runs)
    assert f"HTML report: {run / 'report.html'}" in shown.stdout


def test_choose_and_skip_each_run_an_iteration_from_their_base(small_run, tmp_path) -> None:
    """`choose` a candidate that is not the automatic best: the next iteration is written from it, with the
    words; `skip`: the one after from the automatic best, with no words. The run then waits for the person."""
    run = copy_run(small_run, tmp_path)
    runs = str(run.parent)
    results = [json.loads(p.read_text()) for p in sorted(run.glob("iter_01/cand_*/result.json"))]
    best = json.loads((run / "summary.json").read_text())["best"]
    other = next(r["id"] for r in results if r["id"] != best and r["stage"] in ("analyzed", "eliminated"))
    words = "this one keeps its balance better; build on it"
    chose = cli("feedback", run.name, "--out", runs, "--act", "choose", "--candidate", other, "--text", words)
    assert chose.returncode == 0, chose.stdout + chose.stderr
    design = json.loads((run / "iter_02" / "design.json").read_text())
    assert design["parent"] == other and design["feedback"]["human"] == words
    assert design["feedback"]["human_candidate"] == other
    (prompt,) = prompts_with(run, words)
    last = prompt["messages"][-1]["content"]
    assert f"(candidate {other}) was chosen by the person" in last and f"The person chose {other}" in last
    info = json.loads((run / "run.json").read_text())
    assert (info["status"], info["message"]) == ("stopped", SESSION_PAUSED)

    skipped = cli("feedback", run.name, "--out", runs, "--act", "skip")
    assert skipped.returncode == 0, skipped.stdout + skipped.stderr
    design = json.loads((run / "iter_03" / "design.json").read_text())
    scores = {r["id"]: r for r in (json.loads(p.read_text()) for p in run.glob("iter_0[12]/cand_*/result.json"))}
    assert design["parent"] in scores and design["feedback"]["human"] is None
    assert len(prompts_with(run, words)) == 1  # the words belong to the round they were given in
    assert [(a.act, a.candidate) for a in Session(RunStore.open(run)).acts()] == [("choose", other), ("skip", None)]
    assert json.loads((run / "run.json").read_text())["status"] == "stopped"
    assert not (run / LOCK_FILE).exists()


def test_bad_input_is_one_line_exit_2_and_changes_nothing(small_run, tmp_path) -> None:
    run = copy_run(small_run, tmp_path)
    runs = str(run.parent)
    before = snapshot(run)
    cases = [
        (["feedback", run.name, "--out", runs, "--text", "  "], "feedback text is empty"),
        (["feedback", run.name, "--out", runs, "--act", "choose", "--candidate", "i7c7"], "no candidate 'i7c7'"),
    ]  # (a run that does not exist, bad options: tests/test_cli_usage.py)

    def check(args: list[str], message: str) -> None:
        proc = cli(*args, cwd=tmp_path)
        lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
        assert proc.returncode == 2, (args, proc.stdout + proc.stderr)
        assert len(lines) == 1 and message in lines[0] and "error" in lines[0], (args, lines)

    for args, message in cases:
        check(args, message)
    assert snapshot(run) == before
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:  # a run that another process is writing
        (run / LOCK_FILE).write_text(f"{holder.pid}\nsynth-reward run\n")
        before = snapshot(run)
        check(["feedback", run.name, "--out", runs, "--text", "x"], f"in use by PID {holder.pid}")
        check(["review", run.name, "--out", runs, "--port", "8123"], f"in use by PID {holder.pid}")
    finally:
        holder.kill()
        holder.wait()
    assert snapshot(run) == before


# ---- the report ----------------------------------------------------------------------------------------
def test_report_opens_in_chromium_with_its_plots(small_run, tmp_path) -> None:
    from tests.browser import chromium, keep, not_blank

    run = copy_run(small_run, tmp_path)
    assert (run / "report.html").is_file()  # written by the main command
    target = tmp_path / "elsewhere" / "r.html"
    target.parent.mkdir()
    proc = cli("report", str(run), "--out", str(target))
    assert proc.returncode == 0 and str(target) in proc.stdout, proc.stdout + proc.stderr
    text = target.read_text()
    for part in (
        "make the ant lie down",
        "ant/lie_down",
        "Lying down",
        "i1c0",
        "i1c1",
        "LLM use",
        "requests",
        "Wall-clock per stage",
        "training",
        "best episode",
        "worst episode",
        "human normalized score",
    ):
        assert part in text, part
    assert "http://" not in text.replace("http://www.w3.org", "") and "https://" not in text  # nothing online
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1200, "height": 1400})
        page.goto(target.as_uri())
        images = page.eval_on_selector_all("img", "els => els.map(e => [e.alt, e.complete && e.naturalWidth])")
        assert len(images) >= 5 and all(width for _, width in images), images  # plots and strips decoded
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        page.screenshot(path=str(tmp_path / "report-top.png"))
    assert not_blank(shot)
    keep(tmp_path / "report-top.png")


# ---- editing the success check ------------------------------------------------------------------------
def test_edit_success_is_vetted_recorded_and_only_for_free_form_runs(tmp_path) -> None:
    from synth_reward.agent.loop import Loop
    from synth_reward.agent.records import RunSettings
    from synth_reward.agent.resolve import resolve_task

    good = 'import torch\n\ndef success(state):\n    """The torso above 1.1 m."""\n    return state.body(\'torso\').height > 1.1\n'
    bad = "import os\n\ndef success(state):\n    return os.getcwd()\n"
    settings = RunSettings(instruction="make the hopper stand tall and still", designer="offline")
    store = RunStore.create(tmp_path, settings.instruction, run_id="free")
    first = 'import torch\n\ndef success(state):\n    """Tall."""\n    return state.body(\'torso\').height > 1.0\n'
    resolved = resolve_task(settings.instruction).with_success(first, "file")
    store.write_json("task.json", resolved)
    loop = Loop(store, settings, resolved=resolved)
    loop.resolved = resolved
    loop._stages()
    with pytest.raises(UsageError, match="rejected at stage"):
        loop.edit_success(bad, who="ana")
    assert json.loads((store.path / "task.json").read_text())["success_code"] == first  # not applied
    loop.edit_success(good, who="ana")
    assert json.loads((store.path / "task.json").read_text())["success_code"].strip() == good.strip()
    assert "1.1" in (store.path / "success.py").read_text()
    edits = Session(store).edits()
    assert [(e.accepted, e.who) for e in edits] == [(False, "ana"), (True, "ana")] and "os" in edits[0].reason
    with pytest.raises(UsageError, match="empty"):
        loop.edit_success("  ")
    builtin = resolve_task("make the ant lie down")
    store2 = RunStore.create(tmp_path, builtin.instruction, run_id="builtin")
    loop2 = Loop(store2, RunSettings(instruction=builtin.instruction), resolved=builtin)
    loop2.resolved = builtin
    with pytest.raises(UsageError, match="ant/lie_down is a built-in task"):
        loop2.edit_success(good)
    assert not (store2.path / "session.jsonl").exists()
