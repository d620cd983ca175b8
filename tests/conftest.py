"""Shared pytest fixtures."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
H36M_DIR = Path(os.environ.get("GRIDCONV_H36M", REPO.parent / "shared" / "data" / "h36m"))
H36M_FILES = ("h36m_3d17_world_mm.npz", "h36m_sh16_2d_px.npz", "h36m_cameras.json")


@pytest.fixture(scope="session")
def h36m_dir() -> Path:
    """The real Human3.6M folder; skips the test when it is not on this machine."""
    missing = [f for f in H36M_FILES if not (H36M_DIR / f).is_file()]
    if missing:
        pytest.skip(f"real Human3.6M not found at {H36M_DIR} (missing {', '.join(missing)}); set GRIDCONV_H36M")
    return H36M_DIR
