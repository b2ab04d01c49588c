# expect: probe -- allocates a huge list only when the robot has fallen
import torch


def compute_reward(state, action):
    h = state.body("torso").pos[:, 2]
    junk = [0.0] * (10**10 if bool((h < 0.5).any()) else 1)
    return h + len(junk) * 0.0, {"height": h}
