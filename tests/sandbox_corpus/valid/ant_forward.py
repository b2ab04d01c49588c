# expect: accepted -- morphology: ant -- Gymnasium-like terms with contact cost
import torch


def compute_reward(state, action):
    forward = (state.com_pos[:, 0] - state.prev_com_pos[:, 0]) / state.dt
    healthy = ((state.body("torso").height > 0.2) & (state.body("torso").height < 1.0)).float()
    ctrl_cost = 0.5 * (action ** 2).sum(dim=-1)
    contact = torch.clamp(state.body_contact_force, -1.0, 1.0)
    contact_cost = 5e-4 * (contact ** 2).sum(dim=(1, 2))
    reward = forward + healthy - ctrl_cost - contact_cost
    return reward, {"forward": forward, "healthy": healthy, "ctrl_cost": -ctrl_cost, "contact_cost": -contact_cost}
