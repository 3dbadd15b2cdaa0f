"""`schedcpctl policies QUERY` and `schedcpctl show NAME`: the Policy Repository from the
command line. Both use the store under the state directory (SCHEDCP_STATE_DIR) and sync the
policy library into it first."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import textwrap
from collections.abc import Awaitable, Callable
from typing import Any

from schedcpd.cli_common import EXIT_FAILED, EXIT_OK, Subparsers


async def _with_repo(fn: Callable[[Any], Awaitable[int]]) -> int:
    from schedcpd.repository import Repository
    from schedcpd.store import Store

    async with await Store.open() as store:
        repo = await Repository.open(store)
        return await fn(repo)


def _first_line(text: str) -> str:
    return " ".join(text.split())[:100]


def _policies(args: argparse.Namespace) -> int:
    from schedcpd.repository import RepositoryError, SearchFilters

    query = " ".join(args.query)

    async def run(repo: Any) -> int:
        statuses = frozenset(args.status) if args.status else SearchFilters().statuses
        hits = await repo.search(query, SearchFilters(statuses=statuses,
                                                      tags=frozenset(args.tag)), k=args.k)
        if args.json:
            print(json.dumps({"query": query, "hits": [h.as_json() for h in hits]}))
            return EXIT_OK
        if not hits:
            print("no policy matches")
        for i, h in enumerate(hits, 1):
            print(f"{i}. {h.name:<16} score {h.score:.3f}  ({h.status}, {h.provenance})")
            print(f"   {_first_line(h.description)}")
            print(f"   matched: {_first_line(h.matched)}")
        return EXIT_OK

    try:
        return asyncio.run(_with_repo(run))
    except RepositoryError as exc:
        print(f"policies: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _show(args: argparse.Namespace) -> int:
    from schedcpd.repository import RepositoryError

    async def run(repo: Any) -> int:
        rec = await repo.get(args.name)
        runs = await repo.runs(args.name, limit=10)
        changes = await repo.status_changes(args.name)
        if args.json:
            d = rec.as_json(with_source=args.source)
            d["recent_runs"] = [r.__dict__ for r in runs]
            d["status_changes"] = [c.__dict__ for c in changes]
            print(json.dumps(d, default=str))
            return EXIT_OK
        _print_record(rec, runs, changes, args.source)
        return EXIT_OK

    try:
        return asyncio.run(_with_repo(run))
    except RepositoryError as exc:
        print(f"show: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _print_record(rec: Any, runs: list[Any], changes: list[Any], source: bool) -> None:
    wrap = textwrap.TextWrapper(width=96, initial_indent="  ", subsequent_indent="  ")
    print(f"{rec.name}  ({rec.status}, {rec.provenance}"
          f"{', from ' + rec.parent if rec.parent else ''})")
    print(wrap.fill(" ".join(rec.description.split())))
    print(f"algorithm:\n{wrap.fill(' '.join(rec.algorithm.split()))}")
    print("workloads:\n" + "\n".join(f"  - {w}" for w in rec.workloads))
    if rec.avoid:
        print("avoid:\n" + "\n".join(f"  - {w}" for w in rec.avoid))
    print(f"tags: {', '.join(rec.tags)}   kernel features: {', '.join(rec.kernel_features)}")
    for t in rec.tunables:
        print(f"  {t.name} = {t.default!r}  ({t.range_text()}) {t.description}")
    print(f"source sha256 {rec.source_hash[:16]}  content {rec.content_hash[:16]}"
          f"{'  object ' + rec.object_hash[:16] if rec.object_hash else ''}")
    for r in runs:
        ratio = f"ratio {r.ratio:.3f}" if r.ratio is not None else ""
        print(f"  run {r.id}: {r.outcome} {r.metric} {ratio} on {r.profile_fingerprint}")
    for c in changes[-5:]:
        print(f"  {c.from_status or '-'} -> {c.to_status} by {c.actor}: {c.reason}")
    if source:
        print(rec.source)


def register(sub: Subparsers) -> None:
    p = sub.add_parser("policies", help="search the policy repository by meaning and keyword")
    p.add_argument("query", nargs="+", help="what the workload needs, in words")
    p.add_argument("-k", type=int, default=5, help="how many results (default 5)")
    p.add_argument("--status", action="append", default=[],
                   choices=["candidate", "verified", "promoted", "retired"],
                   help="only these statuses (repeatable; default all but retired)")
    p.add_argument("--tag", action="append", default=[], help="require this tag (repeatable)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_policies)
    s = sub.add_parser("show", help="show one policy of the repository")
    s.add_argument("name")
    s.add_argument("--source", action="store_true", help="print the BPF source too")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=_show)
