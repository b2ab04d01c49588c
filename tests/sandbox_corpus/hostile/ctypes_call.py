# expect: policy -- native code through ctypes
import ctypes
import torch


def compute_reward(state, action):
    ctypes.CDLL(None).system(b"touch /tmp/synth_reward_pwned")
    h = state.body("torso").pos[:, 2]
    return h, {"height": h}
