# expect: policy -- eval of a string
import torch


def compute_reward(state, action):
    h = eval("state.body('torso').pos[:, 2]")
    return h, {"height": h}
