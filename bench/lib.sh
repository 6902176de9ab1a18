# Shared helpers of the benchmarks (sourced). Benchmarks run on demand, never in CI's pass/fail;
# each prints its figures and ends with one line `name: value unit`.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ADDR=${SLUICE_MARIADB_ADDR:-127.0.0.1:3316}
HOST=${ADDR%:*}
PORT=${ADDR##*:}
WORK=${BENCH_DIR:-$ROOT/target/bench}
mkdir -p "$WORK"

sql() { mariadb --protocol=TCP -h "$HOST" -P "$PORT" -uroot -N -B -e "$1"; }

setup() {
  "$ROOT/dev/services" check mariadb 2>/dev/null || "$ROOT/dev/services" up mariadb >&2
  # SLUICE_BIN: another build to measure (e.g. an earlier commit's, for a before/after).
  if [ -n "${SLUICE_BIN:-}" ]; then
    SLUICE=$SLUICE_BIN
  else
    cargo build --release --locked -p sluice >&2
    SLUICE=$ROOT/target/release/sluice
  fi
}

# A sysbench-like table (id PK, k INT indexed, c CHAR(120), pad CHAR(60)) in database $1.
make_table() {
  sql "DROP DATABASE IF EXISTS $1; CREATE DATABASE $1;
       CREATE TABLE $1.sbtest (id INT PRIMARY KEY, k INT NOT NULL, c CHAR(120) NOT NULL,
                               pad CHAR(60) NOT NULL, KEY k (k))"
}

# Inserts rows $2..$3 into $1.sbtest; $4 = rows per transaction.
fill() {
  local db=$1 from=$2 to=$3 per=$4 lo hi
  for ((lo = from; lo <= to; lo += per)); do
    hi=$((lo + per - 1 < to ? lo + per - 1 : to))
    sql "USE $db; INSERT INTO sbtest SELECT seq, seq * 7 % 100000,
         CONCAT(REPEAT(LPAD(seq, 11, '0'), 10), '-', LPAD(seq, 9, '0')),
         CONCAT(REPEAT(LPAD(seq, 11, '0'), 5), '-', LPAD(seq, 4, '0'))
         FROM seq_${lo}_to_${hi}"
  done
}

position() { sql "SHOW MASTER STATUS" | awk '{print $1":"$2}'; }

# Removes the binlogs a benchmark wrote on the MariaDB at $1 (host:port; default the source),
# all but the current file: the update backlog of db-apply writes about 1.5 GB of them at the
# source and 2.5 GB at the destination per run, and a day's expiry (dev/services) let a
# session of benchmarks fill the disk. Benchmarks run alone, so no reader needs them.
purge_binlogs() {
  local a=${1:-$ADDR}
  mariadb --protocol=TCP -h "${a%:*}" -P "${a##*:}" -uroot -N -B \
    -e "PURGE BINARY LOGS BEFORE NOW()" >/dev/null 2>&1 || true
}

# Seconds (with fraction) since the epoch.
now() { date +%s.%N; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }
# The median of its arguments (numbers; the lower middle one of an even count).
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
