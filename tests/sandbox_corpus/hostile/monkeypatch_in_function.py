# expect: policy -- patches torch from inside the reward
import torch


def compute_reward(state, action):
    torch.clamp = torch.exp
    h = state.body("torso").pos[:, 2]
    return h, {"height": h}
