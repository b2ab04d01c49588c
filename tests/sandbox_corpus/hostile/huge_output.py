# expect: probe -- thousands of components
import torch


def compute_reward(state, action):
    h = state.body("torso").pos[:, 2]
    parts = {f"term_{i}": h * i for i in range(5000)}
    return h, parts
