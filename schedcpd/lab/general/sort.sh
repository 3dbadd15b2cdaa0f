# g-sort: GNU sort --parallel=2 of a CSV of records by two keys (a text field, then a
# number), the input copied into the job's directory (memory) first.
# usage: sort.sh INPUT
. "$(dirname "$0")/common.sh"
in=$1
goal sort_s lower
cp "$in" in.csv
measured
t0=$(now)
limit sort --parallel=2 -S 200M -T "$PWD" -t, -k3,3 -k1,1n -o out.csv in.csv || fail "sort failed"
t1=$(now)
[ "$(wc -l <out.csv)" = "$(wc -l <in.csv)" ] || fail "sort lost lines"
metric sort_s "$(elapsed "$t0" "$t1")"
