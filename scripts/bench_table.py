#!/usr/bin/env python3
"""scripts/bench_table.py OUT — the tables and plot data of scripts/bench.sh, from OUT/results.jsonl.

Writes OUT/table.md (printed too), OUT/plot.dat (throughput against clients, the main decisions
setting) and OUT/decisions-<setting>.dat (dtx / raw_xa and tps against clients, one file per
decisions setting: file, postgres, mysql), which scripts/bench.sh plots with gnuplot.

Each line of results.jsonl is one `dtx bench --json` object. Its `decisions_type` says where dtx
kept its commit decisions (file, postgres, mysql; lines from before that key count as file).
"""
import json
import statistics
import sys

LABELS = {"file": "file log (fdatasync)", "postgres": "decisions in PostgreSQL", "mysql": "decisions in MariaDB"}
ORDER = ["file", "postgres", "mysql"]

out = sys.argv[1]
rows = [json.loads(line) for line in open(f"{out}/results.jsonl") if line.strip()]
null, hot, by_setting = {}, {}, {}
for r in rows:
    if r["null_rm"]:
        null.setdefault(r["clients"], []).append(r)
    elif r.get("rows", 10000) < 10000:
        hot.setdefault(r["clients"], []).append(r)
    else:
        by_setting.setdefault(r.get("decisions_type", "file"), {}).setdefault(r["clients"], []).append(r)
settings = [s for s in ORDER if s in by_setting] + sorted(s for s in by_setting if s not in ORDER)
main = settings[0] if settings else "file"  # the setting of the first table and the AT table
db = by_setting.get(main, {})


def med(runs, key):
    return statistics.median(r.get(key, 0) for r in runs)


def spread(runs, key):
    """Median over the runs, with min-max in brackets when there are several."""
    v = [r.get(key, 0) for r in runs]
    text = f"{statistics.median(v):.2f}"
    return text + (f" ({min(v):.2f}-{max(v):.2f})" if len(v) > 1 else "")


