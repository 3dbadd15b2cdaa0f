"""`schedcpctl verify` and `schedcpctl verify-token`: the Execution Verifier from a shell."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from schedcpd.cli_common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Subparsers


def parse_params(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ValueError(f"--param {item!r}: expected NAME=VALUE")
        out[key] = value
    return out


def _print_verdict(v: object) -> None:
    from schedcpd.verifier.verdict import Verdict
    assert isinstance(v, Verdict)
    for st in v.stages:
        print(f"{st.stage:8} {'pass' if st.passed else 'FAIL'}  {st.seconds:6.1f} s")
        for f in st.findings:
            print(f"    {f.severity}: {f.message}"
                  + (f" (line {f.source_line})" if f.source_line else ""))
        for ln in st.details.get("log_excerpt", [])[:12]:
            print(f"      | {ln}")
    print(f"verdict: {'PASS' if v.passed else 'FAIL: ' + v.reason()}")
    if v.token:
        print(f"object: {v.object_path}")
        print(f"token: {v.token}")


def _verify(args: argparse.Namespace) -> int:
    from schedcpd.bpf.policy import PolicyError
    from schedcpd.lab.kernel import KernelError
    from schedcpd.lab.vm import LabError
    from schedcpd.verifier import pipeline
    from schedcpd.verifier.dynamic import DynamicSettings, workload

    try:
        params = parse_params(args.param)
        workload(args.workload)
    except ValueError as exc:
        print(f"verify: {exc}", file=sys.stderr)
        return EXIT_USAGE
    src = Path(args.path)
    if not src.is_file():
        print(f"verify: no such file: {src}", file=sys.stderr)
        return EXIT_USAGE
    settings = DynamicSettings(workload=args.workload)
    try:
        v = asyncio.run(pipeline.verify(src, params, settings=settings,
                                        static_only=args.static_only))
    except (KernelError, LabError, PolicyError) as exc:
        print(f"verify: {exc}", file=sys.stderr)
        return EXIT_FAILED
    _print_verdict(v)
    if args.json:
        print(json.dumps(v.as_dict()))
    return EXIT_OK if v.passed else EXIT_FAILED


def _verify_token(args: argparse.Namespace) -> int:
    from schedcpd.verifier.token import TokenError, verify

    try:
        params = parse_params(args.param)
    except ValueError as exc:
        print(f"verify-token: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        claims = verify(args.token, Path(args.object), params, args.kernel)
    except TokenError as exc:
        print(f"verify-token: INVALID: {exc}", file=sys.stderr)
        if args.json:
            print(json.dumps({"valid": False, "reason": str(exc)}))
        return EXIT_FAILED
    print(f"valid: sha256 {claims.sha256[:16]}..., kernel {claims.kernel}, "
          f"verdict {claims.verdict}, params {claims.params}")
    if args.json:
        print(json.dumps({"valid": True, **claims.__dict__}))
    return EXIT_OK


def register(sub: Subparsers) -> None:
    v = sub.add_parser("verify", help="run the Execution Verifier on a scheduler source")
    v.add_argument("path", help="a scheduler source, PATH.bpf.c")
    v.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="a tunable (repeatable); checked against policy.toml for a library "
                        "policy")
    v.add_argument("--workload", default="mixed", help="performance workload (mixed, "
                   "longtail, fork)")
    v.add_argument("--static-only", action="store_true",
                   help="stop after the static and kernel-verifier stages")
    v.add_argument("--json", action="store_true", help="print the verdict as JSON (last line)")
    v.set_defaults(func=_verify)

    t = sub.add_parser("verify-token", help="check a deployment token against an object")
    t.add_argument("token")
    t.add_argument("object", help="the verified object (.bpf.o) the token was issued for")
    t.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    t.add_argument("--kernel", default=None, help="also require this kernel release")
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=_verify_token)
