# expect: extract -- the function has another name
import torch


def reward_function(state, action):
    h = state.body("torso").pos[:, 2]
    return h, {"height": h}
