"""The daemon's tables (store migration 3): proposals, deployments, audit log, settings.

Kept apart from records.py so the store can list it without importing the daemon.
"""

DAEMON_TABLES = """
CREATE TABLE proposals (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    policy TEXT NOT NULL,
    params TEXT NOT NULL,            -- JSON object
    object_sha256 TEXT NOT NULL,
    object_path TEXT NOT NULL,       -- a copy under the state directory
    token TEXT NOT NULL,
    rationale TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN
        ('pending', 'approved', 'rejected', 'expired', 'deployed', 'failed')),
    decided_by TEXT NOT NULL DEFAULT '',
    decided_at REAL,
    note TEXT NOT NULL DEFAULT '',
    expires_at REAL
);
CREATE INDEX proposals_status ON proposals(status, created_at);
CREATE TABLE deployments (
    id INTEGER PRIMARY KEY,
    proposal_id TEXT REFERENCES proposals(id),
    policy TEXT NOT NULL,
    params TEXT NOT NULL,
    object_sha256 TEXT NOT NULL,
    object_path TEXT NOT NULL,
    token TEXT NOT NULL,
    target TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN
        ('attaching', 'canary', 'good', 'rolled_back', 'failed', 'stopped', 'interrupted')),
    cause TEXT NOT NULL DEFAULT '',
    baseline REAL,
    started_at REAL NOT NULL,
    ended_at REAL
);
CREATE INDEX deployments_state ON deployments(state);
CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    action TEXT NOT NULL,
    actor TEXT NOT NULL,             -- "uid 1000 (:1.42)", "daemon", "canary"
    subject TEXT NOT NULL,
    reason TEXT NOT NULL,
    details TEXT NOT NULL            -- JSON object
);
CREATE INDEX audit_at ON audit(at);
-- Verdicts already paid for: an identical object with identical parameters on the same
-- kernel is not verified twice while its token is valid.
CREATE TABLE verified_objects (
    object_sha256 TEXT NOT NULL,
    params TEXT NOT NULL,            -- canonical JSON
    kernel TEXT NOT NULL,
    policy TEXT NOT NULL,
    token TEXT NOT NULL,
    object_path TEXT NOT NULL,
    summary TEXT NOT NULL,
    verified_at REAL NOT NULL,
    PRIMARY KEY (object_sha256, params, kernel)
);
CREATE TABLE daemon_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

# Store migration 4: sched-agent's episodes, with what each one spent (its budgets).
EPISODE_TABLES = """
CREATE TABLE episodes (
    id TEXT PRIMARY KEY,
    target TEXT NOT NULL,            -- the request's words
    backend TEXT NOT NULL,
    state TEXT NOT NULL,             -- running, proposed, deployed, no_change, failed, ...
    detail TEXT NOT NULL DEFAULT '',
    stop_reason TEXT NOT NULL DEFAULT '',
    started_at REAL NOT NULL,
    ended_at REAL,
    iterations INTEGER NOT NULL DEFAULT 0,
    wall_s REAL NOT NULL DEFAULT 0,
    llm_calls INTEGER NOT NULL DEFAULT 0,
    tokens INTEGER NOT NULL DEFAULT 0,
    cost REAL NOT NULL DEFAULT 0,
    record TEXT NOT NULL DEFAULT '{}' -- JSON: the whole episode record
);
CREATE INDEX episodes_started ON episodes(started_at);
"""
