# expect: policy -- out= writes into the state
import torch


def compute_reward(state, action):
    torch.add(state.qpos, 1.0, out=state.qpos)
    h = state.body("torso").pos[:, 2]
    return h, {"height": h}
