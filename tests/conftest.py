"""Shared pytest fixtures."""
from __future__ import annotations

import os
from collections.abc import Iterator
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


@pytest.fixture(autouse=True)
def _skeleton_registry_untouched() -> Iterator[None]:
    """No test leaves a skeleton in the registry (the LayoutEditor's dropdown lists it)."""
    from gridconv_core.skeleton import SKELETONS

    before = dict(SKELETONS)
    yield
    assert dict(SKELETONS) == before, f"a test registered skeletons {sorted(set(SKELETONS) - set(before))}"
