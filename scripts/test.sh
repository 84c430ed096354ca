#!/usr/bin/env bash
# shellcheck disable=SC2317  # cleanup() and report_leftovers() run from the EXIT trap
# scripts/test.sh — build dtx, start the test databases, run ctest. Extra arguments go to ctest:
#
#   scripts/test.sh                 everything
#   scripts/test.sh -L unit         only the unit tests
#   scripts/test.sh -R Xa           tests matching a regex
#
# The databases that this run had to start are stopped again when it ends (trap on EXIT, so also
# on failure); servers that were already running (someone else's, or a developer's
# `scripts/db.sh start`) are left running. DTX_KEEP_DB=1 leaves everything running.
# Before stopping, prepared transactions left behind on the servers are listed for diagnosis.
# Exits with ctest's status (or the build's, if that fails).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
BUILD_DIR=${DTX_BUILD_DIR:-build}
DB=scripts/db.sh

echo "test: setup and build"
bash scripts/setup.sh

eval "$(bash "$DB" env)"

# Which servers must this run start (and so stop afterwards)?
started=()
for s in mariadb postgres postgres-noprep; do
  bash "$DB" status "$s" >/dev/null 2>&1 || started+=("$s")
done

# Lists what is still prepared (not an error: a test may leave an in-doubt branch on purpose).
report_leftovers() {
  local xa pg
  xa=$(timeout 20 mariadb --no-defaults --protocol=TCP -h127.0.0.1 -P"$DTX_TEST_MYSQL_PORT" \
    -u"$DTX_TEST_USER" -p"$DTX_TEST_PASSWORD" --connect-timeout=3 -N -B \
    -e "XA RECOVER FORMAT='SQL'" 2>/dev/null) || xa="(could not query)"
  pg=$(PGPASSWORD=$DTX_TEST_PASSWORD PGCONNECT_TIMEOUT=3 timeout 20 \
    /usr/lib/postgresql/15/bin/psql -X -At -F ' ' -h 127.0.0.1 -p "$DTX_TEST_PG_PORT" \
    -U "$DTX_TEST_USER" -d dtx_test \
    -c "SELECT database, gid, prepared, owner FROM pg_prepared_xacts ORDER BY prepared" 2>/dev/null) ||
    pg="(could not query)"
  if [[ -n $xa || -n $pg ]]; then
    echo "test: prepared transactions left on the servers:"
    [[ -n $xa ]] && printf '  mariadb XA RECOVER: %s\n' "${xa//$'\n'/$'\n  mariadb XA RECOVER: '}"
    [[ -n $pg ]] && printf '  postgres pg_prepared_xacts: %s\n' "${pg//$'\n'/$'\n  postgres pg_prepared_xacts: '}"
  fi
  return 0
}

cleanup() {
  local rc=$?
  report_leftovers || true
  if [[ ${DTX_KEEP_DB:-0} == 1 ]]; then
    echo "test: DTX_KEEP_DB=1: leaving the databases running (scripts/db.sh stop)"
  elif ((${#started[@]})); then
    echo "test: stopping the databases this run started: ${started[*]}"
    bash "$DB" stop "${started[@]}" || echo "test: warning: scripts/db.sh stop failed" >&2
  else
    echo "test: the databases were already running before this run; leaving them up"
  fi
  exit "$rc"
}
trap cleanup EXIT

echo "test: starting the test databases"
bash "$DB" start

echo "test: ctest --test-dir $BUILD_DIR --output-on-failure -j2 $*"
rc=0
ctest --test-dir "$BUILD_DIR" --output-on-failure -j2 "$@" || rc=$?
echo "test: ctest exited with $rc"
exit "$rc"
