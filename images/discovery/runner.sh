#!/bin/sh
# Underlay machine runner: long-polls the site agent for signed tasks and runs them.
#   GET  ${underlay.url}/api/v1/runner/next?wait=30          -> 200 {canonical, signature} | 204
#   POST ${underlay.url}/api/v1/runner/tasks/<id>/events     <- {state, output?, exitCode?}
# Every task is an Ed25519-signed envelope (docs/agent-http.md). The runner verifies the signature with
# openssl against underlay.pubkey BEFORE parsing the bytes, then checks v, addressee, expiry and replay.
# Refusals are reported as state "failed" with output: bad-signature, bad-envelope, wrong-machine,
# expired, unsupported-kind, replay. A repeated task id is never run again (its recorded final report is
# re-sent); a task of the agent at or below the replay floor it gave this boot's claim (the highest
# sequence it handed to an earlier boot of this machine) is refused: replay protection survives reboots.
#
# One runner, two environments: the discovery image (busybox, kernel command line, per-boot session) and
# an installed OS (systemd unit underlay-runner.service; UNDERLAY_CONFIG=/etc/underlay/runner.env with the
# installed OS's credential, state in /var/lib/underlay so seen task ids survive reboots). Kinds:
# run-script, reboot, poweroff, release (both), cert-request (both; cert.sh), image-deploy (discovery only;
# deploy.sh), exec, put-file, fetch-file (both; remote.sh: Ansible's connection through the agent).
. "${UNDERLAY_LIB:-/lib/underlay/lib.sh}"
ul_init_env
. "$UL_LIBDIR/deploy.sh"
. "$UL_LIBDIR/remote.sh"
[ "$UL_MODE" = os ] && . "$UL_LIBDIR/os-report.sh"
. "$UL_LIBDIR/cert.sh"

OUTPUT_CAP=1048576
TASKS="$UL_STATE/tasks"
SEEN="$UL_STATE/seen-task-ids"
mkdir -p "$TASKS" "$UL_STATE/incoming"; touch "$SEEN"
POWER_CMD="${UNDERLAY_POWER_CMD:-}"   # tests on a host set this to "echo" so reboot/poweroff are not done

# The machine id tasks must be addressed to: underlay.machine from the command line, else the id the
# agent returned when it accepted the discovery report ({"accepted": true, "machine": "<id>"}).
MACHINE="$UL_MACHINE"
if [ -z "$MACHINE" ] && [ -s "$UL_STATE/claim.flat" ]; then MACHINE=$(jget "$UL_STATE/claim.flat" machine); fi
if [ -z "$MACHINE" ] && [ -s "$UL_STATE/discovery.flat" ]; then MACHINE=$(jget "$UL_STATE/discovery.flat" machine); fi
[ "$MACHINE" = null ] && MACHINE=""

# Replay floor across reboots (from the claim): tasks of agent FLOOR_AGENT with seq <= FLOOR are old.
FLOOR=""; FLOOR_AGENT=""
if [ "$UL_MODE" = os ]; then
  FLOOR="$UL_SEQ_FLOOR"; FLOOR_AGENT="$UL_AGENT"
  case "$FLOOR" in '' | *[!0-9]*) FLOOR="" ;; esac
elif [ -s "$UL_STATE/claim.flat" ]; then
  FLOOR=$(jget "$UL_STATE/claim.flat" seqFloor); FLOOR_AGENT=$(jget "$UL_STATE/claim.flat" agent)
  case "$FLOOR" in '' | *[!0-9]*) FLOOR="" ;; esac
fi

# Public key: base64 of the raw 32-byte Ed25519 key. DER SubjectPublicKeyInfo prefix 302a300506032b6570032100
# is 12 bytes, which is "MCowBQYDK2VwAyEA" in base64; 12 is a multiple of 3, so the key's base64 appends.
PEM="$UL_STATE/task-signing-key.pem"
PUBKEY_OK=
if [ "${#UL_PUBKEY}" -eq 44 ] && [ "$(printf '%s' "$UL_PUBKEY" | base64 -d 2>/dev/null | wc -c)" -eq 32 ]; then
  printf -- '-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA%s\n-----END PUBLIC KEY-----\n' "$UL_PUBKEY" >"$PEM"
  PUBKEY_OK=1
else
  ul_log "underlay.pubkey is missing or not a base64 Ed25519 key: every task will be refused"
