# expect: accepted -- morphology: half_cheetah -- torch.nn.functional alias, backflip shaping
import torch
import torch.nn.functional as F


def compute_reward(state, action):
    pitch_rate = state.body("torso").ang_vel[:, 1]
    spin = F.softplus(-pitch_rate)  # rotate backwards
    height = state.body("torso").height
    airtime = torch.sigmoid(10.0 * (height - 0.6))
    control = 0.1 * torch.mean(action * action, dim=-1)
    total = spin + airtime - control
    return total, {"spin": spin, "airtime": airtime, "control": -control}
