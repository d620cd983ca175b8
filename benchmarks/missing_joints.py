"""Cross-dataset input with missing joints (issue 7, part 5): full vs filled vs zero-filled 2D input.

A SimpleBaseline is trained for a fixed number of Adam steps on ground-truth 2D of the training subjects; on the test
subjects Spine and Neck/Nose are then dropped from the 2D input and either placed by
``gridconv_core.data.keypoints.fill_missing_joints`` or set to zero (the image centre). MPJPE is
scored on the other 15 joints in every case. Writes metrics only (no weights) to
``benchmarks/results/missing_joints.json``.

    python benchmarks/missing_joints.py --steps 2000
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch import nn

from bench_model import machine
from gridconv_core.model_config import GLNConfig
from gridconv_core.data import PoseSet, load_h36m
from gridconv_core.data.keypoints import fill_missing_joints
from gridconv_core.evaluate import evaluate
from gridconv_core.io import write_json
from gridconv_core.model import build_model
from gridconv_core.skeleton import H36M17

DROPPED = ("Spine", "Nose")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-subjects", default="S1,S5,S6,S7")
    parser.add_argument("--test-subjects", default="S9,S11")
    parser.add_argument("--train-every", type=int, default=5)
    parser.add_argument("--test-every", type=int, default=10)
    parser.add_argument("--steps", type=int, default=2000, help="Adam steps of batch 256")
    parser.add_argument("--channels", type=int, default=64, help="SimpleBaseline width is 4 x channels")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "missing_joints.json"))
    args = parser.parse_args()

    torch.manual_seed(0)
    train = load_h36m(subjects=args.train_subjects.split(","), every=args.train_every)
    test = load_h36m(subjects=args.test_subjects.split(","), every=args.test_every)
    model = build_model(GLNConfig(model="simple_baseline", channels=args.channels, num_blocks=2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    start = time.perf_counter()
    for _ in range(args.steps):
        idx = torch.randint(len(train), (256,))
        loss = nn.functional.mse_loss(model(train.pose2d[idx]), train.pose3d[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - start
    drop = [H36M17.index(n) for n in DROPPED]
    keep = [j for j in range(H36M17.num_joints) if j not in drop]
    zeros = test.pose2d.clone()
    zeros[:, drop] = 0.0
    inputs = {"full": test.pose2d, "filled": fill_missing_joints(zeros, H36M17, drop)[0], "zeros": zeros}
    scores = {}
    for name, x in inputs.items():
        ps = PoseSet(x, test.pose3d, H36M17, test.subject, test.action, test.sequence, test.camera, test.frame,
                     {"source": "gt", "valid_joints": keep})
        report = evaluate(model, ps, ["P1*", "P2"])
        scores[name] = {"P1*_mm": round(report["P1*"], 2), "P2_mm": round(report["P2"], 2)}
    result = {
        "what": "SimpleBaseline on GT 2D; test input without Spine and Nose: full vs filled vs zeros "
                "(MPJPE action-wise mean over the 15 other joints)",
        "dropped_input_joints": list(DROPPED), "scores": scores,
        "train": {"subjects": args.train_subjects, "every": args.train_every, "frames": len(train),
                  "steps": args.steps, "batch": 256, "seconds": round(seconds, 1), "channels": args.channels},
        "test": {"subjects": args.test_subjects, "every": args.test_every, "frames": len(test)},
        "machine": machine(torch.device("cpu")),
    }
    write_json(result, args.out)
    print(json.dumps(scores, indent=2))


if __name__ == "__main__":
    main()
