# expect: probe -- NaN only when the torso is below 0.5 m
import torch


def compute_reward(state, action):
    h = state.body("torso").pos[:, 2]
    r = torch.sqrt(h - 0.5)
    return r, {"sqrt_height": r}
