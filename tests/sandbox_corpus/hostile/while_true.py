# expect: policy -- infinite while loop
import torch


def compute_reward(state, action):
    h = state.body("torso").pos[:, 2]
    while True:
        h = h + 1
    return h, {"height": h}