with open(f"{out}/table.md", "w") as t, open(f"{out}/plot.dat", "w") as d:
    runs = max((len(v) for s in by_setting.values() for v in s.values()), default=1)
    if runs > 1:
        t.write(f"Medians of {runs} runs; the two ratios also as min-max over the runs. "
                "dtx / raw_xa: total against total; per round: the median of the ratios of "
                "neighbouring 0.5 s rounds.\n\n")
    if main != "file":
        t.write(f"dtx with {LABELS.get(main, main)}; null-RM: the file log.\n\n")
    t.write("| clients | non_atomic tps | raw_xa tps | dtx tps | dtx / raw_xa | dtx / raw_xa per round | dtx p50 ms | dtx p99 ms | raw_xa p50 ms | raw_xa p99 ms | null-RM dtx tps | log_ceiling tps | null-RM dtx / log_ceiling |\n")
    t.write("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    d.write("# clients non_atomic raw_xa dtx null_rm at (medians)\n")
    for c in sorted(db):
        r, n = db[c], null.get(c, [])
        nt = med(n, "dtx_tps") if n else 0
        lc = med(n, "log_ceiling_tps") if n else 0
        nl = med(n, "dtx_vs_log_ceiling") if n else 0
        t.write(f"| {c} | {med(r, 'non_atomic_tps'):,.0f} | {med(r, 'raw_xa_tps'):,.0f} | {med(r, 'dtx_tps'):,.0f} | "
                f"{spread(r, 'dtx_vs_raw_xa')} | {spread(r, 'dtx_vs_raw_xa_round_median')} | {med(r, 'dtx_p50_ms'):.2f} | "
                f"{med(r, 'dtx_p99_ms'):.2f} | {med(r, 'raw_xa_p50_ms'):.2f} | {med(r, 'raw_xa_p99_ms'):.2f} | "
                f"{nt:,.0f} | {lc:,.0f} | {nl:.2f} |\n")
        d.write(f"{c} {med(r, 'non_atomic_tps'):.1f} {med(r, 'raw_xa_tps'):.1f} {med(r, 'dtx_tps'):.1f} {nt:.1f} "
                f"{med(r, 'at_tps'):.1f}\n")

    # Where the decisions are kept: every setting beside the same raw_xa, measured in the same runs.
    if len(settings) > 1 or main != "file":
        t.write("\nWhere dtx keeps its commit decisions (`dtx bench --decisions`): the file log, or the "
                "`dtx_decision` table of the PostgreSQL or the MariaDB resource (R's branch commits in one "
                "phase with the COMMIT row). raw_xa is the same program in every setting; each line's "
                "ratios are measured within its own run. Decision rows: the most rows of the run's "
                "incarnations seen in `dtx_decision` after a round / left once the forget threads drained.\n\n")
        t.write("| decisions | clients | raw_xa tps | dtx tps | dtx / raw_xa | dtx / raw_xa per round | dtx p50 ms | dtx p99 ms | raw_xa p50 ms | raw_xa p99 ms | dtx errors | decision rows peak / left |\n")
        t.write("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
        for s in settings:
            with open(f"{out}/decisions-{s}.dat", "w") as p:
                p.write(f"# {LABELS.get(s, s)}: clients dtx/raw_xa dtx/raw_xa_per_round raw_xa_tps dtx_tps (medians)\n")
                for c in sorted(by_setting[s]):
                    r = by_setting[s][c]
                    rows_kept = (f"{max(x.get('decision_rows_peak', 0) for x in r):,} / "
                                 f"{max(x.get('decision_rows_left', 0) for x in r):,}") if s != "file" else "-"
                    t.write(f"| {LABELS.get(s, s)} | {c} | {med(r, 'raw_xa_tps'):,.0f} | {med(r, 'dtx_tps'):,.0f} | "
                            f"{spread(r, 'dtx_vs_raw_xa')} | {spread(r, 'dtx_vs_raw_xa_round_median')} | "
                            f"{med(r, 'dtx_p50_ms'):.2f} | {med(r, 'dtx_p99_ms'):.2f} | {med(r, 'raw_xa_p50_ms'):.2f} | "
                            f"{med(r, 'raw_xa_p99_ms'):.2f} | {med(r, 'dtx_errors'):.0f} | {rows_kept} |\n")
                    p.write(f"{c} {med(r, 'dtx_vs_raw_xa'):.4f} {med(r, 'dtx_vs_raw_xa_round_median'):.4f} "
                            f"{med(r, 'raw_xa_tps'):.1f} {med(r, 'dtx_tps'):.1f}\n")

    # AT mode beside raw XA, on the default workload and on hot rows.
    t.write("\nAT mode (`at`: the same resources with mode = \"at\") beside hand-written XA, same runs; "
            "hot rows: every transaction picks one of 10 rows (`--rows 10`).\n\n")
    t.write("| workload | clients | raw_xa tps | dtx (XA) tps | at tps | at / raw_xa | at / raw_xa per round | at p50 ms | at p99 ms | at errors |\n")
    t.write("|---|---|---|---|---|---|---|---|---|---|\n")
    for name, table in (("10,000 rows", db), ("hot rows (10)", hot)):
        for c in sorted(table):
            r = table[c]
            if not all("at_tps" in x for x in r):
                continue
            t.write(f"| {name} | {c} | {med(r, 'raw_xa_tps'):,.0f} | {med(r, 'dtx_tps'):,.0f} | {med(r, 'at_tps'):,.0f} | "
                    f"{spread(r, 'at_vs_raw_xa')} | {spread(r, 'at_vs_raw_xa_round_median')} | {med(r, 'at_p50_ms'):.2f} | "
                    f"{med(r, 'at_p99_ms'):.2f} | {med(r, 'at_errors'):.0f} |\n")
print(open(f"{out}/table.md").read())
with open(f"{out}/decisions-settings", "w") as f:  # for the plot: the settings measured, in order
    f.write(" ".join(s for s in settings if len(settings) > 1 or s != "file") + "\n")
