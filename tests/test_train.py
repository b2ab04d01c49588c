"""Trainer: reward injection and accounting, faults, checkpoints and resume, a short real run, the commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from synth_reward.envs.poses import pose_state
from synth_reward.envs.rewards import gymnasium_reward
from synth_reward.envs.tasks import Task, get_task
from synth_reward.train.config import TrainConfig, default_config
from synth_reward.train.records import read_records
from synth_reward.train.reward import load_reward_code
from synth_reward.train.trainer import Trainer, load_checkpoint, train
from synth_reward.train.vecenv import RewardNormalizer, TrainEnv
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[1]
KNEEL_REWARD = ROOT / "examples" / "rewards" / "humanoid_kneel.py"


def tiny(**overrides) -> TrainConfig:
    """A config that trains in about a second: 4 envs x 8 steps per iteration, 16x16 nets."""
    fields = dict(
        num_envs=4,
        num_steps_per_env=8,
        total_steps=64,
        hidden_dims=(16, 16),
        num_mini_batches=2,
        num_learning_epochs=2,
        tensorboard=False,
        num_threads=1,
        init_noise_std=0.5,
    )
    return TrainConfig(**(fields | overrides))


def short_cheetah(length: int = 5) -> Task:
    return Task(
        id="test/cheetah",
        morphology="half_cheetah",
        instruction="test",
        success="cheetah_forward",
        episode_length=length,
        human_reward="gymnasium",
    )


def counting_reward(state, action):
    terms = {"one": torch.ones(state.num_envs), "step": state.step.float(), "act": action[:, 0]}
    return torch.stack(list(terms.values())).sum(dim=0), terms


# ---- injection and accounting -------------------------------------------------------------------
def test_reward_injection_and_component_accounting_match_hand_computed_sums():
    env = TrainEnv(short_cheetah(5), counting_reward, 3, seed=0, num_threads=1)
    policy_action = torch.full((3, env.num_actions), 0.5)
    for _ in range(12):
        _, reward, dones, extras = env.step(policy_action)
    log = env.drain()
    assert env.guard.calls == 12  # once per step, on the whole batch
    assert len(log) == 6 and log.lengths == [5] * 6 and log.end_reason == ["time_limit"] * 6
    assert log.components["one"] == [5.0] * 6
    assert log.components["step"] == [15.0] * 6  # 1 + 2 + 3 + 4 + 5
    assert log.components["act"] == pytest.approx([2.5] * 6)  # action 0.5 on a [-1, 1] actuator, 5 steps
    assert log.returns == pytest.approx([22.5] * 6)
    # the human reward is summed per episode alongside: recompute it with a second env, same seed and actions
    ref = get_task("gym/HalfCheetah-v5")
    twin = TrainEnv(short_cheetah(5), gymnasium_reward("half_cheetah"), 3, seed=0, num_threads=1, track_human=False)
    for _ in range(12):
        twin.step(policy_action)
    assert ref.human_reward == "gymnasium"
    assert log.human_returns == pytest.approx(twin.drain().returns, rel=1e-5)


def test_actions_map_to_ctrl_range_and_clip():
    env = TrainEnv(get_task("humanoid/kneel"), counting_reward, 1, seed=0, num_threads=1)
    ctrl = env.to_ctrl(torch.tensor([[1.0, -1.0, 0.5, 3.0] + [0.0] * 13]))
    assert ctrl[0, :4].tolist() == pytest.approx([0.4, -0.4, 0.2, 0.4])  # humanoid ctrl range is +-0.4


def test_example_kneel_reward_total_is_sum_of_terms_and_prefers_kneeling():
    reward = load_reward_code(KNEEL_REWARD.read_text())
    kneel, stand = pose_state("humanoid", "kneeling"), pose_state("humanoid", "standing")
    action = torch.zeros(1, 17)
    total, terms = reward(kneel, action)
    assert torch.allclose(total, torch.stack(list(terms.values())).sum(dim=0))
    assert float(terms["in_pose"][0]) > 0 and float(terms["upright"][0]) == pytest.approx(1.0)
    assert float(total[0]) > float(reward(stand, action)[0][0]) + 1.0


# ---- faults: the candidate stops, the caller carries on --------------------------------------------
def nan_after_three(state, action):
    value = torch.where(state.step >= 3, torch.nan, 1.0)
    return value, {"bad": value}


def raises(state, action):
    return 1 / 0


def wrong_shape(state, action):
    return torch.ones(state.num_envs, 2), {}


def hangs(state, action):
    while True:
        pass


@pytest.mark.parametrize(
    ("reward", "expected"),
    [
        (nan_after_three, "NaN in 4 of 4 envs at step 3"),
        (raises, "raised ZeroDivisionError"),
        (wrong_shape, "shape (4,)"),
        (hangs, "longer than 0.5 s"),
    ],
)
def test_bad_reward_stops_training_with_the_reason(tmp_path, reward, expected):
    start = time.perf_counter()
    trainer = Trainer(short_cheetah(50), reward, tiny(), tmp_path / "run", reward_timeout_s=0.5)
    result = trainer.train()
    trainer.close()
    assert time.perf_counter() - start < 20
    assert result.status == "failed" and expected in result.reason
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert saved["status"] == "failed" and expected in saved["reason"]


# ---- checkpoints --------------------------------------------------------------------------------
def test_checkpoint_save_and_load_restore_everything(tmp_path):
    a = Trainer(
        short_cheetah(20),
        counting_reward,
        tiny(total_steps=64, reward_normalization=True, noise_std_type="log"),
        tmp_path / "a",
    )
    a.train()
    a.save_checkpoint(tmp_path / "a.pt")
    b = Trainer(
        short_cheetah(20),
        counting_reward,
        tiny(seed=7, reward_normalization=True, noise_std_type="log"),
        tmp_path / "b",
    )
    assert any("log_std_param" in k for k in a.alg.save()["actor_state_dict"])
    b.load_checkpoint(tmp_path / "a.pt")
    assert b.env.reward_normalizer.state_dict() == a.env.reward_normalizer.state_dict()
    assert a.env.reward_normalizer.count > 1
    sa, sb = a.alg.save(), b.alg.save()
    for key in ("actor_state_dict", "critic_state_dict"):
        assert sa[key].keys() == sb[key].keys()
        for name in sa[key]:
            assert torch.equal(sa[key][name], sb[key][name]), name
    for pa, pb in zip(
        a.alg.optimizer.state_dict()["state"].values(), b.alg.optimizer.state_dict()["state"].values(), strict=True
    ):
        assert all(torch.equal(pa[k], pb[k]) for k in pa)
    assert (b.iteration, b.env_steps, b.alg.learning_rate) == (a.iteration, a.env_steps, a.alg.learning_rate)
    assert torch.equal(torch.get_rng_state(), load_checkpoint(tmp_path / "a.pt")["torch_rng"])
    obs = b.env.get_observations()
    a.alg.eval_mode(), b.alg.eval_mode()
    assert torch.equal(a.alg.get_policy()(obs), b.alg.get_policy()(obs))  # normaliser included
    a.close(), b.close()


def test_reward_normalizer_matches_sb3_vecnormalize():
    """Same scaled rewards as SB3's VecNormalize (running std of the discounted return, clipped)."""
    import numpy as np
    from stable_baselines3.common.running_mean_std import RunningMeanStd

    gen = torch.Generator().manual_seed(0)
    ours, ret_rms, returns = RewardNormalizer(4, gamma=0.9), RunningMeanStd(shape=()), np.zeros(4)
    for t in range(200):
        reward = torch.randn(4, generator=gen) * 30 + 5
        done = torch.rand(4, generator=gen) < 0.05
        returns = returns * 0.9 + reward.double().numpy()  # VecNormalize.step_wait, verbatim in numpy
        ret_rms.update(returns)
        expected = np.clip(reward.double().numpy() / np.sqrt(ret_rms.var + 1e-8), -10, 10)
        returns[done.numpy()] = 0
        assert np.allclose(ours(reward.double(), done).numpy(), expected, rtol=1e-9), t


