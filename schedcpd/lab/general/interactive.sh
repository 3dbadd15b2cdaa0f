# g-interactive: an interactive user browsing pages served by lighttpd (http_client.py:
# one request at a time, THINK_MS apart, SECONDS long) while a video export runs beside it
# (ffmpeg: the clip looped and encoded with libx264, 2 threads). The metric is the
# user's p99 request latency; the export's frames per second must not drop much.
# usage: interactive.sh WWW_DIR CLIP SECONDS THINK_MS
. "$(dirname "$0")/common.sh"
www=$1; clip=$2; secs=$3; think=$4; port=18081
goal p99_ms lower
guard bg_frames_per_s higher 0.10
lo_up
{ cp -r "$www" www && cp "$clip" in.avi; } || fail "cannot copy the inputs"
cat >lighttpd.conf <<CONF
server.document-root = "$PWD/www"
server.bind = "127.0.0.1"
server.port = $port
server.pid-file = "$PWD/lighttpd.pid"
server.username = "www-data"
server.groupname = "www-data"
server.max-keep-alive-requests = 100000
mimetype.assign = (".html" => "text/html")
index-file.names = ("index.html")
CONF
spawn lighttpd -D -f "$PWD/lighttpd.conf"
wait_for 100 curl -sf -o /dev/null "http://127.0.0.1:$port/index.html"
paths=$(cd www && find . -name '*.html' | sed 's|^\.||' | sort | tr '\n' ' ')
# The export: -progress rewrites its key=value block every 0.5 s (frame=N among them).
spawn ffmpeg -nostdin -loglevel error -stream_loop -1 -i in.avi -c:v libx264 \
  -preset veryfast -threads 2 -f null -progress progress.txt -
wait_for 300 grep -q '^frame=[1-9]' progress.txt  # an ffmpeg start takes seconds under TCG
measured
f0=$(awk -F= '$1 == "frame" { f = $2 } END { print f + 0 }' progress.txt); t0=$(now)
limit /usr/bin/python3 -I "$HERE/http_client.py" "$port" "$secs" "$think" $paths \
  || fail "the interactive client failed"
f1=$(awk -F= '$1 == "frame" { f = $2 } END { print f + 0 }' progress.txt); t1=$(now)
[ "$f1" -gt "$f0" ] || fail "the background export made no progress"
metric bg_frames_per_s "$(ratio "$((f1 - f0))" "$(elapsed "$t0" "$t1")")"
