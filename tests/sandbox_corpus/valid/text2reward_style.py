# expect: accepted -- morphology: humanoid -- Text2Reward style: plain arithmetic, numpy import, comments
import numpy as np
import torch


def compute_reward(state, action):
    # torso height relative to a standing height of 1.3 m
    torso_height = state.body("torso").pos[:, 2]
    height_error = torch.abs(torso_height - 1.3)
    reward_height = 1.0 - torch.tanh(5.0 * height_error)

    # keep the feet apart by about shoulder width
    left = state.body("left_foot").pos
    right = state.body("right_foot").pos
    feet_distance = torch.norm(left[:, :2] - right[:, :2], dim=-1)
    reward_feet = torch.exp(-np.square(0.3) * 0 - (feet_distance - 0.3) ** 2 / 0.01)

    reward = 0.7 * reward_height + 0.3 * reward_feet
    fallen = torso_height < 0.8
    reward = torch.where(fallen, torch.full_like(reward, -1.0), reward)
    return reward, {"height": reward_height, "feet": reward_feet}
