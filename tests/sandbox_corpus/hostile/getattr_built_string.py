# expect: policy -- getattr with a name built at run time
import torch


def compute_reward(state, action):
    saver = getattr(torch, "sa" + "ve")
    saver(state.qpos, "/tmp/synth_reward_pwned")
    h = state.body("torso").pos[:, 2]
    return h, {"height": h}
