"""BatchedEnv: exact physics parity with Gymnasium, resets, autoreset, episodes, seeding."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from synth_reward.envs import BatchedEnv, get_morphology, list_morphologies
from synth_reward.envs.backend import PackedFields
from synth_reward.errors import SynthRewardError

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
        np.testing.assert_allclose(raw["cfrc_ext"][2].numpy(), genv.data.cfrc_ext, rtol=0, atol=1e-7)
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
    # a State keeps its own step's counters after later steps and the autoreset
    assert [r.state.step.tolist() for r in results] == [[1, 1], [2, 2], [3, 3]]
    env.episode_step = torch.tensor([1, 0])  # as rsl_rl sets random initial episode lengths
    kept = env.episode_step
    assert env.step(torch.zeros(2, 6)).state.step.tolist() == [2, 1]
    assert env.step(torch.zeros(2, 6)).truncated.tolist() == [True, False]
    assert kept.tolist() == [1, 0]  # a copy: the env's later steps do not change it ...
    last_state = env.step(torch.zeros(2, 6)).state  # env 1 reaches the limit and restarts
    env.episode_step[:] = 7  # ... and writing into it changes neither the env nor a State
    assert env.episode_step.tolist() == [1, 0] and last_state.step.tolist() == [1, 3]
    env.episode_step = 2  # one value for every env
    assert env.episode_step.tolist() == [2, 2]
    with pytest.raises(ValueError):
        env.episode_step = torch.tensor([1, 2, 3])


def test_set_state_takes_env_ids_as_list_array_or_tensor_and_dtypes_are_checked() -> None:
    env = BatchedEnv("hopper", 3, seed=0)
    for _ in range(2):
        env.step(torch.zeros(3, env.num_actions))
    qpos, qvel = env.init_qpos[None], env.init_qvel[None]
    for ids, expected in [([0], [0, 2, 2]), (np.array([1]), [0, 0, 2]), (torch.tensor([2]), [0, 0, 0])]:
        env.set_state(qpos, qvel, ids)
        assert env.episode_step.tolist() == expected
    assert torch.equal(env.backend.raw()["qpos"][2], torch.from_numpy(env.init_qpos))
    half = BatchedEnv("hopper", 2, seed=0, dtype=torch.float16)
    out = half.step(torch.zeros(2, half.num_actions))
    assert out.obs.dtype == out.reward.dtype == torch.float16 and out.success.dtype == torch.bool
    with pytest.raises(SynthRewardError, match="dtype"):
        BatchedEnv("hopper", 2, dtype=torch.int32)


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


@pytest.mark.parametrize("speed", [1e12, 1e9])  # blown up already when set (MuJoCo resets it then), or in the step
def test_a_blowup_is_reported_on_the_next_step_only(speed: float) -> None:
    env = BatchedEnv("humanoid", 2, seed=0)
    qvel = np.zeros((2, env.layout.nv))
    qvel[1, 6:] = speed
    env.set_state(np.tile(env.init_qpos, (2, 1)), qvel)
    out = env.step(torch.zeros(2, env.num_actions))
    assert out.terminated.tolist() == [False, True] and out.episodes is not None
    assert out.episodes.unstable.tolist() == [True] and torch.isfinite(out.obs).all()
    assert not env.step(torch.zeros(2, env.num_actions)).terminated.any()


@pytest.mark.parametrize("name", ["half_cheetah", "hopper"])  # hopper's observation clips velocities
def test_a_non_finite_observation_ends_only_its_episode(name: str) -> None:
    """A backend that does not reset blown-up envs itself (as MuJoCo does) may hand back NaN or inf:
    BatchedEnv's own check must end exactly those episodes, as unstable (an inf that the clip
    turns into a bound too)."""
    env = BatchedEnv(name, 3, seed=0)
    snapshot = env.backend.snapshot
    poison: dict[int, float] = {}

    def faulty_snapshot(dtype: torch.dtype):
        snap = snapshot(dtype)
        for i, value in poison.items():
            snap["qvel"][i, 0] = value
        return snap

    env.backend.snapshot = faulty_snapshot  # type: ignore[method-assign]
    assert env.step(torch.zeros(3, env.num_actions)).episodes is None
    poison.update({0: float("inf"), 2: float("nan")})
    out = env.step(torch.zeros(3, env.num_actions))
    assert out.terminated.tolist() == [True, False, True] and not out.truncated.any()
    assert out.episodes is not None and out.episodes.env_ids.tolist() == [0, 2]
    assert out.episodes.unstable.tolist() == [True, True]
    poison.clear()
    assert not env.step(torch.zeros(3, env.num_actions)).terminated.any()


@pytest.mark.parametrize(
    ("name", "field", "column", "bound"),
    [
        ("hopper", "qvel", 0, 10.0),  # velocities clipped at 10
        (
            "ant",
            "cfrc_ext",
            6,
            1.0,
        ),  # contact forces clipped at 1 (column 6: body 1's first; the world body is dropped)
    ],
)
def test_the_observation_is_the_same_without_a_host_array(name: str, field: str, column: int, bound: float) -> None:
    """On the host BatchedEnv gathers, checks and clips the observation in numpy; a device
    backend's snapshot has no host array, and the torch path must give the same values."""
    env = BatchedEnv(name, 3, seed=0)
    for _ in range(5):
        env.step(torch.rand(3, env.num_actions) * 2 - 1)
    snap = env._snap
    where = env._obs_columns.tolist().index(snap.columns(field)[column])  # its place in the observation
    values = snap[field].view(3, -1)  # (the packed tensor and the host array share memory)
    values[0, column], values[1, column] = 1e3, -1e3
    device_like = PackedFields(snap.packed, snap.spec)  # as a device backend hands it: no host array
    for inf_in_env2 in (False, True):
        if inf_in_env2:
            values[2, column] = float("inf")  # clipped to the bound, but a blow-up all the same
        env._snap = snap
        host_obs, host_nonfinite = env._observe()
        env._snap = device_like
        obs, nonfinite = env._observe()
        torch.testing.assert_close(obs, host_obs, rtol=0, atol=0)
        assert obs[:2, where].tolist() == [bound, -bound]
        if inf_in_env2:
            assert obs[2, where] == bound
            assert nonfinite.tolist() == host_nonfinite.tolist() == [False, False, True]
        else:
            assert nonfinite is None and host_nonfinite is None
    values[2, column] = float("nan")
    assert env._observe()[1].tolist() == [False, False, True]


