# Patchway: the README's two commands are `make demo` and `make test`.
GO        ?= go
BIN       := bin/patchway
PKGS      := ./...
# Short, bounded fuzz runs that make test always does.
FUZZTIME  ?= 10s

.PHONY: all build demo test testdeps unit fuzz lint psparse bench clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/patchway

demo: build
	@if $(BIN) dev --help >/dev/null 2>&1; then ./scripts/demo.sh; else echo "make demo arrives with the dev-server issue"; fi

# test runs everything that exists: the independent WinRM clients the fleet tests drive, lint, the PowerShell parse, unit/integration/e2e tests, short fuzzing.
test: testdeps lint psparse unit fuzz

# testdeps installs what the tests drive from Debian when it is missing:
# the independent WinRM clients of the fleet tests (fleetsim/pywinrm_test.go,
# fleetsim/ansible_test.go: pywinrm, and Ansible, whose ansible.windows
# collection holds win_ping) and Chromium for the browser tests of the Web
# UI and the console (cmd/patchway/browser_test.go, console_test.go); about
# 30 s each here. Only root installs; anyone else is told what to install
# and those tests skip. A failed install (no network) does not stop make
# test either.
TESTDEPS_APT := python3-winrm ansible chromium

testdeps:
	@if /usr/bin/python3 -c 'import winrm, ansible_collections.ansible.windows' 2>/dev/null && command -v ansible >/dev/null && \
		{ command -v chromium >/dev/null || command -v chromium-browser >/dev/null; }; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then echo "testdeps: not root: run apt-get install -y $(TESTDEPS_APT), or the fleet client and browser tests skip"; exit 0; fi; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get install -y -q $(TESTDEPS_APT) || { apt-get update -q && apt-get install -y -q $(TESTDEPS_APT); } || \
	echo "testdeps: could not install $(TESTDEPS_APT); the fleet client and browser tests skip"

unit:
	$(GO) test -count=1 -timeout 30m $(PKGS)

# -fuzzminimizetime 100x: the seeds include 2,000-line inventories, and
# minimizing each new-coverage input from one of them by default (60s)
# left the whole run minimizing: 46 executions in 10s instead of ~5,000.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeRollout$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 100x ./rollout
	$(GO) test -run '^$$' -fuzz '^FuzzWSManReply$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 100x ./activities
	$(GO) test -run '^$$' -fuzz '^FuzzHostScriptOutput$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 100x ./activities
	$(GO) test -run '^$$' -fuzz '^FuzzReadAdvisory$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 100x ./threat

# Lint tools are built once into bin/tools: opa at the version the engine
# links (go.mod), so the linter judges the Rego the worker runs.
TOOLS              := $(CURDIR)/bin/tools
OPA_VERSION        := $(shell $(GO) list -m -f '{{.Version}}' github.com/open-policy-agent/opa)
WORKFLOWCHECK      := go.temporal.io/sdk/contrib/tools/workflowcheck@v0.6.0
# Every package that holds workflow code.
WORKFLOW_PKGS      := ./workflows/... ./scan/...

$(TOOLS)/opa:
	GOBIN=$(TOOLS) $(GO) install github.com/open-policy-agent/opa@$(OPA_VERSION)

$(TOOLS)/workflowcheck:
	GOBIN=$(TOOLS) $(GO) install $(WORKFLOWCHECK)

# lint: gofmt and go vet; the Rego formatted (opa fmt) and checked in strict
# mode against the capabilities production compiles with (Regal, the OPA
# project's linter, is not served by this build's module proxy); the
# workflow code proven deterministic by the Temporal SDK's workflowcheck
# (workflowcheck.config.yaml says why each exemption holds).
lint: $(TOOLS)/opa $(TOOLS)/workflowcheck
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	@mkdir -p bin
	$(GO) run ./cmd/patchway policy capabilities > bin/capabilities.json
	$(TOOLS)/opa fmt --list --fail policies/rego
	$(TOOLS)/opa check --strict --capabilities bin/capabilities.json policies/rego
	$(TOOLS)/workflowcheck -config workflowcheck.config.yaml $(WORKFLOW_PKGS)

# psparse: every committed .ps1, and what PowerShell on a host parses (each
# host script as rendered: header, parameter here-string, body; and the
# -EncodedCommand bootstrap), parsed with the tree-sitter PowerShell grammar
# (scripts/psparse); a syntax error fails with file:line:col and its text.
# It first proves it can fail: each testdata/bad/*.ps1 must be rejected
# (exit 1) with a position, and testdata/good.ps1 accepted. The grammar is
# installed once, by npm ci from the committed lockfile.
PSPARSE       := scripts/psparse
PSPARSE_STAMP := $(PSPARSE)/node_modules/.patchway-installed

$(PSPARSE_STAMP): $(PSPARSE)/package.json $(PSPARSE)/package-lock.json
	cd $(PSPARSE) && npm ci --ignore-scripts --no-audit --no-fund
	@touch $@

psparse: $(PSPARSE_STAMP)
	node $(PSPARSE)/psparse.mjs $(PSPARSE)/testdata/good.ps1
	@for f in $(PSPARSE)/testdata/bad/*.ps1; do \
		out=$$(node $(PSPARSE)/psparse.mjs "$$f"); rc=$$?; \
		if [ $$rc -ne 1 ] || ! printf '%s\n' "$$out" | grep -Eq "^$$f:[0-9]+:[0-9]+: "; then \
			echo "psparse self-test: $$f must fail (exit 1) at file:line:col, got exit $$rc:"; echo "$$out"; exit 1; \
		fi; \
		printf '%s\n' "$$out" | grep -E "^$$f:" | sed 's/^/rejected as it must be: /'; \
	done
	node $(PSPARSE)/psparse.mjs $$(git ls-files '*.ps1' ':(exclude)$(PSPARSE)/testdata/bad/')
	@rm -rf bin/psparse
	PATCHWAY_PSPARSE_OUT=$(CURDIR)/bin/psparse $(GO) test -count=1 -run '^TestWriteComposedScripts$$' ./hostscript
	node $(PSPARSE)/psparse.mjs bin/psparse/*.ps1

# bench measures the rollout against the no-orchestration floor and writes
# bench/RESULTS.md (see bench/README.md). BENCH_N=1000,10000 sizes,
# BENCH_P=64 max parallel, BENCH_LARGE=1 adds 100,000 hosts.
bench: build
	$(GO) run ./bench -patchway $(BIN) -results bench/RESULTS.md

clean:
	rm -rf bin
