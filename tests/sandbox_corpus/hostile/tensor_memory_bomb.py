# expect: probe -- a 400 GB tensor (stopped by the memory limit)
import torch


def compute_reward(state, action):
    junk = torch.ones(10**6, 10**5)
    h = state.body("torso").pos[:, 2] + junk.sum()
    return h, {"height": h}
