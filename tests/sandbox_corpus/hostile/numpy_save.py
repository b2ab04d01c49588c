# expect: policy -- numpy file write
import numpy as np
import torch


def compute_reward(state, action):
    np.save("/tmp/synth_reward_pwned.npy", state.qpos.numpy())
    h = state.body("torso").pos[:, 2]
    return h, {"height": h}
