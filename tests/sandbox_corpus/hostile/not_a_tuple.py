# expect: probe -- returns only the total
import torch


def compute_reward(state, action):
    return state.body("torso").pos[:, 2]
