#!/usr/bin/env bash
# make demo: a real rollout walking the staged path, in the terminal and in
# the Temporal Web UI, on one machine.
#
# 1. `patchway dev` starts the embedded Temporal server + Web UI, a worker
#    and the simulated Windows fleet of examples/fleet-demo.hcl (WinRM on
#    loopback), in the background.
# 2. alice (security team) files examples/ms08-067.hcl on the fleet.
# 3. `patchway status --watch` shows the rollout walking the stages; each
#    time it waits at a gate, bob (a second user: the gates policy never lets
#    the filer approve) approves it, and the script says so.
# 4. One SLA escalation shows up, then the rollout completes; Ctrl-C (or the
#    end) stops everything cleanly.
#
# Time compression, so the whole path fits in a few minutes (printed on
# screen too): the demo files a copy of examples/ms08-067.hcl with its soaks
# cut to 20 seconds and the domain controllers' night window lifted, and runs
# with scripts/demo-policy/ over the default policies: a critical SLA of
# 0.2 h (6 minutes once the worm tightens it, so the 50 % escalation comes
# about 3 minutes in), no minimum soak, and bob in the approval groups the
# example names. Nothing else differs from a production run.
#
# Environment: PATCHWAY_DEMO_PORT (7233), PATCHWAY_DEMO_UI_PORT (8233),
# PATCHWAY_DEMO_MINUTES (15, the most the demo waits for the rollout).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-bin/patchway}
PORT=${PATCHWAY_DEMO_PORT:-7233}
UI_PORT=${PATCHWAY_DEMO_UI_PORT:-8233}
MINUTES=${PATCHWAY_DEMO_MINUTES:-15}
ROLLOUT=ms08-067
DEMO=$(mktemp -d "${TMPDIR:-/tmp}/patchway-demo.XXXXXX")
STATE=$DEMO/state
export TEMPORAL_ADDRESS=127.0.0.1:$PORT TEMPORAL_NAMESPACE=default
unset TEMPORAL_API_KEY TEMPORAL_TLS_CERT TEMPORAL_TLS_KEY TEMPORAL_TLS_CA TEMPORAL_TLS

if [ -t 1 ]; then B=$'\033[1m' G=$'\033[32m' Y=$'\033[33m' N=$'\033[0m'; else B='' G='' Y='' N=''; fi
say() { printf '\n%s==> %s%s\n' "$B" "$*" "$N"; }
note() { printf '%s    %s%s\n' "$Y" "$*" "$N"; }

[ -x "$BIN" ] || { echo "demo: $BIN is missing; run make demo (it builds first)" >&2; exit 1; }

DEV_PID=
stop_all() {
	trap - EXIT INT TERM
	if [ -n "$DEV_PID" ] && kill -0 "$DEV_PID" 2>/dev/null; then
		say "Stopping patchway dev (server, Web UI, worker, fleet)"
		kill -INT "$DEV_PID" 2>/dev/null || true
		for _ in $(seq 1 60); do kill -0 "$DEV_PID" 2>/dev/null || break; sleep 0.5; done
		if kill -0 "$DEV_PID" 2>/dev/null; then
			echo "demo: patchway dev did not stop within 30s; killing it" >&2
			kill -KILL "$DEV_PID" 2>/dev/null || true
		fi
		wait "$DEV_PID" 2>/dev/null || true
	fi
	echo "Logs and state are in $DEMO (remove it when done)."
}
trap stop_all EXIT
trap 'exit 130' INT TERM

say "Starting patchway dev: Temporal server + Web UI, worker, simulated fleet (logs: $DEMO/dev.log)"
"$BIN" --policy-dir scripts/demo-policy dev --state-dir "$STATE" --port "$PORT" --ui-port "$UI_PORT" \
	--scenario examples/fleet-demo.hcl >"$DEMO/dev.out" 2>"$DEMO/dev.log" &
DEV_PID=$!
for _ in $(seq 1 240); do
	grep -q 'environment ready' "$DEMO/dev.out" 2>/dev/null && break
	kill -0 "$DEV_PID" 2>/dev/null || { cat "$DEMO/dev.log" >&2; echo "demo: patchway dev exited" >&2; exit 1; }
	sleep 0.5
done
grep -q 'environment ready' "$DEMO/dev.out" || { echo "demo: patchway dev did not get ready within 2 minutes" >&2; exit 1; }
sed -n '1,/^$/p' "$DEMO/dev.out"
INVENTORY=$(sed -n 's/^  fleet inventory *//p' "$DEMO/dev.out" | head -n1)
[ -n "$INVENTORY" ] || { echo "demo: patchway dev did not print the fleet inventory" >&2; exit 1; }

say "Filing examples/$ROLLOUT.hcl as alice (security team)"
note "Time compression for the demo: soaks cut to 20s, the domain controllers' night window lifted,"
note "and scripts/demo-policy/ sets a critical SLA of 0.2 h (6 min once the worm halves it)."
sed -e 's/soak *= *"[0-9]*[hmd]"/soak = "20s"/' -e '/window {/,/}/d' "examples/$ROLLOUT.hcl" >"$DEMO/$ROLLOUT.hcl"
"$BIN" submit "$DEMO/$ROLLOUT.hcl" --inventory "$INVENTORY" --as alice 2> >(grep -v -e '^$' -e 'owner' >&2 || true)

say "Watching the rollout (open the Web UI link above to see the same in Temporal)"
seen_escalations=0
deadline=$(( $(date +%s) + MINUTES * 60 ))
while :; do
	"$BIN" status "$ROLLOUT" --watch --max-watch 5s || true
	json=$("$BIN" status "$ROLLOUT" --json 2>/dev/null || true)
	# field NAME: the first "NAME":"value" of the progress JSON ("" if none).
	field() { printf '%s' "$json" | grep -o "\"$1\":\"[^\"]*\"" | head -n1 | cut -d'"' -f4 || true; }
	status=$(field status)
	gate=$(field waiting_gate)
	escalations=$(printf '%s' "$json" | grep -o '"kind":"escalation"' | wc -l || true)
	if [ "$escalations" -gt "$seen_escalations" ]; then
		seen_escalations=$escalations
		say "${Y}SLA escalation${N}${B}: the rollout's SLA clock crossed a milestone"
		printf '%s' "$json" | grep -o '"kind":"escalation","subject":"[^"]*"[^}]*"reason":"[^"]*"' |
			tail -n1 | sed -e 's/.*"subject":"\([^"]*\)".*"reason":"\([^"]*\)".*/    \1: \2/' || true
		note "(the escalation also went to the rollout's channels; see $DEMO/dev.log)"
	fi
	case "$status" in
	completed | aborted | rejected)
		say "Rollout $ROLLOUT $status"
		"$BIN" status "$ROLLOUT"
		break
		;;
	esac
	if [ -n "$gate" ]; then
		say "Gate ${G}$gate${N}${B} waits for approval: bob approves it (a second user; alice filed the rollout)"
		"$BIN" approve "$ROLLOUT" "$gate" --as bob --reason "demo: $gate looks healthy" || true
	fi
	if [ "$(date +%s)" -ge "$deadline" ]; then
		echo "demo: the rollout did not finish within $MINUTES minutes; stopping" >&2
		exit 1
	fi
done
say "Done. The Web UI keeps the rollout's history: http://127.0.0.1:$UI_PORT/namespaces/default/workflows"
