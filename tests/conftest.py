"""Shared test set-up. Tests use the real lab set up by `make test` (kernel, image, loader).

Two guards keep a CI run informative when it goes wrong: every slow test is reported as
it finishes (a log cut off by the CI's time limit still says where the time went), and
``SCHEDCP_TEST_DEADLINE`` (a Unix time, set by ``.ci/run`` from the CI's own limit) ends
the session with the slowest tests listed, instead of being killed silently, once it has
passed.
"""

from __future__ import annotations

import os
import time

import pytest

SLOW_S = 20.0
_started = time.monotonic()
_spent: dict[str, float] = {}


def _deadline() -> float | None:
    raw = os.environ.get("SCHEDCP_TEST_DEADLINE", "")
    try:
        return float(raw) if raw else None
    except ValueError:
        raise pytest.UsageError(f"SCHEDCP_TEST_DEADLINE={raw!r}: expected a Unix time") \
            from None


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _spent[report.nodeid] = _spent.get(report.nodeid, 0.0) + report.duration
    if report.when == "teardown" and _spent[report.nodeid] >= SLOW_S:
        elapsed = time.monotonic() - _started
        print(f"\n[slow] {_spent[report.nodeid]:.0f} s {report.nodeid} "
              f"(session at {elapsed / 60:.1f} min)", flush=True)


def pytest_runtest_setup(item: pytest.Item) -> None:
    deadline = _deadline()
    if deadline is not None and time.time() > deadline:
        worst = sorted(_spent.items(), key=lambda kv: -kv[1])[:15]
        lines = "\n".join(f"  {s:7.1f} s {n}" for n, s in worst)
        pytest.exit(f"the test deadline passed before {item.nodeid} "
                    f"({(time.monotonic() - _started) / 60:.1f} min into the session); "
                    f"slowest so far:\n{lines}", returncode=1)
