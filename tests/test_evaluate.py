"""Evaluation: success rate on scripted rollouts, the .npz export recomputing it, video."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from synth_reward.envs.tasks import Task
from synth_reward.train.config import TrainConfig
from synth_reward.train.evaluate import (
    evaluate,
    export_npz,
    load_npz,
    render_video,
    replay_success,
    rollout,
)
from synth_reward.train.trainer import train
from tests.conftest import run_cli

SHORT_SUITE = """name: short
tasks:
  - {id: test/cheetah20, morphology: half_cheetah, instruction: run, success: cheetah_forward, episode_length: 20}
"""
"""A user suite with a 20-step task, so that a run folder trains and evaluates in about a second."""


def zero_reward(state, action):
    return torch.zeros(state.num_envs), {}


def sign_policy(num_actions: int):
    """Env i pushes every actuator to +1 (even i) or -1 (odd i): a scripted, deterministic policy."""

    def policy(obs):
        n = obs.batch_size[0]
        sign = torch.where(torch.arange(n) % 2 == 0, 1.0, -1.0)
        return sign[:, None].expand(n, num_actions).clone()

    return policy


def cheetah(success_code: str, rule: str = "half_of_steps", length: int = 30) -> Task:
    return Task(
        id="test/cheetah",
        morphology="half_cheetah",
        instruction="test",
        success_code=success_code,
        success_rule=rule,
        episode_length=length,
    )


def test_success_rate_of_scripted_rollouts():
    # the check holds on every step where actuator 0 pushes forward: envs 0 and 2 of 4
    task = cheetah("def success(state):\n    return state.actuator_force[:, 0] > 0\n")
    out = rollout(task, sign_policy(6), zero_reward, 4, max_envs=4)
    assert [s.success for s in out.summaries] == [True, False, True, False]
    assert [s.success_fraction for s in out.summaries] == [1.0, 0.0, 1.0, 0.0]
    assert out.lengths.tolist() == [30] * 4 and list(out.end_reason) == ["time_limit"] * 4
    assert out.success.sum(axis=1).tolist() == [30, 0, 30, 0]


def test_success_rule_half_of_steps_versus_any_step():
    code = "def success(state):\n    return state.step <= 14\n"  # holds on 14 of 30 steps: just under half
    half = rollout(cheetah(code), sign_policy(6), zero_reward, 2, max_envs=2)
    anyone = rollout(cheetah(code, "any_step"), sign_policy(6), zero_reward, 2, max_envs=2)
    assert [s.success for s in half.summaries] == [False, False]
    assert [s.success for s in anyone.summaries] == [True, True]
    code15 = "def success(state):\n    return state.step <= 15\n"  # exactly half: succeeds
    assert all(s.success for s in rollout(cheetah(code15), sign_policy(6), zero_reward, 2, max_envs=2).summaries)


def test_episodes_split_over_batches_keep_their_order():
    task = cheetah("def success(state):\n    return state.actuator_force[:, 0] > 0\n", length=5)
    out = rollout(task, sign_policy(6), zero_reward, 5, max_envs=2)  # batches of 2, 2, 1
    assert [s.index for s in out.summaries] == [0, 1, 2, 3, 4]
    assert [s.success for s in out.summaries] == [True, False, True, False, True]


def test_npz_export_recomputes_the_same_success_rate(tmp_path):
    # a check on positions only (recomputable from qpos): the back thigh swung forward
    task = cheetah("def success(state):\n    return state.joint('bthigh').pos > 0.2\n", length=40)
    out = rollout(task, sign_policy(6), zero_reward, 4, max_envs=4)
    path = export_npz(tmp_path / "states.npz", out, task)
    data = load_npz(path)
    assert data["qpos"].shape == (4, 40, 9) and data["qvel"].shape == (4, 40, 9)
    assert data["actions"].shape == (4, 40, 6) and np.all(np.abs(data["actions"]) <= 1)
    assert str(data["task_id"]) == "test/cheetah" and float(data["dt"]) == pytest.approx(0.05)
    online = np.array([s.success for s in out.summaries])
    assert online.tolist() == [True, False, True, False]
    assert replay_success(path, task).tolist() == online.tolist()


def test_video_is_an_mp4_of_the_episode(tmp_path):
    import imageio.v2 as imageio

    task = cheetah("def success(state):\n    return state.step > 0\n", length=8)
    out = rollout(task, sign_policy(6), zero_reward, 1, max_envs=1)
    path = render_video("half_cheetah", out.qpos[0], tmp_path / "ep.mp4", width=160, height=120)
    reader = imageio.get_reader(path)
    assert reader.count_frames() == 8  # dt 0.05 s: every control step is a frame
    assert reader.get_data(0).shape == (120, 160, 3)


# ---- the eval command --------------------------------------------------------------------------------
@pytest.fixture
def short_run(tmp_path, monkeypatch) -> Path:
    """A run folder of test/cheetah20 (two tiny PPO iterations), already evaluated into RUN/eval.

    The task is in no registered suite: the run's manifest carries it, so eval and analyze need no lookup."""
    from synth_reward.envs.tasks import load_suite

    suite = tmp_path / "short.yaml"
    suite.write_text(SHORT_SUITE)
    task = next(t for t in load_suite(str(suite)).tasks if t.id == "test/cheetah20")
    config = TrainConfig(
        num_envs=4,
        num_steps_per_env=8,
        total_steps=64,
        hidden_dims=(16, 16),
        num_mini_batches=2,
        num_learning_epochs=1,
        tensorboard=False,
        num_threads=1,
    )
    run = tmp_path / "run"
    assert train(task, zero_reward, config, run).status == "completed"
    evaluate(run, 2)
    return run


def test_eval_out_writes_there_and_leaves_the_run_eval_alone(short_run, tmp_path, capsys):
    before = {p.name: p.read_bytes() for p in (short_run / "eval").iterdir()}
    other = tmp_path / "elsewhere" / "video"
    code, out = run_cli(capsys, "eval", str(short_run), "--episodes", "3", "--out", str(other))
    assert code == 0, out
    assert json.loads((other / "eval.json").read_text())["episodes"] == 3 and (other / "states.npz").exists()
    assert f"states: {other / 'states.npz'}" in out
    assert {p.name: p.read_bytes() for p in (short_run / "eval").iterdir()} == before
    assert json.loads(before["eval.json"])["episodes"] == 2


def test_eval_out_that_cannot_be_a_folder_exits_2_with_one_line(short_run, tmp_path, capsys):
    (tmp_path / "a_file").write_text("")
    for bad in (tmp_path / "a_file" / "sub", tmp_path / "a_file"):
        code, out = run_cli(capsys, "eval", str(short_run), "--out", str(bad))
        assert code == 2, out
        assert len(out.strip().splitlines()) == 1 and out.startswith("error:") and "a_file" in out, out
    assert json.loads((short_run / "eval" / "eval.json").read_text())["episodes"] == 2
    for bad in (tmp_path / "a_file" / "states.npz", tmp_path):
        code, out = run_cli(capsys, "eval", str(short_run), "--export-states", str(bad))
        assert code == 2, out
        assert len(out.strip().splitlines()) == 1 and out.startswith("error:"), out
