"""`synth-reward review RUN [--port P] [--host H]`: serve the review page of a run on this machine."""

from __future__ import annotations

import errno
import ipaddress
import socket
from pathlib import Path
from typing import Annotated

import typer

from synth_reward.errors import UsageError

LOOPBACK_NAMES = {"localhost"}


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_port(host: str, port: int) -> None:
    """UsageError (one line) when HOST:PORT cannot be bound (in use, or no such address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UsageError(f"port {port} on {host} is in use; pick another with --port") from None
            raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def review_command(
    run: Annotated[str, typer.Argument(help="Run id or run folder.")],
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port of the page.")] = 8000,
    host: Annotated[
        str,
        typer.Option("--host", help="Address to listen on; anything but loopback shows the page (no login) to others."),
    ] = "127.0.0.1",
    out: Annotated[Path, typer.Option("--out", help="Folder that holds run folders.")] = Path("runs"),
    name: Annotated[str | None, typer.Option("--name", help="Who acts (default: the OS user).")] = None,
) -> None:
    """Serve a run's review page: candidates side by side with videos, curves, code diffs; give feedback there.

    On a remote machine: `ssh -L 8000:127.0.0.1:8000 HOST`, then open http://127.0.0.1:8000 here."""
    from synth_reward.agent.cli import console
    from synth_reward.agent.feedback_cli import open_session
    from synth_reward.agent.session import RunLock

    store, settings = open_session(run, out)
    check_port(host, port)
    try:
        import uvicorn

        from synth_reward.web.app import Review, create_app
    except ImportError as exc:
        raise UsageError(
            f"the review page needs starlette and uvicorn ({exc.name} is missing): pip install starlette uvicorn"
        ) from None
    if not is_loopback(host):
        console.print(
            f"warning: listening on {host}: the page has no login; anyone who can reach {host}:{port} can see "
            "the run and act on it",
            highlight=False,
            markup=False,
        )
    with RunLock(store, "synth-reward review"):
        review = Review(store, settings, who=name)
        review.start()
        url = f"http://{host if ':' not in host else f'[{host}]'}:{port}/"
        console.print(
            f"review page of {store.run_id}: {url} (Ctrl-C stops it; the session resumes)",
            highlight=False,
            markup=False,
        )
        uvicorn.run(create_app(review), host=host, port=port, log_level="warning")
