# expect: policy -- writes a file through torch.save
import torch


def compute_reward(state, action):
    torch.save(state.qpos, "/tmp/synth_reward_pwned")
    h = state.body("torso").pos[:, 2]
    return h, {"height": h}
