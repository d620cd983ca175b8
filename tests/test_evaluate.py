"""Evaluation protocols against a hand-computed example (issue 3, "Evaluation")."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from gridconv_core.data import PoseSet
from gridconv_core.errors import EvalError
from gridconv_core.evaluate import combine_reports, evaluate, predict
from gridconv_core.model import build_model
from gridconv_core.skeleton import H36M17


class DepthZero(nn.Module):
    """Lifts (x, y) to (x, y, 0): the error of a frame is then exactly its ground-truth depth."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, torch.zeros_like(x[..., :1])], dim=-1) + 0 * self.dummy


def make_set(depths_m: list[float], actions: list[str], source: str = "gt", valid: list[int] | None = None,
             neck_depth: float | None = None) -> PoseSet:
    n, j = len(depths_m), H36M17.num_joints
    xy = torch.linspace(-0.5, 0.5, n * j * 2).reshape(n, j, 2)
    z = torch.tensor(depths_m).reshape(n, 1, 1).expand(n, j, 1).clone()
    if neck_depth is not None:
        z[:, 9] = neck_depth
    meta = {"source": source}
    if valid is not None:
        meta["valid_joints"] = valid
    return PoseSet(xy, torch.cat([xy, z], dim=-1), H36M17, ["S9"] * n, actions, actions, ["c"] * n, np.arange(n), meta)


ACTIONS = ["Walking 1", "Walking", "Eating", "Eating 2", "Eating"]
DEPTHS = [0.010, 0.030, 0.100, 0.100, 0.100]  # metres: per-frame MPJPE 10, 30, 100, 100, 100 mm


def test_per_action_and_frame_means_match_hand_computation() -> None:
    report = evaluate(DepthZero(), make_set(DEPTHS, ACTIONS), protocols=["P1*", "PCK", "AUC"])
    p1 = report.results["P1*"]
    assert p1.per_action == pytest.approx({"Eating": 100.0, "Walking": 20.0})
    assert p1.frames_per_action == {"Eating": 3, "Walking": 2}
    assert p1.action_mean == pytest.approx(60.0)  # the paper's number: mean over actions
    assert p1.frame_mean == pytest.approx(68.0)  # (10 + 30 + 3 * 100) / 5
    assert report["P1*"] == pytest.approx(60.0)
    assert report.results["PCK"].frame_mean == pytest.approx(100.0)  # all errors below 150 mm
    # AUC: fraction of the 31 thresholds 0, 5, ..., 150 mm strictly above each frame's error
    per_frame_auc = [sum(t > e for t in range(0, 151, 5)) / 31 * 100 for e in (10, 30, 100, 100, 100)]
    assert report.results["AUC"].frame_mean == pytest.approx(np.mean(per_frame_auc))
    assert list(p1.per_action) == ["Eating", "Walking"]  # the standard H36M action order
    text = report.table()
    assert "action mean" in text and "60.0" in text and "68.0" in text
    saved = json.loads(report.to_json())  # strict JSON holding the same numbers
    assert saved["num_frames"] == 5 and list(saved["protocols"]) == ["P1*", "PCK", "AUC"]
    p1_saved = saved["protocols"]["P1*"]
    assert p1_saved["value"] == pytest.approx(60.0) and p1_saved["frame_mean"] == pytest.approx(68.0)
    assert p1_saved["per_action"] == pytest.approx(p1.per_action) and p1_saved["frames_per_action"] == {"Eating": 3, "Walking": 2}
    assert p1_saved["source"] == "gt" and p1_saved["headline"] == "action" and p1_saved["cross"] is False


def test_pa_mpjpe_of_a_similarity_transform_is_zero() -> None:
    ps = make_set(DEPTHS, ACTIONS)

    class Scaled(DepthZero):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            # a rotation by 90 degrees about z plus scale 2 of the ground truth for a flat (z=0) pose
            return torch.stack([-2 * x[..., 1], 2 * x[..., 0], torch.zeros_like(x[..., 0])], -1) + 0 * self.dummy

    flat = make_set([0.0] * 5, ACTIONS)
    assert evaluate(Scaled(), flat, ["P2"])["P2"] == pytest.approx(0.0, abs=1e-6)
    assert evaluate(DepthZero(), ps, ["P2"])["P2"] > 0


