"""Turns Result rows into the things aicc-bench prints and writes: the nccl-tests-like
table (rich), the versioned JSON document, the CSV, the PNG plot, and the
--min-efficiency verdict. docs/BENCHMARKS.md documents every field.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import os
import platform
import socket
import sys
from typing import Dict, Iterable, List, Optional, Sequence

from . import peak as _peak
from .record import Result

#: Bumped when a field changes meaning or disappears (adding a field does not bump it).
SCHEMA = "aicc-bench/1"
SCHEMA_VERSION = 1

#: CSV columns, in order; one `ratio_<baseline>` column per requested baseline follows.
CSV_COLUMNS = ["op", "impl", "dtype", "shape", "threads", "seconds", "work", "unit", "throughput",
               "pct_of_peak", "peak_kind", "wrong", "busbw_gbs"]

OURS = "aicc"

_DISPLAY = {"GFLOPS": ("TFLOPS", 1e-3), "GOPS": ("TOPS", 1e-3), "TFLOPS": ("TFLOPS", 1.0),
            "TOPS": ("TOPS", 1.0), "GB/s": ("GB/s", 1.0), "img/s": ("img/s", 1.0)}


def _key(r: Result):
    return (r.op, r.dtype, r.shape, r.threads)


class Row:
    """A Result with the columns the CLI derives: % of peak and ratio to each baseline."""

    def __init__(self, result: Result):
        self.r = result
        self.pct_of_peak: Optional[float] = None
        self.peak_kind: Optional[str] = None
        self.ratios: Dict[str, Optional[float]] = {}

    def to_dict(self) -> dict:
        d = self.r.to_dict()
        d["pct_of_peak"] = self.pct_of_peak
        d["peak_kind"] = self.peak_kind
        d["ratios"] = dict(self.ratios)
        return d


def derive(results: Iterable[Result], peak: Optional[dict], baselines: Sequence[str]) -> List[Row]:
    """% of peak for every row; for our rows, ours/peer throughput for each requested baseline
    measured on the same op, dtype, shape and threads (None where the peer has no such row)."""
    rows = [Row(r) for r in results]
    by_impl = {}
    for row in rows:
        by_impl.setdefault(row.r.impl, {})[_key(row.r)] = row.r
    for row in rows:
        if row.r.op != "peak":
            value, kind = _peak.peak_for(peak, row.r.op, row.r.dtype, row.r.threads)
            # Only a rate in the peak's own unit has a % of it (img/s has none).
            compatible = {"fp32_gflops": ("GFLOPS",), "bf16_gflops": ("GFLOPS",), "int8_gops": ("GOPS",),
                          "copy_gbs": ("GB/s",)}
            if value and row.r.unit in compatible.get(kind, ()):
                row.pct_of_peak = 100.0 * row.r.throughput / value
                row.peak_kind = kind
        if row.r.impl == OURS:
            for b in baselines:
                peer = by_impl.get(b, {}).get(_key(row.r))
                row.ratios[b] = (row.r.throughput / peer.throughput
                                 if peer is not None and peer.throughput > 0 else None)
    return rows


def machine_info() -> dict:
    import numpy as np

    from .. import __version__, _config

    info = {"hostname": socket.gethostname(), "platform": platform.platform(), "python": sys.version.split()[0],
            "numpy": np.__version__, "aicc_kernels": __version__, "threads_default": _config.get_num_threads()}
    ext = _config._ext
    if ext is not None:
        info["cpu"] = ext.cpu_info()
        info["isa"] = ext.active_isa()
        info["kernels"] = _config.kernels()
        info["cores"] = ext.available_cores()
        info["build"] = ext.build_info()
    return info


def peak_summary(peak: Optional[dict]) -> Optional[dict]:
    """The peak dict without its Result rows, with string keys (JSON object keys)."""
    if not peak:
        return None
    out = {}
    for k, v in peak.items():
        if k == "rows":
            continue
        out[k] = {str(t): x for t, x in v.items()} if isinstance(v, dict) and k.endswith(("gflops", "gops", "gbs")) else v
    return out


def document(command: str, argv: Sequence[str], rows: List[Row], peak: Optional[dict],
             baselines: Dict[str, dict], unavailable: List[dict], min_eff: Optional[dict],
             exit_code: int, extra: Optional[dict] = None) -> dict:
    doc = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "command": command,
        "argv": list(argv),
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "peak": peak_summary(peak),
        "baselines": baselines,
        "results": [r.to_dict() for r in rows],
        "unavailable": unavailable,
        "min_efficiency": min_eff,
        "exit_code": exit_code,
    }
    if extra:
        doc.update(extra)
    return doc


def write_json(path: str, doc: dict) -> None:
    _ensure_dir(path)
    with open(path, "w") as f:
        json.dump(doc, f, indent=2, default=_json_default)
        f.write("\n")


def _json_default(o):
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
    except ImportError:  # pragma: no cover
        pass
    return str(o)


def write_csv(path: str, rows: List[Row], baselines: Sequence[str]) -> List[str]:
    columns = CSV_COLUMNS + [f"ratio_{b}" for b in baselines]
    _ensure_dir(path)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(columns)
        for row in rows:
            r = row.r
            busbw = r.extra.get("busbw_gbs", r.extra.get("busbw"))
            values = [r.op, r.impl, r.dtype, r.shape, r.threads, r.seconds, r.work, r.unit, r.throughput,
                      row.pct_of_peak, row.peak_kind, r.wrong, busbw]
            values += [row.ratios.get(b) for b in baselines]
            w.writerow(["" if v is None else v for v in values])
    return columns


def _ensure_dir(path: str) -> None:
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)


def check_min_efficiency(rows: List[Row], pct: Optional[float]) -> Optional[dict]:
    """Our rows below `pct` % of peak. Rows with no peak to compare with are listed apart
    (they neither pass nor fail the gate)."""
    if pct is None:
        return None
    ours = [r for r in rows if r.r.impl == OURS and r.r.op != "peak"]
    failed = [_brief(r) for r in ours if r.pct_of_peak is not None and r.pct_of_peak < pct]
    unchecked = [_brief(r) for r in ours if r.pct_of_peak is None]
    return {"threshold_pct": pct, "checked": len(ours) - len(unchecked), "failed": failed, "no_peak": unchecked}


def _brief(row: Row) -> dict:
    return {"op": row.r.op, "dtype": row.r.dtype, "shape": row.r.shape, "threads": row.r.threads,
            "pct_of_peak": row.pct_of_peak}


# ---------------------------------------------------------------------------------------
# Terminal output
# ---------------------------------------------------------------------------------------

def console():
    try:
        from rich.console import Console

        return Console(highlight=False, soft_wrap=False, width=max(100, _term_width()))
    except ImportError:
        return None


def _term_width() -> int:
    import shutil

    return shutil.get_terminal_size((160, 24)).columns


def say(con, text: str, style: Optional[str] = None) -> None:
    if con is not None:
        con.print(text, style=style, markup=False)
    else:
        print(text)


def _fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def _time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.3f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3f} ms"
    return f"{seconds * 1e6:.1f} us"


def display_throughput(r: Result, adaptive: bool = True):
    """Throughput in TFLOPS/TOPS (G* below 1 T, so small machines read naturally)."""
    unit, scale = _DISPLAY.get(r.unit, (r.unit, 1.0))
    if adaptive and unit in ("TFLOPS", "TOPS") and r.throughput * scale < 1.0:
        return r.throughput * scale * 1e3, unit.replace("T", "G", 1)
    return r.throughput * scale, unit


def render_table(con, title: str, rows: List[Row], baselines: Sequence[str],
                 baseline_status: Dict[str, dict]) -> None:
    """Our rows with the ratio columns, then the peers' raw figures, then absent peers."""
    # Peak rows a module reports itself (bench/gemm.py's FMA probe) stay in the JSON/CSV; the
    # table's %peak column already uses the peak measured by this run's probes.
    shown = [r for r in rows if r.r.op != "peak"] or rows
    ours = [r for r in shown if r.r.impl == OURS]
    peers = [r for r in shown if r.r.impl != OURS]
    collective = any(r.r.unit == "GB/s" for r in ours)
    headers = ["op", "shape", "dtype", "thr", "time", "throughput", "%peak"]
    if collective:
        headers.insert(6, "busbw GB/s")
    present = [b for b in baselines if baseline_status.get(b, {}).get("available")]
    headers += [f"x {b}" for b in present] + ["#wrong"]
    body = []
    for row in ours:
        r = row.r
        value, unit = display_throughput(r)
        cells = [r.op, r.shape, r.dtype, str(r.threads), _time(r.seconds), f"{value:.4g} {unit}",
                 _fmt(row.pct_of_peak, ".1f")]
        if collective:
            bb = r.extra.get("busbw_gbs", r.extra.get("busbw"))
            cells.insert(6, _fmt(bb, ".3g"))
        cells += [_fmt(row.ratios.get(b), ".2f") for b in present]
        cells.append("n/c" if r.wrong is None else str(r.wrong))
        body.append(cells)
    _table(con, title, headers, body, right_from=3)
    if peers:
        body = []
        for row in peers:
            r = row.r
            value, unit = display_throughput(r)
            body.append([r.impl, r.op, r.shape, r.dtype, str(r.threads), _time(r.seconds), f"{value:.4g} {unit}",
                         _fmt(row.pct_of_peak, ".1f"), "n/c" if r.wrong is None else str(r.wrong)])
        _table(con, "baselines (same run)", ["impl", "op", "shape", "dtype", "thr", "time", "throughput", "%peak",
                                              "#wrong"], body, right_from=4)
    for b in baselines:
        s = baseline_status.get(b, {})
        if not s.get("available"):
            say(con, f"baseline {b}: absent ({s.get('reason')})", "yellow")
    if baselines and present:
        say(con, "x <baseline>: our throughput / the baseline's, same op, shape, dtype and threads (>1: we are faster)")


