// schedcp extension preferences (GNOME Shell 45 and later).

import Adw from 'gi://Adw';
import Gio from 'gi://Gio';

import {ExtensionPreferences} from 'resource:///org/gnome/Shell/Extensions/js/extensions/prefs.js';

export default class SchedcpPreferences extends ExtensionPreferences {
    fillPreferencesWindow(window) {
        const settings = this.getSettings();
        const page = new Adw.PreferencesPage();
        const group = new Adw.PreferencesGroup({
            title: 'schedcpd',
            description: 'The daemon is on the system bus; a test or development daemon ' +
                'may be on the session bus or a bus address.',
        });
        const bus = new Adw.EntryRow({title: 'Bus: system, session or a D-Bus address'});
        settings.bind('bus', bus, 'text', Gio.SettingsBindFlags.DEFAULT);
        group.add(bus);
        const notify = new Adw.SwitchRow({
            title: 'Notifications',
            subtitle: 'When a proposal waits for approval and when a scheduler is rolled back',
        });
        settings.bind('notify', notify, 'active', Gio.SettingsBindFlags.DEFAULT);
        group.add(notify);
        const label = new Adw.SwitchRow({title: 'Show the active policy in the top bar'});
        settings.bind('show-policy', label, 'active', Gio.SettingsBindFlags.DEFAULT);
        group.add(label);
        page.add(group);
        window.add(page);
    }
}
