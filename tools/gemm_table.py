"""Markdown table of an `aicc-bench gemm --json` run: ours (kernel, % of peak) against each peer,
as ours/peer throughput ratios measured in the same run. Used for docs/BENCHMARKS.md.

    python tools/gemm_table.py results.json
"""

import json
import sys


def main(path: str) -> None:
    doc = json.load(open(path))
    rows = [r for r in doc["results"] if r["op"] in ("gemm", "qgemm")]
    ours = [r for r in rows if r["impl"] == "aicc"]
    peers = {}
    for r in rows:
        if r["impl"] != "aicc":
            call = (r.get("extra") or {}).get("call", "").split()
            peers[(r["shape"], r["dtype"], r["threads"], r["impl"])] = (r, " ".join(call[:3]) if call else r["impl"])
    print("| threads | shape | dtype | our kernel | ours | % peak | peers: ours/peer |")
    print("|---|---|---|---|---|---|---|")
    for r in ours:
        unit = r["unit"]
        cells = []
        for (shape, dtype, t, impl), (p, label) in peers.items():
            if (shape, dtype, t) == (r["shape"], r["dtype"], r["threads"]):
                cells.append(f"{impl} [{label}] {r['throughput'] / p['throughput']:.2f}x")
        pct = r.get("pct_of_peak")
        print(f"| {r['threads']} | {r['shape']} | {r['dtype']} | {(r.get('extra') or {}).get('kernel', '')} | "
              f"{r['throughput']:.0f} {unit} | {'' if pct is None else f'{pct:.0f}'} | {'; '.join(cells)} |")


if __name__ == "__main__":
    main(sys.argv[1])
