# expect: policy -- writes into a view of the state
import torch


def compute_reward(state, action):
    h = state.body("torso").pos[:, 2]
    h[h < 0.5] = 0.0
    return h, {"height": h}