def test_resume_continues_from_the_last_checkpoint(tmp_path):
    run = tmp_path / "run"
    first = train(short_cheetah(20), counting_reward, tiny(total_steps=64, num_records=2), run)
    assert first.status == "completed" and first.iterations == 2
    again = train(short_cheetah(20), counting_reward, tiny(total_steps=128, num_records=4), run, resume=True)
    assert again.iterations == 4 and again.env_steps == 128
    iterations = [r.iteration for r in read_records(run)]
    assert iterations == sorted(set(iterations)) and iterations[-1] == 4
    with pytest.raises(Exception, match="already holds a training run"):
        train(short_cheetah(20), counting_reward, tiny(), run)


KILL_SCRIPT = """
import sys
from synth_reward.train.config import TrainConfig
from synth_reward.train.trainer import train
config = TrainConfig(num_envs=4, num_steps_per_env=8, total_steps=10**7, hidden_dims=(16, 16), num_threads=1,
                     num_mini_batches=2, num_learning_epochs=1, tensorboard=False, num_records=10**5,
                     checkpoint_seconds=0.2)
train("gym/HalfCheetah-v5", None, config, sys.argv[1])
"""


def test_killed_training_leaves_a_checkpoint_that_resumes(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, str(run)], cwd=ROOT, env=os.environ | {"PYTHONPATH": str(ROOT)}
    )
    last = run / "checkpoints" / "last.pt"
    deadline = time.time() + 60
    while not last.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    time.sleep(0.5)
    proc.kill()  # SIGKILL: no handler runs
    proc.wait()
    assert last.exists(), "no checkpoint before the kill"
    done = load_checkpoint(last)["iteration"]
    config = TrainConfig.model_validate(json.loads((run / "run.json").read_text())["config"])
    result = train(
        "gym/HalfCheetah-v5", None, config.model_copy(update={"total_steps": (done + 2) * 32}), run, resume=True
    )
    assert result.status == "completed" and result.iterations == done + 2


