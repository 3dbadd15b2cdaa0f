"""What the tray shows, worked out from what the daemon says on D-Bus (pure, no Qt, no bus).

``DaemonSnapshot`` collects the daemon's properties (``State``, ``Mode``, ``ActivePolicy``,
``ActiveSince``, ``PendingProposals``, ``LastError``), its pending proposals and whether it
answers at all; ``present`` turns that into a ``Presentation``: the icon's state, the
tooltip, the menu's lines and which actions make sense. ``notification_for`` says which
signals become desktop notifications, ``history_view`` splits ``History`` entries into what
the history window lists and charts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

# The daemon's states (the State property), plus "offline": no daemon answers.
DAEMON_STATES = ("idle", "optimizing", "proposal_waiting", "deployed", "rolled_back", "error")
OFFLINE = "offline"
ICON_STATES = (*DAEMON_STATES, OFFLINE)
MODES = ("auto", "ask", "observe")

STATE_LABELS = {
    "idle": "idle",
    "optimizing": "optimizing",
    "proposal_waiting": "proposal waiting",
    "deployed": "deployed",
    "rolled_back": "rolled back",
    "error": "error",
    OFFLINE: "daemon not reachable",
}
PROPERTY_NAMES = ("State", "Mode", "ActivePolicy", "ActiveSince", "PendingProposals",
                  "LastError")


@dataclass(frozen=True)
class ProposalItem:
    id: str
    policy: str
    params: str          # "k=v, k=v" or ""
    rationale: str
    created_at: float
    expires_at: float | None

    @property
    def label(self) -> str:
        return f"{self.policy} ({self.params})" if self.params else self.policy


@dataclass(frozen=True)
class Presentation:
    icon: str                          # one of ICON_STATES
    state_label: str                   # "proposal waiting"
    title: str                         # first menu line: "schedcp: deployed"
    tooltip: str
    active: str                        # "fifo since 14:03:12 (2 min ago)"
    mode: str                          # "" when offline
    proposals: tuple[ProposalItem, ...]
    can_act: bool                      # the daemon answers: mutating actions are offered
    can_rollback: bool
    error: str                         # LastError, shown while the state is error

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly, for the UI map the tests read (and for debugging)."""
        return {"icon": self.icon, "state_label": self.state_label, "title": self.title,
                "tooltip": self.tooltip, "active": self.active, "mode": self.mode,
                "proposals": [p.id for p in self.proposals], "can_act": self.can_act,
                "can_rollback": self.can_rollback, "error": self.error}


@dataclass
class DaemonSnapshot:
    """The tray's picture of the daemon, updated from properties, proposals and signals."""

    reachable: bool = False
    properties: dict[str, Any] = field(default_factory=dict)
    proposals: list[dict[str, Any]] = field(default_factory=list)
    target: str = ""
    bus: str = ""

    def set_offline(self) -> None:
        self.reachable = False
        self.properties = {}
        self.proposals = []
        self.target = ""

    def set_properties(self, props: dict[str, Any]) -> None:
        """All properties (from ``GetAll``): the daemon answers."""
        self.reachable = True
        self.properties = {k: v for k, v in props.items() if k in PROPERTY_NAMES}

    def apply_changed(self, changed: dict[str, Any]) -> bool:
        """``PropertiesChanged``; True when the pending proposals must be listed again."""
        self.properties.update({k: v for k, v in changed.items() if k in PROPERTY_NAMES})
        return "PendingProposals" in changed

    def set_proposals(self, proposals: list[dict[str, Any]]) -> None:
        """``ListProposals`` (every status, newest first): the pending ones are kept."""
        self.proposals = [p for p in proposals if p.get("status") == "pending"]

    @property
    def pending(self) -> int:
        return max(int(self.properties.get("PendingProposals") or 0), len(self.proposals))


def icon_state(snap: DaemonSnapshot) -> str:
    """What the icon shows. An error wins (something needs looking at); a proposal waiting
    for a decision comes next even when State says otherwise (after a daemon restart the
    State starts idle while a proposal still waits); then the daemon's own State."""
    if not snap.reachable:
        return OFFLINE
    state = str(snap.properties.get("State") or "idle")
    if state not in DAEMON_STATES:
        state = "idle"
    if state == "error":
        return "error"
    if snap.pending > 0:
        return "proposal_waiting"
    return state


def _params_text(params: Any) -> str:
    if not isinstance(params, dict) or not params:
        return ""
    return ", ".join(f"{k}={v}" for k, v in sorted(params.items()))


