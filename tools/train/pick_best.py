#!/usr/bin/env python3
"""Copies the run with the lowest validation loss (corpus/valid.txt, never heldout.txt) to DEST.

  pick_best.py DEST RUN_DIR [RUN_DIR ...]

Each RUN_DIR is a train.py --out folder. Copied: the .gguf, the .golden.json, train_log.json and
tokenizer.model of the winner; every run's train_log.json is also copied as <run>.train_log.json.
"""
import json
import os
import shutil
import sys

dest, runs = sys.argv[1], sys.argv[2:]
os.makedirs(dest, exist_ok=True)
scored = []
for r in runs:
    with open(os.path.join(r, "train_log.json")) as f:
        log = json.load(f)
    name = os.path.basename(os.path.normpath(r))
    print(f"{name}: best valid loss {log['best_valid']['loss']:.4f} at step {log['best_valid']['step']}, "
          f"{log['steps']} of {log['args']['steps']} steps, heldout ppl/token "
          f"{log['eval_f16_weights']['heldout']['ppl_per_token']:.3f}")
    shutil.copy(os.path.join(r, "train_log.json"), os.path.join(dest, name + ".train_log.json"))
    scored.append((log["best_valid"]["loss"], r))
best = min(scored)[1]
print("picked", best)
for fn in os.listdir(best):
    if fn.endswith((".gguf", ".golden.json")) or fn in ("train_log.json", "tokenizer.model"):
        shutil.copy(os.path.join(best, fn), os.path.join(dest, fn))
