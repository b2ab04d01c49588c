# expect: policy -- in-place tensor method on the action
import torch


def compute_reward(state, action):
    action.clamp_(-0.1, 0.1)
    h = state.body("torso").pos[:, 2]
    return h, {"height": h}
