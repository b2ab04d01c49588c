# expect: probe -- reward per body instead of per environment
import torch


def compute_reward(state, action):
    r = state.body_pos[:, :, 2]
    return r, {"heights": r}
