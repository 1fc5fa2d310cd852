# muster: build, run locally, test, benchmark. `make help` lists the targets.
.PHONY: help install build up down status check test test-unit bench clean install-system

# Every target runs on the project's pinned Node.js (scripts/runtime.env): this machine's node when
# it is new enough, else a copy fetched once into .runtime/ (docs/operations.md#runtime).
NODE := $(shell scripts/node.sh bin)
ifeq ($(NODE),)
$(error cannot find or fetch the pinned Node.js runtime; see scripts/node.sh)
endif
export PATH := $(dir $(NODE)):$(PATH)

help:
	@echo "make up      install, build, and start a manager and an agent on this machine"
	@echo "make down    stop them"
	@echo "make test    install what the tests need, then type-check, lint and run every test"
	@echo "make check   type-check and lint only"
	@echo "make bench   run the benchmarks and write bench/RESULTS.md"

# npm install (not npm ci): the registry mirror lacks the other platforms' optional biome
# binaries, which npm ci insists on; npm install still follows package-lock.json.
node_modules/.installed: package.json package-lock.json
	npm install --no-audit --no-fund
	@touch $@

install: node_modules/.installed

build: install
	npm run build

up: build
	scripts/run-local.sh start

down:
	scripts/run-local.sh stop

status:
	scripts/run-local.sh status

check: install
	npm run check

test: install
	scripts/setup-system.sh
	npm run check
	npm test

test-unit: install
	npm run test:unit

bench: install
	npm run bench

clean:
	rm -rf dist .run

# Installs muster on this machine for systemd: /opt/muster, /usr/local/bin/muster, units, and
# /etc/muster/*.yaml (kept when present). Then: systemctl enable --now muster-agent (or -manager).
PREFIX ?= /opt/muster
install-system: build
	install -d $(PREFIX) /etc/muster
	cp -r bin dist config docs package.json package-lock.json $(PREFIX)/
	cd $(PREFIX) && npm install --omit=dev --no-audit --no-fund
	ln -sf $(PREFIX)/bin/muster.js /usr/local/bin/muster
	install -m 0644 systemd/muster-agent.service systemd/muster-manager.service /etc/systemd/system/
	[ -f /etc/muster/agent.yaml ] || printf '# overrides of %s/config/agent.yaml\nidentity:\n  box_id: 1\n  slot_id: 1\n  cpu_id: 0\n' $(PREFIX) >/etc/muster/agent.yaml
	[ -f /etc/muster/manager.yaml ] || printf '# overrides of %s/config/manager.yaml\nmulticast:\n  interface: ""\n' $(PREFIX) >/etc/muster/manager.yaml
	-systemctl daemon-reload
