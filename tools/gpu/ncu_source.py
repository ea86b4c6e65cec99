#!/usr/bin/env python3
"""Where one kernel's warps wait, by SASS instruction: reads ncu's source page as CSV (`ncu --section
WarpStateStats --section SourceCounters --page source --print-source sass --csv ...`), prints the
instructions with the most warp-state samples (the column named like "Warp Stall Sampling (All
Samples)"), and the samples between consecutive barriers (BAR / SYNCS instructions), so a
kernel's phases (loads before a barrier, the loop between two) show as shares of its time.
The column names are matched loosely: ncu versions word them differently."""
import csv, sys

def rows_of(path):
    # ncu writes a '"Kernel Name","<name>",' line before each kernel's table: the table starts at
    # the header line after it (the one naming an address column) and runs to the next such line.
    with open(path, newline="") as f:
        lines = [l for l in f if l.startswith('"')]
    start = next((i for i, l in enumerate(lines) if l.lower().startswith('"address"')), None)
    if start is None:
        return []
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith('"Kernel Name"')), len(lines))
    return list(csv.DictReader(lines[start:end]))

def pick(cols, *words):
    for c in cols:
        low = c.lower()
        if all(w in low for w in words):
            return c
    return None

def number(v):
    try:
        return float(str(v).replace(",", ""))
    except ValueError:
        return 0.0

rows = rows_of(sys.argv[1])
if not rows:
    print("no CSV rows in", sys.argv[1]); sys.exit(1)
cols = list(rows[0].keys())
samples = pick(cols, "stall", "sampling", "all") or pick(cols, "sampling", "all") or pick(cols, "samples")
source = pick(cols, "source") or cols[-1]
address = pick(cols, "address")
if samples is None:
    print("no sampling column among:", cols); sys.exit(1)
total = sum(number(r[samples]) for r in rows) or 1.0
print(f"{len(rows)} instructions, {total:.0f} samples ({samples})")
top = sorted(rows, key=lambda r: -number(r[samples]))[: int(sys.argv[2]) if len(sys.argv) > 2 else 40]
for r in top:
    where = r.get(address, "") if address else ""
    print(f"{100 * number(r[samples]) / total:6.2f}%  {where:>8}  {r[source].strip()}")
print("between barriers (in program order):")
part, start = 0.0, rows[0].get(address, "0") if address else "0"
for r in rows:
    part += number(r[samples])
    text = r[source].upper()
    if "BAR." in text or "SYNCS" in text or r is rows[-1]:
        where = r.get(address, "") if address else ""
        print(f"{100 * part / total:6.2f}%  {start:>8} .. {where:>8}  ends at: {r[source].strip()}")
        part, start = 0.0, where
