# g-sqlite: SQLite (Python's sqlite3 module): READERS reader processes and one writer on
# one WAL database for SECONDS (sqlite_bench.py).
# usage: sqlite.sh SECONDS READERS
. "$(dirname "$0")/common.sh"
goal read_p99_ms lower
guard commits_per_s higher 0.10
limit /usr/bin/python3 -I "$HERE/sqlite_bench.py" "$1" "$2" || fail "the SQLite benchmark failed"
