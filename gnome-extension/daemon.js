// The schedcp indicator's D-Bus link and state logic: no GNOME Shell imports, so gjs can
// run it outside the Shell (tests/desktop/gjs drives it against a real bus and daemon).
//
// It mirrors the tray's schedcpd/tray/model.py: the same states, texts and rules, checked
// against each other by tests/desktop/test_gjs.py.
//
// Only the public API of org.schedcp.Daemon1 is used. Approve, Reject, Rollback and
// SetMode carry ALLOW_INTERACTIVE_AUTHORIZATION (the 0x4 header flag), so for a caller
// that is not privileged the daemon may have polkit ask the user.

import Gio from 'gi://Gio';
import GLib from 'gi://GLib';

export const BUS_NAME = 'org.schedcp.Daemon1';
export const OBJECT_PATH = '/org/schedcp/Daemon1';
export const INTERFACE = 'org.schedcp.Daemon1';
const PROPERTIES = 'org.freedesktop.DBus.Properties';

export const DAEMON_STATES = ['idle', 'optimizing', 'proposal_waiting', 'deployed',
    'rolled_back', 'error'];
export const OFFLINE = 'offline';
export const ICON_STATES = [...DAEMON_STATES, OFFLINE];
export const MODES = ['auto', 'ask', 'observe'];
export const STATE_LABELS = {
    idle: 'idle',
    optimizing: 'optimizing',
    proposal_waiting: 'proposal waiting',
    deployed: 'deployed',
    rolled_back: 'rolled back',
    error: 'error',
    offline: 'daemon not reachable',
};
const PROPERTY_NAMES = ['State', 'Mode', 'ActivePolicy', 'ActiveSince', 'PendingProposals',
    'LastError'];
// A polkit prompt waits for the user: mutating calls may take that long.
const INTERACTIVE_TIMEOUT_MS = 10 * 60 * 1000;
const READ_TIMEOUT_MS = 30 * 1000;

// --- the state model (pure) ---

export function newSnapshot(bus = '') {
    return {reachable: false, properties: {}, proposals: [], target: '', bus};
}

function pick(props) {
    const out = {};
    for (const k of PROPERTY_NAMES) {
        if (k in props)
            out[k] = props[k];
    }
    return out;
}

export function pendingCount(snap) {
    return Math.max(Number(snap.properties.PendingProposals || 0), snap.proposals.length);
}

// An error wins; a proposal waiting for a decision comes next even when State says
// otherwise (after a daemon restart State starts idle while a proposal still waits).
export function iconState(snap) {
    if (!snap.reachable)
        return OFFLINE;
    let state = String(snap.properties.State || 'idle');
    if (!DAEMON_STATES.includes(state))
        state = 'idle';
    if (state === 'error')
        return 'error';
    if (pendingCount(snap) > 0)
        return 'proposal_waiting';
    return state;
}

function pad(n) {
    return String(n).padStart(2, '0');
}

function ago(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    if (s < 60)
        return `${s} s ago`;
    if (s < 3600)
        return `${Math.floor(s / 60)} min ago`;
    if (s < 86400)
        return `${Math.floor(s / 3600)} h ${Math.floor(s % 3600 / 60)} min ago`;
    return `${Math.floor(s / 86400)} d ago`;
}

