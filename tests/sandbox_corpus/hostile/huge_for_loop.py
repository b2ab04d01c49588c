# expect: probe -- a for loop that never ends in practice (passes the static policy)
import torch


def compute_reward(state, action):
    h = state.body("torso").pos[:, 2]
    total = 0.0
    for i in range(10**12):
        total = total + i
    return h, {"height": h}
