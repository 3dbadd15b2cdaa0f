"""The paper's experiments in the lab: `schedcpctl bench SUITE` from a checkout.

    .venv/bin/python benchmarks/bench.py batch [--rounds 3] [--feedback-runs 3] ...

Same options as `schedcpctl bench` (schedcpd/bench/): results go to benchmarks/results/.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from schedcpd.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
