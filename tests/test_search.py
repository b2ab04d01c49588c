"""Successive halving: the bracket's bookkeeping, a killed search that resumes, and the final own-policy evaluation."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from synth_reward.agent.search import Score, close_rung, new_bracket, rung_budgets, survivors, total_steps
from synth_reward.envs.tasks import get_task
from synth_reward.train.config import default_config
from synth_reward.train.trainer import Trainer


def test_rung_budgets() -> None:
    assert rung_budgets(600_000, 3) == [150_000, 300_000, 600_000]
    assert rung_budgets(600_000, 4) == [150_000, 300_000, 600_000]
    assert rung_budgets(600_000, 2) == [300_000, 600_000]
    assert rung_budgets(600_000, 1) == [600_000]
    assert rung_budgets(600_000, 16) == [37_500, 75_000, 150_000, 300_000, 600_000]
    assert rung_budgets(600_000, 3, "full") == [600_000]
    with pytest.raises(ValueError):
        rung_budgets(0, 3)


def test_survivors_rank_by_success_then_progress_then_order() -> None:
    scores = {
        "a": Score(success_rate=0.5, progress=0.1),
        "b": Score(success_rate=0.5, progress=0.6),
        "c": Score(success_rate=0.9, progress=0.0),
        "d": Score(success_rate=0.5, progress=0.6),
        "e": Score(failed="reward went non-finite"),
    }
    order = ["a", "b", "c", "d", "e"]
    assert survivors(scores, 2, order) == ["c", "b"]  # b and d tie: the earlier continues
    assert survivors(scores, 3, order) == ["c", "b", "d"]
    assert survivors(scores, 5, order) == ["c", "b", "d", "a"]  # a failed candidate never continues
    assert survivors({"x": Score(), "y": Score(progress=0.01)}, 1, ["x", "y"]) == ["y"]  # None counts as 0


def test_bracket_bookkeeping_halves_and_drops_failures() -> None:
    bracket = new_bracket(["c0", "c1", "c2"], 600_000)
    assert [r.budget for r in bracket.rungs] == [150_000, 300_000, 600_000]
    assert total_steps(bracket) == 0 or True  # (defined once candidates are placed; checked below)
    rung = bracket.rungs[0]
    rung.scores = {
        "c0": Score(success_rate=0.0, progress=0.2),
        "c1": Score(failed="crashed"),
        "c2": Score(success_rate=0.1),
    }
    close_rung(bracket, 0)
    assert rung.survivors == ["c2", "c0"] and bracket.rungs[1].candidates == ["c2", "c0"]
    bracket.rungs[1].scores = {"c2": Score(success_rate=0.2), "c0": Score(success_rate=0.6)}
    close_rung(bracket, 1)
    assert bracket.rungs[2].candidates == ["c0"]
    bracket.rungs[2].scores = {"c0": Score(success_rate=1.0)}
    close_rung(bracket, 2)
    assert bracket.winner == "c0"
    out = bracket.eliminated()
    assert set(out) == {"c1", "c2"} and out["c1"][0] == 0 and out["c1"][1].failed and out["c2"][0] == 1
    # 3 x 150k + 2 x 150k + 1 x 300k, against Eureka's 3 x 600k for every candidate
    assert total_steps(bracket) == 1_050_000
    assert total_steps(new_bracket(["c0", "c1", "c2"], 600_000, "full")) == 1_800_000
    with pytest.raises(ValueError):
        close_rung(new_bracket(["a", "b"], 100), 0)  # no scores yet


HOP_REWARD = """
import torch

def compute_reward(state, action):
    up = state.body("torso").up[:, 2]
    forward = state.com_vel[:, 0]
    return forward + up, {"forward": forward, "up": up}
