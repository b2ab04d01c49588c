# expect: policy -- unbounded recursion
import torch


def deeper(x, n):
    return deeper(x + 1, n + 1)


def compute_reward(state, action):
    h = deeper(state.body("torso").pos[:, 2], 0)
    return h, {"height": h}