def _table(con, title: str, headers: List[str], body: List[List[str]], right_from: int = 0) -> None:
    if con is not None:
        from rich import box
        from rich.table import Table

        t = Table(title=title, box=box.SIMPLE_HEAVY, title_justify="left")
        for i, h in enumerate(headers):
            t.add_column(h, justify="right" if i >= right_from else "left", no_wrap=True)
        for cells in body:
            t.add_row(*cells)
        con.print(t)
        return
    widths = [max(len(h), *(len(c[i]) for c in body)) if body else len(h) for i, h in enumerate(headers)]
    print(title)
    print("  ".join(h.rjust(w) if i >= right_from else h.ljust(w) for i, (h, w) in enumerate(zip(headers, widths))))
    for cells in body:
        print("  ".join(c.rjust(w) if i >= right_from else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))))


class Progress:
    """A rich progress bar (or plain lines without rich) over a known number of steps."""

    def __init__(self, con, total: Optional[int], description: str):
        self.con = con
        self._p = None
        self.total = total
        if con is not None and con.is_terminal:
            from rich.progress import BarColumn, Progress as _P, TextColumn, TimeElapsedColumn

            self._p = _P(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                         TimeElapsedColumn(), console=con, transient=True)
            self._task = self._p.add_task(description, total=total)

    def __enter__(self):
        if self._p is not None:
            self._p.__enter__()
        return self

    def __exit__(self, *exc):
        if self._p is not None:
            self._p.__exit__(*exc)

    def step(self, description: Optional[str] = None, advance: int = 1) -> None:
        if self._p is not None:
            self._p.update(self._task, advance=advance, **({"description": description} if description else {}))

    def describe(self, description: str) -> None:
        if self._p is not None:
            self._p.update(self._task, description=description)


