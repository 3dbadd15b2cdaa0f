"""Every policy against EEVDF on real workloads, interleaved, with confidence intervals.

    .venv/bin/python benchmarks/policies.py [--rounds 3] [--build-rounds 2]
        [--workloads longtail,latency,build] [--policies ljf,batch,...]

Each round is one lab boot that runs EEVDF (no scheduler attached: the kernel's default)
and every policy once on a workload, in an order rotated from round to round, so the
machine's noise hits all alike. For each policy and workload it prints the median and the
ratio to EEVDF measured in the same run, with a 95 % bootstrap interval
(schedcpd.analysis.stats.compare), and saves JSON and a PNG chart under
benchmarks/results/. For the long-tail workload it also reports the distance to the lower
bound max(total CPU work / CPUs, longest job) and checks the longest-job-first target:
at least 15 % shorter makespan than EEVDF and within 10 % of the bound.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
from pathlib import Path

from schedcpd.analysis.stats import compare
from schedcpd.bpf.policy import load_library
from schedcpd.bpf.scheduler import prepare
from schedcpd.lab import run_steps, workloads

RESULTS = Path(__file__).parent / "results"
EEVDF = "eevdf"
# Tunables set the way the planner would set them for each workload: the long-tail job is
# named (comm), as the built-in planner does from the profile's top process.
TUNED = {("longtail", "ljf"): {"long_comms": workloads.LONG_COMM}}


async def measure(workload: str, names: list[str], rounds: int) -> dict[str, list[float]]:
    wl = workloads.get(workload)
    library = {p.name: p for p in load_library()}
    samples: dict[str, list[float]] = {n: [] for n in [EEVDF, *names]}
    bounds: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        loads = {n: prepare(library[n], TUNED.get((workload, n)), Path(tmp) / n)
                 for n in names}
        order = [EEVDF, *names]
        for r in range(rounds):
            k = r % len(order)
            this = order[k:] + order[:k]
            steps = [wl.step(None if n == EEVDF else loads[n]) for n in this]
            for name, res in zip(this, await run_steps(steps), strict=True):
                if res.ok and (name == EEVDF or (res.attached and not res.ejected)):
                    samples[name].append(wl.measure(res))
                    if workload == "longtail":
                        bounds.append(workloads.details(res.stdout)["lower_bound_s"])
                else:
                    print(f"  {workload}/{name} round {r}: failed: {res.summary()}")
            print(f"  {workload}: round {r + 1}/{rounds} done", flush=True)
    if bounds:
        samples["_lower_bound"] = bounds
    return samples


def report(workload: str, samples: dict[str, list[float]]) -> dict[str, object]:
    wl = workloads.get(workload)
    base = samples[EEVDF]
    out: dict[str, object] = {"metric": wl.metric, "unit": wl.unit, "eevdf": base,
                              "tuned": {n: p for (w, n), p in TUNED.items() if w == workload}}
    print(f"\n{workload} ({wl.metric}, {wl.unit}; EEVDF median {statistics.median(base):.3f})")
    for name, vals in samples.items():
        if name in (EEVDF, "_lower_bound") or not vals:
            continue
        c = compare(wl.metric, base, vals, lower_is_better=wl.lower_is_better)
        verdict = "better" if c.better else "worse" if c.worse else "no significant change"
        print(f"  {name:14s} median {c.candidate_median:9.3f}  ratio {c.ratio:5.3f} "
              f"[{c.ci_low:5.3f}, {c.ci_high:5.3f}]  n={c.n_candidate}  {verdict}")
        out[name] = {**c.as_dict(), "samples": vals}
    if "_lower_bound" in samples:
        lb = statistics.median(samples["_lower_bound"])
        out["lower_bound_s"] = lb
        if samples.get("ljf"):
            ljf = statistics.median(samples["ljf"])
            cut = 1 - ljf / statistics.median(base)
            to_bound = ljf / lb - 1
            ok = cut >= 0.15 and to_bound <= 0.10
            out["ljf_target"] = {"makespan_cut": cut, "above_lower_bound": to_bound,
                                 "met": ok}
            print(f"  ljf: makespan {cut:.1%} shorter than EEVDF (target >= 15%), "
                  f"{to_bound:.1%} above the lower bound {lb:.3f} s (target <= 10%): "
                  f"{'met' if ok else 'NOT met'}")
    return out


def chart(results: dict[str, dict[str, object]], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 4), squeeze=False)
    for ax, (workload, res) in zip(axes[0], results.items(), strict=True):
        names = [n for n, v in res.items() if isinstance(v, dict) and "ratio" in v]
        ratios = [res[n]["ratio"] for n in names]  # type: ignore[index]
        lo = [r - res[n]["ci_low"] for n, r in zip(names, ratios, strict=True)]  # type: ignore[index]
        hi = [res[n]["ci_high"] - r for n, r in zip(names, ratios, strict=True)]  # type: ignore[index]
        ax.barh(names, ratios, xerr=[lo, hi], color="tab:blue")
        ax.axvline(1.0, color="black", linewidth=1)
        ax.set_title(f"{workload}: {res['metric']} / EEVDF (lower is better)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


async def main(args: argparse.Namespace) -> None:
    names = args.policies.split(",") if args.policies else [p.name for p in load_library()]
    results: dict[str, dict[str, object]] = {}
    for workload in args.workloads.split(","):
        rounds = args.build_rounds if workload == "build" and args.build_rounds else args.rounds
        results[workload] = report(workload, await measure(workload, names, rounds))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "policies.json").write_text(json.dumps(results, indent=1) + "\n")
    chart(results, RESULTS / "policies.png")
    print(f"\nsaved {RESULTS / 'policies.json'} and {RESULTS / 'policies.png'}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--build-rounds", type=int, default=0,
                    help="rounds for the build workload (default: --rounds); a build is slow")
    ap.add_argument("--workloads", default="longtail,latency,build")
    ap.add_argument("--policies", default="", help="comma-separated (default: the library)")
    asyncio.run(main(ap.parse_args()))
