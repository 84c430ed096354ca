#!/usr/bin/env bash
# scripts/db.sh — private test database servers for dtx.
#
#   scripts/db.sh start  [SERVER...]   start (and on first use create) the servers
#   scripts/db.sh stop   [SERVER...]   stop them cleanly, waiting until they are down
#   scripts/db.sh status [SERVER...]   one line per server; exit 0 only if all named are up
#   scripts/db.sh kill   SERVER...     crash them: SIGKILL the main process, wait until down
#   scripts/db.sh env                  print the `export ...` line the tests read
#
# SERVER is one of: mariadb, postgres, postgres-noprep (default: all three).
#
# The three servers, all on 127.0.0.1, all with user dtx / password dtx and a database dtx_test:
#
#   mariadb          MariaDB 10.11, port $DTX_TEST_MYSQL_PORT (13306): binary log on
#                    (log_bin, server_id=1), so XA PREPARE is durable the way it is in
#                    production; max_connections=400; legacy_xa_rollback_at_disconnect OFF.
#                    dtx has ALL PRIVILEGES ON *.* (XA RECOVER needs it).
#   postgres         PostgreSQL 15, port $DTX_TEST_PG_PORT (15432), max_prepared_transactions=2500
#                    (room for the 1,000-transaction recovery measurement beside other tests).
#                    dtx is a SUPERUSER (COMMIT PREPARED of any owner's transaction).
#   postgres-noprep  PostgreSQL 15, port $DTX_TEST_PG_NOPREP_PORT (15433),
#                    max_prepared_transactions=0: for the "prepared transactions are
#                    disabled" error path.
#
# Where the data lives. DB_DIR is $DTX_DB_DIR if set, else <repo>/.dbtest (git-ignored) when
# the mysql and postgres users can reach it (every parent directory searchable by them) and
# the path is short enough for Unix socket names (108 bytes); otherwise /var/tmp/dtx-testdb.
# We never chmod directories above DB_DIR. Layout:
#
#   DB_DIR/                        root, 0755
#   DB_DIR/mariadb/                mysql: my.cnf (regenerated at each start), data/, binlog.*,
#                                  mysqld.sock, mysqld.pid, error.log
#   DB_DIR/postgres/               postgres: data/ (initdb), server.log, the socket
#   DB_DIR/postgres-noprep/        the same for the second cluster
#
# `start` first tries to log in as dtx over TCP: a server that already answers on the port is
# reused as it is (whoever started it), and only what is missing is created. A port that answers
# but refuses dtx is an error, not something to overwrite. `stop` stops whatever server answers
# on the port (MariaDB: mariadb-admin shutdown; PostgreSQL: pg_ctl stop -m fast on the
# data_directory it reports), else the one in DB_DIR. Every wait is bounded
# ($DTX_DB_START_TIMEOUT seconds, default 60). Needs root (initdb and pg_ctl run as postgres).
# Start/stop/kill are serialised with flock on /tmp/dtx-db.<mariadb port>.lock.
#
# `kill` is for crash tests: SIGKILL to mariadbd / the postmaster of the server answering on the
# port (no shutdown, no checkpoint), then a bounded wait until the process is gone and the port no
# longer answers. PostgreSQL's backends notice their postmaster's death and exit by themselves;
# any still there after 10 s are killed too, since a new postmaster refuses to start while old
# backends hold its shared memory. A later `start` runs each server's crash recovery; prepared
# XA branches / prepared transactions survive it.
#
# The packages come from scripts/setup.sh (mariadb-server, postgresql-15); their own Debian
# services (port 3306, cluster 15/main on 5432) are not used.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MYSQL_PORT=${DTX_TEST_MYSQL_PORT:-13306}
PG_PORT=${DTX_TEST_PG_PORT:-15432}
PG_NOPREP_PORT=${DTX_TEST_PG_NOPREP_PORT:-15433}
DB_USER=${DTX_TEST_USER:-dtx}
DB_PASSWORD=${DTX_TEST_PASSWORD:-dtx}
PGBIN=${DTX_PG_BIN:-/usr/lib/postgresql/15/bin}
TIMEOUT=${DTX_DB_START_TIMEOUT:-60}
ALL_SERVERS=(mariadb postgres postgres-noprep)

