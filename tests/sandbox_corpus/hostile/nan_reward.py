# expect: probe -- log of a negative number gives NaN
import torch


def compute_reward(state, action):
    h = state.body("torso").pos[:, 2]
    r = torch.log(h - 10.0)
    return r, {"log_height": r}
