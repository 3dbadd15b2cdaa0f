# g-sort: GNU sort --parallel=2 of a CSV of records by two keys (a text field, then a
# number), the input copied into the job's directory (memory) first.
# usage: sort.sh INPUT
. "$(dirname "$0")/common.sh"
in=$1
goal sort_s lower
# Checked: a copy cut short (a guest tmpfs filled by earlier steps of one boot) would be
# sorted in no time and reported as a result.
cp "$in" in.csv || fail "cannot copy the input"
[ "$(wc -l <in.csv)" = "$(wc -l <"$in")" ] || fail "the input's copy is short"
measured
t0=$(now)
limit sort --parallel=2 -S 200M -T "$PWD" -t, -k3,3 -k1,1n -o out.csv in.csv || fail "sort failed"
t1=$(now)
[ "$(wc -l <out.csv)" = "$(wc -l <in.csv)" ] || fail "sort lost lines"
metric sort_s "$(elapsed "$t0" "$t1")"
rm -f in.csv out.csv  # the guest's memory, for the steps after this one
