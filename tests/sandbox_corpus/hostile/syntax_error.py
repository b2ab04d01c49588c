# expect: syntax -- unbalanced parenthesis
import torch


def compute_reward(state, action):
    h = state.body("torso").pos[:, 2
    return h, {"height": h}
