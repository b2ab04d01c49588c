# expect: policy -- reaches the State's private storage
import torch


def compute_reward(state, action):
    raw = state._raw["qpos"]
    h = raw[:, 2]
    return h, {"height": h}
