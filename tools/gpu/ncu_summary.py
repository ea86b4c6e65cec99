#!/usr/bin/env python3
"""Sums ncu's per-kernel gpu__time_duration (CSV, --print-units base) over the decode steps of a
CudaBench run: the kernels launched with one row after the last multi-row (prefill) launch are
taken as decode; prints microseconds per step by kernel name, largest first, then the mean and
minimum of one launch by kernel name and the kernel before it (so the o product, after attention,
and the down product, after gate/up, show apart though they share a kernel)."""
import csv, sys, collections

rows = []
with open(sys.argv[1], newline="") as f:
    lines = [l for l in f if l.startswith('"')]
for r in csv.DictReader(lines):
    if r.get("Metric Name") != "gpu__time_duration.sum":
        continue
    rows.append((r["Kernel Name"].split("(")[0], r.get("Grid Size", ""), float(r["Metric Value"].replace(",", ""))))
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 3
# decode steps: the last `steps` occurrences of the embed kernel start them
starts = [i for i, r in enumerate(rows) if r[0] == "embed"]
if len(starts) < steps:
    print("fewer than", steps, "embed launches:", len(starts)); sys.exit(1)
first = starts[-steps]
# the last step may end with sampling; take everything from the first decode embed on
sums = collections.defaultdict(float); counts = collections.defaultdict(int)
for name, grid, ns in rows[first:]:
    key = name + " " + grid
    sums[key] += ns / 1000.0 / steps; counts[key] += 1
total = sum(sums.values())
print(f"decode step: {total:.1f} us of kernel time over {len(rows) - first} launches / {steps} steps")
for k, us in sorted(sums.items(), key=lambda kv: -kv[1]):
    print(f"{us:9.1f} us  {counts[k] // steps:4d}x  {k}")
print("per launch, by kernel and the kernel before it:")
byPrev = collections.defaultdict(list)
prev = None
for name, grid, ns in rows[first:]:
    byPrev[(name + " " + grid, prev)].append(ns / 1000.0)
    prev = name
for (k, before), v in byPrev.items():
    print(f"{sum(v) / len(v):9.2f} us mean {min(v):8.2f} min {len(v):4d}x  {k}  after {before}")
