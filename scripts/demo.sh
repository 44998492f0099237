#!/usr/bin/env bash
# make demo: a real rollout walking the staged path, in the terminal and in
# the Temporal Web UI, on one machine.
#
# 1. `patchway dev` starts the embedded Temporal server + Web UI, a worker
#    and the simulated Windows fleet of examples/fleet-demo.hcl (WinRM on
#    loopback), in the background.
# 2. alice and bob sign in at dev's local OpenID Connect issuer with
#    `patchway login` (the device flow: the script fills in the sign-in page
#    as each would in a browser), and alice (security team) files
#    examples/ms08-067.hcl on the fleet.
# 3. `patchway status --watch` shows the rollout walking the stages. At the
#    first gate alice tries to approve her own rollout and the gates policy
#    refuses her (four-eyes, on her verified token); each time it waits at a
#    gate, bob approves it with his, and the script says so.
#    The console link dev prints shows the same rollout in a browser.
# 4. One SLA escalation shows up, then the rollout completes; Ctrl-C (or the
#    end) stops everything cleanly.
#
# Time compression, so the whole path fits in a few minutes (printed on
# screen too): the demo files a copy of examples/ms08-067.hcl with its soaks
# cut to 20 seconds and the domain controllers' night window lifted, and runs
# with scripts/demo-policy/ over the default policies: a critical SLA of
# 0.2 h (6 minutes once the worm tightens it, so the 50 % escalation comes
# about 3 minutes in), no minimum soak, 18 seconds (not 4 hours) for the SLA
# forecast to allow each gate still ahead, and bob in the approval groups the
# example names; and a host that does not come back from its reboot counts
# unreachable after 1 minute instead of 30. Nothing else differs from a
# production run. When a wave halts (the demo fleet's faults make one do),
# bob looks at the failed hosts and resumes it.
#
# Environment: PATCHWAY_DEMO_PORT (7233), PATCHWAY_DEMO_UI_PORT (8233),
# PATCHWAY_DEMO_MINUTES (15, the most the demo waits for the rollout),
# PATCHWAY_DEMO_ROLLOUT (ms08-067; kb5013944 runs May 2022's cumulative
# update for Windows Server 2022 over the fleet's 13 Server 2022 hosts).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-bin/patchway}
PORT=${PATCHWAY_DEMO_PORT:-7233}
UI_PORT=${PATCHWAY_DEMO_UI_PORT:-8233}
MINUTES=${PATCHWAY_DEMO_MINUTES:-15}
ROLLOUT=${PATCHWAY_DEMO_ROLLOUT:-ms08-067}
[ -f "examples/$ROLLOUT.hcl" ] || { echo "demo: PATCHWAY_DEMO_ROLLOUT=$ROLLOUT names no examples/$ROLLOUT.hcl" >&2; exit 2; }
# The rollout's id, which the file name need not be (moderate-ipsec.hcl files kb953733-ipsec).
ID=$(sed -n 's/^rollout "\([^"]*\)".*/\1/p' "examples/$ROLLOUT.hcl" | head -n1)
DEMO=$(mktemp -d "${TMPDIR:-/tmp}/patchway-demo.XXXXXX")
STATE=$DEMO/state
export TEMPORAL_ADDRESS=127.0.0.1:$PORT TEMPORAL_NAMESPACE=default
unset TEMPORAL_API_KEY TEMPORAL_TLS_CERT TEMPORAL_TLS_KEY TEMPORAL_TLS_CA TEMPORAL_TLS

if [ -t 1 ]; then B=$'\033[1m' G=$'\033[32m' Y=$'\033[33m' N=$'\033[0m'; else B='' G='' Y='' N=''; fi
say() { printf '\n%s==> %s%s\n' "$B" "$*" "$N"; }
note() { printf '%s    %s%s\n' "$Y" "$*" "$N"; }

command -v curl >/dev/null || { echo "demo: the sign-in step needs curl (apt-get install curl)" >&2; exit 1; }
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
CONSOLE=$(sed -n 's/^  console *\(http[^ ]*\).*/\1/p' "$DEMO/dev.out" | head -n1)
[ -n "$CONSOLE" ] && note "Open $CONSOLE and sign in (bob/bob) to see the rollout's waves, hosts and decisions and act on them."
INVENTORY=$(sed -n 's/^  fleet inventory *//p' "$DEMO/dev.out" | head -n1)
[ -n "$INVENTORY" ] || { echo "demo: patchway dev did not print the fleet inventory" >&2; exit 1; }
ISSUER=$(sed -n 's/^  identity provider *\([^ ]*\).*/\1/p' "$DEMO/dev.out" | head -n1)
[ -n "$ISSUER" ] || { echo "demo: patchway dev did not print its identity provider" >&2; exit 1; }

# sign_in NAME: `patchway login` for NAME. The command prints a link and a
# code; a person opens the link and signs in; the script posts the same
# form (dev people's passwords are their names).
sign_in() {
	local who=$1 log=$DEMO/login-$1.log code=
	"$BIN" login --issuer "$ISSUER" --session "$DEMO/$who.json" >"$DEMO/login-$who.out" 2>"$log" &
	local pid=$!
	for _ in $(seq 1 50); do
		code=$(sed -n 's/.*enter the code \([A-Z0-9-]*\).*/\1/p' "$log" | head -n1)
		[ -n "$code" ] && break
		sleep 0.2
	done
	[ -n "$code" ] || { cat "$log" >&2; echo "demo: patchway login printed no code" >&2; exit 1; }
	note "$(head -n1 "$log")"
	curl -fsS -o /dev/null --data-urlencode "user_code=$code" --data-urlencode "username=$who" --data-urlencode "password=$who" "$ISSUER/device" ||
		{ echo "demo: signing $who in at $ISSUER failed" >&2; exit 1; }
	wait "$pid" || { cat "$log" >&2; echo "demo: patchway login failed" >&2; exit 1; }
	cat "$DEMO/login-$who.out"
}

