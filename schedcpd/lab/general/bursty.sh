# g-bursty: bursts of JOBS gzip -6 runs every PERIOD_MS, BURSTS times, beside a bzip2 -9
# batch job (bursty.py); the chunks and the batch's input are cut from a text corpus
# copied into the job's directory (memory) first.
# usage: bursty.sh CORPUS PERIOD_MS BURSTS JOBS
. "$(dirname "$0")/common.sh"
corpus=$1; period=$2; bursts=$3; jobs=$4
goal completion_p99_ms lower
cp "$corpus" corpus.txt || fail "cannot copy the input"
split -n "l/$jobs" corpus.txt chunk.
limit /usr/bin/python3 -I "$HERE/bursty.py" "$period" "$bursts" "$jobs" corpus.txt chunk.* \
  || fail "the burst driver failed"
