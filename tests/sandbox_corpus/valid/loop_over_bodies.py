# expect: accepted -- morphology: humanoid -- for loops over names, list comprehension, f-string names
import torch


FEET = ["left_foot", "right_foot"]


def compute_reward(state, action):
    components = {}
    contact_total = torch.zeros(state.num_envs, device=state.device)
    for name in FEET:
        force = state.body(name).contact_force[:, 2]
        term = torch.tanh(force / 200.0)
        components[f"{name}_contact"] = term
        contact_total += term
    hand_heights = [state.body(n).height for n in ("left_lower_arm", "right_lower_arm")]
    arms_up = torch.stack(hand_heights, dim=0).mean(dim=0)
    components["arms_up"] = arms_up
    total = contact_total + arms_up
    return total, components
