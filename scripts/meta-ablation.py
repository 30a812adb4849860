#!/usr/bin/env python3
"""Issue 19: paired comparison of `meta` variants against an ablation, from the runs of
scripts/meta-ablation.sh (OUTDIR/<label>/<order>/s<seed>/summary.json).

    scripts/meta-ablation.py OUTDIR ABLATION_LABEL VARIANT_LABEL...

Per order and pooled over orders: ACC and forgetting (max prev) mean ± sample std, the
paired difference variant − ablation over the (order, seed) cells both finished, its
standard error (std of the differences / √n) and the ratio diff / SE; compute as sample
passes per stage sample (compute_ratio) and train seconds (noisy on a shared machine).
"""
import json
import math
import sys
from pathlib import Path


def load(out, label):
    cells = {}
    for f in sorted(Path(out, label).glob("*/s*/summary.json")):
        d = json.loads(f.read_text())
        cells[(f.parent.parent.name, f.parent.name)] = d
    return cells


def ms(xs):
    n = len(xs)
    m = sum(xs) / n
    s = math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1)) if n > 1 else 0.0
    return m, s


def main():
    out, abl, variants = sys.argv[1], sys.argv[2], sys.argv[3:]
    base = load(out, abl)
    orders = sorted({o for o, _ in base})
    print("| variant | order | n | ACC | Δ ACC ± SE (Δ/SE) | forgetting | Δ forg ± SE (Δ/SE) | compute ratio | train s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for label in [abl] + variants:
        cells = load(out, label)
        for order in orders + ["all"]:
            keys = sorted(k for k in cells if k in base and (order == "all" or k[0] == order))
            if not keys:
                continue
            row = [label, order.replace(",", ">"), str(len(keys))]
            for metric in ["acc", "forgetting_max_prev"]:
                m, s = ms([cells[k][metric] for k in keys])
                row.append(f"{m:.4f} ± {s:.4f}")
                if label == abl:
                    row.append("—")
                    continue
                dm, ds = ms([cells[k][metric] - base[k][metric] for k in keys])
                se = ds / math.sqrt(len(keys))
                row.append(f"{dm:+.4f} ± {se:.4f} ({dm / se:+.1f})" if se > 0 else f"{dm:+.4f}")
            row.append(f"{ms([cells[k]['compute_ratio'] for k in keys])[0]:.2f}")
            row.append(f"{ms([cells[k]['train_seconds'] for k in keys])[0]:.0f}")
            print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
