"""JSON schemas of the analysis outputs: what tools and agents can rely on.

Plain dictionaries (JSON Schema draft 2020-12), so the tool registry can publish them and
tests validate real outputs against them.
"""

from __future__ import annotations

from typing import Any

_num = {"type": "number"}
_int = {"type": "integer", "minimum": 0}
_str = {"type": "string"}
_psi = {"type": "object", "required": ["avg10", "pct"],
        "properties": {"avg10": _num, "pct": _num}}

TIER1: dict[str, Any] = {
    "type": "object",
    "required": ["v", "scope", "interval_s", "ncpu", "cpu_pct", "scope_cpu", "load",
                 "runnable", "blocked", "ctxsw_per_s", "migrations_per_s", "forks_per_s",
                 "nprocs", "busy_procs", "psi", "mem", "top", "cgroups", "character"],
    "properties": {
        "v": {"const": 1}, "scope": _str, "interval_s": _num, "ncpu": _int,
        "cpu_pct": {"type": "object", "additionalProperties": {"type": "number", "minimum": 0,
                                                              "maximum": 100}},
        "scope_cpu": {"type": "number", "minimum": 0},
        "load": {"type": "array", "items": _num, "minItems": 3, "maxItems": 3},
        "runnable": _int, "blocked": _int, "ctxsw_per_s": _int,
        "migrations_per_s": {"type": ["integer", "null"], "minimum": 0},
        "forks_per_s": {"type": "number", "minimum": 0},
        "nprocs": _int, "busy_procs": _int,
        "psi": {"type": "object", "additionalProperties": _psi},
        "mem": {"type": "object", "required": ["total_mb", "avail_pct"]},
        "top": {"type": "array", "maxItems": 5, "items": {
            "type": "object", "required": ["pid", "comm", "cpu", "thr", "pat", "vcs", "ics"],
            "properties": {"pid": _int, "comm": _str, "cpu": {"type": "number", "minimum": 0},
                           "thr": _int, "vcs": _int, "ics": _int, "cmd": _str,
                           "pat": {"enum": ["cpu-bound", "sleeping", "interactive", "mixed"]}}}},
        "cgroups": {"type": "array", "maxItems": 3, "items": {
            "type": "object", "required": ["path", "cpu"]}},
        "character": {"type": "string", "minLength": 3},
    },
}

RUNQLAT: dict[str, Any] = {
    "type": "object",
    "required": ["probe", "seconds", "samples", "hist_us_log2", "p50_us", "p90_us", "p99_us",
                 "comms_seen", "comms"],
    "properties": {
        "probe": {"const": "runqlat"}, "seconds": _num, "samples": _int,
        "hist_us_log2": {"type": "array", "items": _int, "maxItems": 27},
        "p50_us": {"type": ["number", "null"]}, "p90_us": {"type": ["number", "null"]},
        "p99_us": {"type": ["number", "null"]}, "comms_seen": _int,
        "comms": {"type": "array", "maxItems": 10, "items": {
            "type": "object",
            "required": ["comm", "runtime_ms", "wait_ms", "avg_wait_us", "max_wait_us", "runs"],
            "properties": {"comm": _str, "runs": _int}}},
    },
}

PERF_STAT: dict[str, Any] = {
    "type": "object", "required": ["probe", "seconds", "scope", "counters", "ipc"],
    "properties": {"probe": {"const": "perf_stat"},
                   "counters": {"type": "object",
                                "additionalProperties": {"type": ["number", "null"]}}},
}

TOP: dict[str, Any] = {
    "type": "object", "required": ["probe", "seconds", "nprocs", "processes"],
    "properties": {"probe": {"const": "top"},
                   "processes": {"type": "array", "maxItems": 100, "items": {
                       "type": "object", "required": ["pid", "comm", "cpu", "state", "cmd"]}}},
}

# Size bounds (compact JSON, bytes) the tests hold every output to.
MAX_BYTES = {"tier1": 2048, "runqlat": 4096, "perf_stat": 1024, "top": 16384}