def _ago(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s ago"
    if s < 3600:
        return f"{s // 60} min ago"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min ago"
    return f"{s // 86400} d ago"


def when_text(t: float, now: float) -> str:
    """``14:03:12 (2 min ago)``; the date too when it was not today."""
    lt, ln = time.localtime(t), time.localtime(now)
    fmt = "%H:%M:%S" if lt[:3] == ln[:3] else "%Y-%m-%d %H:%M"
    return f"{time.strftime(fmt, lt)} ({_ago(now - t)})"


def active_text(snap: DaemonSnapshot, now: float) -> str:
    policy = str(snap.properties.get("ActivePolicy") or "")
    if not policy:
        return "kernel default scheduler"
    since = float(snap.properties.get("ActiveSince") or 0.0)
    return f"{policy} since {when_text(since, now)}" if since > 0 else policy


def proposal_item(p: dict[str, Any]) -> ProposalItem:
    expires = p.get("expires_at")
    return ProposalItem(id=str(p.get("id", "")), policy=str(p.get("policy", "?")),
                        params=_params_text(p.get("params")),
                        rationale=str(p.get("rationale") or ""),
                        created_at=float(p.get("created_at") or 0.0),
                        expires_at=float(expires) if isinstance(expires, (int, float))
                        and expires else None)


def present(snap: DaemonSnapshot, now: float | None = None) -> Presentation:
    now = time.time() if now is None else now
    icon = icon_state(snap)
    label = STATE_LABELS[icon]
    if not snap.reachable:
        where = f" on the {snap.bus} bus" if snap.bus else ""
        return Presentation(icon=icon, state_label=label, title="schedcp: daemon not reachable",
                            tooltip=f"schedcp: no schedcpd answers{where}; waiting for it",
                            active="", mode="", proposals=(), can_act=False,
                            can_rollback=False, error="")
    active = active_text(snap, now)
    mode = str(snap.properties.get("Mode") or "")
    proposals = tuple(proposal_item(p) for p in snap.proposals)
    error = str(snap.properties.get("LastError") or "") if icon == "error" else ""
    tip = [f"schedcp: {label}", f"active: {active}", f"mode: {mode}"]
    if snap.target:
        tip.append(f"target: {snap.target}")
    if snap.pending:
        tip.append(f"{snap.pending} proposal(s) waiting for a decision")
    if error:
        tip.append(f"error: {error}")
    return Presentation(icon=icon, state_label=label, title=f"schedcp: {label}",
                        tooltip="\n".join(tip), active=active, mode=mode,
                        proposals=proposals, can_act=True,
                        can_rollback=bool(snap.properties.get("ActivePolicy")), error=error)


@dataclass(frozen=True)
class Notification:
    summary: str
    body: str
    urgency: int  # the freedesktop hint: 0 low, 1 normal, 2 critical


def notification_for(signal: str, payload: dict[str, Any]) -> Notification | None:
    """Desktop notifications: a proposal that waits for the user, and a rollback."""
    if signal == "ProposalCreated":
        if payload.get("status", "pending") != "pending":
            return None  # auto mode approves at once; observe mode only recommends
        item = proposal_item(payload)
        body = item.rationale or "verified and waiting for approval"
        return Notification(f"schedcp proposes {item.label}",
                            f"{body}\nApprove or reject it from the schedcp menu.", 1)
    if signal == "RolledBack":
        src, dst = payload.get("from") or "?", payload.get("to") or "default"
        cause = payload.get("cause") or "unknown cause"
        now = "the kernel's default scheduler" if dst == "default" else dst
        return Notification(f"schedcp rolled back {src}", f"cause: {cause}; now running {now}",
                            2 if cause not in ("requested",) else 1)
    return None


# --- the history window ---

@dataclass(frozen=True)
class RunRow:
    policy: str
    metric: str
    before: float | None
    after: float | None
    ratio: float | None
    ci_low: float | None
    ci_high: float | None
    created_at: float


@dataclass(frozen=True)
class DeploymentRow:
    id: int
    policy: str
    params: str
    state: str
    cause: str
    baseline: float | None
    started_at: float
    ended_at: float | None


@dataclass(frozen=True)
class HistoryView:
    runs: tuple[RunRow, ...]           # oldest first (the chart's order)
    deployments: tuple[DeploymentRow, ...]  # newest first
    audit: tuple[dict[str, Any], ...]


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)


def history_view(entries: list[dict[str, Any]]) -> HistoryView:
    """Split ``History`` entries by ``kind``. ``run`` entries (measured before and after)
    may be absent altogether; missing numbers stay None and unknown kinds are ignored."""
    runs: list[RunRow] = []
    deps: list[DeploymentRow] = []
    audit: list[dict[str, Any]] = []
    for e in entries:
        kind = e.get("kind")
        if kind == "run":
            before, after = _num(e.get("baseline_value")), _num(e.get("value"))
            ratio = _num(e.get("ratio"))
            if ratio is None and before and after is not None:
                ratio = after / before
            runs.append(RunRow(str(e.get("policy", "?")), str(e.get("metric", "")), before,
                               after, ratio, _num(e.get("ci_low")), _num(e.get("ci_high")),
                               _num(e.get("created_at")) or 0.0))
        elif kind == "deployment":
            deps.append(DeploymentRow(int(e.get("id") or 0), str(e.get("policy", "?")),
                                      _params_text(e.get("params")), str(e.get("state", "")),
                                      str(e.get("cause") or ""), _num(e.get("baseline")),
                                      _num(e.get("started_at")) or 0.0,
                                      _num(e.get("ended_at")) or None))
        elif kind == "audit":
            audit.append(e)
    runs.sort(key=lambda r: r.created_at)
    deps.sort(key=lambda d: (d.started_at, d.id), reverse=True)
    return HistoryView(tuple(runs), tuple(deps), tuple(audit))


def fmt_num(v: float | None, digits: int = 3) -> str:
    if v is None:
        return "-"
    return f"{v:.{digits}g}"


def chart_bounds(runs: tuple[RunRow, ...]) -> tuple[float, float]:
    """The ratio axis of the chart: it always shows 1.0 (no change) and every interval."""
    vals = [1.0]
    for r in runs:
        vals += [v for v in (r.ratio, r.ci_low, r.ci_high) if v is not None]
    lo, hi = min(vals), max(vals)
    pad = max((hi - lo) * 0.1, 0.05)
    return max(0.0, lo - pad), hi + pad
