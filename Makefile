# muster: build, run locally, test, benchmark. `make help` lists the targets.
.PHONY: help install build up down status check test test-unit bench clean install-system dist

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
	@echo "make dist    build the offline bundles build/muster-<version>-linux-{x64,arm64}.tar.gz"

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
	rm -rf dist build .run

# The offline bundles (docs/operations.md#runtime-and-bundles): the pinned runtime of each
# architecture, the application bundled by esbuild, units, configs, docs and install.sh.
DIST_ARCHS ?= x64 arm64
dist: install
	node scripts/build-dist.mjs --out build $(addprefix --arch ,$(DIST_ARCHS))

# Installs muster on this machine for systemd from this machine's offline bundle: /opt/muster,
# /usr/local/bin/muster, the units, and /etc/muster/*.yaml (kept when present); nothing is fetched
# on the way but the runtime, once. Then: systemctl enable --now muster-agent (or -manager).
PREFIX ?= /opt/muster
HOST_ARCH := $(shell uname -m | sed 's/x86_64/x64/; s/aarch64/arm64/')
install-system:
	$(MAKE) dist DIST_ARCHS=$(HOST_ARCH)
	build/muster-$$(node -p 'require("./package.json").version')-linux-$(HOST_ARCH)/install.sh --prefix $(PREFIX)
