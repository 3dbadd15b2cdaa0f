// Drives gnome-extension/daemon.js (the extension's D-Bus and state logic) from a test,
// outside GNOME Shell.
//
//   gjs -m driver.js --model        stdin: a JSON list of {snapshot, now, signal, payload};
//                                   stdout: one JSON list of {presentation, notification}
//   gjs -m driver.js BUS_ADDRESS    follows schedcpd on that bus: every change, signal and
//                                   reply is a JSON line on stdout; stdin takes JSON lines
//                                   {"id": N, "op": "approve"|"reject"|"rollback"|"setMode"
//                                   |"history"|"quit", "args": [...]}

import Gio from 'gi://Gio';
import GLib from 'gi://GLib';

import {DaemonLink, notificationFor, present} from '../../../gnome-extension/daemon.js';

const out = new Gio.DataOutputStream({
    base_stream: new Gio.UnixOutputStream({fd: 1, close_fd: false}),
});
function emit(obj) {
    out.put_string(`${JSON.stringify(obj)}\n`, null);
    out.flush(null);
}

const input = new Gio.DataInputStream({
    base_stream: new Gio.UnixInputStream({fd: 0, close_fd: false}),
});
const loop = new GLib.MainLoop(null, false);

if (ARGV[0] === '--model') {
    const chunks = [];
    for (;;) {
        const [line] = input.read_line_utf8(null);
        if (line === null)
            break;
        chunks.push(line);
    }
    const cases = JSON.parse(chunks.join('\n'));
    emit(cases.map(c => ({
        presentation: present(c.snapshot, c.now),
        notification: c.signal ? notificationFor(c.signal, c.payload) : null,
    })));
} else {
    const link = new DaemonLink({
        bus: ARGV[0],
        retryMs: 500,
        onChange: snap => emit({ev: 'change', gen: link.generation, snapshot: snap,
            presentation: present(snap)}),
        onSignal: (name, payload) => emit({ev: 'signal', name, payload}),
    });
    const ops = {
        approve: id => link.approve(id),
        reject: (id, reason) => link.reject(id, reason),
        rollback: reason => link.rollback(reason),
        setMode: mode => link.setMode(mode),
        history: limit => link.history(limit),
    };
    const next = () => input.read_line_async(GLib.PRIORITY_DEFAULT, null, async (s, res) => {
        const [line] = s.read_line_finish_utf8(res);
        if (line === null) {
            link.stop();
            loop.quit();
            return;
        }
        next();
        const cmd = JSON.parse(line);
        if (cmd.op === 'quit') {
            link.stop();
            loop.quit();
            return;
        }
        try {
            const value = await ops[cmd.op](...(cmd.args ?? []));
            emit({ev: 'reply', id: cmd.id, ok: true, value: value ?? null});
        } catch (e) {
            emit({ev: 'reply', id: cmd.id, ok: false, kind: e.kind ?? 'Error',
                message: e.message});
        }
    });
    next();
    link.start();
    loop.run();
}
