"""An interactive HTTP user: GET the PATHS of 127.0.0.1:PORT in turn, one at a time on a
keep-alive connection, THINK_MS apart, for SECONDS; time each request. Prints the
requests' p50/p99 latency as SCHEDCP_METRIC lines.

usage: python3 http_client.py PORT SECONDS THINK_MS PATH...
Standard library only: the lab guest runs it with the host's /usr/bin/python3.
"""

from __future__ import annotations

import http.client
import sys
import time


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))]


def main(port: int, seconds: float, think_ms: float, paths: list[str]) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    lat: list[float] = []
    errors = 0
    end = time.monotonic() + seconds
    k = 0
    while time.monotonic() < end:
        t = time.perf_counter()
        try:
            conn.request("GET", paths[k % len(paths)])
            resp = conn.getresponse()
            body = resp.read()
            ok = resp.status == 200 and len(body) > 0
        except (OSError, http.client.HTTPException):
            ok = False
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        lat.append(time.perf_counter() - t)
        errors += not ok
        k += 1
        time.sleep(think_ms / 1000)
    if errors or not lat:
        print(f"{errors} failed request(s) of {len(lat)}", file=sys.stderr)
        return 1
    print(f"SCHEDCP_METRIC requests {len(lat)}")
    print(f"SCHEDCP_METRIC p50_ms {pct(lat, 50) * 1000:.3f}")
    print(f"SCHEDCP_METRIC p99_ms {pct(lat, 99) * 1000:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]))
