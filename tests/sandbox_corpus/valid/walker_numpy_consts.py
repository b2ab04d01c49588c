# expect: accepted -- morphology: walker2d -- numpy and math constants, augmented assignment
import math

import numpy as np
import torch


def compute_reward(state, action):
    speed = state.body("torso").lin_vel[:, 0]
    reward = torch.clamp(speed, -1.0, 3.0)
    lean = torch.abs(state.joint("rooty").pos)
    reward += torch.exp(-lean / (np.pi / 8))
    knee_bend = torch.abs(state.joint("leg_joint").pos) + torch.abs(state.joint("leg_left_joint").pos)
    reward -= 0.05 * torch.relu(knee_bend - math.radians(120))
    energy = (state.actuator_force * state.joint_vel[:, 3:]).abs().sum(dim=1)
    reward -= 1e-4 * energy
    return reward, {"speed": torch.clamp(speed, -1.0, 3.0), "lean": torch.exp(-lean / (np.pi / 8)),
                    "energy": -1e-4 * energy}
