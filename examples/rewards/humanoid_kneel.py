"""A hand-written kneel reward for the humanoid (task humanoid/kneel), in the reward contract.

Targets come from the hand-made kneeling pose (synth_reward/envs/poses.py): shin origins
(the knees) at 0.08 m, pelvis at 0.50 m, torso upright. Two local optima shaped this
version, both found with `synth-reward analyze`:
- collapsing onto the floor (knees down, torso flat): an additive first version trained
  that (knees_down 348 of 400 per episode, upright 38 of 400); so every shaping term is
  multiplied by the torso's uprightness;
- sitting (knees down, pelvis on the floor): the second version trained that (pelvis in
  floor contact 68% of steps, `pelvis > 0.3` failing 89%); so the knees term counts only
  while the pelvis is held above 0.3 m (a soft gate), and the pelvis height has its own term.

    synth-reward train --task humanoid/kneel --reward examples/rewards/humanoid_kneel.py --out runs/kneel
"""

import torch

KNEE_TARGET = 0.10  # m: shin origins (knees) at or below this height count as down
KNEE_SCALE = 0.15  # m: height above the target at which a knee's term falls to 0.5
PELVIS_TARGET = 0.50  # m: pelvis height of the kneeling pose
PELVIS_SCALE = 0.15  # m: width of the pelvis-height bell
PELVIS_GATE = 0.30  # m: the knees term counts only with the pelvis above this (not sitting)
PELVIS_GATE_WIDTH = 0.05  # m: softness of that gate
W_KNEES = 1.0  # knees down while the pelvis is held up, times uprightness
W_PELVIS = 1.0  # pelvis at kneeling height, times uprightness
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
    held_up = torch.sigmoid((pelvis - PELVIS_GATE) / PELVIS_GATE_WIDTH)
    pelvis_height = torch.exp(-(((pelvis - PELVIS_TARGET) / PELVIS_SCALE) ** 2))
    in_pose = ((left < 0.15) & (right < 0.15) & (up_z > 0.8) & (pelvis > 0.3)).float()
    terms = {
        "upright": upright,
        "knees_down": W_KNEES * upright * knees * held_up,
        "pelvis_height": W_PELVIS * upright * pelvis_height,
        "in_pose": W_POSE * in_pose,
        "still": W_STILL * torch.exp(-state.com_vel.square().sum(dim=1)),
        "ctrl": -W_CTRL * action.square().sum(dim=1),
    }
    return torch.stack(list(terms.values())).sum(dim=0), terms