def test_a_blowup_at_reset_is_reported_for_its_env_only() -> None:
    """Envs reset one at a time: the blow-up of one (MuJoCo resets it at once) ends only its next step."""
    env = BatchedEnv("humanoid", 3, seed=0)
    calm = np.zeros((1, env.layout.nv))
    wild = calm.copy()
    wild[0, 6:] = 1e12
    env.set_state(env.init_qpos, wild, [1])
    env.set_state(env.init_qpos, calm, [0])  # another env reset after it: env 1 stays marked
    env.set_state(env.init_qpos, wild, [2])
    env.set_state(env.init_qpos, calm, [2])  # reset again before any step: no longer blown up
    out = env.step(torch.zeros(3, env.num_actions))
    assert out.terminated.tolist() == [False, True, False]
    assert not env.step(torch.zeros(3, env.num_actions)).terminated.any()


def test_contact_forces_are_computed_only_when_read_and_only_for_their_own_step() -> None:
    """Half cheetah's observation has no contact forces, so its env computes them on the first read:
    the same values as computing them every step, no extra pass over the envs when nothing reads
    them, and a clear error (not stale numbers) when a state reads them after the env moved on."""
    assert BatchedEnv("humanoid", 1).backend.lazy_contact_forces is False  # its observation needs them
    env = BatchedEnv("half_cheetah", 3, seed=0, episode_length=10**6)
    assert env.backend.lazy_contact_forces is True
    passes = []
    apply = env.backend._batch.apply
    env.backend._batch.apply = lambda *a: passes.append(a) or apply(*a)  # type: ignore[method-assign]
    read = []
    env.reward_fn = lambda state, action: (read.append(state.body_contact_force.clone()) or torch.zeros(3), {})
    for _ in range(40):
        env.step(torch.full((3, 6), 0.3))
        assert torch.equal(read[-1], env.backend.raw()["cfrc_ext"][:, 1:, 3:].float())
    assert len(passes) == 40 and read[-1].abs().max() > 1.0  # feet on the floor
    env.reward_fn = None
    kept = env.step(torch.zeros(3, 6)).state  # nothing reads its contact forces
    env.step(torch.zeros(3, 6))
    held, expected = env.state, env.backend.raw()["cfrc_ext"][:, 1:, 3:].float()  # env.state fills them now
    passes.clear()
    for _ in range(5):
        env.step(torch.zeros(3, 6))
    assert passes == []  # no pass over the envs when nothing reads them
    with pytest.raises(SynthRewardError, match="before its env steps or resets again"):
        _ = kept.body_contact_force
    assert torch.equal(held.body_contact_force, expected) and expected.abs().max() > 1.0
    env.close()


def test_seeding_is_reproducible() -> None:
    a = BatchedEnv("ant", 3, seed=7).reset()
    b = BatchedEnv("ant", 3, seed=7).reset()
    c = BatchedEnv("ant", 3, seed=8).reset()
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_thread_counts_agree_bit_for_bit() -> None:
    envs = {n: BatchedEnv("walker2d", 5, seed=2, num_threads=n) for n in (1, 2, 3)}
    actions = torch.rand(30, 5, 6) * 2 - 1
    for a in actions:
        obs = {n: env.step(a).obs for n, env in envs.items()}
    assert [env.backend.num_threads for env in envs.values()] == [1, 2, 3]
    assert torch.equal(obs[1], obs[2]) and torch.equal(obs[1], obs[3])
    envs[2].reset_envs(torch.tensor([False, True, False, True, False]))
    assert envs[2].episode_step.tolist() == [30, 0, 30, 0, 30]


def test_stepping_a_closed_env_is_an_error_not_a_crash() -> None:
    env = BatchedEnv("hopper", 4, num_threads=2)
    env.close()
    env.close()  # twice is fine
    with pytest.raises(SynthRewardError, match="closed"):
        env.step(torch.zeros(4, 3))


def test_bad_action_shape_is_rejected() -> None:
    env = BatchedEnv("hopper", 2)
    with pytest.raises(ValueError, match=r"action must have shape \(2, 3\)"):
        env.step(torch.zeros(2, 4))
