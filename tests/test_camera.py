"""Camera model and 2D normalisation."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gridconv_core.data import DataError
from gridconv_core.data.camera import Camera, camera_to_world, load_cameras_json, project, world_to_camera
from gridconv_core.data.normalization import (
    normalize, normalize_official, normalize_screen, normalize_wild, unnormalize_official, unnormalize_screen,
)

CAM = {
    "R": [[-0.9153617, 0.4018084, 0.0257475], [0.0515481, 0.1803736, -0.9822465], [-0.3993190, -0.8977837, -0.1858195]],
    "T": [1841.1, 4955.3, 1563.4], "f": [1145.0, 1143.8], "c": [512.5, 515.5],
    "k": [-0.207, 0.248, -0.003], "p": [-0.0014, -0.00098], "res_w": 1000, "res_h": 1002,
}
_u, _, _vt = np.linalg.svd(np.array(CAM["R"]))
CAM["R"] = (_u @ _vt).tolist()  # exactly orthonormal


def _project_point(x_cam: np.ndarray, f, c, k, p) -> np.ndarray:
    """Human3.6M ``ProjectPointRadial`` for one point, written out term by term."""
    x, y = x_cam[0] / x_cam[2], x_cam[1] / x_cam[2]
    r2 = x * x + y * y
    radial = 1 + k[0] * r2 + k[1] * r2**2 + k[2] * r2**3
    tan = p[0] * y + p[1] * x
    xd = x * (radial + tan) + p[1] * r2
    yd = y * (radial + tan) + p[0] * r2
    return np.array([f[0] * xd + c[0], f[1] * yd + c[1]])


@pytest.fixture
def world() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.normal(size=(6, 17, 3)) * 400 + np.array([0.0, 0.0, 900.0])


def test_world_to_camera_matches_definition_and_inverts(world):
    cam = Camera.from_dict("54138969", CAM)
    x_cam = cam.world_to_camera(world)
    expected = np.einsum("ij,nkj->nki", cam.R, world - cam.T)
    np.testing.assert_allclose(x_cam, expected, atol=1e-9)
    np.testing.assert_allclose(camera_to_world(x_cam, cam.R, cam.T), world, atol=1e-9)


def test_projection_matches_pointwise_formula(world):
    cam = Camera.from_dict("54138969", CAM)
    x_cam = cam.world_to_camera(world)
    uv = cam.project(x_cam)
    expected = np.array([[_project_point(pt, cam.f, cam.c, cam.k, cam.p) for pt in frame] for frame in x_cam])
    np.testing.assert_allclose(uv, expected, atol=1e-8)
    pinhole = project(x_cam, cam.f, cam.c)
    assert np.abs(pinhole - uv).max() > 1.0  # the distortion terms matter


def test_torch_batched_cameras_match_numpy(world):
    rng = np.random.default_rng(1)
    r = np.linalg.qr(rng.normal(size=(6, 3, 3)))[0]
    t = rng.normal(size=(6, 3)) * 100
    f, c = np.full((6, 2), 1150.0), np.full((6, 2), 500.0)
    ref = np.stack([project(world_to_camera(world[i], r[i], t[i]) + [0, 0, 5000.0], f[i], c[i]) for i in range(6)])
    xt = torch.tensor(world, dtype=torch.float64)
    got = project(world_to_camera(xt, torch.tensor(r), t) + torch.tensor([0, 0, 5000.0], dtype=torch.float64), f, c)
    assert isinstance(got, torch.Tensor)
    np.testing.assert_allclose(got.numpy(), ref, atol=1e-9)


def test_camera_json_and_errors(tmp_path):
    good = tmp_path / "cams.json"
    good.write_text(json.dumps({"S9": {"54138969": CAM}}))
    cams = load_cameras_json(good)
    assert cams["S9"]["54138969"].image_size == (1000, 1002)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="malformed camera JSON in .*bad.json"):
        load_cameras_json(bad)
    with pytest.raises(DataError, match="cannot read camera file"):
        load_cameras_json(tmp_path / "absent.json")
    broken = {k: v for k, v in CAM.items() if k != "f"}
    with pytest.raises(DataError, match="malformed calibration"):
        Camera.from_dict("x", broken)


def test_screen_normalisation():
    uv = np.array([[[0.0, 0.0], [1000.0, 1002.0], [500.0, 501.0]]])
    xy = normalize_screen(uv, 1000, 1002)
    np.testing.assert_allclose(xy[0], [[-1.0, -1.002], [1.0, 1.002], [0.0, 0.0]])
    np.testing.assert_allclose(unnormalize_screen(xy, 1000, 1002), uv)
    square = np.random.default_rng(2).uniform(0, 1000, (5, 17, 2))
    np.testing.assert_allclose(normalize_screen(square, 1000, 1000), normalize_official(square))
    np.testing.assert_allclose(unnormalize_official(normalize_official(square)), square)


def test_per_frame_sizes_and_torch():
    uv = np.random.default_rng(3).uniform(0, 1000, (3, 17, 2))
    w, h = np.array([1000.0, 2048.0, 1920.0]), np.array([1002.0, 2048.0, 1080.0])
    per = normalize_screen(uv, w, h)
    for i in range(3):
        np.testing.assert_allclose(per[i], normalize_screen(uv[i], w[i], h[i]))
    np.testing.assert_allclose(normalize_screen(torch.tensor(uv), w, h).numpy(), per)


def test_wild_normalisation_scales_by_the_long_side_and_keeps_the_centre():
    uv = np.array([[[960.0, 540.0], [0.0, 0.0], [1920.0, 1080.0]]])
    xy = normalize_wild(uv, 1920, 1080)
    np.testing.assert_allclose(xy[0], [[0.0, 0.0], [-1.0, -0.5625], [1.0, 0.5625]])
    square = normalize_wild(uv[..., :1, :] * 0 + 500.0, 1000, 1000)  # a square frame: same as screen
    np.testing.assert_allclose(square, normalize_screen(uv[..., :1, :] * 0 + 500.0, 1000, 1000))
    np.testing.assert_allclose(normalize(uv, 1920, 1080, "wild"), xy)
    with pytest.raises(ValueError, match="unknown normalization"):
        normalize(uv, 1920, 1080, "zscore")