export function whenText(t, now) {
    const d = new Date(t * 1000), n = new Date(now * 1000);
    const sameDay = d.getFullYear() === n.getFullYear() && d.getMonth() === n.getMonth() &&
        d.getDate() === n.getDate();
    const hms = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
    const text = sameDay ? `${hms}:${pad(d.getSeconds())}`
        : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${hms}`;
    return `${text} (${ago(now - t)})`;
}

export function activeText(snap, now) {
    const policy = String(snap.properties.ActivePolicy || '');
    if (!policy)
        return 'kernel default scheduler';
    const since = Number(snap.properties.ActiveSince || 0);
    return since > 0 ? `${policy} since ${whenText(since, now)}` : policy;
}

function paramsText(params) {
    if (!params || typeof params !== 'object')
        return '';
    return Object.keys(params).sort().map(k => `${k}=${params[k]}`).join(', ');
}

export function proposalItem(p) {
    const params = paramsText(p.params);
    const policy = String(p.policy ?? '?');
    return {
        id: String(p.id ?? ''), policy, params,
        label: params ? `${policy} (${params})` : policy,
        rationale: String(p.rationale || ''),
        createdAt: Number(p.created_at || 0),
    };
}

export function present(snap, now = Date.now() / 1000) {
    const icon = iconState(snap);
    const label = STATE_LABELS[icon];
    if (!snap.reachable) {
        const where = snap.bus ? ` on the ${snap.bus} bus` : '';
        return {
            icon, stateLabel: label, title: 'schedcp: daemon not reachable',
            tooltip: `schedcp: no schedcpd answers${where}; waiting for it`,
            active: '', activePolicy: '', mode: '', proposals: [], canAct: false,
            canRollback: false, error: '',
        };
    }
    const active = activeText(snap, now);
    const mode = String(snap.properties.Mode || '');
    const error = icon === 'error' ? String(snap.properties.LastError || '') : '';
    const pending = pendingCount(snap);
    const tip = [`schedcp: ${label}`, `active: ${active}`, `mode: ${mode}`];
    if (snap.target)
        tip.push(`target: ${snap.target}`);
    if (pending)
        tip.push(`${pending} proposal(s) waiting for a decision`);
    if (error)
        tip.push(`error: ${error}`);
    return {
        icon, stateLabel: label, title: `schedcp: ${label}`, tooltip: tip.join('\n'), active,
        activePolicy: String(snap.properties.ActivePolicy || ''), mode,
        proposals: snap.proposals.map(proposalItem), canAct: true,
        canRollback: Boolean(snap.properties.ActivePolicy), error,
    };
}

export function notificationFor(signal, payload) {
    if (signal === 'ProposalCreated') {
        if ((payload.status ?? 'pending') !== 'pending')
            return null; // auto mode approves at once; observe mode only recommends
        const item = proposalItem(payload);
        const body = item.rationale || 'verified and waiting for approval';
        return {
            summary: `schedcp proposes ${item.label}`,
            body: `${body}\nApprove or reject it from the schedcp menu.`, urgency: 1,
        };
    }
    if (signal === 'RolledBack') {
        const src = payload.from || '?', dst = payload.to || 'default';
        const cause = payload.cause || 'unknown cause';
        const now = dst === 'default' ? "the kernel's default scheduler" : dst;
        return {
            summary: `schedcp rolled back ${src}`, body: `cause: ${cause}; now running ${now}`,
            urgency: cause === 'requested' ? 1 : 2,
        };
    }
    return null;
}

// --- D-Bus ---

// A refused or failed call: kind is the daemon's error name without its prefix
// (PermissionDenied, InvalidArgument, ...), or Unavailable when no daemon answers.
export class DaemonError extends Error {
    constructor(kind, message) {
        super(`${kind}: ${message}`);
        this.kind = kind;
        this.detail = message;
    }
}

const UNREACHABLE = ['org.freedesktop.DBus.Error.ServiceUnknown',
    'org.freedesktop.DBus.Error.NameHasNoOwner', 'org.freedesktop.DBus.Error.NoReply',
    'org.freedesktop.DBus.Error.Disconnected'];

function toDaemonError(e) {
    const remote = e instanceof GLib.Error ? Gio.DBusError.get_remote_error(e) : null;
    if (!remote)
        return new DaemonError('Failed', String(e.message ?? e));
    Gio.DBusError.strip_remote_error(e);
    if (UNREACHABLE.includes(remote))
        return new DaemonError('Unavailable', e.message);
    if (remote === 'org.freedesktop.DBus.Error.AccessDenied')
        return new DaemonError('PermissionDenied', e.message);
    const kind = remote.startsWith('org.schedcp.Error.')
        ? remote.slice('org.schedcp.Error.'.length) : 'Failed';
    return new DaemonError(kind, e.message);
}

function connectBus(spec) {
    return new Promise((resolve, reject) => {
        const done = (_o, res) => {
            try {
                resolve(spec === 'system' || spec === 'session'
                    ? Gio.bus_get_finish(res) : Gio.DBusConnection.new_for_address_finish(res));
            } catch (e) {
                reject(e);
            }
        };
        if (spec === 'system' || spec === 'session') {
            Gio.bus_get(spec === 'system' ? Gio.BusType.SYSTEM : Gio.BusType.SESSION, null,
                done);
        } else {
            Gio.DBusConnection.new_for_address(spec,
                Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT |
                Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, null, null, done);
        }
    });
}

// Keeps a snapshot of the daemon in step over one bus connection; follows the daemon's
// name across restarts and reconnects when the bus connection closes.
// onChange(snapshot) after every change, onSignal(name, payload) for the daemon's
// signals but PropertiesChanged.
export class DaemonLink {
    constructor({bus = 'system', onChange = () => {}, onSignal = () => {}, retryMs = 2000}) {
        this.busSpec = bus;
        this.onChange = onChange;
        this.onSignal = onSignal;
        this.retryMs = retryMs;
        this.snapshot = newSnapshot(bus);
        this.generation = 0; // how many times the daemon was found
        this._conn = null;
        this._subs = [];
        this._watch = 0;
        this._closedId = 0;
        this._retry = 0;
        this._stopped = true;
        this._replay = null;
        this._refreshing = false;
        this._refreshAgain = false;
        this._listing = false;
        this._listAgain = false;
    }

    start() {
        this._stopped = false;
        this._publishOffline();
        this._connect();
    }

    stop() {
        this._stopped = true;
        if (this._retry) {
            GLib.source_remove(this._retry);
            this._retry = 0;
        }
        this._drop();
    }

    async _connect() {
        this._retry = 0;
        if (this._stopped)
            return;
        let conn;
        try {
            conn = await connectBus(this.busSpec);
        } catch (e) {
            logMessage(`bus ${this.busSpec} not reachable: ${e.message}`);
            this._scheduleReconnect();
            return;
        }
        if (this._stopped)
            return;
        this._conn = conn;
        this._closedId = conn.connect('closed', () => {
            this._drop();
            this._publishOffline();
            this._scheduleReconnect();
        });
        this._subs.push(conn.signal_subscribe(BUS_NAME, INTERFACE, null, OBJECT_PATH, null,
            Gio.DBusSignalFlags.NONE, (_c, _s, _p, _i, name, params) =>
                this._onSignal(name, params.recursiveUnpack()[0])));
        this._subs.push(conn.signal_subscribe(BUS_NAME, PROPERTIES, 'PropertiesChanged',
            OBJECT_PATH, INTERFACE, Gio.DBusSignalFlags.NONE, (_c, _s, _p, _i, _n, params) =>
                this._onProperties(params.recursiveUnpack()[1])));
        this._watch = Gio.bus_watch_name_on_connection(conn, BUS_NAME,
            Gio.BusNameWatcherFlags.NONE, () => this._scheduleRefresh(),
            () => this._publishOffline());
    }

    _scheduleReconnect() {
        if (this._stopped || this._retry)
            return;
        this._retry = GLib.timeout_add(GLib.PRIORITY_DEFAULT, this.retryMs, () => {
            this._connect();
            return GLib.SOURCE_REMOVE;
        });
    }

    _drop() {
        const conn = this._conn;
        this._conn = null;
        if (this._watch) {
            Gio.bus_unwatch_name(this._watch);
            this._watch = 0;
        }
        if (conn) {
            for (const id of this._subs)
                conn.signal_unsubscribe(id);
            if (this._closedId)
                conn.disconnect(this._closedId);
            // A connection of our own (a bus address); the system and session buses'
            // connections are shared with the rest of the process.
            if (this.busSpec !== 'system' && this.busSpec !== 'session' && !conn.is_closed())
                conn.close(null, null);
        }
        this._subs = [];
        this._closedId = 0;
    }

    _onSignal(name, payload) {
        if (name === 'ProposalCreated')
            this._scheduleProposals();
        this.onSignal(name, payload);
    }

    _onProperties(changed) {
        if (this._replay)
            this._replay.push(changed);
        if (!this.snapshot.reachable)
            return; // the refresh under way reads them all
        Object.assign(this.snapshot.properties, pick(changed));
        if ('PendingProposals' in changed)
            this._scheduleProposals();
        this._publish();
    }

    _call(iface, member, params, {interactive = false, replyType = null} = {}) {
        const conn = this._conn;
        if (!conn) {
            return Promise.reject(new DaemonError('Unavailable',
                `no connection to the ${this.busSpec} bus`));
        }
        return new Promise((resolve, reject) => {
            conn.call(BUS_NAME, OBJECT_PATH, iface, member, params,
                replyType ? new GLib.VariantType(replyType) : null,
                interactive ? Gio.DBusCallFlags.ALLOW_INTERACTIVE_AUTHORIZATION
                    : Gio.DBusCallFlags.NONE,
                interactive ? INTERACTIVE_TIMEOUT_MS : READ_TIMEOUT_MS, null, (c, res) => {
                    try {
                        const reply = c.call_finish(res).recursiveUnpack();
                        resolve(reply.length ? reply[0] : null);
                    } catch (e) {
                        reject(toDaemonError(e));
                    }
                });
        });
    }

    _scheduleRefresh() {
        if (this._refreshing) {
            this._refreshAgain = true;
            return;
        }
        this._refreshing = true;
        (async () => {
            do {
                this._refreshAgain = false;
                await this._refresh();
            } while (this._refreshAgain && !this._stopped);
            this._refreshing = false;
        })();
    }

    // Property changes that arrive while GetAll is on its way are applied again after it,
    // in order: the reply may be older than one of them, never newer than the last.
    async _refresh() {
        this._replay = [];
        let props, status, proposals;
        try {
            props = await this._call(PROPERTIES, 'GetAll', new GLib.Variant('(s)', [INTERFACE]));
            status = await this._call(INTERFACE, 'Status', null);
            proposals = await this._call(INTERFACE, 'ListProposals', null);
        } catch (e) {
            this._replay = null;
            if (e.kind !== 'Unavailable')
                logMessage(`reading schedcpd failed: ${e.message}`);
            this._publishOffline();
            return;
        }
        const replay = this._replay;
        this._replay = null;
        const snap = this.snapshot;
        snap.reachable = true;
        snap.properties = pick(props);
        for (const changed of replay)
            Object.assign(snap.properties, pick(changed));
        snap.target = status.kernel ? `${status.target} (kernel ${status.kernel})`
            : String(status.target ?? '');
        snap.proposals = proposals.filter(p => p.status === 'pending');
        this.generation += 1;
        this._publish();
        if (replay.length)
            this._scheduleProposals();
    }

    // Listings asked for while one runs fold into one more after it.
    async _scheduleProposals() {
        if (this._listing) {
            this._listAgain = true;
            return;
        }
        this._listing = true;
        try {
            do {
                this._listAgain = false;
                if (!this.snapshot.reachable)
                    return;
                // eslint-disable-next-line no-await-in-loop
                const all = await this._call(INTERFACE, 'ListProposals', null);
                this.snapshot.proposals = all.filter(p => p.status === 'pending');
            } while (this._listAgain);
            this._publish();
        } catch (e) {
            logMessage(`ListProposals: ${e.message}`);
        } finally {
            this._listing = false;
        }
    }

    _publish() {
        this.onChange(JSON.parse(JSON.stringify(this.snapshot)));
    }

    _publishOffline() {
        Object.assign(this.snapshot, {reachable: false, properties: {}, proposals: [],
            target: ''});
        this._publish();
    }

    _requireDaemon() {
        if (!this._conn || !this.snapshot.reachable) {
            throw new DaemonError('Unavailable',
                `no schedcpd answers on the ${this.busSpec} bus`);
        }
    }

    // --- acting ---
    async approve(proposalId) {
        this._requireDaemon();
        await this._call(INTERFACE, 'Approve', new GLib.Variant('(s)', [proposalId]),
            {interactive: true});
    }

    async reject(proposalId, reason) {
        this._requireDaemon();
        await this._call(INTERFACE, 'Reject', new GLib.Variant('(ss)', [proposalId, reason]),
            {interactive: true});
    }

    async rollback(reason) {
        this._requireDaemon();
        return await this._call(INTERFACE, 'Rollback', new GLib.Variant('(s)', [reason]),
            {interactive: true});
    }

    async setMode(mode) {
        this._requireDaemon();
        await this._call(INTERFACE, 'SetMode', new GLib.Variant('(s)', [mode]),
            {interactive: true});
    }

    async history(limit = 100) {
        this._requireDaemon();
        return await this._call(INTERFACE, 'History',
            new GLib.Variant('(a{sv})', [{limit: new GLib.Variant('x', limit)}]));
    }
}

function logMessage(text) {
    // The Shell's journal, or the test's stderr.
    printerr(`schedcp: ${text}`);
}
