# expect: probe -- a reward with a million columns
import torch


def compute_reward(state, action):
    h = state.body("torso").pos[:, 2]
    r = h[:, None].expand(-1, 1000000) * 1.0
    return r, {"height": h}