fi

safe_id() { case "$1" in '' | *[!A-Za-z0-9._:-]*) return 1 ;; *) [ "${#1}" -le 128 ] ;; esac }

# post_event ID BODYFILE: POST with retries; gives up on a 4xx answer or after 8 failed attempts.
post_event() {
  local _a=0 _c
  while :; do
    _a=$((_a + 1))
    _c=$(http_request POST "$UL_URL/api/v1/runner/tasks/$1/events" "$2" "$UL_STATE/event.response")
    case "$_c" in
      2??) echo 2xx >"$UL_STATE/event.code"; return 0 ;;
      4??) echo 4xx >"$UL_STATE/event.code"; ul_log "task $1: agent refused the report (HTTP $_c)"; return 1 ;;
    esac
    echo other >"$UL_STATE/event.code"
    if [ "$_a" -ge 8 ]; then ul_log "task $1: could not report (HTTP $_c)"; return 1; fi
    backoff "$_a"
  done
}

# report ID STATE [EXITCODE [OUTPUTFILE [REASON]]]: builds the event JSON safely and posts it; a final
# state is kept in tasks/ID/final.json so a repeated delivery can be answered without running it again.
report() {
  local _id _st _ec _of _rs _d _ev
  _id="$1"; _st="$2"; _ec="$3"; _of="$4"; _rs="$5"; _d="$TASKS/$_id"
  [ -d "$_d" ] || mkdir -p "$_d"
  if [ "$_st" = running ]; then _ev="$_d/event.running.json"; else _ev="$_d/final.json"; fi
  {
    printf '{"state":"%s"' "$_st"
    [ -n "$_ec" ] && printf ',"exitCode":%d' "$_ec"
    [ -n "$_rs" ] && printf ',"reason":%s' "$(json_str "$_rs")"
    if [ -n "$_of" ]; then printf ',"output":'; json_escape_file "$_of"; fi
    printf '}'
  } >"$_ev"
  post_event "$_id" "$_ev"
}

# report_progress ID JSON: a running report with a progress object (best effort: one attempt).
report_progress() {
  mkdir -p "$TASKS/$1"
  printf '{"state":"running","progress":%s}' "$2" >"$TASKS/$1/event.progress.json"
  http_request POST "$UL_URL/api/v1/runner/tasks/$1/events" "$TASKS/$1/event.progress.json" "$UL_STATE/progress.response" >/dev/null
}

# report_final_until_acked ID STATE EXITCODE OUTPUTFILE: a final report that must reach the agent before
# the machine reboots (the agent switches its boot on it): retried until acknowledged or refused.
report_final_until_acked() {
  local _n=0
  until report "$1" "$2" "$3" "$4"; do
    _n=$((_n + 1))
    [ "$(cat "$UL_STATE/event.code" 2>/dev/null)" = 4xx ] && return 1
    [ "$_n" -ge 30 ] && return 1
    backoff "$_n"
  done
}

# refuse ID REASON: report a task as failed without running it.
refuse() {
  local _d
  _d="$TASKS/$1"; mkdir -p "$_d"; printf '%s' "$2" >"$_d/refusal"
  ul_log "task $1 refused: $2"
  report "$1" failed "" "$_d/refusal"
}

# iso_to_epoch ISO: seconds since the epoch of YYYY-MM-DDThh:mm:ss[.fff]Z, in shell arithmetic (no
# process: it runs for every task); fails on anything else.
iso_to_epoch() {
  local _IFS _y _mo _d _h _mi _s _era _yoe _doy
  case "$1" in
    [0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]Z | \
    [0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].*Z) ;;
    *) return 1 ;;
  esac
  _IFS="$IFS"; IFS='-T:.Z'
  # shellcheck disable=SC2086
  set -- $1
  IFS="$_IFS"
  # leading zeros would read as octal: 08 and 09 are not numbers there
  _y=$1; _mo=${2#0}; _d=${3#0}; _h=${4#0}; _mi=${5#0}; _s=${6#0}
  # days from the civil date (Howard Hinnant's algorithm), then seconds
  [ "$_mo" -le 2 ] && _y=$((_y - 1))
  _era=$((_y / 400)); _yoe=$((_y - _era * 400))
  if [ "$_mo" -gt 2 ]; then _doy=$(((153 * (_mo - 3) + 2) / 5 + _d - 1)); else _doy=$(((153 * (_mo + 9) + 2) / 5 + _d - 1)); fi
  echo $(((_era * 146097 + _yoe * 365 + _yoe / 4 - _yoe / 100 + _doy - 719468) * 86400 + _h * 3600 + _mi * 60 + _s))
}

