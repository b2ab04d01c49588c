"""The MuJoCo Warp backend on Warp's CPU device, against the CPU backend running the same converted model.

Needs the gpu extra (`pip install -e ".[dev,gpu]"`, as .ci/run installs); without it every test here is skipped
with that reason. Warp compiles its kernels on first use (about a minute here) into its cache (~/.cache/warp):
the session fixture `warp_compiled` does that once, for every morphology, before the first test that needs it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mujoco
import numpy as np
import pytest
import torch

mujoco_warp = pytest.importorskip("mujoco_warp", reason='the gpu extra is not installed: pip install -e ".[dev,gpu]"')

from synth_reward.envs import list_morphologies  # noqa: E402
from synth_reward.envs.batched import BatchedEnv  # noqa: E402
from synth_reward.envs.parity import FIELDS, TOLERANCE, backend_parity  # noqa: E402
from synth_reward.envs.tasks import get_task  # noqa: E402
from synth_reward.envs.warp import WarpBackend  # noqa: E402
from synth_reward.envs.warp_model import converted_model, warp_model  # noqa: E402
from synth_reward.errors import SynthRewardError, UsageError  # noqa: E402
from synth_reward.sandbox.loader import load_reward  # noqa: E402

MORPHOLOGIES = [m.name for m in list_morphologies() if not m.source_dir or "synth_reward" in m.source_dir]
ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="session")
def warp_compiled() -> None:
    """Compile (or load from Warp's cache) the kernels of every built-in morphology once per session."""
    for name in MORPHOLOGIES:
        wm = warp_model(name)
        backend = WarpBackend(wm, 1, 1, "cpu")
        backend.step(torch.zeros(1, wm.model.nu))
        backend.close()


@pytest.mark.parametrize("morphology", MORPHOLOGIES)
def test_parity_one_step_within_float32_tolerance(morphology: str, warp_compiled: None) -> None:
    """100 control steps from the same states with the same actions: qpos, qvel, xpos, cfrc_ext agree."""
    p = backend_parity(morphology, envs=1, steps=100, free_run=False, conversion=False)
    assert p.unstable == 0
    for f in FIELDS:
        assert p.one_step[f] <= TOLERANCE * p.scale[f], (f, p.one_step[f], p.scale[f])
    if morphology in ("hopper", "half_cheetah", "walker2d"):
        assert p.changes == ()  # the planar robots run Gymnasium's own model


def _pair(task_id: str, n: int, reward: object) -> tuple[BatchedEnv, BatchedEnv]:
    task = get_task(task_id)
    kwargs = {"reward_fn": reward, "seed": 3}
    cpu = task.make_env(n, backend="cpu", warp_conversion=True, **kwargs)  # type: ignore[arg-type]
    gpu = task.make_env(n, backend="warp", device="cpu", **kwargs)  # type: ignore[arg-type]
    return cpu, gpu


@pytest.mark.parametrize(
    "task_id, reward_file",
    [("gym/HalfCheetah-v5", None), ("humanoid/kneel", "examples/rewards/humanoid_kneel.py")],
)
def test_same_reward_and_success_on_both_backends(task_id: str, reward_file: str | None, warp_compiled: None) -> None:
    """The task's success check and a reward (the human one, or generated code) give the same values."""
    task = get_task(task_id)
    reward = task.human_reward_fn() if reward_file is None else load_reward((ROOT / reward_file).read_text())
    cpu, gpu = _pair(task_id, 4, reward)
    assert torch.allclose(cpu.reset().float(), gpu.reset().cpu(), atol=1e-5)
    gen = torch.Generator().manual_seed(0)
    try:
        for _ in range(20):
            gpu.backend.load_state_dict(cpu.backend.state_dict())
            action = torch.rand(4, cpu.num_actions, generator=gen) * 2 - 1
            a, b = cpu.step(action), gpu.step(action)
            scale = 1.0 + float(a.reward.abs().max())
            assert float((a.reward.float() - b.reward.cpu()).abs().max()) <= TOLERANCE * scale
            assert a.terms.keys() == b.terms.keys()
            for name in a.terms:
                term_scale = 1.0 + float(a.terms[name].abs().max())
                assert float((a.terms[name].float() - b.terms[name].cpu()).abs().max()) <= TOLERANCE * term_scale
            assert torch.equal(a.success.cpu(), b.success.cpu())
    finally:
        cpu.close()
        gpu.close()


def test_masked_reset_touches_only_masked_worlds(warp_compiled: None) -> None:
    """reset_envs with a mask: those worlds get Gymnasium's reset noise (as on the CPU backend); others go on."""
    cpu, gpu = _pair("gym/Hopper-v5", 4, None)
    try:
        cpu.reset()
        gpu.reset()
        for _ in range(5):
            gpu.backend.load_state_dict(cpu.backend.state_dict())
            cpu.step(torch.full((4, cpu.num_actions), 0.3))
            gpu.step(torch.full((4, cpu.num_actions), 0.3))
        before = gpu.state.qpos.clone()
        mask = torch.tensor([True, False, True, False])
        cpu.reset_envs(mask)
        gpu.reset_envs(mask)
        after_cpu, after_gpu = cpu.state, gpu.state
        assert torch.equal(after_gpu.qpos[~mask], before[~mask])
        assert torch.allclose(after_gpu.qpos[mask].double(), after_cpu.qpos[mask].double(), atol=1e-6)
        assert torch.allclose(after_gpu.qvel[mask].double(), after_cpu.qvel[mask].double(), atol=1e-6)
        # forward ran: derived quantities (body positions) match the new state
        assert torch.allclose(after_gpu.body_pos[mask].double(), after_cpu.body_pos[mask].double(), atol=1e-5)
    finally:
        cpu.close()
        gpu.close()


def test_blown_up_world_ends_only_its_episode(warp_compiled: None) -> None:
    wm = warp_model("hopper")
    backend = WarpBackend(wm, 3, 4, "cpu")
    try:
        qpos = np.tile(wm.model.qpos0, (3, 1))
        qvel = np.zeros((3, wm.model.nv))
        qvel[1, 0] = np.nan
        backend.set_state(np.arange(3), qpos, qvel)
        backend.step(torch.zeros(3, wm.model.nu))
        assert backend.unstable().tolist() == [False, True, False]
        assert torch.isfinite(backend.snapshot(torch.float32)["qvel"]).all()
        backend.step(torch.zeros(3, wm.model.nu))
        assert not backend.unstable().any()
    finally:
        backend.close()


def test_overflow_is_an_error_naming_the_setting(warp_compiled: None) -> None:
    wm = dataclasses.replace(warp_model("hopper"), njmax=1)
    backend = WarpBackend(wm, 2, 4, "cpu")
    try:
        with pytest.raises(SynthRewardError, match="njmax"):
            for _ in range(100):  # the hopper falls onto the floor: contacts need more rows than one
                backend.step(torch.zeros(2, wm.model.nu))
    finally:
        backend.close()


def test_solver_iteration_limit_is_not_an_overflow(warp_compiled: None) -> None:
    """The solver's own flags (iteration and line-search limits) leave the run going, as in MuJoCo."""
    import copy

    wm = warp_model("humanoid")
    model = copy.deepcopy(wm.model)
    model.opt.iterations = model.opt.ls_iterations = 1  # every step hits both limits
    backend = WarpBackend(dataclasses.replace(wm, model=model), 2, 5, "cpu")
    try:
        for _ in range(3):
            backend.step(torch.full((2, model.nu), 0.3))
        assert int(backend._overflow.max()) & int(mujoco_warp.OverflowType.ITERATIONS)  # the flag is set
        assert np.isfinite(backend.snapshot(torch.float32).packed.numpy()).all()
    finally:
        backend.close()


def test_captured_step_replays_exactly_as_the_eager_step(warp_compiled: None) -> None:
    """The env step captured as a graph (Warp 1.19 captures on its CPU device too) gives the eager step's
    states, through a masked reset and a checkpoint reload after the capture."""
    wm = warp_model("hopper")

    def states(graph: bool) -> torch.Tensor:
        backend = WarpBackend(wm, 4, 4, "cpu", graph=graph)
        rng, out, saved = np.random.default_rng(1), [], {}
        for i in range(30):
            backend.step(torch.as_tensor(rng.uniform(-1, 1, (4, wm.model.nu)), dtype=torch.float32))
            if i == 5:
                saved = backend.state_dict()
            if i == 10:
                backend.set_state(
                    np.array([0, 3]), np.tile(wm.model.qpos0, (2, 1)) + 0.02, np.full((2, wm.model.nv), 0.1)
                )
            if i == 20:
                backend.load_state_dict(saved)
            out.append(backend.snapshot(torch.float32).packed.clone())
        assert (backend._graph is not None) == graph
        backend.close()
        return torch.stack(out)

    eager = states(False)
    assert torch.equal(states(True), eager)


def test_unsupported_model_feature_is_a_usage_error(warp_compiled: None) -> None:
    xml = """<mujoco><worldbody><body><joint name="j" type="hinge"/><geom size=".1"/></body></worldbody>
    <actuator><general joint="j" dyntype="pid" gaintype="pid" biastype="affine"/></actuator></mujoco>"""
    model = mujoco.MjModel.from_xml_string(xml)
    wm = dataclasses.replace(warp_model("hopper"), model=model, nconmax=8, njmax=8)
    with pytest.raises(UsageError) as info:
        WarpBackend(wm, 1, 1, "cpu")
    message = str(info.value)
    assert "\n" not in message and "mjDYN_PID" in message and "--backend cpu" in message


def test_conversion_lists_every_change() -> None:
    humanoid = get_task("gym/Humanoid-v5").morphology
    model, changes = converted_model(warp_model(humanoid).model)
    assert model.opt.solver == mujoco.mjtSolver.mjSOL_NEWTON
    wm = warp_model(humanoid)
    assert wm.model.opt.solver == mujoco.mjtSolver.mjSOL_NEWTON
    assert wm.model.opt.cone == mujoco.mjtCone.mjCONE_ELLIPTIC
    assert any("PGS -> Newton" in c for c in wm.changes) and any("elliptic" in c for c in wm.changes)


EXE = shutil.which("synth-reward")


def _cli(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    assert EXE, "the synth-reward console script is not installed (pip install -e .)"
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")} | {"SYNTH_REWARD_MODEL": ""}
    return subprocess.run([EXE, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)


def _short_task(tmp_path: Path, episode_length: int) -> str:
    """gym/HalfCheetah-v5 with shorter episodes (returns every few iterations), as a task file."""
    path = tmp_path / "task.json"
    task = get_task("gym/HalfCheetah-v5").model_copy(update={"episode_length": episode_length})
    path.write_text(task.model_dump_json())
    return str(path)


def test_train_and_eval_with_warp_backend(tmp_path: Path, warp_compiled: None) -> None:
    """`synth-reward train --backend warp --device cpu` completes; `eval` runs its checkpoint on Warp too."""
    out = tmp_path / "run"
    proc = _cli(
        ["train", "--task-file", _short_task(tmp_path, 50), "--backend", "warp", "--device", "cpu", "--steps", "512",
         "--num-envs", "4", "--out", str(out)],
        tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "compiles its kernels" in proc.stderr
    proc = _cli(["eval", str(out), "--episodes", "2", "--backend", "warp", "--device", "cpu"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads((out / "eval" / "eval.json").read_text())
    assert (result["backend"], result["device"]) == ("warp", "cpu")
    shutil.rmtree(out / "eval")  # `analyze` of a run with no evaluation evaluates it first, on the physics given
    proc = _cli(["analyze", str(out), "--episodes", "2", "--backend", "warp", "--device", "cpu"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads((out / "eval" / "eval.json").read_text())["backend"] == "warp"


def test_without_the_extra_is_one_line_exit_2(tmp_path: Path) -> None:
    """--backend warp where mujoco_warp cannot be imported: what to install, exit status 2."""
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['mujoco_warp'] = None\n")
    path = os.pathsep.join([str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])])
    code = "from synth_reward.cli import main; main()"
    proc = subprocess.run(
        [sys.executable, "-c", code, "train", "--env", "half_cheetah", "--backend", "warp", "--out", "x"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=os.environ | {"PYTHONPATH": path},
        timeout=120,
    )
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert proc.returncode == 2, lines
    assert len(lines) == 1 and 'pip install "synth-reward[gpu]"' in lines[0], lines
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_training_on_warp_improves_half_cheetah(tmp_path: Path, warp_compiled: None) -> None:
    """A short PPO run on Warp's CPU device raises half_cheetah's return (100-step episodes; 2 min here)."""
    out = tmp_path / "run"
    proc = _cli(
        ["train", "--task-file", _short_task(tmp_path, 100), "--backend", "warp", "--device", "cpu", "--steps",
         "40960", "--num-envs", "32", "--out", str(out)],
        tmp_path,
        timeout=1200,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    returns = [r["return_mean"] for r in records if r["return_mean"] is not None]
    assert len(returns) >= 2 and returns[-1] > returns[0], returns


def test_runner_passes_the_run_physics_to_train_and_eval(tmp_path: Path) -> None:
    from synth_reward.agent.runner import Runner

    runner = Runner(get_task("gym/HalfCheetah-v5"), physics=["--backend", "warp", "--device", "cpu"])
    for argv in (runner.train_argv(tmp_path, "train"), runner.analyze_argv(tmp_path / "train", 8)):
        assert argv[argv.index("--backend") + 1] == "warp" and argv[argv.index("--device") + 1] == "cpu"


@pytest.mark.slow
def test_main_command_end_to_end_on_warp(tmp_path: Path, warp_compiled: None) -> None:
    """The main command with --backend warp --device cpu on a tiny budget (about 3 min here)."""
    proc = _cli(
        ["make the half cheetah run forward", "--backend", "warp", "--device", "cpu", "--steps", "1024", "--samples",
         "2", "--iterations", "1", "--episodes", "2", "--final-episodes", "2", "--no-video", "--out", "runs"],
        tmp_path,
        timeout=1800,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (run,) = (tmp_path / "runs").iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished"
    settings = json.loads((run / "run.json").read_text())["settings"]
    assert settings["backend"] == "warp" and settings["device"] == "cpu"
    evals = [json.loads(p.read_text()) for p in run.rglob("eval.json")]
    assert evals and all(e["backend"] == "warp" for e in evals)  # the analysis and the final evaluation too
    logs = list(run.rglob("train.log"))
    assert logs and all("/.cache/warp" not in str(p) for p in run.rglob("*"))  # one shared kernel cache