def test_metrics_restricted_to_shared_joints_and_report_names_them() -> None:
    valid = [j for j in range(17) if j != 9]
    ps = make_set(DEPTHS, ACTIONS, valid=valid, neck_depth=5.0)  # a huge error on the joint the data lacks
    report = evaluate(DepthZero(), ps, ["P1*"])
    assert report.results["P1*"].action_mean == pytest.approx(60.0)
    assert report.excluded_joints == [H36M17.joint_names[9]]
    assert len(report.joints) == 16
    explicit = evaluate(DepthZero(), make_set(DEPTHS, ACTIONS, neck_depth=5.0), ["P1*"], joints=valid)
    assert explicit["P1*"] == pytest.approx(60.0)
    with_neck = evaluate(DepthZero(), make_set(DEPTHS, ACTIONS, neck_depth=5.0), ["P1*"])
    assert with_neck["P1*"] > 60.0


def test_protocol_input_source_is_checked() -> None:
    gt_set = make_set(DEPTHS, ACTIONS, source="gt")
    with pytest.raises(EvalError, match="P1 needs 'detected'"):
        evaluate(DepthZero(), gt_set, ["P1"])
    with pytest.raises(EvalError, match="P1\\* needs 'gt'"):
        evaluate(DepthZero(), make_set(DEPTHS, ACTIONS, source="hrnet"), ["P1*"])
    hrnet = evaluate(DepthZero(), make_set(DEPTHS, ACTIONS, source="hrnet"))  # any detector scores as P1
    assert list(hrnet.results) == ["P1", "P2"] and hrnet.results["P1"].source == "hrnet"
    with pytest.raises(EvalError, match="unknown protocol"):
        evaluate(DepthZero(), gt_set, ["P7"])
    sh = evaluate(DepthZero(), make_set(DEPTHS, ACTIONS, source="sh"), ["P1", "P2"])
    both = combine_reports([sh, evaluate(DepthZero(), gt_set, ["P1*"])])
    assert list(both.results) == ["P1", "P2", "P1*"]
    assert both.results["P1"].source == "sh" and both.results["P1*"].source == "gt"


def test_default_protocols_without_actions_are_cross_dataset() -> None:
    ps = make_set(DEPTHS, [""] * 5)
    report = evaluate(DepthZero(), ps, batch_size=2)  # batches of 2 over 5 frames
    assert list(report.results) == ["MPJPE", "P2", "PCK", "AUC"]
    assert report.results["MPJPE"].action_mean is None
    assert report["MPJPE"] == pytest.approx(68.0)


def test_3dhp_headline_is_the_frame_mean_with_activities_beside_it() -> None:
    ps = make_set(DEPTHS, ACTIONS)
    ps.meta["dataset"] = "mpi_inf_3dhp"
    report = evaluate(DepthZero(), ps)
    assert list(report.results) == ["MPJPE", "P2", "PCK", "AUC"]
    mpjpe = report.results["MPJPE"]
    assert mpjpe.headline == "frame" and report["MPJPE"] == pytest.approx(68.0)  # all valid frames
    assert mpjpe.action_mean == pytest.approx(60.0) and mpjpe.per_action == pytest.approx({"Eating": 100.0, "Walking": 20.0})
    assert report.to_dict()["protocols"]["MPJPE"]["value"] == pytest.approx(68.0)
    assert "headline: frame mean" in report.table() and "Walking" in report.table()
    assert "headline: action mean" in evaluate(DepthZero(), make_set(DEPTHS, ACTIONS)).table()


