# shellcheck shell=sh
# Ansible's connection through the agent (docs/ansible.md): the runner's handlers for the task kinds
# exec, put-file and fetch-file. Sourced by runner.sh after lib.sh; uses its report/refuse helpers and
# $TASKS. POSIX sh (busybox ash in the discovery image, dash in an installed Debian).
#
# Output formats (the report's "output"; base64 keeps any bytes JSON-safe):
#   exec        "underlay-exec 1 <stdout bytes> <stderr bytes> <task dir>\n<stdout b64>\n<stderr b64>"
#               exitCode = the command's exit status; the state is succeeded whenever the command ran.
#               Only the first UL_EXEC_INLINE_OUT / _ERR bytes are inline; the whole streams stay in
#               <task dir>/stdout and /stderr for fetch-file (the plugin fetches the rest).
#   fetch-file  "underlay-fetch 1 <file size>\n<b64 of the requested range>"
#   put-file    "underlay-put 1 <bytes written so far>"
# A failed file operation reports state failed, a short reason and a message.

UL_EXEC_INLINE_OUT=393216   # shared/protocol/remote-kinds.ts EXEC_INLINE_STDOUT
UL_EXEC_INLINE_ERR=131072   # EXEC_INLINE_STDERR

# b64_head FILE BYTES: base64 of the first BYTES bytes of FILE, on one line.
b64_head() { head -c "$2" "$1" | base64 | tr -d '\n'; }

# remote_fail ID REASON MESSAGE: a final failed report with a reason code and a message as output.
remote_fail() {
  printf '%s\n' "$3" >"$TASKS/$1/error"
  ul_log "task $1 failed: $2: $3"
  report "$1" failed "" "$TASKS/$1/error" "$2"
}

exec_task() {
  local _id _d _flat _to _sp _ec _so _se
  _id="$1"; _d="$TASKS/$_id"; _flat="$2"
  if ! jget "$_flat" payload.cmdB64 | base64 -d >"$_d/cmd" 2>/dev/null || [ ! -s "$_d/cmd" ]; then
    refuse "$_id" bad-envelope; return
  fi
  : >"$_d/stdin"
  _sp=$(jget "$_flat" payload.stdinPath)
  if [ -n "$_sp" ]; then
    [ -f "$_sp" ] || { remote_fail "$_id" not-found "stdin file $_sp does not exist"; return; }
    mv -f "$_sp" "$_d/stdin" 2>/dev/null || cp "$_sp" "$_d/stdin"
  else
    jget "$_flat" payload.stdinB64 | base64 -d >"$_d/stdin" 2>/dev/null
  fi
  _to=$(jget "$_flat" payload.timeoutSec)
  (
    HOME="${HOME:-/root}"; export HOME
    cd "$HOME" 2>/dev/null || cd /
    export UNDERLAY_MACHINE="$MACHINE" UNDERLAY_TASK="$_id"
    case "$_to" in
      '' | *[!0-9]* | 0) sh -c "$(cat "$_d/cmd")" <"$_d/stdin" >"$_d/stdout" 2>"$_d/stderr" ;;
      *) timeout -s TERM -k 10 "$_to" sh -c "$(cat "$_d/cmd")" <"$_d/stdin" >"$_d/stdout" 2>"$_d/stderr" ;;
    esac
    echo $? >"$_d/exit-code"
  )
  rm -f "$_d/stdin"
  _ec=$(cat "$_d/exit-code" 2>/dev/null); case "$_ec" in '' | *[!0-9]*) _ec=255 ;; esac
  _so=$(wc -c <"$_d/stdout" | tr -d ' '); _se=$(wc -c <"$_d/stderr" | tr -d ' ')
  {
    printf 'underlay-exec 1 %s %s %s\n' "$_so" "$_se" "$_d"
    b64_head "$_d/stdout" "$UL_EXEC_INLINE_OUT"; printf '\n'
    b64_head "$_d/stderr" "$UL_EXEC_INLINE_ERR"
  } >"$_d/output"
  # What fits inline is not kept: only streams the plugin must still fetch stay on the machine.
  [ "$_so" -le "$UL_EXEC_INLINE_OUT" ] && rm -f "$_d/stdout"
  [ "$_se" -le "$UL_EXEC_INLINE_ERR" ] && rm -f "$_d/stderr"
  report "$_id" succeeded "$_ec" "$_d/output"
}

put_file_task() {
  local _id _d _flat _p _off _part _have _mode
  _id="$1"; _d="$TASKS/$_id"; _flat="$2"
  _p=$(jget "$_flat" payload.path); _off=$(jget "$_flat" payload.offset); _mode=$(jget "$_flat" payload.mode)
  case "$_p" in /*) ;; *) refuse "$_id" bad-envelope; return ;; esac
  case "$_off" in '' | *[!0-9]*) refuse "$_id" bad-envelope; return ;; esac
  _part="$_p.underlay-part"
  [ -d "$(dirname "$_p")" ] || { remote_fail "$_id" not-found "directory $(dirname "$_p") does not exist"; return; }
  if [ "$_off" -eq 0 ]; then
    (umask 077; : >"$_part") 2>/dev/null || { remote_fail "$_id" write-failed "cannot write $_part"; return; }
  fi
  _have=$(wc -c <"$_part" 2>/dev/null | tr -d ' ')
  if [ "${_have:-x}" != "$_off" ]; then
    remote_fail "$_id" offset-mismatch "chunk at offset $_off, but $_part has ${_have} bytes"; return
  fi
  if ! jget "$_flat" payload.dataB64 | base64 -d >>"$_part" 2>/dev/null; then
    remote_fail "$_id" write-failed "cannot append to $_part (disk full?)"; return
  fi
  _have=$(wc -c <"$_part" | tr -d ' ')
  if [ "$(jget "$_flat" payload.final)" = true ]; then
    [ -n "$_mode" ] && chmod "$_mode" "$_part"
    mv -f "$_part" "$_p" || { remote_fail "$_id" write-failed "cannot move $_part to $_p"; return; }
    sync
  fi
  printf 'underlay-put 1 %s' "$_have" >"$_d/output"
  report "$_id" succeeded 0 "$_d/output"
}

fetch_file_task() {
  local _id _d _flat _p _off _len _size
  _id="$1"; _d="$TASKS/$_id"; _flat="$2"
  _p=$(jget "$_flat" payload.path); _off=$(jget "$_flat" payload.offset); _len=$(jget "$_flat" payload.length)
  case "$_p" in /*) ;; *) refuse "$_id" bad-envelope; return ;; esac
  case "$_off$_len" in '' | *[!0-9]*) refuse "$_id" bad-envelope; return ;; esac
  [ -f "$_p" ] || { remote_fail "$_id" not-found "$_p does not exist or is not a regular file"; return; }
  [ -r "$_p" ] || { remote_fail "$_id" forbidden "$_p is not readable"; return; }
  _size=$(wc -c <"$_p" | tr -d ' ')
  {
    printf 'underlay-fetch 1 %s\n' "$_size"
    tail -c +"$((_off + 1))" "$_p" | head -c "$_len" | base64 | tr -d '\n'
  } >"$_d/output"
  report "$_id" succeeded 0 "$_d/output"
}