# uptime_cs: centiseconds since boot from /proc/uptime (a builtin read: timing costs no process).
uptime_cs() {
  local _u _r
  { read -r _u _r </proc/uptime; } 2>/dev/null || { echo 0; return; }
  _u="${_u%.*}${_u#*.}"
  while [ "${#_u}" -gt 1 ] && [ "${_u#0}" != "$_u" ]; do _u="${_u#0}"; done
  echo "$_u"
}

run_script() {
  local _id _d _flat _to _start _ec _st
  _id="$1"; _d="$TASKS/$_id"; _flat="$2"
  if ! jget "$_flat" payload.scriptB64 | base64 -d >"$_d/script.sh" 2>/dev/null || [ ! -s "$_d/script.sh" ]; then
    refuse "$_id" bad-envelope; return
  fi
  _to=$(jget "$_flat" payload.timeoutSec)
  report "$_id" running
  ul_log "task $_id (run-script) running"
  _start=$(date +%s)
  (
    cd "$_d" || exit 1
    export UNDERLAY_URL="$UL_URL" UNDERLAY_MACHINE="$MACHINE" UNDERLAY_TASK="$_id"
    {
      case "$_to" in
        '' | *[!0-9]* | 0) sh "$_d/script.sh" </dev/null 2>&1 ;;
        *) timeout -s TERM -k 10 "$_to" sh "$_d/script.sh" </dev/null 2>&1 ;;
      esac
      echo $? >"$_d/exit-code"
    } | tail -c "$OUTPUT_CAP" >"$_d/output"
  )
  _ec=$(cat "$_d/exit-code" 2>/dev/null); case "$_ec" in '' | *[!0-9]*) _ec=255 ;; esac
  case "$_to" in '' | *[!0-9]* | 0) ;; *)
    if [ "$_ec" -ge 124 ] && [ $(($(date +%s) - _start)) -ge "$_to" ]; then
      printf '\nunderlay: task timed out after %s s\n' "$_to" >>"$_d/output"
    fi ;;
  esac
  if [ "$_ec" -eq 0 ]; then _st=succeeded; else _st=failed; fi
  report "$_id" "$_st" "$_ec" "$_d/output"
  ul_log "task $_id (run-script) $_st, exit $_ec"
}

