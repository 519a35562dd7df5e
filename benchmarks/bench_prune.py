#!/usr/bin/env python
"""Network pruning by TAS on the offline dataset (the thesis' Tables 3.5 and 3.7, small).

ResNet-20 and ResNet-32 pruned to about half their FLOPs by TAS, the pre-defined baseline (one
width ratio everywhere) and random search, each network trained from scratch, w/ Init and w/ KD,
over several seeds — the pipeline of `orchestrate.py prune` (orchestrator.prune.run_pipeline), every
step a Ray Tune experiment. Fashion-MNIST from the Debian package, a subset at 16x16 by default.

Prints per model a table of FLOPs, parameters, FLOPs pruned, accuracy (mean +- std over seeds)
and the drop against the unpruned network, then `name: value unit` lines.

    python benchmarks/bench_prune.py [--models resnet20,resnet32] [--seeds 3] [--train-epochs 4]
        [--search-epochs 4] [--subset 1000,500,1000] [--resolution 16] [--parallel 2] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orchestrator.common import ray_session  # noqa: E402
from orchestrator.prune import PruneSettings, experiment_dir, format_summary, run_pipeline  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="resnet20,resnet32")
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--train-epochs", type=int, default=4)
    p.add_argument("--search-epochs", type=int, default=4)
    p.add_argument("--subset", default="1000,500,1000", help="TRAIN,VALID,TEST images")
    p.add_argument("--resolution", type=int, default=16)
    p.add_argument("--flops-target", type=float, default=0.5)
    p.add_argument("--parallel", type=int, default=2)
    p.add_argument("--out", default="results/bench_prune")
    args = p.parse_args()
    train, valid, test = (int(t) for t in args.subset.split(","))
    subset = {"train": train, "valid": valid, "test": test, "size": args.resolution}
    figures = []
    with ray_session(address=None, num_cpus=args.parallel, quiet=True):
        for model in args.models.split(","):
            name = f"bench-prune-{model}-{uuid.uuid4().hex[:6]}"
            settings = PruneSettings(
                experiment=name, model=model, dataset=args.dataset, data_dir=None, subset=subset,
                flops_target=args.flops_target, methods=("tas", "predefined", "random"),
                transfers=("none", "init", "kd"), search_mode="tas", seeds=tuple(range(args.seeds)),
                train_epochs=args.train_epochs, search_epochs=args.search_epochs)
            folder = experiment_dir(args.out, name)
            folder.mkdir(parents=True)
            started = time.perf_counter()
            df = run_pipeline(settings, folder, address=None, parallel=None, quiet=True)
            wall = time.perf_counter() - started
            print(f"\n{model} on {args.dataset} {train}/{valid}/{test} at {args.resolution}px, "
                  f"{args.train_epochs} train / {args.search_epochs} search epochs, {args.seeds} seeds "
                  f"(rows: {folder / 'prune.parquet'})")
            print(format_summary(df))
            for (method, transfer), g in df.groupby(["method", "transfer"], sort=False):
                figures.append(f"{model}_{method}_{transfer}_accuracy: {g['accuracy'].mean():.2f} %")
                figures.append(f"{model}_{method}_{transfer}_flops_pruned: {g['flops_pruned_pct'].mean():.1f} %")
            figures.append(f"{model}_pipeline_wall: {wall:.0f} s")
    print()
    print("\n".join(figures))


if __name__ == "__main__":
    main()
