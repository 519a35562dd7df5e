"""Store performance on a synthetic store of NATS-Bench's full topology-space size.

Builds, in a temp folder, 15,625 archs x 3 datasets x (hp=12 + hp=200 epochs) x 1 seed (about
9.9 M epoch rows, one compacted file per partition, plus costs), then measures the reader in a
fresh child process so that its peak RSS is the reader's own. Also measures writing, and reading
a partition made of many small fragments before and after compaction (why `compact` exists).

Prints `name: value unit` lines. Official NATS-Bench API figures are quoted (not measured here:
the official archive is not in this repository) for side-by-side reading.

    python benchmarks/bench_store.py [--archs N]   # N < 15625 for a quick smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmark_data import schema as S  # noqa: E402
from benchmark_data import writer as W  # noqa: E402

DATASETS = ("cifar10-valid", "cifar100", "ImageNet16-120")
HPS = (12, 200)
# Quoted from the official nats_bench 1.8 API on the full topology archive (fast_mode).
OFFICIAL = {"get_more_info_us_low": 53, "get_more_info_us_high": 253,
            "simulate_train_eval_us": 424, "first_touch_ms": 9, "ram_per_arch_mb": 2}


def _epoch_table(dataset: str, hp: int, n_archs: int, rng: np.random.Generator) -> pa.Table:
    a = np.repeat(np.arange(n_archs, dtype=np.int32), hp)
    e = np.tile(np.arange(1, hp + 1, dtype=np.int16), n_archs)
    n = a.size
    acc = (rng.random(n) * 100).astype(np.float32)
    cols = {"space": pa.repeat("tss", n), "dataset": pa.repeat(dataset, n),
            "hp": pa.repeat(pa.scalar(hp, pa.int16()), n), "arch_index": a,
            "seed": np.zeros(n, np.int32), "epoch": e, "status": pa.repeat("ok", n)}
    for m in S.EPOCH_METRICS:
        cols[m] = acc if m.endswith("acc") else (rng.random(n) * 10).astype(np.float32)
    return pa.table(cols)


def build(root: Path, n_archs: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    rows, start = 0, time.perf_counter()
    for dataset in DATASETS:
        for hp in HPS:
            tbl = _epoch_table(dataset, hp, n_archs, rng)
            rows += tbl.num_rows
            W.write_fragment(root, "epochs", tbl, metadata=S.provenance())
        costs = pa.table({"space": pa.repeat("tss", n_archs), "dataset": pa.repeat(dataset, n_archs),
                          "arch_index": np.arange(n_archs, dtype=np.int32),
                          "params_m": rng.random(n_archs).astype(np.float32),
                          "flops_m": rng.random(n_archs).astype(np.float32),
                          "latency_ms": rng.random(n_archs).astype(np.float32)})
        W.write_fragment(root, "archs", costs, metadata=S.provenance("archs"))
    seconds = time.perf_counter() - start
    return {"epoch_rows": rows, "write_s": seconds, "write_rows_per_s": rows / seconds}


def fragments_vs_compacted(root: Path, n_fragments: int) -> dict[str, float]:
    """One fragment per trained arch (as the builder writes) vs the compacted partition."""
    from benchmark_data.reader import Benchmark
    rng = np.random.default_rng(1)
    start = time.perf_counter()
    for k in range(n_fragments):
        tbl = _epoch_table("digits", 12, 1, rng).set_column(
            3, "arch_index", pa.array(np.full(12, k, np.int32)))
        W.write_fragment(root, "epochs", tbl, metadata=S.provenance())
    per_fragment_ms = (time.perf_counter() - start) / n_fragments * 1e3

    def first_query() -> float:
        t = time.perf_counter()
        Benchmark.open(root).metrics("tss", "digits", 12, np.arange(n_fragments))
        return time.perf_counter() - t
    before = first_query()
    t = time.perf_counter()
    W.compact(root, "epochs")
    compact_s = time.perf_counter() - t
    after = first_query()
    return {"n_fragments": n_fragments, "write_fragment_ms": per_fragment_ms,
            "first_query_fragments_s": before, "compact_s": compact_s,
            "first_query_compacted_s": after}


def _median_us(fn, repeats: int, clock=time.perf_counter_ns, batch: int = 1) -> float:
    """Median over ``repeats`` batches of ``batch`` calls, per call (batches amortize the clock)."""
    times = []
    for _ in range(repeats):
        t = clock()
        for _ in range(batch):
            fn()
        times.append((clock() - t) / batch)
    return statistics.median(times) / 1e3


def _both(out: dict, name: str, fn, repeats: int, scale: float = 1.0) -> None:
    """Wall-clock median and CPU-time median: on a shared machine the CPU figure is the stable
    one (it does not count the time other processes held the core)."""
    batch = 100 if scale == 1.0 else 1  # microsecond calls: 100 per clock reading
    out[name] = _median_us(fn, repeats // batch, batch=batch) / scale
    out[name + "_cpu"] = _median_us(fn, repeats // batch, time.thread_time_ns, batch) / scale


def measure_reader(root: str) -> dict[str, float]:
    """Runs in a fresh process: every figure, including peak RSS, is the reader's own."""
    from benchmark_data.reader import Benchmark
    out: dict[str, float] = {}
    out["open_ms"] = _median_us(lambda: Benchmark.open(root), 5) / 1e3
    bench = Benchmark.open(root)
    size = 15625
    def once(name: str, fn) -> None:
        t, c = time.perf_counter(), time.thread_time()
        fn()
        out[name] = (time.perf_counter() - t) * 1e3
        out[name + "_cpu"] = (time.thread_time() - c) * 1e3
    for hp in HPS:
        once(f"first_query_hp{hp}_ms", lambda hp=hp: bench.metrics("tss", "cifar10-valid", hp, 0))
    once("first_curve_hp200_ms", lambda: bench.curve("tss", "cifar100", 200, "valid_acc"))
    present = bench.archs("tss", "cifar10-valid", 200)
    rng = np.random.default_rng(0)
    picks = iter(rng.choice(present, 200_000).tolist())
    _both(out, "metrics_single_us",
          lambda: bench.metrics("tss", "cifar10-valid", 200, next(picks)), 20_000)
    _both(out, "metrics_single_valid_acc_us",
          lambda: bench.metrics("tss", "cifar10-valid", 200, next(picks), columns=("valid_acc",)),
          20_000)
    batch = rng.choice(present, 10_000)
    epochs = rng.integers(1, 201, 10_000)
    _both(out, "metrics_10k_vectorized_ms",
          lambda: bench.metrics("tss", "cifar10-valid", 200, batch, epoch=epochs), 21, 1e3)
    _both(out, "metrics_10k_random_seed_ms",
          lambda: bench.metrics("tss", "cifar10-valid", 200, batch, seed="random", rng=rng), 21,
          1e3)
    bench.simulate_train_eval("tss", 0, "cifar100", hp=12, rng=rng)  # warm (loads the curves)
    _both(out, "simulate_train_eval_us",
          lambda: bench.simulate_train_eval("tss", next(picks), "cifar100", hp=12, rng=rng), 5_000)
    one_ds = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for dataset in DATASETS:  # everything: 3 datasets x 2 hps x 8 metrics + time curves
        for hp in HPS:
            bench.metrics("tss", dataset, hp, 0)
            bench.time_cost_curve("tss", dataset, hp)
    out["peak_rss_one_dataset_mib"] = one_ds
    out["peak_rss_all_loaded_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["archs_loaded"] = size
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--archs", type=int, default=15625, help="archs per partition (full: 15625)")
    p.add_argument("--fragments", type=int, default=200, help="small fragments to compact")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(measure_reader(args.child)))
        return
    with tempfile.TemporaryDirectory(prefix="bench_store_") as tmp:
        root = Path(tmp) / "store"
        built = build(root, args.archs)
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        child = subprocess.run([sys.executable, __file__, "--child", str(root)], env=env,
                               capture_output=True, text=True, check=True)
        reader = json.loads(child.stdout.strip().splitlines()[-1])
        frag = fragments_vs_compacted(Path(tmp) / "fragments", args.fragments)
    load = os.getloadavg()[0]
    lines = [
        ("store", f"{args.archs} archs x {len(DATASETS)} datasets x {HPS} epochs x 1 seed", ""),
        ("machine_load_1min", f"{load:.1f}", f"(on {os.cpu_count()} cores)"),
        ("store_epoch_rows", f"{built['epoch_rows']:.0f}", "rows"),
        ("write_throughput", f"{built['write_rows_per_s'] / 1e6:.2f}", "Mrows/s"),
        ("open", f"{reader['open_ms']:.2f}", "ms"),
    ]
    for name, unit, fmt in [
            ("first_query_hp12_ms", "ms", ".0f"), ("first_query_hp200_ms", "ms", ".0f"),
            ("first_curve_hp200_ms", "ms", ".0f"), ("metrics_single_us", "us", ".2f"),
            ("metrics_single_valid_acc_us", "us", ".2f"),
            ("metrics_10k_vectorized_ms", "ms", ".2f"), ("metrics_10k_random_seed_ms", "ms", ".2f"),
            ("simulate_train_eval_us", "us", ".2f")]:
        base = name.rsplit("_", 1)[0]
        lines.append((base, format(reader[name], fmt), unit))
        lines.append((base + "_cpu", format(reader[name + "_cpu"], fmt), unit))
    single = reader["metrics_single_us_cpu"]
    sim = reader["simulate_train_eval_us_cpu"]
    lines += [
        ("official_get_more_info (quoted)",
         f"{OFFICIAL['get_more_info_us_low']}-{OFFICIAL['get_more_info_us_high']}", "us"),
        ("ratio_official_get_more_info_over_metrics_single_cpu",
         f"{OFFICIAL['get_more_info_us_low'] / single:.0f}-"
         f"{OFFICIAL['get_more_info_us_high'] / single:.0f}", "x"),
        ("official_simulate_train_eval (quoted)", f"{OFFICIAL['simulate_train_eval_us']}", "us"),
        ("ratio_official_over_simulate_train_eval_cpu",
         f"{OFFICIAL['simulate_train_eval_us'] / sim:.0f}", "x"),
        ("peak_rss_one_dataset_loaded", f"{reader['peak_rss_one_dataset_mib']:.0f}", "MiB"),
        ("peak_rss_all_loaded (3 datasets x 2 hps x 8 metrics + time curves)",
         f"{reader['peak_rss_all_loaded_mib']:.0f}", "MiB"),
        ("official_ram_all_archs_touched (quoted ~2 MB/arch)",
         f"{OFFICIAL['ram_per_arch_mb'] * reader['archs_loaded']:.0f}", "MB"),
        ("write_small_fragment (12 rows, fsynced)", f"{frag['write_fragment_ms']:.2f}", "ms"),
        (f"first_query_{frag['n_fragments']}_fragments", f"{frag['first_query_fragments_s'] * 1e3:.0f}",
         "ms"),
        (f"compact_{frag['n_fragments']}_fragments", f"{frag['compact_s'] * 1e3:.0f}", "ms"),
        ("first_query_compacted", f"{frag['first_query_compacted_s'] * 1e3:.1f}", "ms"),
        ("ratio_first_query_fragments_over_compacted",
         f"{frag['first_query_fragments_s'] / frag['first_query_compacted_s']:.0f}", "x"),
    ]
    for name, value, unit in lines:
        print(f"{name}: {value} {unit}".rstrip())

if __name__ == "__main__":
    main()
