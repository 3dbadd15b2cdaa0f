"""The benchmark's numbers: ratios with confidence intervals, the table and the charts.

Pure: it reads samples and episode costs and writes nothing but the files it is asked for.
Ratios are candidate / EEVDF medians in the metric's own direction (lower is better for
every workload here) with the 95 % bootstrap interval of ``analysis.stats.compare``; a
choice is called better or worse only when that interval excludes 1, and a regression is
reported as one. For long-tail batches, ``vs_lower_bound`` divides each median by the
median lower bound max(longest task's CPU time, total CPU time / CPUs): 1.0 is the best
any scheduler could do.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from schedcpd.analysis.stats import StatsError, compare
from schedcpd.bench.episodes import EEVDF, Choice

ROLES = ("first", "final")  # the agent's first choice, its choice after the iterations
# Extra schedulers a run may measure beside the agent's choices (not in the summary).
EXTRAS = ("ljf_unnamed",)
ROLE_TITLE = {"first": "agent, first choice", "final": "agent, after the iterations",
              "ljf_unnamed": "ljf without names (longest-runtime mode)"}
ROLE_COLOR = {"first": "tab:orange", "final": "tab:blue", "ljf_unnamed": "tab:grey"}


def verdict(c: Mapping[str, Any]) -> str:
    if c.get("better"):
        return "better"
    if c.get("worse"):
        return "REGRESSION"
    return "no significant change"


def analyse(metric: str, lower_is_better: bool, values: Mapping[str, Sequence[float]],
            choices: Mapping[str, Choice],
            lower_bounds: Mapping[str, Sequence[float]] | None = None) -> dict[str, Any]:
    """One workload: each role's comparison against EEVDF, and the distance to the bound.

    The bound that counts is EEVDF's (the work as the baseline did it); each scheduler's
    own bound is kept too, since under TCG the work itself shrinks with fewer switches."""
    base = list(values.get(EEVDF, []))
    out: dict[str, Any] = {"metric": metric, "lower_is_better": lower_is_better,
                           "eevdf": {"median": _median(base), "samples": base}}
    for role, choice in choices.items():
        vals = list(values.get(choice.label(), []))
        row: dict[str, Any] = {"policy": choice.policy, "params": dict(choice.params),
                               "label": choice.label(), "samples": vals,
                               "median": _median(vals)}
        try:
            c = compare(metric, base, vals, lower_is_better=lower_is_better)
            row.update(c.as_dict())
            row["gain"] = c.gain
            row["verdict"] = verdict(row)
        except StatsError as exc:
            row["verdict"] = f"not measured: {exc}"
        out[role] = row
    own = {k: statistics.median(v) for k, v in (lower_bounds or {}).items() if v}
    if own.get(EEVDF):
        lb = own[EEVDF]
        out["lower_bound"] = lb
        out["lower_bound_by_scheduler"] = own
        out["vs_lower_bound"] = {name: (r["median"] / lb if r.get("median") else None)
                                 for name, r in [("eevdf", out["eevdf"]),
                                                 *[(k, out[k]) for k in choices]]}
    return out


def _median(vals: Sequence[float]) -> float | None:
    return statistics.median(vals) if vals else None


def summarize(workloads: Mapping[str, Mapping[str, Any]], target_gain: float | None,
              roles: Sequence[str] = ROLES) -> dict[str, Any]:
    """Across a suite: mean gain per role (arithmetic, as the paper averages, and the
    geometric mean of the ratios), the regressions, and whether the target held."""
    out: dict[str, Any] = {}
    for role in roles:
        rows = [(name, w[role]) for name, w in workloads.items() if "ratio" in w.get(role, {})]
        if not rows:
            continue
        ratios = [float(r["ratio"]) for _, r in rows]
        out[role] = {
            "workloads": len(rows),
            "mean_gain": statistics.fmean(float(r["gain"]) for _, r in rows),
            "geomean_ratio": math.exp(statistics.fmean(math.log(x) for x in ratios)),
            "better": [n for n, r in rows if r.get("better")],
            "regressions": [n for n, r in rows if r.get("worse")],
        }
        if target_gain is not None:
            out[role]["target_gain"] = target_gain
            out[role]["target_met"] = (out[role]["mean_gain"] >= target_gain
                                       and not out[role]["regressions"])
    return out


def _fmt(x: float | None, nd: int = 3) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


def _ratio_cell(r: Mapping[str, Any]) -> str:
    if "ratio" not in r:
        return str(r.get("verdict", "-"))
    mark = {"better": " better", "REGRESSION": " **worse**"}.get(str(r["verdict"]), " (n.s.)")
    return f"{r['ratio']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]{mark}"


def markdown(result: Mapping[str, Any]) -> str:
    """The suite's table: per workload the medians, each role's ratio to EEVDF with its
    interval and verdict, the distance to the lower bound, and the control-plane cost."""
    wls: Mapping[str, Mapping[str, Any]] = result["workloads"]
    lines = [f"### `{result['suite']}`: {result.get('paper', '')}", "",
             "| workload | metric | EEVDF median | agent's first choice | ratio to EEVDF "
             "[95% CI] | after the iterations | ratio to EEVDF [95% CI] | median / lower "
             "bound (EEVDF, first, final) | iterations: why the episode stopped | control "
             "plane: s per iteration (LLM calls, tokens) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, w in wls.items():
        ep = w.get("episode") or {}
        cp = ", ".join(_fmt(it["control_plane_s"], 1) for it in ep.get("iterations", []))
        vs = w.get("vs_lower_bound")
        bound = (" / ".join(_fmt(vs.get(k)) for k in ("eevdf", "first", "final"))
                 if vs else "-")
        first, final = w.get("first", {}), w.get("final", {})
        lines.append(
            f"| {name} | {w['metric']} | {_fmt(w['eevdf']['median'])} "
            f"(n={len(w['eevdf']['samples'])}) | {first.get('label', '-')} | "
            f"{_ratio_cell(first)} | {final.get('label', '-')} | {_ratio_cell(final)} | "
            f"{bound} | {len(ep.get('iterations', []))}: {ep.get('stop_reason', '-')} | "
            f"{cp or '-'} ({ep.get('llm_calls', 0)}, {ep.get('tokens', 0)}) |")
    for role in EXTRAS:
        rows = [(n, w[role]) for n, w in wls.items() if role in w]
        if rows:
            lines += ["", f"{ROLE_TITLE[role]}, measured beside them: " + "; ".join(
                f"{n} {_ratio_cell(r)}" for n, r in rows)]
    summ = result.get("summary") or {}
    lines.append("")
    for role in ROLES:
        s = summ.get(role)
        if not s:
            continue
        tail = ""
        if "target_met" in s:
            tail = (f"; target {s['target_gain']:.0%} with no regression: "
                    f"{'met' if s['target_met'] else 'NOT met'}")
        lines.append(f"- {ROLE_TITLE[role]}: mean gain {s['mean_gain']:.1%} over "
                     f"{s['workloads']} workload(s) (geometric mean ratio "
                     f"{s['geomean_ratio']:.3f}); significantly better: "
                     f"{', '.join(s['better']) or 'none'}; regressions: "
                     f"{', '.join(s['regressions']) or 'none'}{tail}")
    return "\n".join(lines) + "\n"


def charts(result: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """``bench-<suite>.png``: each role's ratio to EEVDF with its interval (and, for
    long-tail batches, the ratio of the lower bound of EEVDF's runs: under TCG a batch's
    CPU time depends on its schedule, so a scheduler can end below it); and
    ``bench-<suite>-cost.png``: control-plane seconds per iteration of each episode."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    suite, wls = result["suite"], result["workloads"]
    names = list(wls)
    out_dir.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(names) + 2), 4.5))
    roles = [r for r in (*ROLES, *EXTRAS) if any(r in w for w in wls.values())]
    width = 0.8 / len(roles)
    for k, role in enumerate(roles):
        xs, ys, lo, hi = [], [], [], []
        for i, n in enumerate(names):
            r = wls[n].get(role, {})
            if "ratio" in r:
                xs.append(i + (k - (len(roles) - 1) / 2) * width)
                ys.append(r["ratio"])
                lo.append(max(0.0, r["ratio"] - r["ci_low"]))
                hi.append(max(0.0, r["ci_high"] - r["ratio"]))
        ax.bar(xs, ys, width, yerr=[lo, hi], capsize=3, label=ROLE_TITLE[role],
               color=ROLE_COLOR[role])
    bound = [(i, wls[n]["lower_bound"] / wls[n]["eevdf"]["median"]) for i, n in enumerate(names)
             if wls[n].get("lower_bound") and wls[n]["eevdf"].get("median")]
    if bound:
        ax.scatter([b[0] for b in bound], [b[1] for b in bound], marker="_", s=900,
                   color="black", label="lower bound of EEVDF's runs", zorder=3)
    ax.axhline(1.0, color="grey", linewidth=1, linestyle="--")
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right")
    ax.set_ylabel(f"{_metric_of(wls)} / EEVDF (lower is better)")
    ax.set_title(f"schedcpctl bench {suite}: median ratio to EEVDF, 95% CI")
    ax.set_ylim(0, max(1.3, ax.get_ylim()[1]))
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    ratio_png = out_dir / f"bench-{suite}.png"
    fig.savefig(ratio_png, dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(names) + 2), 4))
    labelled: set[int] = set()
    for i, n in enumerate(names):
        bottom = 0.0
        for j, it in enumerate((wls[n].get("episode") or {}).get("iterations", [])):
            ax.bar(i, it["control_plane_s"], 0.6, bottom=bottom, color=plt.get_cmap("tab10")(j),
                   label=None if j in labelled else f"iteration {j + 1}")
            labelled.add(j)
            bottom += it["control_plane_s"]
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right")
    ax.set_ylabel("control-plane seconds (workload runs excluded)")
    ax.set_title(f"schedcpctl bench {suite}: control-plane cost per episode")
    if labelled:
        ax.legend(fontsize=8)
    fig.tight_layout()
    cost_png = out_dir / f"bench-{suite}-cost.png"
    fig.savefig(cost_png, dpi=100)
    plt.close(fig)
    return [ratio_png, cost_png]


def _metric_of(wls: Mapping[str, Mapping[str, Any]]) -> str:
    metrics = {str(w["metric"]) for w in wls.values()}
    return metrics.pop() if len(metrics) == 1 else "metric"
