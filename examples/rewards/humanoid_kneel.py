"""A hand-written kneel reward for the humanoid (task humanoid/kneel), in the reward contract.

Targets come from the hand-made kneeling pose (synth_reward/envs/poses.py): shin origins
(the knees) at 0.08 m, pelvis at 0.50 m, torso upright. The shaping is gated by the
torso being upright, so that collapsing onto the floor (knees down, torso flat) earns
nothing: a first, additive version of this reward trained exactly that (reflection:
knees_down 348 of 400 per episode, upright 38 of 400, success 0 after 0.2M steps).

    synth-reward train --task humanoid/kneel --reward examples/rewards/humanoid_kneel.py --out runs/kneel
"""

import torch

KNEE_TARGET = 0.10  # m: shin origins (knees) at or below this height count as down
KNEE_SCALE = 0.15  # m: height above the target at which a knee's term falls to 0.5
PELVIS_TARGET = 0.50  # m: pelvis height of the kneeling pose
PELVIS_SCALE = 0.15  # m: width of the pelvis-height bell
W_SHAPE = 2.0  # kneeling shape (knees down, pelvis at kneeling height), times uprightness
W_POSE = 2.0  # bonus while all the task's kneel conditions hold
W_STILL = 0.1  # low centre-of-mass speed
W_CTRL = 0.1  # squared actuator controls


def compute_reward(state, action):
    left = state.body("left_shin").height
    right = state.body("right_shin").height
    pelvis = state.body("pelvis").height
    up_z = state.body("torso").up[:, 2]

    def knee_down(h):
        return 1.0 / (1.0 + ((h - KNEE_TARGET).clamp(min=0.0) / KNEE_SCALE) ** 2)

    upright = up_z.clamp(min=0.0, max=1.0) ** 2
    knees = 0.5 * (knee_down(left) + knee_down(right))
    pelvis_height = torch.exp(-(((pelvis - PELVIS_TARGET) / PELVIS_SCALE) ** 2))
    in_pose = ((left < 0.15) & (right < 0.15) & (up_z > 0.8) & (pelvis > 0.3)).float()
    terms = {
        "upright": upright,
        "kneel_shape": W_SHAPE * upright * 0.5 * (knees + pelvis_height),
        "in_pose": W_POSE * in_pose,
        "still": W_STILL * torch.exp(-state.com_vel.square().sum(dim=1)),
        "ctrl": -W_CTRL * action.square().sum(dim=1),
    }
    return torch.stack(list(terms.values())).sum(dim=0), terms
