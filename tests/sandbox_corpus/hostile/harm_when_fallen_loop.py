# expect: probe -- loops forever only when the robot has fallen
import torch


def compute_reward(state, action):
    h = state.body("torso").pos[:, 2]
    steps = 10**12 if bool((h < 0.5).any()) else 1
    total = 0
    for i in range(steps):
        total = total + i
    return h, {"height": h}
