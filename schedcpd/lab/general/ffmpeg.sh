# g-ffmpeg: a transcode pipeline of two ffmpeg processes: one decodes an MJPEG clip to raw
# frames, the other encodes them with libx264 (2 threads) -- decode | encode.
# usage: ffmpeg.sh CLIP FRAMES WIDTHxHEIGHT
. "$(dirname "$0")/common.sh"
clip=$1; frames=$2; size=$3
goal frames_per_s higher
cp "$clip" in.avi || fail "cannot copy the input"
measured
t0=$(now)
limit ffmpeg -nostdin -loglevel error -threads 1 -i in.avi -f rawvideo -pix_fmt yuv420p - \
  | limit ffmpeg -nostdin -loglevel error -f rawvideo -pix_fmt yuv420p -s "$size" -r 25 -i - \
      -c:v libx264 -preset veryfast -threads 2 -y out.mp4 \
  || fail "the ffmpeg pipeline failed"
t1=$(now)
[ -s out.mp4 ] || fail "no output video"
s=$(elapsed "$t0" "$t1")
metric transcode_s "$s"
metric frames_per_s "$(ratio "$frames" "$s")"
