# expect: accepted -- morphology: humanoid -- Eureka style: jit decorator, typing imports, temperatures
import torch
from typing import Tuple, Dict


@torch.jit.script
def compute_reward(state, action) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
    # Reward forward running speed while staying upright
    torso = state.body("torso")
    forward_velocity = torso.lin_vel[:, 0]
    velocity_temperature = 0.5
    velocity_reward = torch.exp(velocity_temperature * forward_velocity) - 1.0
    velocity_reward = torch.clamp(velocity_reward, max=10.0)

    upright_temperature = 2.0
    upright_reward = torch.exp(upright_temperature * (torso.up[:, 2] - 1.0))

    action_penalty = torch.sum(torch.square(action), dim=-1)
    action_temperature = 0.05
    action_reward = torch.exp(-action_temperature * action_penalty)

    total_reward = velocity_reward + 0.5 * upright_reward + 0.2 * action_reward
    reward_components = {
        "velocity_reward": velocity_reward,
        "upright_reward": upright_reward,
        "action_reward": action_reward,
    }
    return total_reward, reward_components
