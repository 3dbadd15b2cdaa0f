// schedcp: a top-bar indicator for schedcpd (GNOME Shell 45 and later: ESM extensions).
//
// The Shell UI only; the D-Bus link and the state logic are in daemon.js, which runs
// outside the Shell too (tests/desktop drives it with gjs against a real daemon).

import Clutter from 'gi://Clutter';
import Gio from 'gi://Gio';
import GObject from 'gi://GObject';
import St from 'gi://St';

import {Extension} from 'resource:///org/gnome/shell/extensions/extension.js';
import * as Main from 'resource:///org/gnome/shell/ui/main.js';
import * as PanelMenu from 'resource:///org/gnome/shell/ui/panelMenu.js';
import * as PopupMenu from 'resource:///org/gnome/shell/ui/popupMenu.js';

import {DaemonLink, MODES, notificationFor, present} from './daemon.js';

const MAX_PROPOSALS = 5;
const REDRAW_S = 20; // "since ... (N min ago)" stays current

const Indicator = GObject.registerClass(
class SchedcpIndicator extends PanelMenu.Button {
    _init(extension) {
        super._init(0.0, 'schedcp');
        this._extension = extension;
        this._settings = extension.getSettings();
        this._snapshot = null;
        this._lastError = '';

        const box = new St.BoxLayout({style_class: 'panel-status-menu-box'});
        this._icon = new St.Icon({style_class: 'system-status-icon'});
        this._label = new St.Label({y_align: Clutter.ActorAlign.CENTER, text: ''});
        box.add_child(this._icon);
        box.add_child(this._label);
        this.add_child(box);

        this._settingsIds = [
            this._settings.connect('changed::bus', () => this._restartLink()),
            this._settings.connect('changed::show-policy', () => this._redraw()),
        ];
        this._timer = setInterval(() => this._redraw(), REDRAW_S * 1000);
        this._startLink();
    }

    _startLink() {
        this._link = new DaemonLink({
            bus: this._settings.get_string('bus') || 'system',
            onChange: snap => {
                this._snapshot = snap;
                this._redraw();
            },
            onSignal: (name, payload) => this._onSignal(name, payload),
        });
        this._link.start();
    }

    _restartLink() {
        this._link.stop();
        this._startLink();
    }

    _onSignal(name, payload) {
        const n = notificationFor(name, payload);
        if (n && this._settings.get_boolean('notify'))
            Main.notify(n.summary, n.body);
    }

    _iconFor(state) {
        const file = this._extension.dir.get_child('icons')
            .get_child(`schedcp-${state.replaceAll('_', '-')}-symbolic.svg`);
        return new Gio.FileIcon({file});
    }

    _redraw() {
        if (!this._snapshot)
            return;
        const pr = present(this._snapshot);
        this._icon.gicon = this._iconFor(pr.icon);
        this._label.text = this._settings.get_boolean('show-policy') && pr.activePolicy
            ? ` ${pr.activePolicy}` : '';
        this.accessible_name = pr.tooltip;
        this._buildMenu(pr);
    }

    _info(text) {
        const item = new PopupMenu.PopupMenuItem(text, {reactive: false});
        this.menu.addMenuItem(item);
        return item;
    }

    _action(text, fn, sensitive = true) {
        const item = new PopupMenu.PopupMenuItem(text);
        item.setSensitive(sensitive);
        item.connect('activate', () => this._run(text, fn));
        this.menu.addMenuItem(item);
        return item;
    }

    // A refused call (polkit said no, the proposal expired, ...) is shown in the menu and
    // as a notification.
    async _run(what, fn) {
        try {
            this._lastError = '';
            await fn();
        } catch (e) {
            this._lastError = `${what.trim()}: ${e.message}`;
            Main.notify('schedcp', this._lastError);
        }
        this._redraw();
    }

    _buildMenu(pr) {
        this.menu.removeAll();
        this._info(pr.title);
        if (!pr.canAct) {
            this._info(pr.tooltip.split('; ').slice(-1)[0]);
            return;
        }
        this._info(`Active: ${pr.active}`);
        if (pr.error)
            this._info(`Error: ${pr.error.slice(0, 120)}`);
        if (this._lastError)
            this._info(this._lastError.slice(0, 120));

        const mode = new PopupMenu.PopupSubMenuMenuItem(`Mode: ${pr.mode}`);
        for (const m of MODES) {
            const item = new PopupMenu.PopupMenuItem(m);
            item.setOrnament(m === pr.mode ? PopupMenu.Ornament.DOT : PopupMenu.Ornament.NONE);
            item.connect('activate', () => this._run(`mode ${m}`, () => this._link.setMode(m)));
            mode.menu.addMenuItem(item);
        }
        this.menu.addMenuItem(mode);

        this.menu.addMenuItem(new PopupMenu.PopupSeparatorMenuItem());
        if (pr.proposals.length) {
            this._info(`Pending proposals (${pr.proposals.length})`);
            for (const p of pr.proposals.slice(0, MAX_PROPOSALS)) {
                const text = `  ${p.label}${p.rationale ? `: ${p.rationale}` : ''}`;
                this._info(text.length <= 64 ? text : `${text.slice(0, 61)}...`);
                this._action(`      Approve ${p.policy}`, () => this._link.approve(p.id));
                this._action(`      Reject ${p.policy}`,
                    () => this._link.reject(p.id, 'rejected from the GNOME Shell extension'));
            }
            if (pr.proposals.length > MAX_PROPOSALS)
                this._info(`  ... and ${pr.proposals.length - MAX_PROPOSALS} more`);
        } else {
            this._info('No proposals waiting');
        }
        this.menu.addMenuItem(new PopupMenu.PopupSeparatorMenuItem());
        this._action('Rollback', () => this._link.rollback(
            'requested from the GNOME Shell extension'), pr.canRollback);
    }

    destroy() {
        clearInterval(this._timer);
        for (const id of this._settingsIds)
            this._settings.disconnect(id);
        this._link.stop();
        super.destroy();
    }
});

export default class SchedcpExtension extends Extension {
    enable() {
        this._indicator = new Indicator(this);
        Main.panel.addToStatusArea(this.uuid, this._indicator);
    }

    disable() {
        this._indicator?.destroy();
        this._indicator = null;
    }
}
