"""Each stage of the agent on its own, against its typed input and output (agent/records.py).

The loop's end-to-end tests (test_loop.py, test_search.py) run the stages together; these run
one at a time: the designer, the critic, the runner, the search's driver, the final stage
with the human normalized score, and the sparse baseline built from the check object.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from synth_reward.agent.critic import Critic
from synth_reward.agent.designer import BestSoFar, TemplateDesigner
from synth_reward.agent.final import Final
from synth_reward.agent.records import Analysis, Design, FinalResult, RunSettings, TrainResult
from synth_reward.agent.resolve import resolve_task
from synth_reward.agent.runner import Runner, read_record
from synth_reward.agent.search import Score, best_of, new_bracket, play
from synth_reward.agent.store import RunStore
from synth_reward.envs.tasks import Task, get_task
from synth_reward.train.analyzer import render_failures, render_reflection, render_text
from synth_reward.train.reward import sparse_reward
from tests.conftest import run_cli

CHEETAH20 = Task(
    id="test/cheetah20",
    morphology="half_cheetah",
    instruction="run",
    success="cheetah_forward",
    episode_length=20,
    human_reward="gymnasium",
)
"""A task in no suite, with a human reward: the runner's children must get it as data."""

HOSTILE = "```python\nimport os\ndef compute_reward(state, action):\n    os.system('true')\n```"


def _store(tmp_path: Path, instruction: str = "make the ant lie down", **fields: object) -> RunStore:
    settings = RunSettings(instruction=instruction, designer="offline", **fields)  # type: ignore[arg-type]
    return RunStore.create(tmp_path / "runs", instruction, settings=settings.model_dump(mode="json"))


# ---- the sparse baseline ------------------------------------------------------------------------
def test_sparse_reward_is_the_task_check_itself() -> None:
    task = get_task("ant/lie_down")
    env = task.make_env(6, seed=3)
    env.reset()
    reward = sparse_reward(task)
    held = 0
    for _ in range(40):
        env.step(torch.rand(6, env.num_actions) * 2 - 1)
        r, parts = reward(env.state, torch.zeros(6, env.num_actions))
        expected = task.success_fn()(env.state).to(r.dtype)
        assert torch.equal(r, expected) and torch.equal(parts["success"], expected)
        held += int(expected.sum())
    assert r.dtype == env.state.body_pos.dtype and set(r.unique().tolist()) <= {0.0, 1.0}


def test_train_from_a_task_file_on_the_sparse_reward(tmp_path, capsys) -> None:
    """`train --task-file` needs no suite; the manifest carries the task, so eval needs no lookup either."""
    task_file = tmp_path / "task.json"
    task_file.write_text(CHEETAH20.model_dump_json())
    out = tmp_path / "run"
    code, text = run_cli(
        capsys,
        "train",
        "--task-file",
        str(task_file),
        "--sparse",
        "--steps",
        "64",
        "--num-envs",
        "2",
        "--out",
        str(out),
    )
    assert code == 0, text
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["reward_source"] == "sparse" and manifest["task"]["id"] == "test/cheetah20"
    assert not (out / "reward.py").exists()  # built from the check, not from source text
    code, text = run_cli(capsys, "eval", str(out), "--episodes", "2")
    assert code == 0, text
    assert json.loads((out / "eval" / "eval.json").read_text())["episodes"] == 2
    # bad input: one line, exit 2
    for args, message in (
        (["--task-file", str(tmp_path / "missing.json")], "cannot read task file"),
        (["--task-file", str(task_file), "--task", "ant/lie_down"], "not both"),
        (["--task", "ant/lie_down", "--sparse", "--reward", str(task_file)], "not both"),
    ):
        (tmp_path / "bad.json").write_text("{}")
        code, text = run_cli(capsys, "train", *args, "--out", str(tmp_path / "x"))
        assert code == 2 and message in text and len(text.strip().splitlines()) == 1, text
    code, text = run_cli(capsys, "train", "--task-file", str(tmp_path / "bad.json"), "--out", str(tmp_path / "y"))
    assert code == 2 and "is not a task" in text and len(text.strip().splitlines()) == 1, text


# ---- the designer -------------------------------------------------------------------------------
def test_template_designer_returns_a_design_and_reads_the_analysis_record() -> None:
    task = resolve_task("make the hopper do a front flip")  # the task of the stored analysis (0% success)
    designer = TemplateDesigner(seed=0)
    first = designer.design(task, 3, iteration=1)
    assert isinstance(first, Design) and first.designer == "offline" and len(first.replies) == 3
    assert all("def compute_reward" in r for r in first.replies)
    assert designer.design(task, 3, iteration=1) == first  # deterministic for a seed
    analysis = Analysis.model_validate(json.loads((Path(__file__).parent / "data" / "analysis.json").read_text()))
    adjusted = designer.design(
        task, 3, iteration=2, best=BestSoFar(id="i1c0", code=first.replies[0], analysis=analysis)
    )
    assert adjusted.replies[0] != first.replies[0]  # the analysis moved the template's weights


