"""Evaluation: roll a checkpoint's deterministic policy out for E episodes and keep every step.

Success is the task's own check under the task's rule (held on at least half of the
episode's steps, by default). Every step's `qpos`, `qvel` and applied actions (clipped
actuator controls) are exported to `.npz` (`export_npz`), so anyone can recompute any
metric independently with MuJoCo alone; `replay_success` does exactly that for the
success rate. Videos are MP4s rendered off-screen from the recorded `qpos` (MuJoCo's
EGL or OSMesa; set MUJOCO_GL), with a camera that tracks the robot's root body.

`.npz` layout (E episodes, T = the task's episode length; steps past an episode's end are NaN):

    qpos (E, T, nq) float64      joint positions after each control step
    qvel (E, T, nv) float64      joint velocities after each control step
    actions (E, T, nu) float32   actuator controls applied on each step (clipped to ctrlrange)
    success (E, T) bool          the task's success check on each step, as evaluated online
    lengths (E,) int64           control steps in each episode
    end_reason (E,) str          time_limit | terminated | unstable
    task_id, morphology, success_rule (str); dt (s), episode_length (int)
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel, Field

from synth_reward.atomic import replacing
from synth_reward.envs.batched import RewardFn
from synth_reward.envs.morphology import get_morphology
from synth_reward.envs.state import State
from synth_reward.envs.tasks import Task, get_task
from synth_reward.errors import UsageError
from synth_reward.train.records import EVAL_DIR, MANIFEST, REWARD_FILE, RunManifest, run_task, write_model
from synth_reward.train.reward import SPARSE, load_reward_code, sparse_reward
from synth_reward.train.trainer import load_actor, load_checkpoint
from synth_reward.train.vecenv import TrainEnv, zero_reward


class EpisodeSummary(BaseModel):
    """One evaluated episode."""

    index: int
    length: int
    """control steps."""
    return_: float = Field(alias="return")
    """sum of the training reward."""
    success_fraction: float
    """fraction of steps on which the success check held."""
    success: bool
    """by the task's rule."""
    end_reason: str
    components: dict[str, float] = Field(default_factory=dict)
    """episode sum of each reward component."""
    human_return: float | None = None

    model_config = {"populate_by_name": True}


class EvalResult(BaseModel):
    """What `evaluate` measured."""

    run_dir: str
    checkpoint: str
    iteration: int
    env_steps: int
    episodes: int
    success_rate: float
    return_mean: float
    human_return_mean: float | None = None
    length_mean: float
    seed: int
    seconds: float
    backend: str = "cpu"
    """The physics the episodes ran on (cpu or warp; records written before it was kept: cpu)."""
    device: str = "cpu"
    states_file: str | None = None
    videos: list[str] = Field(default_factory=list)
    per_episode: list[EpisodeSummary]


@dataclass
class Rollouts:
    """Every step of E episodes, numpy, padded with NaN past each episode's end."""

    qpos: np.ndarray
    qvel: np.ndarray
    actions: np.ndarray
    success: np.ndarray
    lengths: np.ndarray
    end_reason: np.ndarray
    summaries: list[EpisodeSummary]


