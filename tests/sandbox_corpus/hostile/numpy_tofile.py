# expect: policy -- ndarray.tofile writes a file
import torch


def compute_reward(state, action):
    state.qpos.numpy().tofile("/tmp/synth_reward_pwned")
    h = state.body("torso").pos[:, 2]
    return h, {"height": h}
