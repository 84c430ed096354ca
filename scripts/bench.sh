#!/usr/bin/env bash
# scripts/bench.sh — measure dtx against hand-written XA and non-atomic writes at 1, 8 and 32
# clients, with dtx's commit decisions in the file log and in each database, and the coordinator
# alone against null resource managers beside the decision log's own group-commit ceiling
# (log_ceiling); write the results as JSON lines, Markdown tables and PNG plots (gnuplot) under
# build/bench-results/.
#
#   scripts/bench.sh                 10 s per variant per client count and decisions setting
#   DTX_BENCH_SECONDS=30 scripts/bench.sh
#   DTX_BENCH_CLIENTS="1 8 32" scripts/bench.sh
#   DTX_BENCH_REPEAT=3 scripts/bench.sh      every client count 3 times; the table gives medians,
#                                            and the spread of dtx / raw_xa across the runs
#   DTX_BENCH_HOT_CLIENTS="8" (default)      client counts of the hot-row runs (--rows 10): every
#                                            transaction picks one of 10 rows, so lock waits decide
#   DTX_BENCH_DECISIONS="file postgres mysql" (default)  where dtx keeps its commit decisions, one
#                                            setting after another for every client count: `file`
#                                            the decision log (fdatasync), `postgres` / `mysql` the
#                                            dtx_decision table of the bench config's PostgreSQL /
#                                            MariaDB resource (`dtx bench --decisions postgres` /
#                                            `--decisions mariadb`). raw_xa is the same in all three.
#   DTX_BENCH_SKIP_SETUP=1                   neither scripts/setup.sh (which builds everything) nor
#                                            `scripts/db.sh start`: use $DTX_BUILD_DIR/dtx and the
#                                            servers as they are (on a machine shared with builds)
#   DTX_BENCH_TABLE_ONLY=1                   measure nothing: the tables and plots again from the
#                                            existing build/bench-results/results.jsonl
#
# Every database run includes the `at` variant (the same resources in AT mode), reported in a
# second table beside raw_xa. The hot-row runs use the first decisions setting only, the null-RM
# runs the file log only (what they measure is the decision log's ceiling).
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
DECISIONS=${DTX_BENCH_DECISIONS:-"file postgres mysql"}
OUT=$BUILD_DIR/bench-results
mkdir -p "$OUT"

# A setting's `dtx bench --decisions` argument: the bench config's resource of that type.
decisions_arg() {
  case $1 in
    file) echo file ;;
    postgres) echo postgres ;;
    mysql | mariadb) echo mariadb ;;
    *) echo "bench: DTX_BENCH_DECISIONS: unknown setting '$1' (file, postgres or mysql)" >&2; exit 2 ;;
  esac
}
for d in $DECISIONS; do decisions_arg "$d" >/dev/null; done
FIRST_DECISIONS=$(decisions_arg "${DECISIONS%% *}")

TABLE_ONLY=${DTX_BENCH_TABLE_ONLY:-0}
if [[ $TABLE_ONLY != 1 && ${DTX_BENCH_SKIP_SETUP:-0} != 1 ]]; then
  bash scripts/setup.sh
  bash scripts/db.sh start
fi
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

[[ $TABLE_ONLY == 1 ]] || : >"$OUT/results.jsonl"
[[ $TABLE_ONLY == 1 ]] || for run in $(seq "$REPEAT"); do
  for c in $CLIENTS; do
    for d in $DECISIONS; do
      echo "bench: run $run of $REPEAT, $c clients, decisions: $d, $SECONDS_PER_VARIANT s per variant (databases)"
      "$BUILD_DIR/dtx" bench --config "$OUT/bench.toml" --decisions "$(decisions_arg "$d")" --clients "$c" \
        --duration "$SECONDS_PER_VARIANT" --json | tr -d '\n' >>"$OUT/results.jsonl"
      echo >>"$OUT/results.jsonl"
    done
    for hot in ${DTX_BENCH_HOT_CLIENTS-8}; do
      [[ $hot == "$c" ]] || continue
      echo "bench: run $run of $REPEAT, $c clients, hot rows (--rows 10), decisions: $FIRST_DECISIONS, $SECONDS_PER_VARIANT s per variant"
      "$BUILD_DIR/dtx" bench --config "$OUT/bench.toml" --decisions "$FIRST_DECISIONS" --clients "$c" \
        --duration "$SECONDS_PER_VARIANT" --rows 10 --variants raw_xa,dtx,at --json | tr -d '\n' >>"$OUT/results.jsonl"
      echo >>"$OUT/results.jsonl"
    done
    echo "bench: run $run of $REPEAT, $c clients, $SECONDS_PER_VARIANT s (null resource managers)"
    "$BUILD_DIR/dtx" bench --null-rm --config "$OUT/bench.toml" --clients "$c" --duration "$SECONDS_PER_VARIANT" --json |
      tr -d '\n' >>"$OUT/results.jsonl"
    echo >>"$OUT/results.jsonl"
  done
done

# Tables and plot data, from the JSON lines.
python3 scripts/bench_table.py "$OUT"
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

# dtx / raw_xa (left) and tps (right) against clients, one line per decisions setting.
read -r -a SETTINGS <"$OUT/decisions-settings"
if ((${#SETTINGS[@]})); then
  ratio_plot="" tps_plot=""
  for s in "${SETTINGS[@]}"; do
    case $s in
      file) label="file log (fdatasync)" colour="#9400d3" ;;
      postgres) label="decisions in PostgreSQL" colour="#009e73" ;;
      mysql) label="decisions in MariaDB" colour="#0072b2" ;;
      *) label=$s colour="#e69f00" ;;
    esac
    ratio_plot+="${ratio_plot:+, }\"$OUT/decisions-$s.dat\" using 1:2 with linespoints lw 2 lc rgb \"$colour\" title \"$label\""
    # raw_xa of the same runs, dashed in the same colour: each setting is compared with its own.
    tps_plot+="${tps_plot:+, }\"$OUT/decisions-$s.dat\" using 1:5 with linespoints lw 2 lc rgb \"$colour\" title \"dtx, $label\""
    tps_plot+=", \"$OUT/decisions-$s.dat\" using 1:4 with linespoints dt 2 lc rgb \"$colour\" title \"raw_xa, same runs\""
  done
  gnuplot <<EOF
set terminal pngcairo size 1200,520 noenhanced
set output "$OUT/decisions.png"
set multiplot layout 1,2 title "Where dtx keeps its commit decisions (MariaDB + PostgreSQL on loopback, 2 cores)"
set logscale x 2
set xtics (1, 2, 4, 8, 16, 32)
set grid
set key left bottom
set xlabel "clients"
set ylabel "dtx / raw_xa (same run)"
set yrange [0:*]
plot $ratio_plot, 1 with lines dt 2 lc rgb "gray40" title "1.0", 1.1 with lines dt 3 lc rgb "gray40" title "1.1 (target at 8 clients)"
set ylabel "global transactions / s"
set key right bottom font ",9"
plot $tps_plot
unset multiplot
EOF
fi
echo "bench: results in $OUT (results.jsonl, table.md, throughput.png, decisions.png)"