def test_h36m_scores_the_training_source_unless_cross_is_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    from gridconv_core import data
    from gridconv_core.evaluate import evaluate_h36m, h36m_source

    assert h36m_source("gt") == "gt" and h36m_source("gt", "auto") == "sh"
    assert h36m_source("detections:/x/cpn.npz") == "detections:/x/cpn.npz"
    assert h36m_source("sh", "auto") == "gt" and h36m_source("gt", "detections:/x/cpn.npz") == "detections:/x/cpn.npz"
    with pytest.raises(EvalError, match="needs another source"):
        h36m_source("sh", "sh")
    loaded = []

    def fake_load(root, subjects, source, every):
        loaded.append(source)
        return make_set(DEPTHS, ACTIONS, source="gt" if source == "gt" else "cpn")

    monkeypatch.setattr(data, "load_h36m", fake_load)
    own = evaluate_h36m(DepthZero(), "gt", "root", ["S9"])
    assert list(own.results) == ["P1*", "P2"] and not own.results["P1*"].cross and loaded == ["gt"]
    detected = evaluate_h36m(DepthZero(), "detections:cpn.npz", "root", ["S9"])
    assert list(detected.results) == ["P1", "P2"] and detected.results["P1"].source == "cpn"
    with pytest.raises(EvalError, match="P1 scores detected 2D .* cross score"):
        evaluate_h36m(DepthZero(), "gt", "root", ["S9"], protocols=["P1"])
    cross = evaluate_h36m(DepthZero(), "gt", "root", ["S9"], cross="auto")
    assert loaded[-1] == "sh" and list(cross.results) == ["P1", "P2"]
    assert all(r.cross for r in cross.results.values()) and cross.to_dict()["protocols"]["P1"]["cross"]
    assert "P1 (mm, cpn, cross)" in cross.table()


def test_report_names_the_filled_input_joints() -> None:
    ps = make_set(DEPTHS, ACTIONS, valid=[j for j in range(17) if j != 7])
    ps.meta["filled_joints"] = ["Spine"]
    report = evaluate(DepthZero(), ps, ["P1*"])
    assert report.filled_joints == ["Spine"] and report.to_dict()["filled_joints"] == ["Spine"]
    assert "filled from their neighbours: Spine" in report.table() and report.excluded_joints == ["Spine"]


@pytest.mark.h36m
@pytest.mark.slow
def test_filled_missing_joints_score_like_the_full_input(h36m_dir) -> None:
    """Issue 7 part 5 on real data: S9 without Spine and Nose; filled input ~ full input, zeros are far worse."""
    from gridconv_core.model_config import GLNConfig
    from gridconv_core.data import load_h36m
    from gridconv_core.data.keypoints import fill_missing_joints
    from gridconv_core.model import build_model

    torch.manual_seed(0)
    train = load_h36m(h36m_dir, ["S1"], every=20)
    test = load_h36m(h36m_dir, ["S9"], every=50)
    model = build_model(GLNConfig(model="simple_baseline", channels=64, num_blocks=1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(300):
        idx = torch.randint(len(train), (256,))
        loss = nn.functional.mse_loss(model(train.pose2d[idx]), train.pose3d[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    drop = [H36M17.index("Spine"), H36M17.index("Nose")]
    keep = [j for j in range(17) if j not in drop]
    zeros = test.pose2d.clone()
    zeros[:, drop] = 0.0
    filled, _ = fill_missing_joints(zeros, "h36m17", drop)
    scores = {}
    for name, x in (("full", test.pose2d), ("filled", filled), ("zeros", zeros)):
        ps = PoseSet(x, test.pose3d, H36M17, test.subject, test.action, test.sequence, test.camera, test.frame,
                     {"source": "gt", "valid_joints": keep})
        scores[name] = evaluate(model, ps, ["P1*"])["P1*"]
    assert scores["full"] < 150, scores  # it learnt something
    assert abs(scores["filled"] - scores["full"]) < 5, scores
    assert scores["zeros"] > scores["full"] + 20, scores


@pytest.mark.parametrize("training", [True, False])
def test_predict_runs_in_eval_mode_and_leaves_the_callers_mode(training: bool) -> None:
    """Dropout and batch statistics off while predicting; a training model comes back training, in chunks or not."""
    torch.manual_seed(0)
    model = build_model().train(training)
    x = torch.randn(7, 17, 2) * 0.3
    first, chunked = predict(model, x), predict(model, x, batch_size=3)
    assert model.training is training
    with torch.no_grad():
        expected = model.eval()(x)
    torch.testing.assert_close(first, expected)
    torch.testing.assert_close(chunked, expected)
    assert predict(model, x[:0]).shape == (0, 17, 3)
