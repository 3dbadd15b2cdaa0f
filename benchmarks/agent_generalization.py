"""Does sched-agent generalize? The agent's choice against EEVDF and an oracle, per workload.

    .venv/bin/python benchmarks/agent_generalization.py [--workloads g-a,g-b | --suite general]
        [--rounds 8] [--screen 3] [--top 3] [--verifier quick]
    .venv/bin/python benchmarks/agent_generalization.py --report     # merge what was run

For each workload (one at a time; each writes results/generalization/<name>.json, so a run
can be cut short and resumed, and several runs merged):

1. **the agent**: a fresh daemon (vm target, auto mode, the built-in backend, its default
   search over the whole library) runs one episode; its final choice is what it leaves
   deployed. Its runs are the race's, the target's feedback runs and observation's.
2. **the oracle**: every library policy at its defaults and with each numeric tunable at
   its minimum and at its maximum, one at a time (string tunables from what the profile
   names, as the agent sets them); all of them screened ``--screen`` interleaved rounds,
   then the ``--top`` best measured again beside EEVDF and the agent's choice.
3. **the comparison**: EEVDF, the oracle's best and the agent's choice, ``--rounds``
   interleaved runs each in one boot; ratios with 95 % bootstrap intervals, oriented so
   that worse is above 1 whatever the metric's direction.

Targets (issue 21), on the held-out half as on the other: agent/EEVDF never significantly
above 1; agent/oracle upper bound at most 1.10 on at least 80 % of the workloads; the
agent spends at most a third of the oracle's runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from schedcpd.agent.rules import profile_params
from schedcpd.agent.shape import Shape
from schedcpd.analysis.profile import WorkloadProfile
from schedcpd.analysis.stats import compare, median
from schedcpd.bench.episodes import EEVDF, Choice, EpisodeSettings, final_choice, run_episode
from schedcpd.bench.measure import interleaved
from schedcpd.bench.suites import HELD_OUT, get
from schedcpd.bpf.policy import load_library
from schedcpd.demo import say
from schedcpd.lab import workloads

RESULTS = Path(__file__).parent / "results" / "generalization"
TARGET_ORACLE = 1.10


def oracle_choices(profile: dict[str, Any]) -> dict[str, Choice]:
    """Every library policy at its defaults, then each numeric tunable at its extremes."""
    shape = Shape.of(WorkloadProfile.from_dict(profile))
    library = {p.name: p.tunables for p in load_library()}
    out: dict[str, Choice] = {}
    for name, tunables in sorted(library.items()):
        base = profile_params(shape, library, name)
        variants = [dict(base)]
        for t in tunables:
            if t.type in ("bool", "str") or t.min is None or t.max is None:
                continue
            variants += [{**base, t.name: t.min}, {**base, t.name: t.max}]
        for params in variants:
            c = Choice(name, params)
            out.setdefault(c.label(), c)
    return out


def oriented(metric: str, lower: bool, a: list[float], b: list[float]) -> dict[str, float]:
    """a against b: ratio of medians and its 95 % interval, worse above 1."""
    c = compare(metric, b, a, lower_is_better=lower) if lower else \
        compare(metric, a, b, lower_is_better=True)
    return {"ratio": round(c.ratio, 4), "ci_low": round(c.ci_low, 4),
            "ci_high": round(c.ci_high, 4)}


async def one(workload: str, a: argparse.Namespace) -> dict[str, Any]:
    wl = workloads.get(workload)
    t0 = time.monotonic()
    say(f"{workload}: the agent's episode")
    full = await run_episode(workload, EpisodeSettings(feedback_runs=a.feedback_runs,
                                                       verifier=a.verifier,
                                                       timeout_s=a.episode_s),
                             RESULTS / "logs", lambda line: say(line))
    rec = full.get("record") or {}
    agent = final_choice(rec)
    feedback_runs = sum(int((it.get("feedback") or {}).get("n_candidate") or 0)
                        for it in rec.get("iterations") or [])
    agent_runs = int(rec.get("lab_runs") or 0) + feedback_runs + len(rec.get("baseline") or [])
    agent_s = time.monotonic() - t0

    say(f"{workload}: the oracle's screening")
    t1 = time.monotonic()
    pool = oracle_choices(rec.get("profile") or {"description": workload})
    screen = await interleaved(workload, pool, a.screen)
    def med(label: str) -> float:
        xs = screen.values.get(label) or []
        if not xs:
            return float("inf")
        m = median(xs)
        return m if wl.lower_is_better else -m
    top = sorted((lb for lb in pool if screen.values.get(lb)), key=med)[:a.top]
    oracle_runs = sum(len(v) for k, v in screen.values.items() if k != EEVDF)

    say(f"{workload}: EEVDF, the oracle's {len(top)} best and the agent's choice, "
        f"{a.rounds} rounds")
    final = {"agent": agent, **{f"oracle{i}": pool[lb] for i, lb in enumerate(top)}}
    got = await interleaved(workload, final, a.rounds)
    oracle_runs += sum(len(got.values.get(pool[lb].label()) or []) for lb in top)
    best = min(top, key=lambda lb: (median(got.values.get(lb) or [float("inf")])
                                   * (1 if wl.lower_is_better else -1)))
    ours = got.values.get(agent.label()) or []
    out = {"workload": workload, "held_out": workload in HELD_OUT, "metric": wl.metric,
           "lower_is_better": wl.lower_is_better, "agent": agent.label(),
           "oracle": best, "stop_reason": rec.get("stop_reason", ""),
           "agent_runs": agent_runs, "oracle_runs": oracle_runs,
           "agent_lab_s": round(agent_s, 1), "oracle_lab_s": round(time.monotonic() - t1, 1),
           "samples": got.values, "failures": screen.failures + got.failures,
           "screen": {k: v for k, v in screen.values.items()}}
    if ours and got.values.get(EEVDF) and got.values.get(best):
        out["agent_vs_eevdf"] = oriented(wl.metric, wl.lower_is_better, ours,
                                         got.values[EEVDF])
        out["agent_vs_oracle"] = oriented(wl.metric, wl.lower_is_better, ours,
                                          got.values[best])
    return out


def report(results: list[dict[str, Any]]) -> str:
    rows = ["| workload | held out | agent | oracle | agent/EEVDF [95% CI] | "
            "agent/oracle [95% CI] | runs agent/oracle |", "|---|---|---|---|---|---|---|"]
    for r in sorted(results, key=lambda r: (r["held_out"], r["workload"])):
        e, o = r.get("agent_vs_eevdf"), r.get("agent_vs_oracle")
        def fmt(x: dict[str, float] | None) -> str:
            return f"{x['ratio']:.3f} [{x['ci_low']:.3f}, {x['ci_high']:.3f}]" if x else "n/a"
        rows.append(f"| {r['workload']} | {'yes' if r['held_out'] else 'no'} | {r['agent']} | "
                    f"{r['oracle']} | {fmt(e)} | {fmt(o)} | "
                    f"{r['agent_runs']}/{r['oracle_runs']} |")
    for part, keep in (("developed on", False), ("held out", True)):
        rs = [r for r in results if r["held_out"] is keep and r.get("agent_vs_oracle")]
        if not rs:
            continue
        worse = [r["workload"] for r in rs if r["agent_vs_eevdf"]["ci_low"] > 1.0]
        near = sum(r["agent_vs_oracle"]["ci_high"] <= TARGET_ORACLE for r in rs)
        runs = sum(r["agent_runs"] for r in rs) / max(1, sum(r["oracle_runs"] for r in rs))
        rows.append(f"\n{part}: {len(rs)} workloads; significantly worse than EEVDF: "
                    f"{', '.join(worse) or 'none'}; agent/oracle upper bound <= "
                    f"{TARGET_ORACLE}: {near}/{len(rs)} ({near / len(rs):.0%}, target 80%); "
                    f"runs agent/oracle {runs:.2f} (target <= 0.33)")
    return "\n".join(rows)


def chart(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rs = [r for r in sorted(results, key=lambda r: (r["held_out"], r["workload"]))
          if r.get("agent_vs_eevdf")]
    if not rs:
        return
    fig, ax = plt.subplots(figsize=(max(6, len(rs) * 0.8), 4))
    for i, r in enumerate(rs):
        for dx, key, color in ((-0.15, "agent_vs_eevdf", "tab:blue"),
                               (0.15, "agent_vs_oracle", "tab:orange")):
            x = r[key]
            ax.errorbar(i + dx, x["ratio"], yerr=[[x["ratio"] - x["ci_low"]],
                                                  [x["ci_high"] - x["ratio"]]],
                        fmt="o", color=color, label=key.replace("_", " ") if i == 0 else None)
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.axhline(TARGET_ORACLE, color="tab:orange", lw=0.8, ls="--")
    ax.set_xticks(range(len(rs)),
                  [r["workload"] + (" *" if r["held_out"] else "") for r in rs],
                  rotation=45, ha="right")
    ax.set_ylabel("ratio (worse above 1)")
    ax.set_title("sched-agent on unseen workloads (* held out)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def merged() -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(RESULTS.glob("g-*.json"))]


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", default="general")
    ap.add_argument("--workloads", help="comma-separated names (default: the suite's)")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--screen", type=int, default=3)
    ap.add_argument("--top", type=int, default=3)
    ap.add_argument("--feedback-runs", type=int, default=3)
    ap.add_argument("--verifier", default="quick", choices=("quick", "full"))
    ap.add_argument("--episode-s", type=float, default=1800.0)
    ap.add_argument("--report", action="store_true", help="only merge and report")
    a = ap.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    if not a.report:
        names = a.workloads.split(",") if a.workloads else list(get(a.suite).workloads)
        for name in names:
            res = await one(name, a)
            (RESULTS / f"{name}.json").write_text(json.dumps(res, indent=1))
            say(f"{name}: agent {res['agent']}, oracle {res['oracle']}, "
                f"vs EEVDF {res.get('agent_vs_eevdf')}, vs oracle {res.get('agent_vs_oracle')}")
    results = merged()
    print(report(results))
    chart(results, RESULTS / "generalization.png")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
