# expect: probe -- a Python float in the components dict
import torch


def compute_reward(state, action):
    h = state.body("torso").pos[:, 2]
    return h + 1.0, {"height": h, "alive_bonus": 1.0}
