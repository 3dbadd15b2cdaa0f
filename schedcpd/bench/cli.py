"""`schedcpctl bench SUITE`: run a suite and write its results (a thin adapter)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

from schedcpd.bench import report, suites
from schedcpd.bench.episodes import EpisodeSettings
from schedcpd.bench.run import BenchSettings, run_suite, write
from schedcpd.cli_common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Subparsers

DEFAULT_OUT = Path(__file__).resolve().parent.parent.parent / "benchmarks" / "results"


def say(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')}  {text}", flush=True)


def run(args: argparse.Namespace) -> int:
    try:
        suite = suites.get(args.suite)
    except ValueError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return EXIT_USAGE
    names = args.workloads.split(",") if args.workloads else list(suite.workloads)
    unknown = [n for n in names if n not in suite.workloads]
    if unknown:
        print(f"bench: not in the {suite.name} suite: {', '.join(unknown)}", file=sys.stderr)
        return EXIT_USAGE
    if args.report_only:
        return _report_only(suite.name, args.out)
    s = BenchSettings(rounds=args.rounds, unnamed_ljf=args.unnamed_ljf,
                      episode=EpisodeSettings(iterations=args.iterations,
                                              feedback_runs=args.feedback_runs,
                                              verifier=args.verifier))
    result = asyncio.run(run_suite(suite, names, s, args.out, say, resume=args.resume))
    print(report.markdown(result), flush=True)
    say(f"wrote {args.out}/bench-{suite.name}.json, .md and charts in {result['wall_s']:.0f} s")
    return EXIT_OK if result["workloads"] and not result.get("failed") else EXIT_FAILED


def _report_only(suite: str, out: Path) -> int:
    """The table and the charts again, from the suite's JSON (no lab, no daemon)."""
    try:
        result = json.loads((out / f"bench-{suite}.json").read_text())
    except (OSError, ValueError) as exc:
        print(f"bench: no results to report: {exc}", file=sys.stderr)
        return EXIT_FAILED
    for p in write(result, out):
        say(f"wrote {p}")
    print(report.markdown(result), flush=True)
    return EXIT_OK


def register(sub: Subparsers) -> None:
    p = sub.add_parser("bench", help="reproduce the paper's experiments in the lab (batch, "
                                     "latency, build)")
    p.add_argument("suite", help=f"one of {', '.join(suites.SUITES)}")
    p.add_argument("--workloads", default="", help="comma-separated subset of the suite")
    p.add_argument("--rounds", type=int, default=3,
                   help="interleaved rounds per scheduler (default 3)")
    p.add_argument("--iterations", type=int, default=3, help="episode iterations (default 3)")
    p.add_argument("--feedback-runs", type=int, default=3,
                   help="the episode's runs before and after each deployment (default 3)")
    p.add_argument("--verifier", choices=["quick", "full"], default="quick")
    p.add_argument("--unnamed-ljf", action="store_true",
                   help="batch: also measure ljf without names (longest-runtime mode)")
    p.add_argument("--resume", action="store_true",
                   help="keep the workloads already in the suite's results; run the rest")
    p.add_argument("--report-only", action="store_true",
                   help="write the table and charts again from the suite's JSON; run nothing")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results directory")
    p.set_defaults(func=run)
