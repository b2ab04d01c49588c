# expect: policy -- keeps state between calls
import torch

CALLS = 0


def compute_reward(state, action):
    global CALLS
    CALLS = CALLS + 1
    h = state.body("torso").pos[:, 2]
    return h * CALLS, {"height": h}
