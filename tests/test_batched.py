"""BatchedEnv: exact physics parity with Gymnasium, resets, autoreset, episodes, seeding."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from synth_reward.envs import BatchedEnv, get_morphology, list_morphologies
from synth_reward.envs.cpu import PhysicsWorkerError

GYM_IDS = {m.name: m.gym_id for m in list_morphologies()}


@pytest.mark.parametrize("name", sorted(GYM_IDS))
def test_physics_and_observation_match_gymnasium(name: str) -> None:
    genv = gym.make(GYM_IDS[name]).unwrapped
    genv.reset(seed=3)
    env = BatchedEnv(name, 3, dtype=torch.float64, episode_length=10**6)
    env.set_state(np.tile(genv.data.qpos, (3, 1)), np.tile(genv.data.qvel, (3, 1)))
    rng = np.random.default_rng(0)
    for _ in range(60):
        action = rng.uniform(-0.5, 0.5, env.num_actions)
        gobs, *_ = genv.step(action)
        out = env.step(torch.tensor(np.tile(action, (3, 1))))
        raw = env.backend.raw()
        np.testing.assert_allclose(raw["qpos"][2].numpy(), genv.data.qpos, rtol=0, atol=1e-9)
        np.testing.assert_allclose(raw["qvel"][2].numpy(), genv.data.qvel, rtol=0, atol=1e-9)
        np.testing.assert_allclose(
            raw["cfrc_ext"][2].numpy(), genv.data.cfrc_ext, rtol=0, atol=1e-7
        )
        np.testing.assert_allclose(out.final_obs[2].numpy(), gobs, rtol=0, atol=1e-7)
    assert env.num_obs == genv.observation_space.shape[0]
    assert env.dt == pytest.approx(genv.dt)
    env.close()


def test_masked_reset_touches_only_masked_envs() -> None:
    env = BatchedEnv("hopper", 4, seed=0)
    for _ in range(5):
        env.step(torch.zeros(4, env.num_actions))
    before = env.backend.raw()["qpos"].clone()
    env.reset_envs(torch.tensor([True, False, True, False]))
    after = env.backend.raw()["qpos"]
    assert torch.equal(after[1], before[1]) and torch.equal(after[3], before[3])
    assert not torch.equal(after[0], before[0])
    assert env.episode_step.tolist() == [0, 5, 0, 5]
    scale = get_morphology("hopper").reset_noise_scale
    assert (after[0] - torch.tensor(env.init_qpos)).abs().max() <= scale


def test_autoreset_on_truncation_reports_episode() -> None:
    calls = []

    def reward(state, action):
        calls.append(state.step.clone())
        return torch.ones(state.num_envs), {"one": torch.ones(state.num_envs)}

    env = BatchedEnv(
        "half_cheetah",
        2,
        episode_length=3,
        reward_fn=reward,
        success_fn=lambda s: s.step >= 2,
        seed=1,
    )
    results = [env.step(torch.zeros(2, 6)) for _ in range(3)]
    last = results[-1]
    assert last.truncated.all() and not last.terminated.any()
    assert last.episodes is not None and last.episodes.lengths.tolist() == [3, 3]
    assert last.episodes.returns.tolist() == [3.0, 3.0]
    assert last.episodes.term_sums["one"].tolist() == [3.0, 3.0]
    assert last.episodes.success_fraction.tolist() == pytest.approx([2 / 3, 2 / 3])
    assert env.episode_step.tolist() == [0, 0] and env.episode_count.tolist() == [1, 1]
    assert not torch.equal(last.obs, last.final_obs)  # obs is the next episode's first
    assert [c.tolist() for c in calls] == [[1, 1], [2, 2], [3, 3]]


def test_termination_rule_and_physics_blowup_terminate() -> None:
    env = BatchedEnv("humanoid", 2, termination_fn=lambda s: s.body("torso").height < 1.0, seed=0)
    qpos = np.tile(env.init_qpos, (2, 1))
    qpos[0, 2] = 0.5
    env.set_state(qpos, np.zeros((2, env.layout.nv)))
    out = env.step(torch.zeros(2, env.num_actions))
    assert out.terminated.tolist() == [True, False]
    qvel = np.zeros((2, env.layout.nv))
    qvel[1, 6:] = 1e12  # makes MuJoCo's accelerations blow up
    env.set_state(np.tile(env.init_qpos, (2, 1)), qvel)
    out = env.step(torch.zeros(2, env.num_actions))
    assert bool(out.terminated[1]) and out.episodes is not None
    assert bool(out.episodes.unstable[out.episodes.env_ids.tolist().index(1)])
    assert torch.isfinite(out.obs).all()


def test_seeding_is_reproducible() -> None:
    a = BatchedEnv("ant", 3, seed=7).reset()
    b = BatchedEnv("ant", 3, seed=7).reset()
    c = BatchedEnv("ant", 3, seed=8).reset()
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_processes_threads_and_one_worker_agree() -> None:
    envs = {
        "one": BatchedEnv("walker2d", 5, seed=2, num_threads=1),
        "threads": BatchedEnv("walker2d", 5, seed=2, num_threads=2, parallel="thread"),
        "processes": BatchedEnv("walker2d", 5, seed=2, num_threads=2, parallel="process"),
    }
    actions = torch.rand(30, 5, 6) * 2 - 1
    for a in actions:
        obs = {name: env.step(a).obs for name, env in envs.items()}
    assert envs["processes"].backend.num_threads == 2
    assert torch.equal(obs["one"], obs["threads"]) and torch.equal(obs["one"], obs["processes"])
    envs["processes"].reset_envs(torch.tensor([False, True, False, True, False]))
    assert envs["processes"].episode_step.tolist() == [30, 0, 30, 0, 30]


def test_worker_processes_stop_with_the_env() -> None:
    import multiprocessing

    env = BatchedEnv("hopper", 4, num_threads=2)
    assert len(multiprocessing.active_children()) >= 1
    env.close()
    assert multiprocessing.active_children() == []


def test_a_dead_worker_is_reported_not_hung() -> None:
    import multiprocessing

    env = BatchedEnv("hopper", 4, num_threads=2)
    for child in multiprocessing.active_children():
        child.kill()
        child.join()
    with pytest.raises(PhysicsWorkerError, match="worker process died"):
        env.step(torch.zeros(4, 3))


def test_bad_action_shape_is_rejected() -> None:
    env = BatchedEnv("hopper", 2)
    with pytest.raises(ValueError, match=r"action must have shape \(2, 3\)"):
        env.step(torch.zeros(2, 4))


def test_workers_of_a_killed_parent_exit() -> None:
    """A SIGKILLed trainer must not leave physics workers spinning (their pipes may stay open in siblings)."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    script = (
        "import multiprocessing, time\n"
        "from synth_reward.envs import BatchedEnv\n"
        "envs = [BatchedEnv('hopper', 4, num_threads=2) for _ in range(2)]\n"
        "print(' '.join(str(c.pid) for c in multiprocessing.active_children()), flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    workers = [int(p) for p in parent.stdout.readline().split()]
    assert len(workers) == 2
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()

    def running(pid: int) -> bool:
        stat = Path(f"/proc/{pid}/stat")
        try:
            return stat.read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
        except (FileNotFoundError, ProcessLookupError):
            return False

    deadline = time.monotonic() + 10
    while any(map(running, workers)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(map(running, workers))
