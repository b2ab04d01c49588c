"""Pictures of what a policy did, for people: frame strips (PNG) and a video (MP4) of recorded episodes.

Drawn from an evaluation's ``states.npz`` (synth_reward/train/evaluate.py: every step's qpos) by
MuJoCo's off-screen renderer in a child process (``python -m synth_reward.agent.media``), so the
OpenGL context and its environment variables never touch the calling process (the review page's
server, the loop). The results are cached in the candidate folder:

    <cand>/media/strip_best.png    6 frames of the episode on which the check held most, left to right
    <cand>/media/strip_worst.png   the same for the episode on which it held least
    <cand>/media/best.mp4          the best episode, in real time (when asked for)
    <cand>/media/media.json        which episodes, their success fractions; or why nothing was drawn

A machine that cannot render (no EGL or OSMesa) gets media.json with the reason, and the front ends
say so instead of showing pictures.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from synth_reward.atomic import write_text

MEDIA_JSON = "media.json"
STRIP_FRAMES = 6
FRAME_W, FRAME_H = 240, 180


def ensure_media(states: Path, out: Path, *, video: bool = False, timeout_s: float = 300) -> dict[str, Any] | None:
    """Draw the strips (and the video) of `states` into `out` unless they are there; media.json's content.

    None when there is no states file (the candidate was never evaluated)."""
    if not states.is_file():
        return None
    saved = read_media(out)
    if saved is not None and (not video or saved.get("video") or saved.get("error")):
        return saved
    out.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "synth_reward.agent.media", str(states), str(out)] + (["--video"] if video else [])
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s)
        status, log = proc.returncode, (proc.stdout + proc.stderr)
    except subprocess.TimeoutExpired:
        status, log = -1, f"rendering took longer than {timeout_s:.0f} s"
    saved = read_media(out)
    if saved is None or status != 0:
        tail = " ".join(log.strip().splitlines()[-2:])[:300]
        saved = {"error": f"rendering exited with status {status}: {tail}"}
        write_text(out / MEDIA_JSON, json.dumps(saved, indent=2) + "\n")
    return saved


def read_media(out: Path) -> dict[str, Any] | None:
    try:
        value = json.loads((out / MEDIA_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _frames(morphology: str, qpos: Any, indices: list[int], width: int, height: int) -> list[Any]:
    """RGB frames (H, W, 3) of qpos rows `indices`, with the tracking side camera of the videos."""
    import mujoco
    import numpy as np

    from synth_reward.envs.morphology import get_morphology
    from synth_reward.train.evaluate import FAST_RENDER_OFF, _headless_gl

    _headless_gl()
    morph = get_morphology(morphology)
    model = morph.model()
    data = mujoco.MjData(model)
    renderer = mujoco.Renderer(model, height, width)
    camera = mujoco.MjvCamera()
    camera.type = mujoco.mjtCamera.mjCAMERA_TRACKING
    camera.trackbodyid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, morph.root_body)
    mujoco.mj_forward(model, data)
    size = float(np.ptp(data.xpos[1:], axis=0).max()) if model.nbody > 2 else 1.0
    camera.distance, camera.elevation, camera.azimuth = max(2.0, 2.5 * size), -15.0, 90.0
    frames = []
    try:
        for i in indices:
            data.qpos[:] = qpos[i]
            mujoco.mj_forward(model, data)
            renderer.update_scene(data, camera)
            for flag in FAST_RENDER_OFF:
                renderer.scene.flags[getattr(mujoco.mjtRndFlag, flag)] = False
            frames.append(renderer.render().copy())
    finally:
        renderer.close()
    return frames


def _main(argv: list[str]) -> int:
    import imageio.v2 as imageio
    import numpy as np

    from synth_reward.train.evaluate import load_npz, render_video

    states, out = Path(argv[0]), Path(argv[1])
    data = load_npz(states)
    morphology, lengths, success = str(data["morphology"]), data["lengths"], data["success"]
    fractions = [float(np.mean(success[e, : max(1, int(n))])) for e, n in enumerate(lengths)]
    best = int(np.argmax(fractions))
    worst = max(i for i, f in enumerate(fractions) if f == min(fractions))  # (ties: another episode than best)
    dt = float(data["dt"])
    record: dict[str, Any] = {"states": str(states.name), "morphology": morphology, "episodes": len(lengths)}
    for name, episode in (("best", best), ("worst", worst)):
        n = max(1, int(lengths[episode]))
        picks = sorted({round(i * (n - 1) / (STRIP_FRAMES - 1)) for i in range(STRIP_FRAMES)})
        frames = _frames(morphology, data["qpos"][episode], picks, FRAME_W, FRAME_H)
        strip = np.concatenate(frames, axis=1)
        imageio.imwrite(out / f"strip_{name}.png", strip)
        record[name] = {
            "episode": episode,
            "success_fraction": fractions[episode],
            "strip": f"strip_{name}.png",
            "times_s": [round(i * dt, 2) for i in picks],
        }
    if "--video" in argv:
        n = max(1, int(lengths[best]))
        render_video(morphology, data["qpos"][best, :n], out / "best.mp4", width=320, height=240)
        record["video"] = "best.mp4"
    write_text(out / MEDIA_JSON, json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