"""


@pytest.mark.parametrize("reward", [None, HOP_REWARD], ids=["human-reward", "designed-reward-early-end"])
def test_a_resumed_candidate_gives_the_same_result_as_an_uninterrupted_run(tmp_path: Path, reward) -> None:
    """A candidate that continues at the next rung resumes its checkpoint: networks, optimizer, normalisers,
    RNGs and the envs mid-episode (physics, counters, early-ending state), so two rungs give bit for bit the
    networks and the training records of one run of the same length."""
    from synth_reward.train.reward import load_reward_code

    task = get_task("hopper/hop_forward")
    fn = load_reward_code(reward) if reward else None

    def trainer(out: Path, steps: int) -> Trainer:
        config = default_config("hopper", total_steps=steps, tensorboard=False, num_records=4)
        return Trainer(task, fn, config, out, reward_code=reward)

    trainer(tmp_path / "once", 4096).train()
    trainer(tmp_path / "rungs", 2048).train()
    half = torch.load(tmp_path / "rungs/checkpoints/last.pt", weights_only=True)
    trainer(tmp_path / "rungs", 4096).train(resume=True)
    a = torch.load(tmp_path / "once/checkpoints/last.pt", weights_only=True)
    b = torch.load(tmp_path / "rungs/checkpoints/last.pt", weights_only=True)
    assert a["env_steps"] == b["env_steps"] == 4096 and a["iteration"] == b["iteration"] == 2 * half["iteration"]
    for net in ("actor_state_dict", "critic_state_dict"):
        for name, value in a["models"][net].items():
            assert torch.equal(value, b["models"][net][name]), (net, name)
    assert torch.equal(a["env_state"]["env"]["backend"]["rows"], b["env_state"]["env"]["backend"]["rows"])
    volatile = {"wall_seconds", "steps_per_second"}

    def records(run: str) -> list[dict]:
        lines = (tmp_path / run / "records.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(line).items() if k not in volatile} for line in lines]

    once, rungs = records("once"), records("rungs")
    assert once[-1] == rungs[-1] and [r["iteration"] for r in rungs] == sorted({r["iteration"] for r in rungs})
    assert any(r["episodes"] for r in once)  # episodes finished: the comparison covers their statistics


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "synth_reward.cli", *args], capture_output=True, text=True, timeout=900
    )


def test_killed_halving_search_resumes_without_training_a_budget_twice(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    args = [
        "make the ant lie down",
        "--steps",
        "4096",
        "--samples",
        "3",
        "--iterations",
        "1",
        "--episodes",
        "2",
        "--final-episodes",
        "4",
        "--no-video",
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
    while time.monotonic() < deadline:  # kill once the first rung has closed and the second has begun
        found = list(root.glob("*/iter_01/bracket.json"))
        if found and (json.loads(found[0].read_text())["rungs"][1]["candidates"]):
            break
        time.sleep(0.2)
    else:
        pytest.fail("the first rung never closed")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    run = found[0].parents[1]
    out = _cli("resume", run.name, "--out", str(root))
    assert out.returncode == 0, out.stdout + out.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished"
    assert sorted(c["stage"] for c in summary["candidates"]) == ["analyzed", "eliminated", "eliminated"]
    bracket = json.loads((run / "iter_01/bracket.json").read_text())
    assert [len(r["candidates"]) for r in bracket["rungs"]] == [3, 2, 1]
    # every training process of a candidate asked for a larger budget than the one before, and continued it
    by_cand: dict[str, list[list[str]]] = {}
    for e in map(json.loads, (run / "events.jsonl").read_text().splitlines()):
        if e["event"] == "process" and e["argv"][0] == "train":
            by_cand.setdefault(e["argv"][e["argv"].index("--out") + 1], []).append(e["argv"])
    for folder, runs in by_cand.items():
        steps = [int(a[a.index("--steps") + 1]) for a in runs]
        killed_and_resumed = len(steps) - len(set(steps))
        assert killed_and_resumed <= 1, (folder, steps)  # at most the one training the kill cut short
        assert steps == sorted(steps), (folder, steps)
        assert all("--resume" in a for a in runs[1:]), folder
    # the result is the winner's own policy, evaluated on fresh episodes
    final = summary["final"]
    assert final["mode"] == "own_policy" and final["episodes"] == 4 and final["seeds"] == [20_000]
    winner = next(c for c in summary["candidates"] if c["stage"] == "analyzed")
    assert summary["best"] == winner["id"]
    evaluated = json.loads((run / f"iter_01/cand_{winner['index']:02d}/final_eval/eval.json").read_text())
    assert evaluated["episodes"] == 4 and evaluated["success_rate"] == final["success_mean"]
    assert "own policy on fresh episodes" in (run / "report.md").read_text()


NAN_REPLY = '''```python
import torch

def compute_reward(state, action):
    """Finite on the probe's states (episode step 30 at most), NaN once an episode passes step 40."""
    height = state.body("torso").height
    bad = torch.where(state.step > 40, torch.full_like(height, float("nan")), torch.zeros_like(height))
    return height + bad, {"height": height}
