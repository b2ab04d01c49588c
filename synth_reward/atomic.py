"""Atomic file writes, the one helper every stage uses.

Nothing a user made may be half-written: a run killed at any instant must leave each file
either as it was or as it was going to be. Every write goes to a temporary file in the
same folder (so the rename cannot cross file systems), is flushed and fsynced, then
replaces the target with `os.replace`. Writers that need a path rather than text (numpy's
savez, an MP4 encoder) use `replacing(path)`.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel


def _tmp_for(path: Path) -> Path:
    # pid + random suffix: two processes (or threads) writing the same file never share a temporary
    return path.with_name(f".{path.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}")


@contextlib.contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; when the block ends without an error it replaces `path`.

    On an error (Ctrl-C included) the temporary file is removed and `path` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_for(path)
    try:
        yield tmp
        with contextlib.suppress(OSError):  # fsync what the library wrote and closed
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_text(path: str | Path, text: str) -> None:
    """Replace `path` with `text` atomically."""
    with replacing(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)


def to_json(obj: Any, indent: int | None = 2) -> str:
    """JSON text of a pydantic model or of plain data (NaN and infinities kept, unknown types as str)."""
    if isinstance(obj, BaseModel):
        obj = obj.model_dump(mode="json")
    return json.dumps(obj, indent=indent, ensure_ascii=False, allow_nan=True, default=str)


def write_json(path: str | Path, obj: Any) -> None:
    """Replace `path` with the JSON of `obj` (a pydantic model or plain data) atomically."""
    write_text(path, to_json(obj) + "\n")
