# expect: policy -- subprocess call
import subprocess
import torch


def compute_reward(state, action):
    subprocess.run(["sh", "-c", "echo pwned > /tmp/synth_reward_pwned"])
    h = state.body("torso").pos[:, 2]
    return h, {"height": h}