say "alice and bob sign in at the identity provider (OpenID Connect device flow)"
sign_in alice
sign_in bob
ALICE=(--session "$DEMO/alice.json")
BOB=(--session "$DEMO/bob.json")

say "Filing examples/$ROLLOUT.hcl as alice (security team)"
note "Time compression for the demo: soaks cut to 20s, the domain controllers' night window lifted,"
note "scripts/demo-policy/ sets a critical SLA of 0.2 h (6 min once the worm halves it), and a host"
note "that does not come back from its reboot within 1 minute (not 30) counts unreachable."
sed -e 's/soak *= *"[0-9]*[hmd]"/soak = "20s"/' -e '/window {/,/}/d' "examples/$ROLLOUT.hcl" >"$DEMO/$ROLLOUT.hcl"
"$BIN" submit "$DEMO/$ROLLOUT.hcl" --inventory "$INVENTORY" "${ALICE[@]}" --boot-timeout 1m 2> >(grep -v -e '^$' -e 'owner' >&2 || true)

say "Watching the rollout (open the Web UI link above to see the same in Temporal)"
note "Notifications go to dev's inbox (no real Slack or pager configured); each shows up here as it arrives."
seen_escalations=0 seen_notifications=0 seen_halts=0
deadline=$(( $(date +%s) + MINUTES * 60 ))
# notifications: print the inbox lines that arrived since the last call.
notifications() {
	local lines
	lines=$(grep -c '^  notification ' "$DEMO/dev.out" 2>/dev/null || true)
	if [ "${lines:-0}" -gt "$seen_notifications" ]; then
		grep '^  notification ' "$DEMO/dev.out" | tail -n +"$((seen_notifications + 1))" | head -n "$((lines - seen_notifications))"
		seen_notifications=$lines
	fi
}
while :; do
	"$BIN" status "$ID" --watch --max-watch 5s || true
	notifications
	json=$("$BIN" status "$ID" --json 2>/dev/null || true)
	# field NAME: the first "NAME":"value" of the progress JSON ("" if none).
	field() { printf '%s' "$json" | grep -o "\"$1\":\"[^\"]*\"" | head -n1 | cut -d'"' -f4 || true; }
	# last_record KIND: "subject: reason" of the newest decision of KIND.
	last_record() {
		printf '%s' "$json" | grep -o "\"kind\":\"$1\",\"subject\":\"[^\"]*\"[^}]*\"reason\":\"[^\"]*\"" |
			tail -n1 | sed -e 's/.*"subject":"\([^"]*\)".*"reason":"\([^"]*\)".*/    \1: \2/' || true
	}
	status=$(field status)
	gate=$(field waiting_gate)
	escalations=$(printf '%s' "$json" | grep -o '"kind":"escalation"' | wc -l || true)
	if [ "$escalations" -gt "$seen_escalations" ]; then
		seen_escalations=$escalations
		say "${Y}SLA escalation${N}${B}: the rollout's SLA clock crossed a milestone (escalation policy)"
		last_record escalation
	fi
	case "$status" in
	completed | aborted | rejected)
		say "Rollout $ID $status"
		"$BIN" status "$ID"
		break
		;;
	halted)
		halts=$(printf '%s' "$json" | grep -o '"kind":"halt"' | wc -l || true)
		if [ "$halts" -gt "$seen_halts" ]; then
			seen_halts=$halts
			say "${Y}Wave halted${N}${B}: more hosts failed than the wave allows (waves policy)"
			last_record halt
			note "The failed hosts so far, with the evidence (from a provisional report):"
			# Keep the header, the failed, not_effective and unreachable rows and
			# their evidence lines (which start with blanks).
			"$BIN" report "$ID" | awk '/^NOT COMPLIANT/ { on = 1; next }
				on && /^HOST/ { print; next }
				on && /^[^ ]/ { keep = ($2 ~ /^(failed|not_effective|unreachable)$/); if (keep) print; next }
				on && keep { print }' | head -n 40 || true
			say "bob reviews the failures and lets the wave go on (patchway resume; skip-host would drop one host instead)"
			"$BIN" resume "$ID" "${BOB[@]}" --reason "demo: failures triaged, tickets filed for each host" || true
		fi
		;;
	esac
	if [ -n "$gate" ]; then
		if [ -z "${alice_tried:-}" ]; then
			alice_tried=1
			say "Gate ${G}$gate${N}${B} waits for approval: alice tries to approve her own rollout"
			"$BIN" approve "$ID" "$gate" "${ALICE[@]}" --reason "demo: my own rollout" || note "refused, as it must be: four-eyes compares verified subjects"
		fi
		say "Gate ${G}$gate${N}${B}: bob approves it (signed in, a second person; alice filed the rollout)"
		"$BIN" approve "$ID" "$gate" "${BOB[@]}" --reason "demo: $gate looks healthy" || true
	fi
	if [ "$(date +%s)" -ge "$deadline" ]; then
		echo "demo: the rollout did not finish within $MINUTES minutes; stopping" >&2
		exit 1
	fi
done
notifications
say "The compliance report: only hosts with proof (file versions, hotfix, reboot done) count as compliant"
"$BIN" report "$ID"
"$BIN" report "$ID" --format html -o "$DEMO/$ID-report.html"
note "The same report as one HTML file: $DEMO/$ID-report.html (also --format json, csv, md)."
say "Done. The Web UI keeps the rollout's history: http://127.0.0.1:$UI_PORT/namespaces/default/workflows"
