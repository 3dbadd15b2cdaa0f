# g-pgbench: PostgreSQL 15 on 127.0.0.1 (a cluster made by initdb on the host,
# unpacked;
# no fsync), pgbench -i -s SCALE, then pgbench's TPC-B-like transactions from CLIENTS
# clients on 2 threads for SECONDS; the metric is transactions per second.
# usage: pgbench.sh CLUSTER_TAR_ZST SCALE CLIENTS SECONDS
. "$(dirname "$0")/common.sh"
cluster=$1; scale=$2; clients=$3; secs=$4; port=18432
bin=/usr/lib/postgresql/15/bin
goal tx_per_s higher
guard latency_ms lower 0.10
lo_up
# postgres refuses to run as root: the cluster (unpacked with its owner) and the socket
# directory belong to the host's postgres user, which the server runs as. Dynamic shared
# memory in files of the cluster's own, not /dev/shm.
mkdir pg && tar --zstd -xpf "$cluster" -C pg && mkdir pg/sock || fail "cannot unpack the cluster"
uid=$(stat -c %u pg/data); gid=$(stat -c %g pg/data)
chown "$uid:$gid" pg pg/sock
spawn setpriv --reuid="$uid" --regid="$gid" --clear-groups \
  "$bin/postgres" -D pg/data -p "$port" -c listen_addresses=127.0.0.1 \
  -c unix_socket_directories="$PWD/pg/sock" -c dynamic_shared_memory_type=mmap \
  -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=64MB \
  -c max_connections=30 -c log_min_messages=warning
wait_for 300 "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres
pgb() { limit "$bin/pgbench" -h 127.0.0.1 -p "$port" -U postgres "$@" postgres; }
pgb -i -q -s "$scale" >init.out 2>&1 || { cat init.out >&2; fail "pgbench -i failed"; }
measured
pgb -c "$clients" -j 2 -T "$secs" >run.out 2>&1 || { cat run.out >&2; fail "pgbench failed"; }
cat run.out
awk '/^latency average/ { l = $4 } /^tps = / { t = $3 }
  END { if (t <= 0) exit 1
        printf "SCHEDCP_METRIC tx_per_s %.2f\nSCHEDCP_METRIC latency_ms %.3f\n", t, l }' \
  run.out || fail "no tps in pgbench's output"
