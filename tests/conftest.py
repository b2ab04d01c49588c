"""Shared fixtures. Tests run in a temporary working folder so nothing lands in the repo."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _in_tmp_cwd(tmp_path, monkeypatch):
    # Gymnasium's half_cheetah.xml makes MuJoCo write MUJOCO_LOG.TXT into the working folder.
    monkeypatch.chdir(tmp_path)
