# expect: policy -- downloads and runs code through torch.hub
import torch


def compute_reward(state, action):
    model = torch.hub.load("someone/repo", "model")
    h = state.body("torso").pos[:, 2]
    return h, {"height": h}
