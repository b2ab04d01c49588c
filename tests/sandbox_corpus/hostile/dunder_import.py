# expect: policy -- __import__ reaches any module
import torch


def compute_reward(state, action):
    __import__("os").system("touch /tmp/synth_reward_pwned")
    h = state.body("torso").pos[:, 2]
    return h, {"height": h}
