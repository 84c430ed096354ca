#!/usr/bin/env bash
# scripts/bench.sh — measure dtx against hand-written XA and non-atomic writes at 1, 8 and 32
# clients, and the coordinator alone against null resource managers beside the decision log's own
# group-commit ceiling (log_ceiling); write the results as JSON lines, a Markdown table and a PNG
# plot (gnuplot) under build/bench-results/.
#
#   scripts/bench.sh                 10 s per variant per client count
#   DTX_BENCH_SECONDS=30 scripts/bench.sh
#   DTX_BENCH_CLIENTS="1 8 32" scripts/bench.sh
#   DTX_BENCH_REPEAT=3 scripts/bench.sh      every client count 3 times; the table gives medians,
#                                            and the spread of dtx / raw_xa across the runs
#   DTX_BENCH_HOT_CLIENTS="8" (default)      client counts of the hot-row runs (--rows 10): every
#                                            transaction picks one of 10 rows, so lock waits decide
#
# Every database run includes the `at` variant (the same resources in AT mode), reported in a
# second table beside raw_xa.
#
# Uses the test databases (scripts/db.sh start) and database dtx_test on each; leaves them running.
# dtx bench creates its table dtx_bench_accounts there and refuses (exit 2) if one it did not create
# is in the way.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
BUILD_DIR=${DTX_BUILD_DIR:-build}
SECONDS_PER_VARIANT=${DTX_BENCH_SECONDS:-10}
CLIENTS=${DTX_BENCH_CLIENTS:-"1 8 32"}
REPEAT=${DTX_BENCH_REPEAT:-1}
OUT=$BUILD_DIR/bench-results
mkdir -p "$OUT"

bash scripts/setup.sh
bash scripts/db.sh start
eval "$(bash scripts/db.sh env)"

cat >"$OUT/bench.toml" <<EOF
[coordinator]
id = "bench"
log_dir = "$REPO/$OUT/log"

[resources.mariadb]
type = "mysql"
host = "127.0.0.1"
port = $DTX_TEST_MYSQL_PORT
user = "$DTX_TEST_USER"
password_env = "DTX_TEST_PASSWORD"
database = "dtx_test"
pool_size = 64

[resources.postgres]
type = "postgres"
host = "127.0.0.1"
port = $DTX_TEST_PG_PORT
user = "$DTX_TEST_USER"
password_env = "DTX_TEST_PASSWORD"
database = "dtx_test"
pool_size = 64
EOF

: >"$OUT/results.jsonl"
for run in $(seq "$REPEAT"); do
  for c in $CLIENTS; do
    echo "bench: run $run of $REPEAT, $c clients, $SECONDS_PER_VARIANT s per variant (databases)"
    "$BUILD_DIR/dtx" bench --config "$OUT/bench.toml" --clients "$c" --duration "$SECONDS_PER_VARIANT" --json |
      tr -d '\n' >>"$OUT/results.jsonl"
    echo >>"$OUT/results.jsonl"
    for hot in ${DTX_BENCH_HOT_CLIENTS-8}; do
      [[ $hot == "$c" ]] || continue
      echo "bench: run $run of $REPEAT, $c clients, hot rows (--rows 10), $SECONDS_PER_VARIANT s per variant"
      "$BUILD_DIR/dtx" bench --config "$OUT/bench.toml" --clients "$c" --duration "$SECONDS_PER_VARIANT" --rows 10 \
        --variants raw_xa,dtx,at --json | tr -d '\n' >>"$OUT/results.jsonl"
      echo >>"$OUT/results.jsonl"
    done
    echo "bench: run $run of $REPEAT, $c clients, $SECONDS_PER_VARIANT s (null resource managers)"
    "$BUILD_DIR/dtx" bench --null-rm --config "$OUT/bench.toml" --clients "$c" --duration "$SECONDS_PER_VARIANT" --json |
      tr -d '\n' >>"$OUT/results.jsonl"
    echo >>"$OUT/results.jsonl"
  done
done

