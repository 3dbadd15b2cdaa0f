# g-xz: xz -T2 -6 (512 KiB blocks, so both threads have work) of a text corpus, copied
# into the job's directory (memory) first; the metric is input MB compressed per second.
# usage: xz.sh INPUT
. "$(dirname "$0")/common.sh"
in=$1
goal mb_per_s higher
cp "$in" in.txt || fail "cannot copy the input"
size=$(wc -c <in.txt)
measured
t0=$(now)
limit xz -T2 -6 --block-size=512KiB -c in.txt >out.xz || fail "xz failed"
t1=$(now)
s=$(elapsed "$t0" "$t1")
metric xz_s "$s"
metric ratio "$(ratio "$(wc -c <out.xz)" "$size")"
metric mb_per_s "$(ratio "$(awk -v b="$size" 'BEGIN { print b / 1e6 }')" "$s")"
