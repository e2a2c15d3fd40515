"""What every aicc-bench subcommand shares: exit codes, the usage/unavailable errors, the
peak measurement and the common tail (table, files, --min-efficiency gate, exit code).

cli.py (argument parsing, dispatch) and cluster.py both import this module; it imports
neither of them, so the subcommands have no import cycle.
"""

from __future__ import annotations

from typing import Optional, Sequence

EXIT_OK, EXIT_MISMATCH, EXIT_USAGE, EXIT_BELOW_MIN, EXIT_UNAVAILABLE, EXIT_ERROR = 0, 1, 2, 3, 4, 5


class UsageError(Exception):
    """A bad command line: printed as one line, exit status EXIT_USAGE."""


class Unavailable(Exception):
    """The requested benchmark is not in this build: exit status EXIT_UNAVAILABLE."""


def measure_peak(con, kinds, threads: Optional[Sequence[int]], seconds: float, membw_mib: Optional[int] = None):
    from . import peak as peak_mod
    from . import report

    threads = list(threads) if threads else peak_mod.default_threads()
    steps = len(threads) * (sum(k in kinds for k in ("fp32", "int8")) + ("membw" in kinds))
    try:
        with report.Progress(con, steps, "peak probes") as bar:
            return peak_mod.measure(threads=threads, seconds=seconds, repeats=3,
                                    membw_mib=membw_mib or peak_mod.DEFAULT_MEMBW_MIB,
                                    progress=lambda d: bar.step(d), kinds=kinds)
    except RuntimeError as e:
        report.say(con, f"peak not measured: {e}", "yellow")
        return None


def finish(con, command: str, argv, rows, peak, baseline_status, unavailable, args, title: str,
           mismatch_ops=None, extra_doc=None) -> int:
    """Table, files, gate and exit code: the common tail of every subcommand."""
    from . import report

    if rows:
        report.render_table(con, title, rows, args.baseline_list, baseline_status)
    for u in unavailable:
        report.say(con, f"aicc-bench {u['op']}: {u['reason']}", "bold yellow")
    wrong = [r for r in rows if r.r.impl == report.OURS and r.r.wrong]
    code = EXIT_MISMATCH if wrong else EXIT_OK
    for r in wrong:
        report.say(con, f"MISMATCH {r.r.op} {r.r.dtype} {r.r.shape}: {r.r.wrong} elements differ from the reference",
                   "bold red")
    gate = report.check_min_efficiency(rows, args.min_efficiency)
    if gate is not None:
        for f in gate["failed"]:
            report.say(con, f"below --min-efficiency {gate['threshold_pct']:g}%: {f['op']} {f['dtype']} {f['shape']} "
                            f"threads={f['threads']} at {f['pct_of_peak']:.1f}% of peak", "bold red")
        if gate["no_peak"]:
            report.say(con, f"--min-efficiency: {len(gate['no_peak'])} row(s) have no measured peak and are not gated",
                       "yellow")
        if gate["failed"] and code == EXIT_OK:
            code = EXIT_BELOW_MIN
    if args.json:
        report.write_json(args.json, report.document(command, argv, rows, peak, baseline_status, unavailable, gate,
                                                     code, extra_doc))
        report.say(con, f"wrote {args.json}")
    if args.csv:
        report.write_csv(args.csv, rows, args.baseline_list)
        report.say(con, f"wrote {args.csv}")
    if args.plot:
        report.write_plot(args.plot, rows, peak)
        report.say(con, f"wrote {args.plot}")
    return code


def report_error(con, what: str, e: BaseException) -> None:
    import os
    import traceback

    from . import report

    report.say(con, f"{what} {type(e).__name__}: {e}", "bold red")
    if os.environ.get("AICC_BENCH_TRACEBACK"):
        traceback.print_exc()
    else:
        report.say(con, "(AICC_BENCH_TRACEBACK=1 prints the traceback)")