# ---- a short real training ------------------------------------------------------------------------
def test_short_training_improves_half_cheetah_return(tmp_path):
    task = Task(
        id="test/cheetah100",
        morphology="half_cheetah",
        instruction="run",
        success="cheetah_forward",
        episode_length=100,
        human_reward="gymnasium",
    )
    config = default_config(
        "half_cheetah",
        total_steps=24_576,
        num_envs=16,
        num_steps_per_env=32,
        num_learning_epochs=5,
        num_mini_batches=4,
        learning_rate=1e-3,
        init_noise_std=0.5,
        num_records=4,
        tensorboard=False,
        hidden_dims=(64, 64),
    )
    result = train(task, None, config, tmp_path / "run")
    returns = [r.return_mean for r in read_records(tmp_path / "run")]
    assert result.status == "completed"
    assert returns[-1] > returns[0] + 20, returns


# ---- the commands -------------------------------------------------------------------------------------
def test_train_eval_analyze_commands_smoke(tmp_path, capsys):
    run = tmp_path / "run"
    code, out = run_cli(
        capsys,
        "train",
        "--task",
        "humanoid/kneel",
        "--reward",
        str(KNEEL_REWARD),
        "--steps",
        "1536",
        "--num-envs",
        "16",
        "--out",
        str(run),
    )
    assert code == 0, out
    assert "completed" in out and (run / "records.jsonl").exists() and (run / "reward.py").exists()
    assert (run / "tb").is_dir() and (run / "checkpoints" / "last.pt").exists()
    code, out = run_cli(
        capsys, "eval", str(run), "--episodes", "2", "--checkpoint", "last", "--export-states", str(tmp_path / "s.npz")
    )
    assert code == 0, out
    assert "success rate" in out and (tmp_path / "s.npz").exists()
    code, out = run_cli(capsys, "analyze", str(run))
    assert code == 0, out
    assert "Success-check conditions" in out and (run / "analysis.json").exists()


def test_bad_input_exits_2_with_one_line(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    cases = [
        ("eval", str(tmp_path / "missing")),
        ("train", "--task", "no/such", "--steps", "10"),
        ("train", "--env", "humanoid", "--task", "gym/Hopper-v5"),
        ("train", "--task", "humanoid/kneel", "--reward", str(tmp_path / "none.py")),
    ]
    for argv in cases:
        code, out = run_cli(capsys, *argv)
        assert code == 2, (argv, out)
        assert len(out.strip().splitlines()) == 1 and out.startswith("error:"), out
    # a corrupt checkpoint in a real run folder
    run = tmp_path / "run2"
    train("gym/HalfCheetah-v5", None, tiny(total_steps=32), run)
    (run / "checkpoints" / "last.pt").write_bytes(b"not a checkpoint")
    code, out = run_cli(capsys, "eval", str(run), "--checkpoint", "last")
    assert code == 2 and "corrupt" in out and len(out.strip().splitlines()) == 1
