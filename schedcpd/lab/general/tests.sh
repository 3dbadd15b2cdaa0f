# g-tests: a parallel test run: xargs -P WORKERS runs python3 -m unittest on each of the
# given modules of CPython's own test suite (Debian's libpython3.11-testsuite), one
# process per module, as a CI job fans test modules out over the CPUs.
# usage: tests.sh WORKERS MODULE...
. "$(dirname "$0")/common.sh"
workers=$1; shift
goal suite_s lower
mkdir logs
measured
t0=$(now)
printf '%s\n' "$@" | limit xargs -P "$workers" -n 1 \
  sh -c 'exec /usr/bin/python3 -m unittest -q "test.$1" >"logs/$1.log" 2>&1' sh \
  || { tail -n 20 logs/*.log >&2; fail "a test module failed"; }
t1=$(now)
ran=$(cat logs/*.log | awk '$1 == "Ran" { n += $2 } END { print n + 0 }')
[ "$ran" -gt 0 ] && [ "$(cat logs/*.log | grep -c '^OK')" = "$#" ] || fail "not every module passed"
metric modules "$#"
metric tests "$ran"
metric suite_s "$(elapsed "$t0" "$t1")"
