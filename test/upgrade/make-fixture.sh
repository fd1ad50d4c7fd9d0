#!/bin/sh
# Regenerates test/upgrade/fixtures/<commit>/: a central data dir and an agent state dir written by the
# code of a previous release commit (default 40facb0, the last release before issue 19), with inventory of
# every kind, a queued task and an un-compacted journal (the central is killed with -9), plus the hello
# frame that release's agent sends. Run from the repository root as root (the agent needs nothing
# privileged; root only for consistency with the test host). Needs git, node and the repo's node_modules.
set -eu
COMMIT=${1:-40facb0}
REPO=$(pwd)
OUT="$REPO/test/upgrade/fixtures/$COMMIT"
TMP=$(mktemp -d /tmp/ul-upgrade-fixture.XXXXXX)
trap 'kill -9 $PID 2>/dev/null || true; rm -rf "$TMP"' EXIT
git archive "$COMMIT" | tar -x -C "$TMP"
ln -s "$REPO/node_modules" "$TMP/node_modules"
(cd "$TMP" && npx tsc -p tsconfig.json)
UL="node $TMP/dist/shared/cli/underlay.js"
DATA="$TMP/out/central"
mkdir -p "$TMP/out"
PORT=18519
$UL central serve --data "$DATA" --listen 127.0.0.1:$PORT --agent-cert-lifetime 10y >"$TMP/central.log" 2>&1 &
PID=$!
for i in $(seq 1 100); do grep -q 'central listening' "$TMP/central.log" && break; sleep 0.2; done
export UNDERLAY_URL=https://127.0.0.1:$PORT UNDERLAY_DATA="$DATA"
$UL sites create dc1 --param ntp=198.18.0.53 >/dev/null
$UL params create bmc_password --secret >/dev/null
$UL params create rack >/dev/null
$UL profiles create web --param role=web >/dev/null
$UL subnets create --site dc1 --cidr 198.18.0.0/24 --range 198.18.0.100-198.18.0.199 --gateway 198.18.0.1 >/dev/null
JOIN=$($UL -o json token create --role agent-join --site dc1 | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).token))')
$UL agent join --central "$UNDERLAY_URL" --token "$JOIN" --state "$TMP/out/agent" --name rack1 >/dev/null
$UL machines create m1 --site dc1 --mac 52:54:00:40:fa:01 --param rack=r1 --profile web >/dev/null
$UL machines create m2 --site dc1 --mac 52:54:00:40:fa:02 --param rack=r2 >/dev/null
$UL machines update m2 --param bmc_password=old-release-secret >/dev/null
$UL token create --role viewer --name grafana >/dev/null
$UL services create etcd >/dev/null
$UL services register etcd --machine m1 --address 198.18.0.11 --port 2379 >/dev/null
$UL tasks create --site dc1 --kind set-netboot --machine m1 --netboot false --ttl 30d >/dev/null
sleep 0.5
kill -9 $PID
# The hello that release's agent sends (protocol version, agent version, features).
node -e "
const m = await import('$TMP/dist/shared/protocol/messages.js');
const v = await import('$TMP/dist/agent/version.js');
console.log(JSON.stringify({ type: 'hello', v: m.PROTOCOL_VERSION, agentVersion: v.AGENT_VERSION, stateVersion: null, lastSeq: 0, features: m.FEATURES }));
" --input-type=module >"$TMP/out/agent-hello.json"
rm -f "$DATA"/server.pem "$DATA"/server.key "$DATA"/lock.* "$TMP/out/agent"/lock.*
rm -rf "$OUT"
mkdir -p "$OUT"
cp -r "$TMP/out/." "$OUT/"
echo "$COMMIT" >"$OUT/COMMIT"
ls -la "$OUT" "$OUT/central" "$OUT/agent"
