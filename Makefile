# schedcp: two commands do everything, each doing its own set-up first (idempotently):
#   make demo   the main job
#   make test   the whole test suite
.PHONY: setup setup-apt setup-venv setup-lab test demo lint bench clean-lab gnome-extension \
        install-tray-autostart

VENV := .venv
PY := $(VENV)/bin/python

setup: setup-apt setup-venv setup-lab

setup-apt:
	@bash scripts/setup-apt.sh

setup-venv: setup-apt
	@bash scripts/setup-venv.sh

setup-lab: setup-venv
	@$(PY) -m schedcpd.lab.setup

test: setup
	@$(PY) -m pytest -q --tb=short $(PYTEST_ARGS)

demo: setup
	@$(VENV)/bin/schedcpctl demo

lint: setup-venv
	@$(VENV)/bin/ruff check schedcpd tests benchmarks
	@$(VENV)/bin/mypy schedcpd

bench: setup
	@$(PY) benchmarks/lab_cycle.py

# The GNOME Shell extension as an installable zip (gnome-extensions install FILE). The
# compiled schema rides along for a manual unzip into ~/.local/share/gnome-shell/extensions
# (GNOME 44+ compile extension schemas at install time anyway).
EXT_UUID := schedcp@schedcp.org
EXT_BUILD := build/gnome-extension
EXT_ZIP := build/$(EXT_UUID).shell-extension.zip
EXT_FILES := metadata.json extension.js daemon.js prefs.js icons schemas

gnome-extension:
	@rm -rf $(EXT_BUILD) $(EXT_ZIP) && mkdir -p $(EXT_BUILD)
	@cd gnome-extension && cp -r $(EXT_FILES) ../$(EXT_BUILD)/
	@glib-compile-schemas --strict $(EXT_BUILD)/schemas
	@cd $(EXT_BUILD) && python3 -m zipfile -c ../$(EXT_UUID).shell-extension.zip $(EXT_FILES)
	@echo "gnome-extension: $(EXT_ZIP) (gnome-extensions install --force $(EXT_ZIP))"

# The tray starts with the desktop session (every user: /etc/xdg/autostart).
install-tray-autostart:
	@install -Dm644 desktop/schedcp-tray.desktop /etc/xdg/autostart/schedcp-tray.desktop
	@echo "installed /etc/xdg/autostart/schedcp-tray.desktop"
