# g-nginx: nginx (2 worker processes) serving a static page on 127.0.0.1, driven by wrk
# (2 threads, CONNS keep-alive connections) for DURATION seconds.
# usage: nginx.sh WWW_DIR DURATION_S CONNS
. "$(dirname "$0")/common.sh"
www=$1; dur=$2; conns=$3; port=18080
goal p99_ms lower
guard requests_per_s higher 0.05
lo_up
{ cp -r "$www" www && mkdir -p tmp; } || fail "cannot copy the inputs"
cat >nginx.conf <<CONF
worker_processes 2;
daemon off;
pid $PWD/nginx.pid;
error_log stderr warn;
events { worker_connections 512; }
http {
  access_log off;
  default_type text/html;
  keepalive_requests 1000000;
  client_body_temp_path $PWD/tmp/body;
  proxy_temp_path $PWD/tmp/proxy;
  fastcgi_temp_path $PWD/tmp/fastcgi;
  uwsgi_temp_path $PWD/tmp/uwsgi;
  scgi_temp_path $PWD/tmp/scgi;
  server { listen 127.0.0.1:$port; root $PWD/www; }
}
CONF
spawn nginx -e stderr -p "$PWD" -c "$PWD/nginx.conf"
wait_for 100 curl -sf -o /dev/null "http://127.0.0.1:$port/index.html"
measured
limit wrk -t2 -c"$conns" -d"${dur}s" --latency "http://127.0.0.1:$port/index.html" >wrk.out \
  || fail "wrk failed"
cat wrk.out
awk -f "$HERE/wrk_latency.awk" wrk.out
