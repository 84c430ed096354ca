#!/usr/bin/env bash
# scripts/setup.sh — install what dtx needs on Debian 12 and build it. Idempotent; run as root.
#
#   scripts/setup.sh              install missing packages, configure (once) and build
#   scripts/setup.sh --deps-only  install missing packages only
#
# Packages are installed only when `dpkg -s` says one is missing; then `apt-get update` runs
# once first. The Debian packages' own database services (mariadb on 3306, cluster 15/main on
# 5432) are not used — scripts/db.sh runs private servers — so while installing, service starts
# are denied through /usr/sbin/policy-rc.d (created only if absent, removed afterwards).
#
# Environment: DTX_SKIP_BUILD=1 (same as --deps-only), DTX_BUILD_DIR (default build, relative to the repository root),
# DTX_BUILD_TYPE (default RelWithDebInfo), DTX_BUILD_JOBS (default 2), DTX_CMAKE_ARGS (extra
# -D options, applied at every run, e.g. "-DDTX_WERROR=ON" as scripts/test.sh passes).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${DTX_BUILD_DIR:-build}
BUILD_TYPE=${DTX_BUILD_TYPE:-RelWithDebInfo}
JOBS=${DTX_BUILD_JOBS:-2}
DEPS_ONLY=${DTX_SKIP_BUILD:-0}
case ${1:-} in
  "") ;;
  --deps-only) DEPS_ONLY=1 ;;
  *) echo "usage: $0 [--deps-only]" >&2; exit 2 ;;
esac

PACKAGES=(
  build-essential cmake pkg-config ccache
  libmysqlcppconn-dev libpqxx-dev libboost-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev libtomlplusplus-dev libcli11-dev nlohmann-json3-dev
  libpg-query-dev prometheus-cpp-dev libsqlite3-dev libssl-dev python3-psycopg2 clang
  mariadb-server mariadb-client postgresql-15 postgresql-client-15
  gnuplot-nox
  libpostgresql-jdbc-java default-jre-headless
)

say() { printf 'setup: %s\n' "$*"; }

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'; }

missing=()
for p in "${PACKAGES[@]}"; do
  installed "$p" || missing+=("$p")
done

if ((${#missing[@]})); then
  ((EUID == 0)) || { echo "setup: error: missing packages (${missing[*]}); run as root" >&2; exit 1; }
  say "installing ${#missing[@]} package(s): ${missing[*]}"
  policy=/usr/sbin/policy-rc.d
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\n# temporary, from dtx scripts/setup.sh: do not start services\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
  say "packages installed"
else
  say "all ${#PACKAGES[@]} packages already installed"
fi

if [[ $DEPS_ONLY == 1 ]]; then
  say "skipping the build (--deps-only / DTX_SKIP_BUILD=1)"
  exit 0
fi

cd "$REPO"
# ccache keys on paths relative to the checkout, so clones in other folders share the cache.
export CCACHE_BASEDIR=$REPO CCACHE_NOHASHDIR=1
read -r -a extra_args <<<"${DTX_CMAKE_ARGS:-}"
if [[ ! -f $BUILD_DIR/CMakeCache.txt ]]; then
  say "configuring $BUILD_DIR ($BUILD_TYPE ${extra_args[*]})"
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="$BUILD_TYPE" "${extra_args[@]}"
elif ((${#extra_args[@]})); then
  cmake -S . -B "$BUILD_DIR" "${extra_args[@]}" >/dev/null
fi
say "building $BUILD_DIR (-j$JOBS)"
cmake --build "$BUILD_DIR" -j"$JOBS"
say "build done: $BUILD_DIR"
