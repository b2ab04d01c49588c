# expect: accepted -- morphology: humanoid -- kind: success -- VLM-RM style kneeling check
import torch


def success(state) -> torch.Tensor:
    knees_down = (state.body("left_shin").height < 0.15) & (state.body("right_shin").height < 0.15)
    upright = state.body("torso").up[:, 2] > 0.8
    high_enough = state.body("torso").height > 0.6
    return knees_down & upright & high_enough