# ---------------------------------------------------------------------------------------
# Plot
# ---------------------------------------------------------------------------------------

def _x_of(r: Result):
    import re

    size = r.extra.get("size")
    if isinstance(size, (int, float)) and size > 0:
        return float(size), "size"
    m = re.search(r"M=N=K=(\d+)", r.shape)
    if m:
        return float(m.group(1)), "size (M=N=K)"
    m = re.search(r"M=(\d+)\D+N=(\d+)\D+K=(\d+)", r.shape) or re.search(r"M=(\d+)\D+K=(\d+)\D+N=(\d+)", r.shape)
    if m:
        dims = [float(g) for g in m.groups()]
        return (dims[0] * dims[1] * dims[2]) ** (1 / 3), "size (geometric mean of M, N, K)"
    if r.unit == "GB/s":
        nbytes = r.extra.get("bytes")
        if isinstance(nbytes, (int, float)) and nbytes > 0:
            return float(nbytes), "bytes per rank"
    return float(r.work), "work per call (FLOPs / ops / bytes)"


def _layer_bars(ax, op_rows: List[Row], scale: float) -> None:
    """Named layers (conv/resnet50 rows carry extra['layer']) have no size axis: one group
    of bars per layer (and layout/batch), one bar per implementation x dtype x threads."""
    cats: List[str] = []
    values: Dict[tuple, Dict[str, float]] = {}
    for row in op_rows:
        e = row.r.extra
        cat = " ".join(str(x) for x in (e["layer"], e.get("layout", ""), f"N={e['batch']}" if "batch" in e else "")
                       if x)
        if cat not in cats:
            cats.append(cat)
        values.setdefault((row.r.impl, row.r.dtype, row.r.threads), {})[cat] = row.r.throughput * scale
    width = 0.8 / max(1, len(values))
    for i, ((impl, dtype, t), by_cat) in enumerate(sorted(values.items(), key=lambda kv: (kv[0][0] != OURS, kv[0]))):
        xs = [c + i * width - 0.4 + width / 2 for c in range(len(cats))]
        ax.bar(xs, [by_cat.get(c, 0.0) for c in cats], width, label=f"{impl} {dtype} t={t}",
               hatch=None if impl == OURS else "//", alpha=0.9)
    ax.set_xticks(range(len(cats)))
    ax.set_xticklabels(cats, rotation=60, ha="right", fontsize=6)


