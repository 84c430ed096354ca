#!/usr/bin/env bash
# shellcheck disable=SC2317  # cleanup() and report_leftovers() run from the EXIT trap
# scripts/test.sh — build dtx, start the test databases, run ctest. Extra arguments go to ctest:
#
#   scripts/test.sh                 everything
#   scripts/test.sh -L unit         only the unit tests
#   scripts/test.sh -R Xa           tests matching a regex
#
# Three builds, each with -Wall -Wextra -Wshadow -Werror, each one ctest run (the extra
# arguments apply to all three):
#   build/        RelWithDebInfo: every test, the soak included
#   build-asan/   AddressSanitizer + UndefinedBehaviorSanitizer: the unit and integration tests
#   build-tsan/   ThreadSanitizer: the unit tests (decision-log group commit, coordinator, fan-out);
#                 the integration tests are not built there (the database client libraries
#                 are not instrumented)
# DTX_SANITIZERS=0 runs only the first (a quick local run); CI runs all three.
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
DTX_CMAKE_ARGS="-DDTX_WERROR=ON ${DTX_CMAKE_ARGS:-}" bash scripts/setup.sh
export CCACHE_BASEDIR=$REPO CCACHE_NOHASHDIR=1

# build_sanitized <dir> <sanitizers>: configure once, build the library, tool and tests.
build_sanitized() {
  local dir=$1 sanitize=$2
  if [[ ! -f $dir/CMakeCache.txt ]]; then
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDTX_SANITIZE="$sanitize" \
      -DDTX_WERROR=ON -DDTX_BUILD_BENCH=OFF >/dev/null
  fi
  echo "test: building $dir ($sanitize)"
  cmake --build "$dir" -j"${DTX_BUILD_JOBS:-2}"
}

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

rc=0
run_ctest() {
  local dir=$1
  shift
  echo "test: ctest --test-dir $dir --output-on-failure -j2 $*"
  local status=0
  ctest --test-dir "$dir" --output-on-failure -j2 "$@" || status=$?
  echo "test: ctest in $dir exited with $status"
  ((status == 0)) || rc=$status
}

run_ctest "$BUILD_DIR" "$@"

if [[ ${DTX_SANITIZERS:-1} != 0 ]]; then
  # Abort at the first report (the build also passes -fno-sanitize-recover).
  export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:strict_string_checks=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
  export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$REPO/tests/sanitizer/lsan.supp}
  export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
  build_sanitized build-asan address,undefined
  run_ctest build-asan -L 'unit|integration' "$@"
  build_sanitized build-tsan thread
  run_ctest build-tsan -L unit "$@"
fi
echo "test: done, status $rc"
exit "$rc"