def rollout(
    task: Task,
    policy: torch.nn.Module,
    reward_fn: RewardFn | None,
    episodes: int,
    *,
    seed: int = 0,
    action_scaling: bool = True,
    max_envs: int = 64,
    num_threads: int | None = None,
    backend: str = "cpu",
    device: str = "cpu",
) -> Rollouts:
    """Run `episodes` episodes of the deterministic `policy` (obs TensorDict -> actions) and keep every step.

    backend, device: the physics backend and the device of the observations (the policy must be there)."""
    if episodes < 1:
        raise UsageError(f"--episodes must be at least 1, got {episodes}")
    morph = get_morphology(task.morphology)
    layout = morph.layout()
    horizon = task.episode_length
    qpos = np.full((episodes, horizon, layout.nq), np.nan)
    qvel = np.full((episodes, horizon, layout.nv), np.nan)
    actions = np.full((episodes, horizon, layout.num_actions), np.nan, dtype=np.float32)
    success = np.zeros((episodes, horizon), dtype=bool)
    lengths = np.zeros(episodes, dtype=np.int64)
    reasons = np.empty(episodes, dtype=object)
    summaries: list[EpisodeSummary] = []
    for first in range(0, episodes, max_envs):
        n = min(max_envs, episodes - first)
        env = TrainEnv(
            task,
            reward_fn,
            n,
            seed=seed + first,
            num_threads=num_threads,
            action_scaling=action_scaling,
            backend=backend,
            device=device,
        )
        obs = env.get_observations()
        running = np.ones(n, dtype=bool)
        with torch.inference_mode():
            for t in range(horizon):
                act = policy(obs)
                ctrl = env.to_ctrl(act)
                logged = len(env.log)
                obs, _, dones, _ = env.step(act)
                out = env.last
                assert out is not None
                ids = np.flatnonzero(running)
                rows = first + ids
                qpos[rows, t] = out.state.qpos[ids].double().numpy(force=True)
                qvel[rows, t] = out.state.qvel[ids].double().numpy(force=True)
                actions[rows, t] = ctrl[ids].float().numpy(force=True)
                success[rows, t] = out.success[ids].numpy(force=True)
                if out.episodes is not None:
                    log = env.log
                    for k, i in enumerate(out.episodes.env_ids.tolist(), start=logged):
                        if not running[i]:
                            continue  # an env that already gave its episode and was reset
                        running[i] = False
                        lengths[first + i] = log.lengths[k]
                        reasons[first + i] = log.end_reason[k]
                        summaries.append(
                            EpisodeSummary(
                                index=first + i,
                                length=log.lengths[k],
                                return_=log.returns[k],  # type: ignore[call-arg]  # populate_by_name: mypy sees only the alias
                                success_fraction=log.success_fraction[k],
                                success=log.success[k],
                                end_reason=log.end_reason[k],
                                components={name: v[k] for name, v in log.components.items()},
                                human_return=log.human_returns[k] if log.human_returns else None,
                            )
                        )
                if not running.any():
                    break
        env.close()
    summaries.sort(key=lambda s: s.index)
    return Rollouts(qpos, qvel, actions, success, lengths, reasons.astype(str), summaries)