def write_plot(path: str, rows: List[Row], peak: Optional[dict]) -> None:
    """Throughput vs size per dtype and implementation, one panel per op, with the measured
    peak (at the largest thread count plotted) as a horizontal roofline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = [r for r in rows if r.r.op != "peak" and r.r.throughput > 0]
    ops = sorted({r.r.op for r in data}) or ["(no rows)"]
    ncols = min(3, len(ops))
    nrows = (len(ops) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.5 * ncols, 5.0 * nrows), squeeze=False)
    flat = list(axes.flat)
    for ax in flat[len(ops):]:
        ax.set_visible(False)  # a grid of up to 3 panels per row keeps each panel readable
    for ax, op in zip(flat, ops):
        op_rows = [r for r in data if r.r.op == op]
        # Peaks at the largest thread count plotted, in the rows' own unit (GFLOPS, GOPS, GB/s).
        peaks = {}
        threads = max((r.r.threads for r in op_rows), default=1)
        for row in op_rows:
            value, kind = _peak.peak_for(peak, op, row.r.dtype, threads)
            if value:
                peaks[kind] = value
        base_unit = op_rows[0].r.unit if op_rows else ""
        unit, scale = _DISPLAY.get(base_unit, (base_unit, 1.0))
        top = max([r.r.throughput for r in op_rows] + list(peaks.values()) + [0.0]) * scale
        if unit in ("TFLOPS", "TOPS") and top < 1.0:  # small machines: G units read better
            unit, scale = unit.replace("T", "G", 1), scale * 1e3
        if op_rows and all("layer" in r.r.extra for r in op_rows):
            _layer_bars(ax, op_rows, scale)
            for kind, value in peaks.items():
                ax.axhline(value * scale, color="red", linestyle=":", linewidth=1.5,
                           label=f"measured peak ({kind}, t={threads})")
            ax.set_title(op)
            ax.set_ylabel(unit)
            ax.set_ylim(bottom=0)
            ax.grid(True, axis="y", alpha=0.3)
            ax.legend(fontsize=7)
            continue
        series: Dict[tuple, list] = {}
        xlabel = "size"
        for row in op_rows:
            x, xlabel = _x_of(row.r)
            series.setdefault((row.r.impl, row.r.dtype, row.r.threads), []).append((x, row.r.throughput * scale))
        for (impl, dtype, t), pts in sorted(series.items()):
            pts.sort()
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "-o" if impl == OURS else "--x",
                    label=f"{impl} {dtype} t={t}", markersize=4)
        for kind, value in peaks.items():
            ax.axhline(value * scale, color="red", linestyle=":", linewidth=1.5,
                       label=f"measured peak ({kind}, t={threads})")
        ax.set_xscale("log")
        ax.set_ylim(bottom=0)
        ax.set_title(op)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(unit)
        ax.grid(True, which="both", alpha=0.3)
        if op_rows:
            ax.legend(fontsize=7)
    fig.tight_layout()
    _ensure_dir(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
