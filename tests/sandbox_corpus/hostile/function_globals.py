# expect: policy -- reaches module globals through a function object
import torch


def helper(x):
    return x


def compute_reward(state, action):
    g = helper.__globals__
    h = state.body("torso").pos[:, 2]
    return h, {"height": h}
