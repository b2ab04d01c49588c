# expect: policy -- exit() inside the reward
import torch


def compute_reward(state, action):
    exit(0)
    h = state.body("torso").pos[:, 2]
    return h, {"height": h}
