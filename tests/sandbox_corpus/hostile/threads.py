# expect: policy -- background thread that outlives the call
import threading
import torch


def compute_reward(state, action):
    threading.Thread(target=lambda: None, daemon=True).start()
    h = state.body("torso").pos[:, 2]
    return h, {"height": h}
