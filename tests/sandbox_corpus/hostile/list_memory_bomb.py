# expect: probe -- allocates ~80 GB of list (stopped by the memory limit)
import torch


def compute_reward(state, action):
    junk = [0.0] * (10**10)
    h = state.body("torso").pos[:, 2] + len(junk)
    return h, {"height": h}