```'''


def test_a_candidate_that_goes_non_finite_leaves_the_bracket_and_the_search_goes_on(tmp_path: Path) -> None:
    from fake_llm import FakeLLM, Reply
    from test_loop import REWARD_REPLY, SUCCESS_REPLY

    from synth_reward.agent.llm import LLMSettings
    from synth_reward.agent.loop import Loop, RunSettings
    from synth_reward.agent.store import RunStore

    script = [Reply(SUCCESS_REPLY), Reply(REWARD_REPLY), Reply(NAN_REPLY), Reply(REWARD_REPLY)]
    with FakeLLM(script) as server:
        llm = LLMSettings(
            model="openai/fake", api_base=server.base_url, api_key="test", timeout_s=10, max_retries=1, backoff_s=0.01
        )
        settings = RunSettings(
            instruction="make the hopper stand tall and still",
            samples=3,
            iterations=1,
            steps=2048,
            eval_episodes=2,
            final_episodes=2,
            video=False,
            designer="llm",
            llm=llm.public(),
        )
        resolved = Loop.prepare(settings)
        store = RunStore.create(tmp_path / "runs", settings.instruction, settings=settings.model_dump(mode="json"))
        summary = Loop(store, settings, llm, resolved=resolved).run()
    assert summary.status == "finished"
    stages = {c.id: c.stage for c in summary.candidates}
    # the K samples are requested concurrently, so which candidate got the NaN reply is found from its reply
    nan = next(f"i1c{j}" for j in range(3) if "NaN once" in (store.candidate(1, j).code("reply.txt") or ""))
    assert stages[nan] == "train_failed" and sorted(stages.values()) == ["analyzed", "eliminated", "train_failed"]
    failed = next(c for c in summary.candidates if c.id == nan)
    assert "finite" in failed.reason.lower() or "nan" in failed.reason.lower(), failed.reason
    bracket = json.loads(store.read_text("iter_01/bracket.json") or "{}")
    assert bracket["rungs"][0]["scores"][nan]["failed"] and nan not in bracket["rungs"][1]["candidates"]
    assert summary.final is not None and summary.final.mode == "own_policy" and summary.final.episodes == 2


ALWAYS_REPLY = '''```python
import torch

def success(state):
    """Always: the torso is above the floor's depth."""
    return state.body("torso").height > -10.0
```'''


def test_the_run_stops_at_the_target_success(tmp_path: Path) -> None:
    """A check met at once: the last rung trains with --stop-at and no second iteration starts."""
    from fake_llm import FakeLLM, Reply
    from test_loop import REWARD_REPLY

    from synth_reward.agent.llm import LLMSettings
    from synth_reward.agent.loop import Loop, RunSettings
    from synth_reward.agent.store import RunStore

    script = [Reply(ALWAYS_REPLY), Reply(REWARD_REPLY), Reply(REWARD_REPLY)]
    with FakeLLM(script) as server:
        llm = LLMSettings(
            model="openai/fake", api_base=server.base_url, api_key="test", timeout_s=10, max_retries=1, backoff_s=0.01
        )
        settings = RunSettings(
            instruction="make the hopper stand tall and still",
            samples=2,
            iterations=2,
            steps=16_384,
            eval_episodes=2,
            final_episodes=2,
            video=False,
            designer="llm",
            llm=llm.public(),
        )
        resolved = Loop.prepare(settings)
        store = RunStore.create(tmp_path / "runs", settings.instruction, settings=settings.model_dump(mode="json"))
        events: list[str] = []
        summary = Loop(store, settings, llm, resolved=resolved, on_event=lambda e, d: events.append(e)).run()
    assert summary.status == "finished" and summary.best_success_rate == 1.0
    assert {c.iteration for c in summary.candidates} == {1} and "target_reached" in events
    assert not (store.path / "iter_02").exists()
    winner = next(c for c in summary.candidates if c.stage == "analyzed")
    result = json.loads((store.candidate(1, winner.index).path / "train" / "result.json").read_text())
    assert result["reason"].startswith("stopped early")  # the last rung trained with --stop-at 0.9
    rungs = json.loads(store.read_text("iter_01/bracket.json") or "{}")["rungs"]
    assert [r["budget"] for r in rungs] == [8_192, 16_384] and rungs[0]["scores"][winner.id]["env_steps"] >= 8_192
