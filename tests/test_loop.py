"""The agent loop end to end: offline designer, the LLM path over HTTP, kill and resume, bad input.

Training runs for real (tiny budgets) in isolated subprocesses; the only stand-in is the
LLM, served by tests/fake_llm.py on loopback to the real litellm client.
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

from synth_reward.agent.llm import LLMSettings
from synth_reward.agent.loop import FinalResult, Loop, RunSettings, RunSummary, render_report
from synth_reward.agent.store import RunStore
from tests.fake_llm import FakeLLM, Reply

REWARD_REPLY = '''Here is a reward that keeps the torso high and upright.

```python
import torch
from typing import Dict, Tuple

@torch.jit.script
def compute_reward(state, action) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
    """Stay tall: height near 1.2 m, torso upright, little effort."""
    height = state.body("torso").height
    tall = torch.exp(-torch.abs(height - 1.2) / 0.3)
    upright = state.body("torso").up[:, 2]
    effort = -0.001 * torch.sum(action ** 2, dim=-1)
    return tall + 0.5 * upright + effort, {"tall": tall, "upright": 0.5 * upright, "effort": effort}
```
'''
HOSTILE_REPLY = "```python\nimport os\ndef compute_reward(state, action):\n    os.system('touch /tmp/pwned')\n```"
SUCCESS_REPLY = '''```python
import torch

def success(state):
    """The torso stays above 1.0 m."""
    return state.body("torso").height > 1.0
```'''


def cli(
    *args: str, env: dict | None = None, cwd: Path | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "synth_reward.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


def only_run(root: Path) -> Path:
    runs = [p for p in root.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def test_offline_designer_end_to_end_with_video(tmp_path) -> None:
    out = cli(
        "make the ant lie down",
        "--steps",
        "1024",
        "--samples",
        "2",
        "--iterations",
        "2",
        "--final-seeds",
        "1",
        "--episodes",
        "2",
        "--out",
        str(tmp_path / "runs"),
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "offline template designer (baseline, no LLM)" in out.stdout
    run = only_run(tmp_path / "runs")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["task_id"] == "ant/lie_down"
    # successive halving (the default): per iteration one candidate continues to the full budget
    assert sorted(c["stage"] for c in summary["candidates"]) == ["analyzed", "analyzed", "eliminated", "eliminated"]
    assert summary["final"]["seeds"] == [1000] and len(summary["final"]["success_rates"]) == 1
    assert summary["final"]["videos"] and all((run / v).stat().st_size > 1000 for v in summary["final"]["videos"])
    assert "final: training (seed_1000)" in out.stdout and "i0c0" not in out.stdout
    best = (run / "best_reward.py").read_text()
    assert "def compute_reward(state, action)" in best and "offline" in best
    report = (run / "report.md").read_text()
    assert "ant/lie_down" in report and "Final evaluation" in report
    leftovers = [p for p in run.glob("iter_*/cand_*/*") if p.name.startswith(("torchinductor", ".tmp"))]
    assert leftovers == [], leftovers  # library caches stay out of the user's run folder
    shown = cli("show", run.name, "--out", str(tmp_path / "runs"))
    assert shown.returncode == 0 and "Candidates" in shown.stdout


def test_llm_path_free_form_with_rejections(tmp_path, monkeypatch) -> None:
    script = [Reply(SUCCESS_REPLY), Reply(REWARD_REPLY), Reply(HOSTILE_REPLY), Reply("I cannot help with that.")]
    with FakeLLM(script) as server:
        llm = LLMSettings(
            model="openai/fake", api_base=server.base_url, api_key="test", timeout_s=10, max_retries=1, backoff_s=0.01
        )
        settings = RunSettings(
            instruction="make the hopper stand tall and still",
            samples=3,
            iterations=1,
            steps=1024,
            final_seeds=0,
            eval_episodes=2,
            designer="llm",
            llm=llm.public(),
        )
        resolved = Loop.prepare(settings)
        assert resolved.free_form and resolved.success_source == "to_write"
        store = RunStore.create(tmp_path / "runs", settings.instruction, settings=settings.model_dump(mode="json"))
        summary = Loop(store, settings, llm, resolved=resolved).run()
        assert server.count == 4
    assert summary.status == "finished"
    stages = {c.id: c.stage for c in summary.candidates}
    assert sorted(stages.values()) == ["analyzed", "rejected", "rejected"]
    reasons = " ".join(c.reason for c in summary.candidates)
    assert "import os" in reasons and "I cannot help with that" in reasons
    assert "torso stays above 1.0 m" in store.read_text("success.py")
    assert not Path("/tmp/pwned").exists()
    assert len(store.llm_calls()) == 4 and summary.llm_calls == 4
    # the same run again: every reply comes from the store, nothing is trained again
    with FakeLLM() as server:
        llm2 = llm.model_copy(update={"api_base": server.base_url})
        again = Loop(store, settings.model_copy(update={"llm": llm2.public()}), llm2).run()
        assert server.count == 0
    assert [c.model_dump() for c in again.candidates] == [c.model_dump() for c in summary.candidates]


def test_spend_cap_stops_the_run_cleanly(tmp_path) -> None:
    with FakeLLM(default=Reply(REWARD_REPLY, usage={"prompt_tokens": 100000, "completion_tokens": 100000})) as server:
        llm = LLMSettings(
            model="openai/fake",
            api_base=server.base_url,
            api_key="test",
            spend_cap_usd=0.0001,
            input_cost_per_token=1e-6,
            output_cost_per_token=1e-6,
            max_tokens=100000,
        )
        settings = RunSettings(
            instruction="make the hopper hop forward",
            samples=2,
            iterations=2,
            steps=1024,
            final_seeds=0,
            designer="llm",
            llm=llm.public(),
        )
        store = RunStore.create(tmp_path / "runs", settings.instruction, settings=settings.model_dump(mode="json"))
        summary = Loop(store, settings, llm).run()
    assert summary.status == "stopped" and "spend" in summary.message.lower()
    assert store.info().status == "stopped"
    assert (store.path / "summary.json").exists() and (store.path / "report.md").exists()


def test_kill_and_resume_trains_nothing_twice(tmp_path) -> None:
    root = tmp_path / "runs"
    args = [
        "make the ant lie down",
        "--steps",
        "2048",
        "--samples",
        "2",
        "--iterations",
        "1",
        "--final-seeds",
        "0",
        "--search",
        "full",  # (each candidate trains once; tests/test_search.py resumes a killed halving search)
        "--episodes",
        "2",
        "--out",
        str(root),
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "synth_reward.cli", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    first = None
    while time.monotonic() < deadline:
        found = list(root.glob("*/iter_01/cand_00/result.json"))
        if found:
            first = found[0]
            break
        time.sleep(0.5)
    assert first is not None, "the first candidate never finished"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    run = first.parents[2]
    trained = (first.parent / "train" / "result.json").stat().st_mtime
    out = cli("resume", run.name, "--out", str(root))
    assert out.returncode == 0, out.stdout + out.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished" and len(summary["candidates"]) == 2
    assert (first.parent / "train" / "result.json").stat().st_mtime == trained
    trainings = [
        e
        for e in map(json.loads, (run / "events.jsonl").read_text().splitlines())
        if e["event"] == "process" and e["argv"][0] == "train" and "cand_00" in e["argv"][4]
    ]
    assert len(trainings) == 1


def test_a_candidate_killed_mid_training_resumes_from_its_checkpoint(tmp_path) -> None:
    from synth_reward.agent.runner import Runner
    from synth_reward.envs.tasks import get_task

    runner = Runner(get_task("hopper/hop_forward"))
    folder = tmp_path / "cand"
    argv = runner.train_argv(folder, reward=None)
    assert "--resume" not in argv
    assert json.loads((folder / "task.json").read_text())["id"] == "hopper/hop_forward"  # the task, as data
    assert argv[argv.index("--task-file") + 1] == str(folder / "task.json") and "--task" not in argv
    (folder / "train" / "checkpoints").mkdir(parents=True)
    (folder / "train" / "checkpoints" / "last.pt").write_bytes(b"")
    (folder / "train" / "run.json").write_text("{}")
    argv = runner.train_argv(folder, reward=tmp_path / "reward.py")
    assert argv[-1] == "--resume" and argv[argv.index("--out") + 1] == str(folder / "train")
    assert runner.train_argv(folder, "sparse", sparse=True)[-1] == "--sparse"


def test_isolated_processes_get_an_offscreen_mujoco_gl_and_no_keys(tmp_path, monkeypatch) -> None:
    # unset (or glfw, which needs a display the child lacks), the child picks EGL, else OSMesa
    # (evaluate.py); egl or osmesa, the user's choice reaches it; API keys never do, nor SYNTH_REWARD_SUITES
    from synth_reward.agent.runner import Runner
    from synth_reward.envs.tasks import get_task

    runner = Runner(get_task("half_cheetah/run_forward"))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    monkeypatch.setenv("SYNTH_REWARD_SUITES", "/nowhere.yaml")
    code = "import os; e = os.environ.get; print('GL=%s KEY=%s SUITES=%s' % (e('MUJOCO_GL'), e('OPENAI_API_KEY'), e('SYNTH_REWARD_SUITES')))"
    argv = [sys.executable, "-c", code]
    for gl, seen in ((None, "None"), ("glfw", "None"), ("osmesa", "osmesa"), ("egl", "egl")):
        if gl is None:
            monkeypatch.delenv("MUJOCO_GL", raising=False)
        else:
            monkeypatch.setenv("MUJOCO_GL", gl)
        code, log = runner.command(argv, tmp_path / str(gl), "gl.log")
        assert code == 0 and f"GL={seen} KEY=None SUITES=None" in log, (gl, log)


@pytest.mark.parametrize("gl", [None, "osmesa"])
def test_final_videos_leave_the_seed_evaluation_alone(tmp_path, monkeypatch, gl) -> None:
    # the seed's eval/ holds its scores and the analysis; the videos get a folder of their own
    # (rendered with the child's own choice of GL, and with the caller's MUJOCO_GL=osmesa)
    import torch

    if gl is None:
        monkeypatch.delenv("MUJOCO_GL", raising=False)
    else:
        monkeypatch.setenv("MUJOCO_GL", gl)

    from synth_reward.agent.final import Final
    from synth_reward.agent.runner import Runner
    from synth_reward.envs.tasks import Task
    from synth_reward.train.config import TrainConfig
    from synth_reward.train.evaluate import evaluate
    from synth_reward.train.trainer import train

    settings = RunSettings(instruction="make the half cheetah run forward", designer="offline")
    store = RunStore.create(tmp_path / "runs", settings.instruction, settings=settings.model_dump(mode="json"))
    # a task in no suite: the child process gets it from the candidate's task.json and the run's manifest
    task = Task(
        id="test/cheetah20", morphology="half_cheetah", instruction="run", success="cheetah_forward", episode_length=20
    )
    final = store.candidate(0, 0)
    seed_run = final.file("seed_1000")
    config = TrainConfig(
        num_envs=4,
        num_steps_per_env=8,
        total_steps=32,
        hidden_dims=(16, 16),
        num_mini_batches=2,
        num_learning_epochs=1,
        tensorboard=False,
        num_threads=1,
    )
    zero = lambda state, action: (torch.zeros(state.num_envs), {})  # noqa: E731
    assert train(task, zero, config, seed_run).status == "completed"
    evaluate(seed_run, 3)
    before = {p.name: p.read_bytes() for p in (seed_run / "eval").iterdir()}
    stage = Final(store, settings, Runner(task))
    videos, error = stage.videos(final, "seed_1000")
    assert error is None
    assert videos == [
        "iter_00/cand_00/video_seed_1000/videos/episode_000.mp4",
        "iter_00/cand_00/video_seed_1000/videos/episode_001.mp4",
    ], (final.path / "video_seed_1000.log").read_text()
    assert all((store.path / v).stat().st_size > 1000 for v in videos)
    assert {p.name: p.read_bytes() for p in (seed_run / "eval").iterdir()} == before
    assert json.loads(before["eval.json"])["episodes"] == 3
    # no video: the run goes on, and the report says why (the eval command's one line) and where the log is
    videos, error = stage.videos(final, "seed_missing")
    assert videos == [] and error is not None and "status 2" in error and "seed_missing" in error
    assert error.endswith("(log: iter_00/cand_00/video_seed_missing.log)"), error
    final_result = FinalResult(seeds=[1000], success_rates=[0.0], success_mean=0.0, success_std=0.0, video_error=error)
    summary = RunSummary(
        run_id="r",
        run_dir=str(store.path),
        task_id="test/cheetah20",
        instruction="run",
        designer="offline",
        status="finished",
        candidates=[],
        final=final_result,
    )
    assert f"- video: none; {error}" in render_report(summary, None)


def _assert_usage_error(out: subprocess.CompletedProcess, needle: str) -> None:
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0], out.stderr


@pytest.mark.parametrize(
    ("args", "env", "needle"),
    [
        (["   "], {}, "empty"),
        (["make it dance", "--env", "octopus"], {}, "octopus"),
        (["make the hopper hop forward", "--spend-cap", "0"], {}, "spend cap"),
        (["make the humanoid kneel", "--model", "openai/gpt-4o"], {"OPENAI_API_KEY": ""}, "OPENAI_API_KEY"),
        (["make the humanoid moonwalk"], {}, "success check"),
    ],
    ids=["empty", "unknown-morphology", "zero-spend-cap", "no-api-key", "offline-free-form"],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, env, needle) -> None:
    out = cli(*args, "--out", str(tmp_path / "runs"), env={"SYNTH_REWARD_MODEL": "", **env})
    _assert_usage_error(out, needle)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_success_file_that_fails_the_critic(tmp_path) -> None:
    bad = tmp_path / "success.py"
    bad.write_text("import subprocess\ndef success(state):\n    return subprocess.call('true')\n")
    out = cli("make the hopper stand tall", "--success", str(bad), "--out", str(tmp_path / "runs"))
    _assert_usage_error(out, "rejected")
    assert not (tmp_path / "runs").exists()


def test_unwritable_output_folder(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    out = cli("make the humanoid kneel", "--out", str(blocker / "runs"))
    _assert_usage_error(out, "runs")
