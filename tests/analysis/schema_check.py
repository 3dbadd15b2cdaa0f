"""Validate an output against its schema and its size bound."""

from __future__ import annotations

import json
from typing import Any

import jsonschema

from schedcpd.analysis import schemas


def check(kind: str, doc: dict[str, Any]) -> int:
    schema = {"tier1": schemas.TIER1, "runqlat": schemas.RUNQLAT,
              "perf_stat": schemas.PERF_STAT, "top": schemas.TOP}[kind]
    jsonschema.validate(doc, schema)
    size = len(json.dumps(doc, separators=(",", ":")).encode())
    assert size <= schemas.MAX_BYTES[kind], f"{kind}: {size} bytes"
    return size
