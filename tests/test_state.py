"""State API values against MuJoCo's own mjData fields and functions, on hand-made poses."""

from __future__ import annotations

import math

import mujoco
import numpy as np
import pytest
import torch

from synth_reward.envs import BatchedEnv, describe_state, get_morphology, list_morphologies
from synth_reward.envs.poses import pose_qpos


def _pose_env(pose_joints, root=(0, 0, 0), qvel_seed=0):
    morph = get_morphology("humanoid")
    qpos = pose_qpos(morph, pose_joints, root=root)
    qvel = np.random.default_rng(qvel_seed).normal(0, 1.0, morph.layout().nv)
    env = BatchedEnv(morph, 1, dtype=torch.float64)
    env.set_state(qpos[None], qvel[None])
    m = morph.model()
    d = mujoco.MjData(m)
    d.qpos[:], d.qvel[:] = qpos, qvel
    mujoco.mj_forward(m, d)
    mujoco.mj_rnePostConstraint(m, d)
    return env.state, m, d


POSES = {
    "standing": ({}, (0, 0, 0)),
    "lying": ({}, (0, -90, 0)),
    "kneeling": ({"right_knee": -90, "left_knee": -90}, (0, 0, 0)),
}


@pytest.mark.parametrize("pose", sorted(POSES))
def test_state_matches_mujoco(pose: str) -> None:
    state, m, d = _pose_env(*POSES[pose])
    for b, name in enumerate(state.body_names, start=1):
        body = state.body(name)
        np.testing.assert_allclose(body.pos[0], d.xpos[b], atol=1e-12)
        np.testing.assert_allclose(body.quat[0], d.xquat[b], atol=1e-12)
        np.testing.assert_allclose(body.rot[0], d.xmat[b].reshape(3, 3), atol=1e-12)
        np.testing.assert_allclose(body.up[0], d.xmat[b].reshape(3, 3)[:, 2], atol=1e-12)
        vel = np.zeros(6)
        mujoco.mj_objectVelocity(m, d, mujoco.mjtObj.mjOBJ_XBODY, b, vel, 0)  # (angular, linear), world frame
        np.testing.assert_allclose(body.ang_vel[0], vel[:3], atol=1e-9)
        np.testing.assert_allclose(body.lin_vel[0], vel[3:], atol=1e-9)
        np.testing.assert_allclose(body.contact_force[0], d.cfrc_ext[b, 3:], atol=1e-9)
        assert float(body.height[0]) == pytest.approx(d.xpos[b, 2])
    mujoco.mj_subtreeVel(m, d)
    np.testing.assert_allclose(state.com_pos[0], d.subtree_com[0], atol=1e-12)
    np.testing.assert_allclose(state.com_vel[0], d.subtree_linvel[0], atol=1e-9)
    for j, name in enumerate(state.joint_names):
        jnt = m.joint(name)
        assert float(state.joint(name).pos[0]) == pytest.approx(d.qpos[jnt.qposadr[0]])
        assert float(state.joint(name).vel[0]) == pytest.approx(d.qvel[jnt.dofadr[0]])
        assert float(state.joint_pos[0, j]) == pytest.approx(d.qpos[jnt.qposadr[0]])
    np.testing.assert_allclose(state.actuator_force[0], d.actuator_force, atol=1e-12)
    assert state.total_mass == pytest.approx(float(m.body_mass.sum()))


def test_quaternion_is_w_first_and_up_vector_follows_rotation() -> None:
    state, *_ = _pose_env({}, root=(0, 0, 90))  # yaw 90 degrees about z
    q = state.body("torso").quat[0]
    np.testing.assert_allclose(q, [math.cos(math.pi / 4), 0, 0, math.sin(math.pi / 4)], atol=1e-9)
    np.testing.assert_allclose(state.body("torso").forward[0], [0, 1, 0], atol=1e-9)
    lying, *_ = _pose_env({}, root=(0, -90, 0))  # on its back: chest (local x) points up
    np.testing.assert_allclose(lying.body("torso").forward[0], [0, 0, 1], atol=1e-9)
    assert abs(float(lying.body("torso").up[0, 2])) < 1e-9


def test_contact_force_sign_and_size_when_resting() -> None:
    env = BatchedEnv("humanoid", 1, dtype=torch.float64)
    env.set_state(pose_qpos("humanoid", {}, root=(0, -90, 0))[None], np.zeros((1, env.layout.nv)))
    for _ in range(150):  # let it settle on its back
        env.step(torch.zeros(1, env.num_actions))
    state = env.state
    weight = state.total_mass * 9.81
    total_up = float(state.body_contact_force[0, :, 2].sum())
    assert total_up == pytest.approx(weight, rel=0.1)  # floor carries the weight, pushing up (+z)
    assert float(state.body("torso").contact_force[0, 2]) > 0


def test_cvel_is_rotation_first() -> None:
    """A pure spin about z: MuJoCo's cvel puts angular velocity in its first three entries."""
    morph = get_morphology("humanoid")
    qvel = np.zeros(morph.layout().nv)
    qvel[5] = 2.0  # free joint angular velocity about local z (= world z when upright)
    env = BatchedEnv(morph, 1, dtype=torch.float64)
    env.set_state(pose_qpos(morph, {})[None], qvel[None])
    np.testing.assert_allclose(env.state.body("torso").ang_vel[0], [0, 0, 2.0], atol=1e-9)
    np.testing.assert_allclose(env.state.body("torso").lin_vel[0], [0, 0, 0], atol=1e-9)


def test_prev_positions_track_one_step() -> None:
    env = BatchedEnv("half_cheetah", 2, seed=0)
    before = env.state
    after = env.step(torch.ones(2, 6)).state
    assert torch.equal(after.prev_body_pos, before.body_pos)
    assert torch.equal(after.joint("rootx").prev_pos, before.joint("rootx").pos)
    assert torch.equal(before.prev_com_pos, before.com_pos)


def test_state_is_a_snapshot() -> None:
    env = BatchedEnv("hopper", 1, seed=0)
    state = env.state
    pos = state.body_pos.clone()
    env.step(torch.ones(1, 3))
    assert torch.equal(state.body_pos, pos)


def test_unknown_names_list_the_valid_ones() -> None:
    state = BatchedEnv("hopper", 1).state
    with pytest.raises(KeyError, match="thigh"):
        state.body("knee")
    with pytest.raises(KeyError, match="rooty"):
        state.joint("hip")


@pytest.mark.parametrize("morph", [m.name for m in list_morphologies()])
def test_description_names_everything(morph: str) -> None:
    text = describe_state(morph)
    layout = get_morphology(morph).layout()
    for name in (*layout.body_names, *layout.joint_names, *layout.actuator_names):
        assert name in text
    for field in (
        "state.body_pos",
        "(N, B, 3) m, world frame",
        "w first",
        "rad/s",
        "contact_force",
        "dt",
    ):
        assert field in text
