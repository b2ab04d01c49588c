"""Executors: where a batch's units run. One code path (`batch.run_unit`), two places to run it.

- `LocalExecutor`: up to N units at once on this machine, each a child process. The default
  N is this machine's cores divided by `cpus_per_run` (2: the trainer already keeps two
  cores busy), so a 2-core machine runs one task at a time rather than oversubscribing.
- `RayExecutor`: the same function as Ray tasks with their CPUs (and GPUs) declared, on a
  local Ray instance or a cluster (`--ray-address auto`). The run folders must be on a
  filesystem every node sees (the batch folder is given as an absolute path). A task whose
  worker dies is retried by Ray; the retry resumes its run folder, so nothing finished is lost.
  Ray is an optional extra: `pip install "synth-reward[ray]"`.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from synth_reward.batch.batch import Executor, Outcome, Unit, interrupt_all, run_unit
from synth_reward.errors import UsageError


def default_workers(cpus_per_run: int) -> int:
    return max(1, (os.cpu_count() or 1) // cpus_per_run)


class LocalExecutor(Executor):
    """A pool of N worker threads, each driving one unit's child process at a time."""

    name = "local"

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def run(self, units: list[Unit], started: Callable[[Unit], None]) -> Iterator[Outcome]:
        def one(unit: Unit) -> Outcome:
            started(unit)
            return run_unit(unit)

        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="batch")
        futures: set[Future[Outcome]] = {pool.submit(one, u) for u in units}
        try:
            while futures:
                done, futures = wait(futures, timeout=0.5, return_when=FIRST_COMPLETED)
                for f in done:
                    yield f.result()
        except (KeyboardInterrupt, GeneratorExit):
            for f in futures:
                f.cancel()
            interrupt_all()  # each run stops its training (checkpoint saved) and is marked resumable
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


class RayExecutor(Executor):
    """The same units as Ray tasks: `num_cpus=cpus_per_run` each, at most `workers` in flight."""

    name = "ray"

    def __init__(
        self, workers: int, address: str | None = None, cpus_per_run: int = 2, gpus_per_run: float = 0
    ) -> None:
        self.workers, self.address, self.cpus_per_run, self.gpus_per_run = workers, address, cpus_per_run, gpus_per_run
        self.ray = import_ray()
        connect(self.ray, address, cpus_per_run)

    def run(self, units: list[Unit], started: Callable[[Unit], None]) -> Iterator[Outcome]:
        ray = self.ray
        remote = ray.remote(run_unit).options(
            num_cpus=self.cpus_per_run, num_gpus=self.gpus_per_run, max_retries=2, retry_exceptions=False
        )
        todo: list[Unit] = list(units)
        running: dict[Any, Unit] = {}
        try:
            while todo or running:
                while todo and len(running) < self.workers:
                    unit = todo.pop(0)
                    started(unit)
                    running[remote.remote(unit)] = unit
                ready, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
                for ref in ready:
                    unit = running.pop(ref)
                    try:
                        yield ray.get(ref)
                    except ray.exceptions.RayError as exc:
                        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                        yield Outcome(task_id=unit.task_id, state="stopped", reason=f"Ray: {reason}"[:600])
        except (KeyboardInterrupt, GeneratorExit):
            for ref in running:
                ray.cancel(ref)  # KeyboardInterrupt in the task: run_unit interrupts its run, which saves
            ray.wait(list(running), num_returns=len(running), timeout=90)
            raise


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError('the Ray executor needs Ray: pip install "synth-reward[ray]"') from None
    return ray


def connect(ray: Any, address: str | None, cpus_per_run: int, timeout_s: float = 5.0) -> None:
    """ray.init: a cluster at `address`, or a local Ray instance (this machine's cores) when None.

    An address that does not answer is a UsageError within `timeout_s`, not a hang: a host:port
    is tried with a plain TCP connect first, and `auto` with no cluster running fails in Ray at once.
    """
    if ray.is_initialized():
        return
    if address and address not in ("auto", "local"):
        hostport = address.split("://", 1)[-1]
        host, _, port = hostport.rpartition(":")
        if not host or not port.isdigit():
            raise UsageError(f"--ray-address must be auto or HOST:PORT (e.g. 10.0.0.5:6379), got {address!r}")
        try:
            socket.create_connection((host, int(port)), timeout=timeout_s).close()
        except OSError as exc:
            raise UsageError(f"no Ray cluster answers at {address} within {timeout_s:.0f} s: {exc}") from None
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
    if not address or address == "local":
        kwargs["num_cpus"] = max(os.cpu_count() or 1, cpus_per_run)
    try:
        ray.init(address=None if address == "local" else address, **kwargs)
    except ConnectionError as exc:
        raise UsageError(f"cannot connect to Ray at {address}: {str(exc).splitlines()[0]}") from None
