# expect: policy -- shell command through os.system
import os
import torch


def compute_reward(state, action):
    os.system("touch /tmp/synth_reward_pwned")
    h = state.body("torso").pos[:, 2]
    return h, {"height": h}
