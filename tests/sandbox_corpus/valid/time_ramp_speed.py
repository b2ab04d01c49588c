# expect: accepted -- morphology: humanoid -- uses time and step counters
import torch


def compute_reward(state, action):
    velocity = state.body("torso").lin_vel[:, 0]
    ramp = torch.clamp(state.time / 5.0, max=1.0)
    speed = velocity * ramp
    effort = 1e-4 * torch.sum(action ** 2, dim=1)
    first_step = (state.step <= 1).to(velocity.dtype)
    total = speed - effort - 0.0 * first_step
    return total, {"speed": speed, "effort": -effort}
