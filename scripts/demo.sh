#!/usr/bin/env bash
# scripts/demo.sh — the bank transfer demo: Zhang San (bank1, MariaDB) pays Li Si (bank2,
# PostgreSQL), through the example program and through the dtx CLI, with failures on either side.
#
# It builds dtx (scripts/setup.sh), starts the test servers (scripts/db.sh start), re-creates
# bank1 and bank2 from sql/*.sql, writes $BUILD/demo/dtx.toml, then runs:
#
#   a. bank_transfer --scenario success      100 moves          9900 / 100
#   b. bank_transfer --scenario bank2-fails  rolled back        unchanged
#   c. bank_transfer --scenario bank1-fails  rolled back        unchanged
#   d. dtx exec: the same transfer           "committed <id>"   9800 / 200
#   e. dtx exec: bank2's statement fails     "rolled back <id>", exit 1, unchanged
#   f. dtx exec: bank1 overdraws (CHECK)     "rolled back <id>", exit 1, unchanged
#   g. dtx exec --timeout-ms 1000 while another session holds Li Si's row lock:
#      ends at its timeout (not at the lock's release), "rolled back <id>", exit 1, unchanged
#   h-k. bank1 in AT mode (docs/at-mode.md), bank2 still XA, in one global transaction:
#   h. the transfer                          "committed <id>"   9700 / 300
#   i. bank2 fails                           rolled back        unchanged
#   j. killed after phase 1: bank1 committed locally with an undo record; dtx in-doubt shows both
#      branches; dtx recover undoes bank1 from its record and rolls bank2 back      unchanged
#   k. killed after phase 1, then another program changes Zhang San's row: dtx recover finds the
#      dirty write, changes nothing (exit 3); dtx rollback --force writes the before image back
#   l. dtx serve (docs/admin-console.md) starts in the background with the SQL admin console on
#      127.0.0.1:7432 and metrics on 127.0.0.1:9464; a transfer is killed after its decision;
#      psql shows it in the in_doubt view (decision commit, owner gone) and settles it with
#      COMMIT PREPARED                                                               9600 / 400
#   m. decisions kept in bank2's own database ([coordinator] decisions = "bank2", no log_dir;
#      docs/decisions-in-database.md): a transfer commits (bank2's branch commits in one phase
#      with the decision row)                                                        9500 / 500
#      then one is killed right after bank2's commit: bank2 credited, bank1 prepared  9500 / 600;
#      dtx_decision in bank2 holds its COMMIT row; dtx recover (a process with no log_dir, as
#      on another machine) commits bank1 from it                                    9400 / 600
#
# Balances are printed and checked after every step; the expected non-zero exits are captured,
# not fatal. Exits 0 only if every step behaved as expected and the final balances are
# Zhang San 9400, Li Si 600. The databases and dtx serve are left running: stop them with
# scripts/db.sh stop and kill "$(cat build/demo/serve.pid)".
#
# Environment: DTX_BUILD_DIR (default build), DTX_SKIP_BUILD=1 (do not build; for trying the
# database part), and the DTX_TEST_* ports of scripts/db.sh.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
BUILD_DIR=${DTX_BUILD_DIR:-build}
[[ $BUILD_DIR == /* ]] || BUILD_DIR=$REPO/$BUILD_DIR
DEMO_DIR=$BUILD_DIR/demo
CONFIG=$DEMO_DIR/dtx.toml
BANK_TRANSFER=$BUILD_DIR/bank_transfer
DTX=$BUILD_DIR/dtx
AMOUNT=100

say() { printf 'demo: %s\n' "$*"; }
die() { printf 'demo: error: %s\n' "$*" >&2; exit 1; }

say "setup and build"
bash scripts/setup.sh
say "starting the databases"
bash scripts/db.sh start
eval "$(bash scripts/db.sh env)"
export DTX_DEMO_PASSWORD=$DTX_TEST_PASSWORD

my() {
  timeout 60 mariadb --no-defaults --protocol=TCP -h127.0.0.1 -P"$DTX_TEST_MYSQL_PORT" \
    -u"$DTX_TEST_USER" -p"$DTX_TEST_PASSWORD" --connect-timeout=5 -N -B "$@"
}
pg() {
  PGPASSWORD=$DTX_TEST_PASSWORD PGCONNECT_TIMEOUT=5 timeout 60 \
    /usr/lib/postgresql/15/bin/psql -X -q -At -v ON_ERROR_STOP=1 \
    -h 127.0.0.1 -p "$DTX_TEST_PG_PORT" -U "$DTX_TEST_USER" "$@"
}

# ---------------------------------------------------------------- fresh banks

say "re-creating bank1 (MariaDB :$DTX_TEST_MYSQL_PORT) and bank2 (PostgreSQL :$DTX_TEST_PG_PORT)"

# A prepared transaction of an earlier, interrupted run would block DROP DATABASE. On PostgreSQL
# we know which database each belongs to and roll back those of bank2; MariaDB's XA RECOVER does
# not say, so we only show them (other users of the server may own them).
while IFS= read -r gid; do
  [[ -n $gid ]] || continue
  say "rolling back leftover prepared transaction '$gid' of bank2"
  pg -d bank2 -c "ROLLBACK PREPARED '${gid//\'/\'\'}'"
done < <(pg -d dtx_test -c "SELECT gid FROM pg_prepared_xacts WHERE database = 'bank2'")

if ! { echo "SET SESSION lock_wait_timeout = 5;"; cat sql/bank1.mysql.sql; } | my; then
  echo "demo: prepared XA branches on MariaDB (one of them may hold bank1's locks):" >&2
  my -e "XA RECOVER FORMAT='SQL'" >&2 || true
  die "could not re-create bank1; finish or XA ROLLBACK the branch above, then run again"
fi
pg -d dtx_test -f sql/bank2.postgres.sql 2> >(grep -v 'does not exist, skipping' >&2) ||
  die "could not re-create bank2"

# The coordinator's decision log belongs to the old banks: start it afresh too.
rm -rf "$DEMO_DIR/log"
mkdir -p "$DEMO_DIR/log"
cat >"$CONFIG" <<EOF
# Written by scripts/demo.sh.
[coordinator]
id = "demo"
log_dir = "$DEMO_DIR/log"

[resources.bank1]
type = "mysql"
host = "127.0.0.1"
port = $DTX_TEST_MYSQL_PORT
user = "$DTX_TEST_USER"
password_env = "DTX_DEMO_PASSWORD"
database = "bank1"

[resources.bank2]
type = "postgres"
host = "127.0.0.1"
port = $DTX_TEST_PG_PORT
user = "$DTX_TEST_USER"
password_env = "DTX_DEMO_PASSWORD"
database = "bank2"
EOF
say "config written to $CONFIG (password from \$DTX_DEMO_PASSWORD)"
# The same banks with bank1 in AT mode (docs/at-mode.md), bank2 still XA: one global transaction
# mixing an AT branch and an XA branch.
CONFIG_AT=$DEMO_DIR/dtx-at.toml
sed 's/^database = "bank1"$/database = "bank1"\nmode = "at"/' "$CONFIG" >"$CONFIG_AT"
say "AT-mode config written to $CONFIG_AT"

# ---------------------------------------------------------------- steps

failures=0
fail() { printf 'demo: FAIL: %s\n' "$*"; failures=$((failures + 1)); }

# Prints both balances and checks them against the expected pair.
check_balances() {
  local want_z=$1 want_l=$2 z l
  z=$(my -e "SELECT account_balance FROM bank1.account_info WHERE account_name = 'Zhang San'") || z="?"
  l=$(pg -d bank2 -c "SELECT account_balance FROM account_info WHERE account_name = 'Li Si'") || l="?"
  printf '   balances: Zhang San (bank1) = %s, Li Si (bank2) = %s   (expected %s / %s)\n' \
    "${z:-?}" "${l:-?}" "$want_z" "$want_l"
  awk -v z="$z" -v l="$l" -v wz="$want_z" -v wl="$want_l" \
    'BEGIN { exit !(z != "" && l != "" && z + 0 == wz + 0 && l + 0 == wl + 0) }' ||
    fail "balances are $z / $l, expected $want_z / $want_l"
}

# step LABEL WANT_EXIT WANT_OUTPUT_REGEX ZHANG_SAN LI_SI -- COMMAND...
step() {
  local label=$1 want_rc=$2 want_re=$3 want_z=$4 want_l=$5
  shift 6
  printf '\n== %s\n$' "$label"
  local arg
  for arg in "$@"; do
    if [[ $arg =~ [[:space:]\'] ]]; then printf ' "%s"' "$arg"; else printf ' %s' "$arg"; fi
  done
  printf '\n'
  if [[ ! -x $1 ]]; then
    fail "$1 is not built"
  else
    local out rc=0
    out=$(mktemp)
    timeout 120 "$@" >"$out" 2>&1 || rc=$?
    sed 's/^/   | /' "$out"
    if ((rc == want_rc)); then
      printf '   exit %d (expected)\n' "$rc"
    else
      fail "$label: exit $rc, expected $want_rc"
    fi
    if [[ -n $want_re ]] && ! grep -Eq "$want_re" "$out"; then
      fail "$label: output has no line matching /$want_re/"
    fi
    rm -f "$out"
  fi
  check_balances "$want_z" "$want_l"
}

printf '\n== initial state\n'
check_balances 10000 0

step "a. bank_transfer: success" 0 "" 9900 100 -- \
  "$BANK_TRANSFER" --config "$CONFIG" --scenario success --amount "$AMOUNT"
step "b. bank_transfer: bank2 fails (bank1's debit must be rolled back)" 0 "" 9900 100 -- \
  "$BANK_TRANSFER" --config "$CONFIG" --scenario bank2-fails --amount "$AMOUNT"
step "c. bank_transfer: bank1 fails (bank2's credit must be rolled back)" 0 "" 9900 100 -- \
  "$BANK_TRANSFER" --config "$CONFIG" --scenario bank1-fails --amount "$AMOUNT"

debit="UPDATE account_info SET account_balance = account_balance - $AMOUNT WHERE account_name = 'Zhang San'"
credit="UPDATE account_info SET account_balance = account_balance + $AMOUNT WHERE account_name = 'Li Si'"
step "d. dtx exec: the same transfer" 0 '^committed ' 9800 200 -- \
  "$DTX" exec --config "$CONFIG" "bank1=$debit" "bank2=$credit"
step "e. dtx exec: bank2's statement fails (no such column)" 1 '^rolled back ' 9800 200 -- \
  "$DTX" exec --config "$CONFIG" "bank1=$debit" \
  "bank2=UPDATE account_info SET no_such_column = 1 WHERE account_name = 'Li Si'"
step "f. dtx exec: bank1 overdraws (CHECK account_balance >= 0)" 1 '^rolled back ' 9800 200 -- \
  "$DTX" exec --config "$CONFIG" \
  "bank1=UPDATE account_info SET account_balance = account_balance - 1000000 WHERE account_name = 'Zhang San'" \
  "bank2=UPDATE account_info SET account_balance = account_balance + 1000000 WHERE account_name = 'Li Si'"

# g. A lock wait ends at the transaction's timeout: another session holds Li Si's row for 20 s;
# the transfer gives up after its 1 s and rolls back bank1's debit too.
pg -d bank2 -c "BEGIN; SELECT 1 FROM account_info WHERE account_name = 'Li Si' FOR UPDATE; SELECT pg_sleep(20); COMMIT" \
  >/dev/null 2>&1 &
holder=$!
for _ in $(seq 100); do  # until the holder has the row (bounded: 100 polls)
  [[ $(pg -d bank2 -c "SELECT count(*) FROM pg_stat_activity WHERE datname = 'bank2' AND query LIKE '%pg_sleep(20)%' AND state = 'active' AND pid <> pg_backend_pid()") == 1 ]] && break
  sleep 0.1  # poll interval
done
started=$(date +%s%N)
step "g. dtx exec --timeout-ms 1000 while another session holds Li Si's row" 1 'timeout' 9800 200 -- \
  "$DTX" exec --config "$CONFIG" --timeout-ms 1000 "bank1=$debit" "bank2=$credit"
waited_ms=$((($(date +%s%N) - started) / 1000000))
printf '   the transfer ended after %d ms (the row lock was held for 20 s)\n' "$waited_ms"
((waited_ms < 10000)) || fail "g: the lock wait was not bounded by the 1 s timeout ($waited_ms ms)"
pg -d bank2 -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE datname = 'bank2' AND query LIKE '%pg_sleep(20)%' AND pid <> pg_backend_pid()" >/dev/null || true
wait "$holder" 2>/dev/null || true

# h-k. AT mode on bank1 (MariaDB), XA on bank2 (PostgreSQL), in one global transaction.
step "h. AT + XA: dtx exec, bank1 in AT mode (local commit with an undo record), bank2 in XA" 0 '^committed ' 9700 300 -- \
  "$DTX" exec --config "$CONFIG_AT" "bank1=$debit" "bank2=$credit"
step "i. AT + XA: bank2's statement fails; bank1's AT branch is rolled back" 1 '^rolled back ' 9700 300 -- \
  "$DTX" exec --config "$CONFIG_AT" "bank1=$debit" \
  "bank2=UPDATE account_info SET no_such_column = 1 WHERE account_name = 'Li Si'"
step "j. AT + XA: the process is killed after phase 1 (bank1 committed locally, bank2 prepared)" 137 '' 9600 300 -- \
  /usr/bin/env DTX_FAILPOINT=after-prepare "$DTX" exec --config "$CONFIG_AT" "bank1=$debit" "bank2=$credit"
printf '   bank1 undo record: %s\n' "$(my -e "SELECT LEFT(record, 160) FROM bank1.dtx_undo_log WHERE kind = 0")"
printf '   bank1 global locks: %s\n' "$(my -e "SELECT CONCAT(table_name, ' ', row_key, ' held by ', gtrid) FROM bank1.dtx_global_lock")"
step "j. dtx in-doubt: the AT branch (from its undo record) and the XA branch" 0 ' at ' 9600 300 -- \
  "$DTX" in-doubt --config "$CONFIG_AT"
step "j. dtx recover: no decision, owner dead -> bank1 undone from its record, bank2 rolled back" 0 '' 9700 300 -- \
  "$DTX" recover --config "$CONFIG_AT"
# k. A dirty write: after phase 1, someone outside dtx changes Zhang San's row; the rollback finds
# the row matching neither image, changes nothing and leaves it to the operator.
step "k. AT + XA: killed after phase 1 again" 137 '' 9600 300 -- \
  /usr/bin/env DTX_FAILPOINT=after-prepare "$DTX" exec --config "$CONFIG_AT" "bank1=$debit" "bank2=$credit"
my -e "UPDATE bank1.account_info SET account_balance = account_balance - 1 WHERE account_name = 'Zhang San'"
printf '   (another program took 1 from Zhang San outside dtx)\n'
step "k. dtx recover: dirty write -> nothing overwritten, left to the operator (exit 3)" 3 'left_dirty_write' 9599 300 -- \
  "$DTX" recover --config "$CONFIG_AT"
gtrid=$(my -e "SELECT gtrid FROM bank1.dtx_undo_log WHERE kind = 0 LIMIT 1")
step "k. dtx rollback --force: the operator writes the before image back" 0 '^rolled back ' 9700 300 -- \
  "$DTX" rollback --config "$CONFIG_AT" --force "$gtrid"
left_at=$(my -e "SELECT (SELECT count(*) FROM bank1.dtx_undo_log WHERE kind = 0) + (SELECT count(*) FROM bank1.dtx_global_lock)")
[[ $left_at == 0 ]] || fail "$left_at AT undo record(s) or lock(s) left in bank1"

# l. dtx serve: the daemon with the SQL admin console. A demo run replaces the previous one's.
SERVE_CONFIG=$DEMO_DIR/serve.toml
SERVE_PID=$DEMO_DIR/serve.pid
export DTX_ADMIN_PASSWORD=dtx-demo
if [[ -f $SERVE_PID ]] && kill "$(cat "$SERVE_PID")" 2>/dev/null; then
  for _ in $(seq 100); do kill -0 "$(cat "$SERVE_PID")" 2>/dev/null || break; sleep 0.1; done  # until it has stopped
fi
sed 's/^log_dir = .*$/&\nrecovery_interval_s = 300/' "$CONFIG" >"$SERVE_CONFIG"
cat >>"$SERVE_CONFIG" <<EOF

[admin]
listen = "127.0.0.1:7432"
user = "dtx_admin"
password_env = "DTX_ADMIN_PASSWORD"

[metrics]
listen = "127.0.0.1:9464"
EOF
printf '\n== l. dtx serve --config %s (in the background)\n' "$SERVE_CONFIG"
nohup "$DTX" serve --config "$SERVE_CONFIG" >"$DEMO_DIR/serve.log" 2>&1 &
echo $! >"$SERVE_PID"
for _ in $(seq 100); do grep -q 'dtx serve: ready' "$DEMO_DIR/serve.log" && break; sleep 0.1; done  # until it listens
sed 's/^/   | /' "$DEMO_DIR/serve.log"
grep -q 'dtx serve: ready' "$DEMO_DIR/serve.log" || fail "l: dtx serve did not start"
admin() {
  PGPASSWORD=$DTX_ADMIN_PASSWORD PGCONNECT_TIMEOUT=5 timeout 60 \
    /usr/lib/postgresql/15/bin/psql -X -h 127.0.0.1 -p 7432 -U dtx_admin -d dtx "$@"
}
step "l. dtx exec: the transfer is killed after its commit decision was logged" 137 '' 9700 300 -- \
  /usr/bin/env DTX_FAILPOINT=after-decision "$DTX" exec --config "$CONFIG" "bank1=$debit" "bank2=$credit"
query="SELECT gtrid, resource, mode, decision, owner_alive, action FROM in_doubt ORDER BY resource"
printf '\n$ PGPASSWORD=%s psql -h 127.0.0.1 -p 7432 -U dtx_admin dtx -c "%s"\n' "$DTX_ADMIN_PASSWORD" "$query"
admin -c "$query" | sed 's/^/   | /' || fail "l: psql could not query dtx serve"
gtrid=$(admin -At -c "SELECT DISTINCT gtrid FROM in_doubt WHERE decision = 'commit'" | head -1)
[[ -n $gtrid ]] || fail "l: the killed transfer is not in the in_doubt view"
settled=0
printf "\n$ psql ... -c \"COMMIT PREPARED '%s'\"\n" "$gtrid"
for _ in $(seq 50); do  # MariaDB releases a killed client's XA branch a moment after the kill
  if out=$(admin -c "COMMIT PREPARED '$gtrid'" 2>&1); then settled=1; break; fi
  sleep 0.2
done
sed 's/^/   | /' <<<"$out"
((settled)) || fail "l: COMMIT PREPARED did not settle $gtrid"
check_balances 9600 400

# m. Decisions in bank2's own database: no decision log, no local disk.
CONFIG_DB=$DEMO_DIR/dtx-decisions.toml
sed 's/^log_dir = .*$/decisions = "bank2"/' "$CONFIG" >"$CONFIG_DB"
printf '\n== m. decisions in bank2 (%s):\n' "$CONFIG_DB"
sed -n '/^\[coordinator\]/,/^$/p' "$CONFIG_DB" | sed 's/^/   | /'
step "m. dtx exec: bank2's branch commits in one phase with the decision row; no fdatasync" 0 '^committed ' 9500 500 -- \
  "$DTX" exec --config "$CONFIG_DB" "bank1=$debit" "bank2=$credit"
step "m. dtx exec: killed right after bank2's commit (the decision): bank2 credited, bank1 prepared" 137 '' 9500 600 -- \
  /usr/bin/env DTX_FAILPOINT=after-decision-commit "$DTX" exec --config "$CONFIG_DB" "bank1=$debit" "bank2=$credit"
printf '\n$ psql bank2 -c "SELECT gtrid, outcome, branches FROM dtx_decision"\n'
pg -d bank2 -c "SELECT gtrid, outcome, branches FROM dtx_decision" | sed 's/^/   | /'
step "m. dtx in-doubt: bank1's branch, decision commit (read from bank2)" 0 ' commit ' 9500 600 -- \
  "$DTX" in-doubt --config "$CONFIG_DB"
step "m. dtx recover (no log_dir: any machine): the fence finds the COMMIT row, bank1 is committed" 0 '' 9400 600 -- \
  "$DTX" recover --config "$CONFIG_DB"
left_rows=$(pg -d bank2 -c "SELECT count(*) FROM dtx_decision WHERE outcome = 1")
[[ $left_rows == 0 ]] || fail "m: $left_rows COMMIT row(s) left in bank2.dtx_decision after recovery"

# ---------------------------------------------------------------- verdict

printf '\n== final state\n'
check_balances 9400 600
leftover_pg=$(pg -d dtx_test -c "SELECT count(*) FROM pg_prepared_xacts WHERE database = 'bank2'")
if [[ $leftover_pg != 0 ]]; then
  fail "$leftover_pg prepared transaction(s) of bank2 left in pg_prepared_xacts"
fi

echo
say "the databases are still running; stop them with: scripts/db.sh stop"
say "dtx serve is still running: PGPASSWORD=$DTX_ADMIN_PASSWORD psql -h 127.0.0.1 -p 7432 -U dtx_admin dtx"
say "  (stop it with: kill \$(cat $SERVE_PID))"
if ((failures)); then
  say "FAILED: $failures check(s) did not hold"
  exit 1
fi
say "OK: every step behaved as expected; Zhang San has 9400, Li Si 600"
