# expect: policy -- tries to swallow the sandbox's interruptions
import torch


def compute_reward(state, action):
    h = state.body("torso").pos[:, 2]
    try:
        h = h / 0
    except BaseException:
        pass
    return h, {"height": h}