# ---- the .npz export ------------------------------------------------------------------------
def export_npz(path: str | Path, rollouts: Rollouts, task: Task) -> Path:
    """Write the rollouts to `path` (.npz, atomic) in the layout of this module's docstring."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    morph = get_morphology(task.morphology)
    with replacing(path) as tmp:
        np.savez_compressed(
            tmp,
            qpos=rollouts.qpos,
            qvel=rollouts.qvel,
            actions=rollouts.actions,
            success=rollouts.success,
            lengths=rollouts.lengths,
            end_reason=rollouts.end_reason,
            task_id=task.id,
            morphology=morph.name,
            success_rule=task.success_rule,
            dt=morph.dt,
            episode_length=task.episode_length,
        )
    return path


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"no state export at {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except Exception as exc:  # noqa: BLE001
        raise UsageError(f"state export {path} is unreadable ({type(exc).__name__})") from None


def states_from_qpos(morphology: str, qpos: np.ndarray, qvel: np.ndarray) -> State:
    """A State of T frames (one per row of qpos/qvel) by MuJoCo forward kinematics, with MuJoCo alone."""
    from synth_reward.envs.batched import BatchedEnv

    env = BatchedEnv(morphology, len(qpos), seed=0, num_threads=1)
    env.set_state(qpos, qvel)
    state = env.state
    env.close()
    return state


def replay_success(path: str | Path, task: Task | str | None = None) -> np.ndarray:
    """Per-episode success recomputed from the exported qpos/qvel alone (the task's check and rule).

    Body poses are recomputed by forward kinematics from each step's qpos; online, the check
    saw poses from the start of the step's last physics substep (one 3-5 ms substep earlier).
    """
    data = load_npz(path)
    task = get_task(str(data["task_id"])) if task is None else get_task(task) if isinstance(task, str) else task
    check = task.success_fn()
    result = []
    for e, length in enumerate(data["lengths"]):
        state = states_from_qpos(task.morphology, data["qpos"][e, :length], data["qvel"][e, :length])
        fraction = check(state).double().mean()
        result.append(bool(task.episode_success(fraction.reshape(1))[0]))
    return np.array(result)


# ---- video -------------------------------------------------------------------------------------
VIDEO_FPS = 30.0
"""Videos keep every k-th control step so that they play at about this rate, in real time."""


FAST_RENDER_OFF = ("mjRND_SHADOW", "mjRND_REFLECTION", "mjRND_SKYBOX")
"""Scene effects left out of videos: with software GL (EGL/OSMesa on a CPU machine) they cost 5x the time
per frame (measured: 145 ms with them, 30 ms without, 480x360, humanoid)."""


def _headless_gl() -> None:
    """With no MUJOCO_GL and no display, render through EGL, else OSMesa (both off-screen, Debian packages)."""
    if os.environ.get("MUJOCO_GL") or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return
    import importlib

    from mujoco.rendering.classic import gl_context

    for name in ("egl", "osmesa"):
        try:
            gl_context.GLContext = importlib.import_module(f"mujoco.{name}").GLContext
        except Exception:  # noqa: BLE001,S112 - try the next backend
            continue
        os.environ["MUJOCO_GL"] = name
        return


def render_video(
    morphology: str,
    qpos: np.ndarray,
    path: str | Path,
    *,
    fps: float | None = None,
    width: int = 480,
    height: int = 360,
    distance: float | None = None,
) -> Path:
    """Render qpos (T, nq) to an MP4 off-screen with a camera tracking the root body (side view).

    Without `fps`, frames are subsampled to about VIDEO_FPS and play in real time.
    """
    import imageio.v2 as imageio
    import mujoco

    _headless_gl()
    morph = get_morphology(morphology)
    model = morph.model()
    data = mujoco.MjData(model)
    try:
        renderer = mujoco.Renderer(model, height, width)
    except Exception as exc:  # noqa: BLE001 - no GL backend: say how to get one
        raise UsageError(
            f"cannot render off-screen ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
            "install libegl1 (MUJOCO_GL=egl) or libosmesa6 (MUJOCO_GL=osmesa)"
        ) from None
    camera = mujoco.MjvCamera()
    camera.type = mujoco.mjtCamera.mjCAMERA_TRACKING
    camera.trackbodyid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, morph.root_body)
    mujoco.mj_forward(model, data)  # robot size from its bodies at rest (model.stat.extent includes the floor)
    size = float(np.ptp(data.xpos[1:], axis=0).max()) if model.nbody > 2 else 1.0
    camera.distance = distance or max(2.0, 2.5 * size)
    camera.elevation, camera.azimuth = -15.0, 90.0
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stride = max(1, round(1.0 / morph.dt / VIDEO_FPS)) if fps is None else 1
    fps = fps or 1.0 / (morph.dt * stride)
    try:
        with replacing(path) as tmp:
            with imageio.get_writer(tmp, fps=fps, codec="libx264", quality=6, macro_block_size=8) as writer:
                for q in qpos[::stride]:
                    if not np.isfinite(q).all():
                        break
                    data.qpos[:] = q
                    mujoco.mj_forward(model, data)
                    renderer.update_scene(data, camera)
                    for flag in FAST_RENDER_OFF:
                        renderer.scene.flags[getattr(mujoco.mjtRndFlag, flag)] = False
                    writer.append_data(renderer.render())  # type: ignore[attr-defined]  # imageio types __enter__ as its base class
    finally:
        renderer.close()
    return path


# ---- evaluating a run folder ------------------------------------------------------------------
def load_run_reward(run_dir: Path, manifest: RunManifest) -> RewardFn | None:
    """The run's reward (reward.py through the sandbox loader), or None for the task's human reward."""
    code_path = run_dir / REWARD_FILE
    if code_path.exists():
        return load_reward_code(code_path.read_text())
    if manifest.reward_source == SPARSE:
        return sparse_reward(run_task(manifest))
    if manifest.reward_source.startswith("human:"):
        return None
    return zero_reward  # an in-memory reward function that was not saved as code


def read_manifest(run_dir: Path) -> RunManifest:
    path = run_dir / MANIFEST
    if not path.is_file():
        raise UsageError(f"{run_dir} is not a training run folder (no {MANIFEST})")
    try:
        return RunManifest.model_validate_json(path.read_text())
    except Exception as exc:  # noqa: BLE001
        raise UsageError(f"{path} is corrupt ({type(exc).__name__})") from None


def _writable_dir(path: Path) -> Path:
    """Create `path` and prove a file can be written there; UsageError in one line if not."""
    import tempfile

    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise UsageError(f"cannot write to output folder {path}: {exc.strerror or type(exc).__name__}") from None
    return path


def evaluate(
    run_dir: str | Path,
    episodes: int = 10,
    *,
    checkpoint: str = "best",
    video: bool = False,
    export_states: str | Path | None = None,
    seed: int = 10_000,
    video_size: tuple[int, int] = (480, 360),
    out_dir: str | Path | None = None,
    backend: str = "cpu",
    device: str = "cpu",
) -> EvalResult:
    """Evaluate a run's checkpoint ("best", "last" or a path) for `episodes` deterministic episodes.

    Writes RUN/eval/eval.json and, always, RUN/eval/states.npz (the analyzer reads it); with
    `export_states`, also a copy there; with `video`, RUN/eval/videos/episode_NNN.mp4. With
    `out_dir`, all of these go there instead and RUN/eval is left as it was (the agent loop
    renders videos this way without replacing the evaluation its scores come from). `backend`
    and `device`: the physics of the rollouts (the policy runs on `device` too).
    """
    start = time.perf_counter()
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    ckpt_path = Path(checkpoint) if checkpoint not in ("best", "last") else run_dir / "checkpoints" / f"{checkpoint}.pt"
    if checkpoint == "best" and not ckpt_path.exists() and (run_dir / "checkpoints" / "last.pt").exists():
        ckpt_path = run_dir / "checkpoints" / "last.pt"
    ckpt = load_checkpoint(ckpt_path)
    task = run_task(manifest)
    morph = get_morphology(task.morphology)
    actor, config = load_actor(ckpt, morph.obs_size(), morph.layout().num_actions)
    reward_fn = load_run_reward(run_dir, manifest)
    out = _writable_dir(Path(out_dir) if out_dir else run_dir / EVAL_DIR)  # before the rollouts, not after
    if export_states:
        if Path(export_states).is_dir():
            raise UsageError(f"--export-states {export_states} is a folder; give a file name such as states.npz")
        _writable_dir(Path(export_states).parent)
    actor = actor.to(device)
    rollouts = rollout(
        task,
        actor,
        reward_fn,
        episodes,
        seed=seed,
        action_scaling=config.action_scaling,
        backend=backend,
        device=device,
    )
    states = export_npz(out / "states.npz", rollouts, task)
    if export_states:
        import shutil

        shutil.copyfile(states, export_states)
    videos = []
    if video:
        for e, length in enumerate(rollouts.lengths):
            videos.append(
                str(
                    render_video(
                        task.morphology,
                        rollouts.qpos[e, :length],
                        out / "videos" / f"episode_{e:03d}.mp4",
                        width=video_size[0],
                        height=video_size[1],
                    )
                )
            )
    s = rollouts.summaries
    humans = [x.human_return for x in s if x.human_return is not None]
    result = EvalResult(
        run_dir=str(run_dir),
        checkpoint=str(ckpt_path),
        iteration=int(ckpt["iteration"]),
        env_steps=int(ckpt["env_steps"]),
        episodes=episodes,
        success_rate=float(np.mean([x.success for x in s])),
        return_mean=float(np.mean([x.return_ for x in s])),
        human_return_mean=float(np.mean(humans)) if humans else None,
        length_mean=float(np.mean([x.length for x in s])),
        seed=seed,
        seconds=time.perf_counter() - start,
        backend=backend,
        device=device,
        states_file=str(export_states or states),
        videos=videos,
        per_episode=s,
    )
    write_model(out / "eval.json", result)
    return result