say() { printf 'db: %s\n' "$*"; }
warn() { printf 'db: warning: %s\n' "$*" >&2; }
die() { printf 'db: error: %s\n' "$*" >&2; exit 1; }

# Prints the last lines of a server log to stderr, then fails.
die_with_log() {
  local msg=$1 log=$2
  printf 'db: error: %s\n' "$msg" >&2
  if [[ -f $log ]]; then
    printf -- '---- last lines of %s ----\n' "$log" >&2
    tail -n 30 "$log" >&2 || true
    printf -- '----\n' >&2
  fi
  exit 1
}

# wait_for SECONDS COMMAND...: polls COMMAND every 0.2 s until it succeeds or time runs out.
wait_for() {
  local secs=$1; shift
  local deadline=$((SECONDS + secs))
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

validate_settings() {
  [[ $DB_USER =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "DTX_TEST_USER must be a plain identifier, got '$DB_USER'"
  [[ $DB_PASSWORD != *"'"* && $DB_PASSWORD != *\\* ]] || die "DTX_TEST_PASSWORD must not contain quotes or backslashes"
  local p
  for p in "$MYSQL_PORT" "$PG_PORT" "$PG_NOPREP_PORT"; do
    [[ $p =~ ^[0-9]+$ ]] || die "ports must be numbers, got '$p'"
  done
}

# True if both service users can search (traverse) directory $1.
reachable_by_services() {
  local u
  for u in mysql postgres; do
    (cd / && runuser -u "$u" -- test -x "$1") 2>/dev/null || return 1
  done
}

choose_db_dir() {
  if [[ -n ${DTX_DB_DIR:-} ]]; then
    DB_DIR=$DTX_DB_DIR
  elif ((${#REPO} <= 70)) && id mysql >/dev/null 2>&1 && id postgres >/dev/null 2>&1 &&
       reachable_by_services "$REPO"; then
    DB_DIR=$REPO/.dbtest
  else
    DB_DIR=/var/tmp/dtx-testdb
  fi
  MY_DIR=$DB_DIR/mariadb
  MY_CNF=$MY_DIR/my.cnf
  MY_SOCK=$MY_DIR/mysqld.sock
  MY_PID=$MY_DIR/mysqld.pid
  MY_LOG=$MY_DIR/error.log
}

require_root() {
  ((EUID == 0)) || die "run as root (initdb and pg_ctl are run as the postgres user, mariadbd as mysql)"
  id mysql >/dev/null 2>&1 || die "no 'mysql' user: run scripts/setup.sh first (installs mariadb-server)"
  id postgres >/dev/null 2>&1 || die "no 'postgres' user: run scripts/setup.sh first (installs postgresql-15)"
  command -v mariadbd >/dev/null || die "mariadbd not found: run scripts/setup.sh first"
  [[ -x $PGBIN/initdb ]] || die "$PGBIN/initdb not found: run scripts/setup.sh first (postgresql-15)"
}

prepare_db_dir() {
  mkdir -p "$DB_DIR"
  chmod 0755 "$DB_DIR"
  reachable_by_services "$DB_DIR" ||
    die "$DB_DIR is not reachable by the mysql/postgres users (a parent directory lacks o+x); set DTX_DB_DIR elsewhere, e.g. /var/tmp/dtx-testdb"
}

# ---------------------------------------------------------------- MariaDB

# Client over TCP as the test user; extra arguments go to the client.
my_tcp() {
  timeout 30 mariadb --no-defaults --protocol=TCP -h127.0.0.1 -P"$MYSQL_PORT" \
    -u"$DB_USER" -p"$DB_PASSWORD" --connect-timeout=3 -N -B "$@"
}
# Client over our own socket as root (unix_socket authentication).
my_root() {
  timeout 30 mariadb --defaults-file="$MY_CNF" -uroot --connect-timeout=3 -N -B "$@"
}
my_login_ok() { my_tcp -e 'SELECT 1' >/dev/null 2>&1; }
# Something answers on the port (mariadb-admin ping succeeds even when access is denied).
my_port_alive() {
  timeout 10 mariadb-admin --no-defaults --protocol=TCP -h127.0.0.1 -P"$MYSQL_PORT" \
    --connect-timeout=2 -u"$DB_USER" -p"$DB_PASSWORD" ping >/dev/null 2>&1
}
my_socket_alive() {
  [[ -S $MY_SOCK && -f $MY_CNF ]] &&
    timeout 10 mariadb-admin --defaults-file="$MY_CNF" -uroot --connect-timeout=2 ping >/dev/null 2>&1
}
my_pid() { [[ -f $MY_PID ]] && cat "$MY_PID" 2>/dev/null; }
# The pid file may be stale (kill -9) and its number reused: check the process is our mariadbd.
my_pid_alive() {
  local p
  p=$(my_pid) && [[ -n $p ]] && grep -qaF -- "$MY_CNF" "/proc/$p/cmdline" 2>/dev/null
}

my_write_cnf() {
  cat >"$MY_CNF" <<EOF
# Written by scripts/db.sh at each start; edits are lost.
[client]
port=$MYSQL_PORT
socket=$MY_SOCK

[mysqld]
user=mysql
datadir=$MY_DIR/data
socket=$MY_SOCK
pid-file=$MY_PID
log-error=$MY_LOG
port=$MYSQL_PORT
bind-address=127.0.0.1
skip-name-resolve
# Binary log on: XA PREPARE then goes through the binlog as it does in production.
log_bin=$MY_DIR/binlog
server_id=1
binlog_expire_logs_seconds=86400
max_binlog_size=64M
innodb_buffer_pool_size=128M
innodb_log_file_size=48M
max_connections=400
character-set-server=utf8mb4
collation-server=utf8mb4_general_ci
# A prepared XA branch must survive its session's disconnect. The variable is missing from
# some 10.11 builds (Debian's 10.11.19 among them): loose- makes that a warning in the log.
loose-legacy_xa_rollback_at_disconnect=OFF
EOF
  chmod 0644 "$MY_CNF"
}

my_init_if_needed() {
  install -d -o mysql -g mysql -m 0755 "$MY_DIR"
  my_write_cnf
  [[ -d $MY_DIR/data/mysql ]] && return 0
  say "mariadb: initialising $MY_DIR/data"
  rm -rf "$MY_DIR/data"
  (cd / && timeout 300 mariadb-install-db --defaults-file="$MY_CNF" --user=mysql \
    --datadir="$MY_DIR/data" --auth-root-authentication-method=socket --skip-test-db \
    >"$MY_DIR/install.log" 2>&1) ||
    die_with_log "mariadb-install-db failed" "$MY_DIR/install.log"
  chown -R mysql:mysql "$MY_DIR"
}

# Users, database and XA setting; needs our own server (root over the socket).
my_bootstrap() {
  my_root <<EOF || die_with_log "could not create user $DB_USER on mariadb" "$MY_LOG"
CREATE USER IF NOT EXISTS '$DB_USER'@'%' IDENTIFIED BY '$DB_PASSWORD';
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASSWORD';
ALTER USER '$DB_USER'@'%' IDENTIFIED BY '$DB_PASSWORD';
ALTER USER '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASSWORD';
GRANT ALL PRIVILEGES ON *.* TO '$DB_USER'@'%' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO '$DB_USER'@'localhost' WITH GRANT OPTION;
EOF
}

# What every start does, own server or reused one: database and XA disconnect behaviour.
my_ensure() {
  my_tcp -e 'CREATE DATABASE IF NOT EXISTS dtx_test' || die "mariadb: could not create database dtx_test"
  local legacy
  legacy=$(my_tcp -e "SHOW GLOBAL VARIABLES LIKE 'legacy_xa_rollback_at_disconnect'" | awk '{print $2}')
  if [[ -n $legacy && $legacy != OFF ]]; then
    warn "mariadb: legacy_xa_rollback_at_disconnect=$legacy; setting it OFF"
    my_tcp -e 'SET GLOBAL legacy_xa_rollback_at_disconnect=OFF'
  fi
  local log_bin
  log_bin=$(my_tcp -e "SELECT @@GLOBAL.log_bin")
  [[ $log_bin == 1 ]] || warn "mariadb on port $MYSQL_PORT runs without the binary log"
}

mariadb_start() {
  if my_login_ok; then
    say "mariadb: already running on 127.0.0.1:$MYSQL_PORT, reusing it"
    my_ensure
    return
  fi
  if my_port_alive; then
    if my_socket_alive; then
      say "mariadb: own server is up but refuses $DB_USER; creating the user"
      my_bootstrap
      my_ensure
      return
    fi
    die "a server on 127.0.0.1:$MYSQL_PORT refuses $DB_USER/$DB_PASSWORD and is not ours ($MY_DIR); stop it or set DTX_TEST_MYSQL_PORT"
  fi
  my_pid_alive && die_with_log "mariadbd (pid $(my_pid)) of $MY_DIR runs but does not answer on port $MYSQL_PORT; run scripts/db.sh stop" "$MY_LOG"
  my_init_if_needed
  say "mariadb: starting on 127.0.0.1:$MYSQL_PORT (data $MY_DIR/data)"
  local log_start=0 pid
  [[ -f $MY_LOG ]] && log_start=$(wc -l <"$MY_LOG")
  # setsid: own session, so nothing that signals the caller's process group reaches the server.
  cd /
  # 9>&-: the server must not inherit (and so hold) the flock of with_lock.
  setsid mariadbd --defaults-file="$MY_CNF" --user=mysql </dev/null >"$MY_DIR/mariadbd.out" 2>&1 9>&- &
  pid=$!
  disown
  cd "$OLDPWD"
  local deadline=$((SECONDS + TIMEOUT))
  until my_socket_alive; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n "+$((log_start + 1))" "$MY_LOG" >"$MY_DIR/last-start.log" 2>/dev/null || true
      cat "$MY_DIR/mariadbd.out" >>"$MY_DIR/last-start.log" 2>/dev/null || true
      die_with_log "mariadbd exited during startup" "$MY_DIR/last-start.log"
    fi
    ((SECONDS < deadline)) || die_with_log "mariadb did not become ready within ${TIMEOUT}s" "$MY_LOG"
    sleep 0.2
  done
  my_bootstrap
  wait_for 10 my_login_ok || die_with_log "mariadb is up but $DB_USER cannot log in over TCP" "$MY_LOG"
  my_ensure
  say "mariadb: ready"
}

mariadb_stop() {
  local how
  if my_socket_alive; then
    how=(mariadb-admin --defaults-file="$MY_CNF" -uroot)
  elif my_login_ok; then
    how=(mariadb-admin --no-defaults --protocol=TCP -h127.0.0.1 -P"$MYSQL_PORT" -u"$DB_USER" -p"$DB_PASSWORD")
  elif my_port_alive; then
    die "a server on 127.0.0.1:$MYSQL_PORT refuses $DB_USER and is not ours ($MY_DIR); not stopping it"
  elif my_pid_alive; then
    say "mariadb: not answering; sending SIGTERM to pid $(my_pid)"
    kill -TERM "$(my_pid)" || true
    wait_for "$TIMEOUT" bash -c "! kill -0 $(my_pid) 2>/dev/null" || die "mariadbd did not exit"
    return
  else
    say "mariadb: not running on port $MYSQL_PORT"
    return
  fi
  say "mariadb: stopping (port $MYSQL_PORT)"
  timeout "$TIMEOUT" "${how[@]}" --connect-timeout=3 shutdown >/dev/null 2>&1 || true
  wait_for "$TIMEOUT" bash -c "! timeout 5 mariadb-admin --no-defaults --protocol=TCP -h127.0.0.1 -P$MYSQL_PORT --connect-timeout=2 ping >/dev/null 2>&1" ||
    die_with_log "mariadb on port $MYSQL_PORT is still up ${TIMEOUT}s after shutdown" "$MY_LOG"
  # Our own process (if it was ours) must be gone too, so the datadir is free again.
  if my_pid_alive; then
    wait_for "$TIMEOUT" bash -c "! kill -0 $(my_pid) 2>/dev/null" || die "mariadbd pid $(my_pid) did not exit"
  fi
  say "mariadb: stopped"
}

mariadb_status() {
  if my_login_ok; then
    local info
    info=$(my_tcp -e "SELECT CONCAT(VERSION(), ', datadir ', @@datadir, ', log_bin=', IF(@@log_bin,'ON','OFF'), ', max_connections=', @@max_connections)")
    say "mariadb          127.0.0.1:$MYSQL_PORT  up    ($info)"
  elif my_port_alive; then
    say "mariadb          127.0.0.1:$MYSQL_PORT  up, but refuses $DB_USER"
    return 1
  else
    say "mariadb          127.0.0.1:$MYSQL_PORT  down"
    return 1
  fi
}

# ---------------------------------------------------------------- PostgreSQL

# pg_* functions take the server name; pg_vars sets PORT, DIR, DATA, LOG, MAX_PREP, MAX_CONN.
pg_vars() {
  case $1 in
    postgres) PORT=$PG_PORT MAX_PREP=2500 MAX_CONN=200 ;;
    postgres-noprep) PORT=$PG_NOPREP_PORT MAX_PREP=0 MAX_CONN=50 ;;
    *) die "unknown server $1" ;;
  esac
  DIR=$DB_DIR/$1
  DATA=$DIR/data
  LOG=$DIR/server.log
}

pg_tcp() { # port, then psql arguments
  local port=$1; shift
  PGPASSWORD=$DB_PASSWORD PGCONNECT_TIMEOUT=3 timeout 30 "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 \
    -h 127.0.0.1 -p "$port" -U "$DB_USER" "$@"
}
pg_login_ok() { pg_tcp "$1" -d dtx_test -c 'SELECT 1' >/dev/null 2>&1; }
# 0: accepting, 1: rejecting (starting/stopping), 2: no answer.
pg_port_alive() {
  local rc=0
  timeout 10 "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$1" -t 2 || rc=$?
  ((rc == 0 || rc == 1))
}
# fd 9 is the flock: a server started from here must not inherit (and so hold) it.
as_postgres() { (cd / && runuser -u postgres -- "$@" 9>&-); }
pg_own_running() { [[ -f $DATA/PG_VERSION ]] && as_postgres "$PGBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }
pg_root() { # superuser postgres over our own socket (trust)
  timeout 30 "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$DIR" -p "$PORT" -U postgres "$@"
}

pg_write_conf() {
  cat >"$DATA/dtx.conf" <<EOF
# Written by scripts/db.sh at each start; edits are lost.
port = $PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DIR'
max_connections = $MAX_CONN
max_prepared_transactions = $MAX_PREP
shared_buffers = 128MB
fsync = on
synchronous_commit = on
EOF
  cat >"$DATA/pg_hba.conf" <<EOF
# Written by scripts/db.sh at each start; edits are lost.
# TYPE  DATABASE  USER      ADDRESS        METHOD
local   all       postgres                 trust
local   all       all                      scram-sha-256
host    all       all       127.0.0.1/32   scram-sha-256
EOF
  chown postgres:postgres "$DATA/dtx.conf" "$DATA/pg_hba.conf"
  chmod 0600 "$DATA/dtx.conf" "$DATA/pg_hba.conf"
}

pg_init_if_needed() {
  install -d -o postgres -g postgres -m 0755 "$DIR"
  if [[ ! -f $DATA/PG_VERSION ]]; then
    say "$1: initialising $DATA"
    rm -rf "$DATA"
    as_postgres timeout 300 "$PGBIN/initdb" -D "$DATA" -U postgres --auth-local=trust \
      --auth-host=scram-sha-256 -E UTF8 --no-locale >"$DIR/initdb.log" 2>&1 ||
      die_with_log "initdb failed for $1" "$DIR/initdb.log"
    echo "include_if_exists = 'dtx.conf'" >>"$DATA/postgresql.conf"
  fi
  pg_write_conf
}

pg_bootstrap() {
  pg_root -d postgres <<EOF || die_with_log "$1: could not create role $DB_USER" "$LOG"
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$DB_USER') THEN
    CREATE ROLE $DB_USER LOGIN SUPERUSER PASSWORD '$DB_PASSWORD';
  ELSE
    ALTER ROLE $DB_USER LOGIN SUPERUSER PASSWORD '$DB_PASSWORD';
  END IF;
END \$\$;
SELECT 'CREATE DATABASE dtx_test OWNER $DB_USER'
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'dtx_test') \gexec
EOF
}

# Reused server: make sure dtx_test exists and the setting is the one the tests expect.
pg_ensure() {
  local name=$1 got
  got=$(pg_tcp "$PORT" -d dtx_test -c 'SHOW max_prepared_transactions')
  [[ $got == "$MAX_PREP" ]] ||
    warn "$name on port $PORT has max_prepared_transactions=$got, tests expect $MAX_PREP"
}

pg_start_one() {
  local name=$1
  pg_vars "$name"
  if pg_login_ok "$PORT"; then
    say "$name: already running on 127.0.0.1:$PORT, reusing it"
    pg_ensure "$name"
    return
  fi
  if pg_port_alive "$PORT"; then
    if pg_own_running; then
      wait_for "$TIMEOUT" pg_root -d postgres -c 'SELECT 1' >/dev/null 2>&1 ||
        die_with_log "$name: own server does not accept connections" "$LOG"
      say "$name: own server is up but refuses $DB_USER; creating role/database"
      pg_bootstrap "$name"
      pg_ensure "$name"
      return
    fi
    die "a server on 127.0.0.1:$PORT refuses $DB_USER/$DB_PASSWORD and is not ours ($DATA); stop it or change its DTX_TEST_*_PORT"
  fi
  pg_init_if_needed "$name"
  say "$name: starting on 127.0.0.1:$PORT (data $DATA, max_prepared_transactions=$MAX_PREP)"
  as_postgres "$PGBIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t "$TIMEOUT" start >"$DIR/pg_ctl.out" 2>&1 ||
    die_with_log "$name did not start; pg_ctl said: $(tr '\n' ' ' <"$DIR/pg_ctl.out")" "$LOG"
  pg_bootstrap "$name"
  wait_for 10 pg_login_ok "$PORT" || die_with_log "$name is up but $DB_USER cannot log in over TCP" "$LOG"
  pg_ensure "$name"
  say "$name: ready"
}

pg_stop_one() {
  local name=$1 data=""
  pg_vars "$name"
  if pg_login_ok "$PORT"; then
    data=$(pg_tcp "$PORT" -d dtx_test -c 'SHOW data_directory')
  elif pg_own_running; then
    data=$DATA
  elif pg_port_alive "$PORT"; then
    die "a server on 127.0.0.1:$PORT refuses $DB_USER and is not ours ($DATA); not stopping it"
  else
    say "$name: not running on port $PORT"
    return
  fi
  say "$name: stopping (port $PORT, data $data)"
  as_postgres "$PGBIN/pg_ctl" -D "$data" -m fast -w -t "$TIMEOUT" stop >/dev/null ||
    die_with_log "$name did not stop within ${TIMEOUT}s" "$data/../server.log"
  say "$name: stopped"
}

pg_status_one() {
  local name=$1
  pg_vars "$name"
  local label
  label=$(printf '%-16s 127.0.0.1:%s' "$name" "$PORT")
  if pg_login_ok "$PORT"; then
    local info
    info=$(pg_tcp "$PORT" -d dtx_test -c "SELECT split_part(version(), ' ', 2) || ', data ' || current_setting('data_directory') || ', max_prepared_transactions=' || current_setting('max_prepared_transactions') || ', max_connections=' || current_setting('max_connections')")
    say "$label  up    (PostgreSQL $info)"
  elif pg_port_alive "$PORT"; then
    say "$label  up, but refuses $DB_USER"
    return 1
  else
    say "$label  down"
    return 1
  fi
}

# ---------------------------------------------------------------- crash (kill)

# Pid of the process listening on TCP port $1 (empty if none).
listener_pid() {
  ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2 || true
}
# True if process $1 is gone (a zombie counts as gone: it holds no port and no file).
pid_gone() {
  [[ ! -e /proc/$1/stat ]] && return 0
  local state
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 0
  [[ -z $state || $state == Z ]]
}
# True once process $1 is reaped too. A new postmaster refuses to start while the pid in
# postmaster.pid still exists, and kill(pid, 0) succeeds on a zombie; the killed postmaster's
# parent is init, which may take a while (seen here: about a second) to reap it.
pid_reaped() { [[ ! -e /proc/$1/stat ]]; }
all_gone() {
  local p
  for p in "$@"; do pid_gone "$p" || return 1; done
}
pid_comm() { cat "/proc/$1/comm" 2>/dev/null || true; }
my_port_down() { ! my_port_alive; }
pg_port_down() { ! pg_port_alive "$1"; }

mariadb_kill() {
  local pid=""
  if my_pid_alive; then pid=$(my_pid); else pid=$(listener_pid "$MYSQL_PORT"); fi
  if [[ -z $pid ]]; then
    my_port_alive && die "something answers on 127.0.0.1:$MYSQL_PORT but no listening process was found; not killing"
    say "mariadb: not running on port $MYSQL_PORT"
    return
  fi
  case $(pid_comm "$pid") in
    mariadbd | mysqld) ;;
    *) die "process $pid on port $MYSQL_PORT is '$(pid_comm "$pid")', not mariadbd; not killing it" ;;
  esac
  say "mariadb: SIGKILL to mariadbd (pid $pid, port $MYSQL_PORT)"
  kill -KILL "$pid" 2>/dev/null || true
  wait_for "$TIMEOUT" pid_gone "$pid" || die "mariadbd pid $pid still there ${TIMEOUT}s after SIGKILL"
  wait_for "$TIMEOUT" my_port_down || die "port $MYSQL_PORT still answers ${TIMEOUT}s after killing mariadbd"
  say "mariadb: killed"
}

pg_kill_one() {
  local name=$1 data="" pid=""
  pg_vars "$name"
  if pg_login_ok "$PORT"; then
    data=$(pg_tcp "$PORT" -d dtx_test -c 'SHOW data_directory' 2>/dev/null || true)
  fi
  [[ -n $data ]] || data=$DATA
  if [[ -f $data/postmaster.pid ]]; then
    pid=$(head -n1 "$data/postmaster.pid" 2>/dev/null || true)
    [[ $pid =~ ^[0-9]+$ ]] && ! pid_gone "$pid" && [[ $(pid_comm "$pid") == postgres* ]] || pid=""
  fi
  [[ -n $pid ]] || pid=$(listener_pid "$PORT")
  if [[ -z $pid ]]; then
    pg_port_alive "$PORT" && die "something answers on 127.0.0.1:$PORT but no listening process was found; not killing"
    say "$name: not running on port $PORT"
    return
  fi
  [[ $(pid_comm "$pid") == postgres* ]] ||
    die "process $pid on port $PORT is '$(pid_comm "$pid")', not a postmaster; not killing it"
  local children
  children=$(pgrep -P "$pid" | tr '\n' ' ' || true)
  say "$name: SIGKILL to the postmaster (pid $pid, port $PORT)"
  kill -KILL "$pid" 2>/dev/null || true
  wait_for "$TIMEOUT" pid_reaped "$pid" || die "postmaster pid $pid still there ${TIMEOUT}s after SIGKILL (not reaped)"
  wait_for "$TIMEOUT" pg_port_down "$PORT" || die "port $PORT still answers ${TIMEOUT}s after killing the postmaster"
  # shellcheck disable=SC2086
  if [[ -n ${children// /} ]] && ! wait_for 10 all_gone $children; then
    say "$name: backends still running 10s after the postmaster died; killing them"
    kill -KILL $children 2>/dev/null || true
    wait_for "$TIMEOUT" all_gone $children || die "$name: backends $children did not exit"
  fi
  say "$name: killed"
}

# ---------------------------------------------------------------- commands

with_lock() {
  local lock=/tmp/dtx-db.$MYSQL_PORT.lock
  exec 9>"$lock"
  flock -w 120 9 || die "another scripts/db.sh holds $lock for more than 120s (see: fuser -v $lock)"
}

servers_from_args() {
  SERVERS=("$@")
  ((${#SERVERS[@]})) || SERVERS=("${ALL_SERVERS[@]}")
  local s
  for s in "${SERVERS[@]}"; do
    case $s in mariadb | postgres | postgres-noprep) ;; *) die "unknown server '$s' (mariadb, postgres, postgres-noprep)" ;; esac
  done
}

# Runs `action` (start, stop or kill) on every chosen server: mariadb_<action> for MariaDB,
# pg_<action>_one NAME for a PostgreSQL. A failure ends the script (set -e), as before.
each_server() {
  local action=$1 s
  for s in "${SERVERS[@]}"; do
    case $s in mariadb) "mariadb_$action" ;; *) "pg_${action}_one" "$s" ;; esac
  done
}

cmd=${1:-}
[[ $# -gt 0 ]] && shift
validate_settings
case $cmd in
  env)
    echo "export DTX_TEST_MYSQL_PORT=$MYSQL_PORT DTX_TEST_PG_PORT=$PG_PORT DTX_TEST_PG_NOPREP_PORT=$PG_NOPREP_PORT DTX_TEST_USER=$DB_USER DTX_TEST_PASSWORD=$DB_PASSWORD"
    ;;
  start)
    servers_from_args "$@"
    require_root
    choose_db_dir
    with_lock
    prepare_db_dir
    say "data directory $DB_DIR"
    each_server start
    ;;
  stop)
    servers_from_args "$@"
    require_root
    choose_db_dir
    with_lock
    each_server stop
    ;;
  kill)
    (($# > 0)) || die "kill needs the server(s) to crash: mariadb, postgres, postgres-noprep"
    servers_from_args "$@"
    require_root
    choose_db_dir
    with_lock
    each_server kill
    ;;
  status)
    servers_from_args "$@"
    choose_db_dir
    rc=0
    for s in "${SERVERS[@]}"; do
      case $s in mariadb) mariadb_status || rc=3 ;; *) pg_status_one "$s" || rc=3 ;; esac
    done
    exit $rc
    ;;
  *)
    echo "usage: $0 start|stop|status [mariadb|postgres|postgres-noprep ...] | kill SERVER... | env" >&2
    exit 2
    ;;
esac