# ---- the critic ---------------------------------------------------------------------------------
def test_critic_writes_its_verdict_last_and_never_vets_twice(tmp_path) -> None:
    store = _store(tmp_path)
    task = resolve_task("make the ant lie down")
    events: list[tuple[str, dict]] = []
    critic = Critic(task, num_envs=8, emit=lambda e, d: events.append((e, d)))
    good, bad = store.candidate(1, 0), store.candidate(1, 1)
    good.write_code(TemplateDesigner().design(task, 1, 1).replies[0], "reply.txt")
    bad.write_code(HOSTILE, "reply.txt")
    assert critic.vet(good) is None
    assert good.code("reward.py") and good.read("verdict")["accepted"]
    rejected = critic.vet(bad)
    assert rejected is not None and rejected.stage == "rejected" and "os" in rejected.reason
    assert bad.code("reward.py") is None and bad.read("verdict")["accepted"] is False
    vetted = len(events)
    assert critic.vet(good) is None and critic.vet(bad) == rejected
    assert len(events) == vetted  # read back from verdict.json: nothing vetted again


# ---- the search's driver ------------------------------------------------------------------------
def test_play_trains_each_rung_once_and_resumes_a_saved_bracket() -> None:
    rates = {"a": 0.1, "b": 0.5, "c": 0.3}
    calls: list[tuple[str, int]] = []
    saved: list[str] = []

    def train(cid: str, rung: int) -> Score:
        calls.append((cid, rung))
        return Score(success_rate=rates[cid], env_steps=100 * 2**rung)

    bracket = new_bracket(list(rates), 400, "halving")
    stop_after = 4  # a kill after the fourth score

    def save_until_killed(b):
        saved.append(b.model_dump_json())
        if len(calls) == stop_after:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        play(bracket, train, save_until_killed)
    from synth_reward.agent.search import Bracket

    resumed = Bracket.model_validate_json(saved[-1])
    play(resumed, train, lambda b: saved.append(b.model_dump_json()))
    assert calls == [("a", 0), ("b", 0), ("c", 0), ("b", 1), ("c", 1), ("b", 2)]  # nothing trained twice
    assert resumed.winner == "b" and [r.candidates for r in resumed.rungs] == [["a", "b", "c"], ["b", "c"], ["b"]]


def test_best_of_ranks_by_evaluation_success_then_progress() -> None:
    from synth_reward.agent.records import CandidateResult

    results = [
        CandidateResult(id="i1c0", iteration=1, index=0, stage="analyzed", success_rate=0.5, progress=0.2),
        CandidateResult(id="i1c1", iteration=1, index=1, stage="analyzed", success_rate=0.5, progress=0.6),
        CandidateResult(id="i1c2", iteration=1, index=2, stage="eliminated", progress=0.9),
        CandidateResult(id="i2c0", iteration=2, index=0, stage="analyzed", success_rate=0.5, progress=0.6),
    ]
    best = best_of(results)
    assert best is not None and best.id == "i1c1"  # the tie goes to the earlier candidate
    assert best_of(results[2:3]) is None


# ---- the runner -------------------------------------------------------------------------------------
def test_runner_returns_typed_records_and_records_a_failure_once(tmp_path) -> None:
    processes: list[dict] = []
    runner = Runner(CHEETAH20, log=lambda kind, **data: processes.append(data))
    folder = tmp_path / "cand"
    failed = runner.train(folder, reward=tmp_path / "missing.py", steps=64, num_envs=2)
    assert isinstance(failed, TrainResult) and failed.status == "failed" and "missing.py" in failed.reason
    assert runner.train(folder, reward=tmp_path / "missing.py", steps=64, num_envs=2) == failed
    assert len(processes) == 1  # a failure is a result too: not repeated
    trained = runner.train(folder, "human", steps=64, num_envs=2)
    assert trained.status == "completed" and trained.env_steps >= 64
    analysis = runner.analyze(folder, "human", episodes=2)
    assert isinstance(analysis, Analysis) and analysis.task_id == "test/cheetah20"
    assert runner.analyze(folder, "human", episodes=2) == analysis and len(processes) == 3  # read back
    assert read_record(folder / "task.json", Task) == CHEETAH20


# ---- the final stage --------------------------------------------------------------------------------
def test_final_retrains_and_scores_against_the_human_and_sparse_baselines(tmp_path) -> None:
    """Eureka's protocol end to end: the best reward retrained on a seed, the human reward and the sparse
    baseline (`train --sparse`) trained beside it, and the human normalized score from their returns."""
    store = _store(tmp_path, "make the half cheetah run forward", steps=64, final_seeds=1, video=False)
    settings = RunSettings.model_validate(store.info().settings)
    best = store.candidate(1, 0)
    best.write_code(
        "import torch\n\ndef compute_reward(state, action):\n"
        "    speed = state.com_vel[:, 0]\n    return speed, {'speed': speed}\n",
        "reward.py",
    )
    result = Final(store, settings, Runner(CHEETAH20)).retrained(best)
    assert isinstance(result, FinalResult) and result.mode == "retrained" and result.seeds == [1000]
    sparse = store.candidate(0, 1).path / "sparse"
    assert json.loads((sparse / "run.json").read_text())["reward_source"] == "sparse"
    assert not (sparse / "reward.py").exists()
    assert None not in (result.human_return, result.sparse_return, result.method_return)
    h, b, m = result.human_return, result.sparse_return, result.method_return
    assert result.human_normalized_score == pytest.approx((m - b) / abs(h - b))  # type: ignore[operator]
    assert FinalResult.model_validate(store.candidate(0, 0).read("final")) == result  # written, read back


# ---- the analysis, rendered from its record -------------------------------------------------------
def test_reflection_and_failures_render_from_the_record() -> None:
    analysis = Analysis.model_validate(json.loads((Path(__file__).parent / "data" / "analysis.json").read_text()))
    reflection, failures = render_reflection(analysis), render_failures(analysis)
    assert reflection.startswith("Training:") and failures.startswith("Evaluation:")
    assert render_text(analysis) == reflection + "\n" + failures
