# expect: probe -- division by zero gives inf
import torch


def compute_reward(state, action):
    h = state.body("torso").pos[:, 2]
    r = h / (h * 0.0)
    return r, {"ratio": r}