handle() {
  local _resp _w _s64 _ok _uid _id _v _seq _agent _m _expires _exp _kind _t0
  _resp="$1"; _w="$UL_STATE/incoming"; _t0=$(uptime_cs)
  # The answer is {"canonical": "<base64>", "signature": "<base64>"}. Base64 has no quotes, so with '"' as
  # awk's field separator a value is the field after its key and a ':' (one process and no regex over the
  # whole answer, which is half a megabyte when a module travels on stdin); "\/" (an escaped slash) is undone.
  awk -F '"' -v c="$_w/c64" -v s="$_w/s64" '
    BEGIN { RS = "\001"; printf "" >c; printf "" >s }
    { for (i = 2; i + 2 <= NF; i++) if ($(i + 1) ~ /^[ \t\r\n]*:[ \t\r\n]*$/) {
        if ($i == "canonical") { v = $(i + 2); gsub(/\\/, "", v); printf "%s", v >c }
        else if ($i == "signature") { v = $(i + 2); gsub(/\\/, "", v); printf "%s", v >s } } }' "$_resp"
  _s64=; { IFS= read -r _s64 <"$_w/s64"; } 2>/dev/null
  if [ ! -s "$_w/c64" ] || [ -z "$_s64" ]; then ul_log "malformed answer from runner/next, ignored"; return 1; fi
  base64 -d <"$_w/c64" >"$_w/canonical" 2>/dev/null
  printf '%s' "$_s64" | base64 -d >"$_w/signature" 2>/dev/null

  _ok=
  # 88 base64 characters are 64 bytes: an Ed25519 signature
  if [ -n "$PUBKEY_OK" ] && [ "${#_s64}" -eq 88 ] &&
    openssl pkeyutl -verify -pubin -inkey "$PEM" -rawin -in "$_w/canonical" -sigfile "$_w/signature" >/dev/null 2>&1; then
    _ok=1
  fi
  if [ -z "$_ok" ]; then
    # Unverified bytes are read for one thing only: the id to address the refusal to (if it looks like one).
    _uid=$(json_flat <"$_w/canonical" 2>/dev/null | awk -F '\t' '$1 == "id" { print $2; exit }')
    if safe_id "$_uid"; then refuse "$_uid" bad-signature; else ul_log "task with a bad signature and no usable id refused"; fi
    return 0
  fi

  json_flat <"$_w/canonical" >"$_w/flat"
  eval "$(jvars "$_w/flat" _id=id _v=v _seq=seq _agent=agent _m=machine _expires=expiresAt _kind=kind)"
  if ! safe_id "$_id"; then ul_log "signed task without a usable id ignored"; return 0; fi
  if grep -qxF "$_id" "$SEEN"; then
    ul_log "task $_id refused: already received (replay), not run again"
    [ -f "$TASKS/$_id/final.json" ] && post_event "$_id" "$TASKS/$_id/final.json"
    return 0
  fi
  echo "$_id" >>"$SEEN"
  mkdir -p "$TASKS/$_id"; mv -f "$_w/canonical" "$_w/flat" "$TASKS/$_id/"

  if [ "$_v" != 1 ]; then refuse "$_id" bad-envelope; return 0; fi
  case "$_seq" in '' | *[!0-9]*) refuse "$_id" bad-envelope; return 0 ;; esac
  if [ -n "$FLOOR" ] && [ "$_agent" = "$FLOOR_AGENT" ] && [ "$_seq" -le "$FLOOR" ]; then
    refuse "$_id" replay; return 0
  fi
  if [ -z "$MACHINE" ] || [ "$_m" != "$MACHINE" ]; then refuse "$_id" wrong-machine; return 0; fi
  _exp=$(iso_to_epoch "$_expires") || { refuse "$_id" bad-envelope; return 0; }
  if [ "$(date -u +%s)" -ge "$_exp" ]; then refuse "$_id" expired; return 0; fi

  case "$_kind" in
    run-script) run_script "$_id" "$TASKS/$_id/flat" ;;
    reboot | poweroff)
      ul_log "task $_id ($_kind): reporting, then $_kind"
      report "$_id" succeeded 0
      sync
      if [ "$UL_MODE" = os ]; then $POWER_CMD "$_kind"; else $POWER_CMD "$_kind" -f; fi
      ;;
    image-deploy) deploy_image "$_id" "$TASKS/$_id/flat" ;;
    release) release_machine "$_id" "$TASKS/$_id/flat" ;;
    cert-request) cert_request_task "$_id" "$TASKS/$_id/flat" ;;
    exec) exec_task "$_id" "$TASKS/$_id/flat" ;;
    put-file) put_file_task "$_id" "$TASKS/$_id/flat" ;;
    fetch-file) fetch_file_task "$_id" "$TASKS/$_id/flat" ;;
    *) refuse "$_id" "unsupported-kind" ;;
  esac
  # what the runner spent on a task, receipt to report acknowledged (docs/ansible.md, "Latency")
  ul_log "task $_id ($_kind) handled in $((($(uptime_cs) - _t0) * 10)) ms"
  return 0
}

if [ -z "$UL_URL" ]; then ul_log "no underlay.url on the kernel command line; runner not started"; exit 1; fi
if [ "$UL_MODE" = os ]; then
  case "$UL_SESSION" in '' | *[!A-Za-z0-9_-]*) ul_log "no usable credential in $UNDERLAY_CONFIG; runner not started"; exit 1 ;; esac
  send_os_report
fi
ul_log "runner polling $UL_URL for tasks${MACHINE:+ as machine $MACHINE}"
fails=0
while :; do
  code=$(http_request GET "$UL_URL/api/v1/runner/next?wait=${UNDERLAY_POLL_WAIT:-30}" "" "$UL_STATE/next.response")
  case "$code" in
    200) fails=0; handle "$UL_STATE/next.response" || { fails=$((fails + 1)); backoff "$fails"; } ;;
    204) fails=0 ;;
    *) fails=$((fails + 1)); [ $((fails % 10)) -eq 1 ] && ul_log "runner: agent answered HTTP $code, retrying"; backoff "$fails" ;;
  esac
  cert_maintain
done