# Table and plot data, from the JSON lines.
python3 - "$OUT" <<'PY'
import json, statistics, sys
out = sys.argv[1]
rows = [json.loads(l) for l in open(f"{out}/results.jsonl") if l.strip()]
db, null, hot = {}, {}, {}
for r in rows:
    if r["null_rm"]:
        null.setdefault(r["clients"], []).append(r)
    elif r.get("rows", 10000) < 10000:
        hot.setdefault(r["clients"], []).append(r)
    else:
        db.setdefault(r["clients"], []).append(r)
def med(runs, key):
    return statistics.median(r.get(key, 0) for r in runs)
with open(f"{out}/table.md", "w") as t, open(f"{out}/plot.dat", "w") as d:
    runs = max(len(v) for v in db.values())
    if runs > 1:
        t.write(f"Medians of {runs} runs; the two ratios also as min-max over the runs. "
                "dtx / raw_xa: total against total; per round: the median of the ratios of "
                "neighbouring 0.5 s rounds.\n\n")
    t.write("| clients | non_atomic tps | raw_xa tps | dtx tps | dtx / raw_xa | dtx / raw_xa per round | dtx p50 ms | dtx p99 ms | raw_xa p50 ms | raw_xa p99 ms | null-RM dtx tps | log_ceiling tps | null-RM dtx / log_ceiling |\n")
    t.write("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    d.write("# clients non_atomic raw_xa dtx null_rm at (medians)\n")
    for c in sorted(db):
        r, n = db[c], null.get(c, [])
        def spread(key):
            v = [x[key] for x in r]
            text = f"{statistics.median(v):.2f}"
            return text + (f" ({min(v):.2f}-{max(v):.2f})" if len(v) > 1 else "")
        ratio = spread("dtx_vs_raw_xa")
        round_ratio = spread("dtx_vs_raw_xa_round_median")
        nt = med(n, "dtx_tps") if n else 0
        lc = med(n, "log_ceiling_tps") if n else 0
        nl = med(n, "dtx_vs_log_ceiling") if n else 0
        t.write(f"| {c} | {med(r, 'non_atomic_tps'):,.0f} | {med(r, 'raw_xa_tps'):,.0f} | {med(r, 'dtx_tps'):,.0f} | "
                f"{ratio} | {round_ratio} | {med(r, 'dtx_p50_ms'):.2f} | {med(r, 'dtx_p99_ms'):.2f} | "
                f"{med(r, 'raw_xa_p50_ms'):.2f} | {med(r, 'raw_xa_p99_ms'):.2f} | {nt:,.0f} | {lc:,.0f} | {nl:.2f} |\n")
        d.write(f"{c} {med(r, 'non_atomic_tps'):.1f} {med(r, 'raw_xa_tps'):.1f} {med(r, 'dtx_tps'):.1f} {nt:.1f} "
                f"{med(r, 'at_tps'):.1f}\n")
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
            def spread(key):
                v = [x.get(key, 0) for x in r]
                text = f"{statistics.median(v):.2f}"
                return text + (f" ({min(v):.2f}-{max(v):.2f})" if len(v) > 1 else "")
            t.write(f"| {name} | {c} | {med(r, 'raw_xa_tps'):,.0f} | {med(r, 'dtx_tps'):,.0f} | {med(r, 'at_tps'):,.0f} | "
                    f"{spread('at_vs_raw_xa')} | {spread('at_vs_raw_xa_round_median')} | {med(r, 'at_p50_ms'):.2f} | "
                    f"{med(r, 'at_p99_ms'):.2f} | {med(r, 'at_errors'):.0f} |\n")
print(open(f"{out}/table.md").read())
PY

gnuplot <<EOF
set terminal pngcairo size 900,560 noenhanced
set output "$OUT/throughput.png"
set title "dtx throughput against clients (MariaDB + PostgreSQL on loopback, 2 cores)"
set xlabel "clients"
set ylabel "global transactions / s"
set logscale x 2
set key left top
set grid
plot "$OUT/plot.dat" using 1:2 with linespoints title "non_atomic (two autocommit updates)", \
     "" using 1:3 with linespoints title "raw_xa (hand-written XA, same round trips, no log)", \
     "" using 1:4 with linespoints title "dtx (this coordinator, XA)", \
     "" using 1:6 with linespoints title "at (this coordinator, AT mode)"
EOF
echo "bench: results in $OUT (results.jsonl, table.md, throughput.png)"
