# shellcheck shell=sh
# The installed OS's report (shared/api/os-report.ts, OsReport): sourced by runner.sh in an installed OS.
# POST ${url}/api/v1/runner/os-report with the installed OS's credential; the agent forwards it to the
# central as a machine-os event. Sent once each time the runner starts (every boot), retried until acked.

osr_field() { sed -n "s/^$1=//p" /etc/os-release 2>/dev/null | head -n 1 | sed 's/^"\(.*\)"$/\1/' | cut -c1-"$2"; }

# os_report_json: OsReport as JSON on stdout.
os_report_json() {
  local _first _if _addr _mac
  printf '{"machineId":%s' "$(json_str "$MACHINE")"
  [ -n "$UL_DEPLOY_TASK" ] && printf ',"deployTaskId":%s' "$(json_str "$UL_DEPLOY_TASK")"
  printf ',"os":{"id":%s' "$(json_str "$(osr_field ID 64)")"
  [ -n "$(osr_field VERSION_ID 64)" ] && printf ',"versionId":%s' "$(json_str "$(osr_field VERSION_ID 64)")"
  [ -n "$(osr_field PRETTY_NAME 256)" ] && printf ',"prettyName":%s' "$(json_str "$(osr_field PRETTY_NAME 256)")"
  printf '},"kernel":%s,"hostname":%s,"addresses":[' "$(json_str "$(uname -r | cut -c1-256)")" "$(json_str "$(hostname | cut -c1-253)")"
  _first=1
  # "2: ens3    inet 198.18.0.50/24 brd … scope global dynamic ens3": interface and bare address.
  ip -o addr show scope global 2>/dev/null | awk '{ split($4, a, "/"); print $2, a[1] }' | head -n 64 |
    while read -r _if _addr; do
      _if=$(printf '%s' "$_if" | cut -c1-32); _mac=$(tr 'A-F' 'a-f' <"/sys/class/net/$_if/address" 2>/dev/null)
      [ "$_first" = 1 ] || printf ','
      _first=0
      printf '{"interface":%s,"address":%s' "$(json_str "$_if")" "$(json_str "$_addr")"
      case "$_mac" in [0-9a-f][0-9a-f]:[0-9a-f][0-9a-f]:[0-9a-f][0-9a-f]:[0-9a-f][0-9a-f]:[0-9a-f][0-9a-f]:[0-9a-f][0-9a-f]) printf ',"mac":"%s"' "$_mac" ;; esac
      printf '}'
    done
  printf ']}'
}

# send_os_report: posts the report until the agent acknowledges it (a 4xx is final and logged).
send_os_report() {
  local _a _c
  os_report_json >"$UL_STATE/os-report.json"
  _a=0
  while :; do
    _a=$((_a + 1))
    _c=$(http_request POST "$UL_URL/api/v1/runner/os-report" "$UL_STATE/os-report.json" "$UL_STATE/os-report.response")
    case "$_c" in
      2??) ul_log "reported this OS to the agent"; return 0 ;;
      4??) ul_log "the agent refused this OS's report (HTTP $_c): $(head -c 200 "$UL_STATE/os-report.response")"; return 1 ;;
    esac
    [ $((_a % 10)) -eq 1 ] && ul_log "reporting this OS to $UL_URL failed (HTTP $_c), retrying"
    backoff "$_a"
  done
}
