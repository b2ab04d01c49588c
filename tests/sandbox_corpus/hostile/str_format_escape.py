# expect: policy -- str.format reads attributes through the format string
import torch


def compute_reward(state, action):
    leak = "{0.__class__.__init__.__globals__}".format(state)
    h = state.body("torso").pos[:, 2]
    return h, {"height": h, leak[:10]: h}
