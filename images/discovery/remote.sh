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

# b64_head FILE SIZE LIMIT: base64 of the first LIMIT bytes of FILE (SIZE bytes long), on one line;
# nothing for an empty file, and no head process when the whole file fits.
b64_head() {
  [ "$2" -gt 0 ] || return 0
  if [ "$2" -le "$3" ]; then base64 -w 0 "$1"; else head -c "$3" "$1" | base64 -w 0; fi
}

# json_plain TEXT: true when TEXT can stand in a JSON string as it is (no quote, backslash or control
# character): then a report is written with printf, without json_escape_file's two processes.
json_plain() { case "$1" in *[!A-Za-z0-9\ ._:/+=@,-]*) return 1 ;; esac; }

# remote_ok ID OUTPUTFILE: the final succeeded report, exit code 0, OUTPUTFILE being JSON-plain text
# (the put/fetch headers and base64): written straight into final.json and posted.
remote_ok() {
  { printf '{"state":"succeeded","exitCode":0,"output":"'; cat "$2"; printf '"}'; } >"$TASKS/$1/final.json"
  post_event "$1" "$TASKS/$1/final.json"
}

# remote_fail ID REASON MESSAGE: a final failed report with a reason code and a message as output.
remote_fail() {
  printf '%s\n' "$3" >"$TASKS/$1/error"
  ul_log "task $1 failed: $2: $3"
  report "$1" failed "" "$TASKS/$1/error" "$2"
}

# A task is ~20 processes here and in handle() (each costs 10-40 ms on a loaded host): values come from
# one jvars pass, sizes from wc, base64 without tr, and the report is printf'd rather than escaped.
exec_task() {
  local _id _d _flat _to _sp _cmd _in _ec _so _se
  _id="$1"; _d="$TASKS/$_id"; _flat="$2"
  eval "$(jvars "$_flat" _cmd=payload.cmdB64 _sp=payload.stdinPath _to=payload.timeoutSec _in=?payload.stdinB64)"
  if ! printf '%s' "$_cmd" | base64 -d >"$_d/cmd" 2>/dev/null || [ ! -s "$_d/cmd" ]; then
    refuse "$_id" bad-envelope; return
  fi
  if [ -n "$_sp" ]; then
    [ -f "$_sp" ] || { remote_fail "$_id" not-found "stdin file $_sp does not exist"; return; }
    mv -f "$_sp" "$_d/stdin" 2>/dev/null || cp "$_sp" "$_d/stdin"
  elif [ -n "$_in" ]; then
    jget "$_flat" payload.stdinB64 | base64 -d >"$_d/stdin" 2>/dev/null
  else
    : >"$_d/stdin"
  fi
  (
    HOME="${HOME:-/root}"; export HOME
    cd "$HOME" 2>/dev/null || cd /
    export UNDERLAY_MACHINE="$MACHINE" UNDERLAY_TASK="$_id"
    case "$_to" in
      '' | *[!0-9]* | 0) exec sh "$_d/cmd" <"$_d/stdin" >"$_d/stdout" 2>"$_d/stderr" ;;
      *) exec timeout -s TERM -k 10 "$_to" sh "$_d/cmd" <"$_d/stdin" >"$_d/stdout" 2>"$_d/stderr" ;;
    esac
  )
  _ec=$?
  _so=$(($(wc -c <"$_d/stdout"))); _se=$(($(wc -c <"$_d/stderr")))
  if json_plain "$_d"; then
    {
      printf '{"state":"succeeded","exitCode":%d,"output":"underlay-exec 1 %s %s %s\\n' "$_ec" "$_so" "$_se" "$_d"
      b64_head "$_d/stdout" "$_so" "$UL_EXEC_INLINE_OUT"; printf '\\n'
      b64_head "$_d/stderr" "$_se" "$UL_EXEC_INLINE_ERR"; printf '"}'
    } >"$_d/final.json"
  else
    {
      printf 'underlay-exec 1 %s %s %s\n' "$_so" "$_se" "$_d"
      b64_head "$_d/stdout" "$_so" "$UL_EXEC_INLINE_OUT"; printf '\n'
      b64_head "$_d/stderr" "$_se" "$UL_EXEC_INLINE_ERR"
    } >"$_d/output"
    report "$_id" succeeded "$_ec" "$_d/output" >/dev/null
    rm -f "$_d/output"
  fi
  # What fits inline is not kept: only streams the plugin must still fetch stay on the machine.
  set -- "$_d/stdin" "$_d/cmd"
  [ "$_so" -le "$UL_EXEC_INLINE_OUT" ] && set -- "$@" "$_d/stdout"
  [ "$_se" -le "$UL_EXEC_INLINE_ERR" ] && set -- "$@" "$_d/stderr"
  rm -f "$@"
  json_plain "$_d" && post_event "$_id" "$_d/final.json"
  return 0
}

put_file_task() {
  local _id _d _flat _p _off _mode _final _has _have
  _id="$1"; _d="$TASKS/$_id"; _flat="$2"
  eval "$(jvars "$_flat" _p=payload.path _off=payload.offset _mode=payload.mode _final=payload.final _has=?payload.dataB64)"
  case "$_p" in /*) ;; *) refuse "$_id" bad-envelope; return ;; esac
  case "$_off" in '' | *[!0-9]*) refuse "$_id" bad-envelope; return ;; esac
  _part="$_p.underlay-part"
  [ -d "${_p%/*}/" ] || { remote_fail "$_id" not-found "directory ${_p%/*}/ does not exist"; return; }
  if [ "$_off" -eq 0 ]; then
    (umask 077; : >"$_part") 2>/dev/null || { remote_fail "$_id" write-failed "cannot write $_part"; return; }
  fi
  _have=$( (wc -c <"$_part") 2>/dev/null); _have=${_have:+$((_have))}
  if [ "${_have:-x}" != "$_off" ]; then
    remote_fail "$_id" offset-mismatch "chunk at offset $_off, but $_part has ${_have} bytes"; return
  fi
  if [ -n "$_has" ] && ! jget "$_flat" payload.dataB64 | base64 -d >>"$_part" 2>/dev/null; then
    remote_fail "$_id" write-failed "cannot append to $_part (disk full?)"; return
  fi
  _have=$(($(wc -c <"$_part")))
  if [ "$_final" = true ]; then
    [ -n "$_mode" ] && chmod "$_mode" "$_part"
    mv -f "$_part" "$_p" || { remote_fail "$_id" write-failed "cannot move $_part to $_p"; return; }
    sync
  fi
  printf 'underlay-put 1 %s' "$_have" >"$_d/output"
  remote_ok "$_id" "$_d/output"
}

fetch_file_task() {
  local _id _d _flat _p _off _len _size
  _id="$1"; _d="$TASKS/$_id"; _flat="$2"
  eval "$(jvars "$_flat" _p=payload.path _off=payload.offset _len=payload.length)"
  case "$_p" in /*) ;; *) refuse "$_id" bad-envelope; return ;; esac
  case "$_off$_len" in '' | *[!0-9]*) refuse "$_id" bad-envelope; return ;; esac
  [ -f "$_p" ] || { remote_fail "$_id" not-found "$_p does not exist or is not a regular file"; return; }
  [ -r "$_p" ] || { remote_fail "$_id" forbidden "$_p is not readable"; return; }
  _size=$(($(wc -c <"$_p")))
  {
    printf 'underlay-fetch 1 %s\\n' "$_size"
    if [ "$_off" -eq 0 ]; then head -c "$_len" "$_p" | base64 -w 0
    else tail -c +"$((_off + 1))" "$_p" | head -c "$_len" | base64 -w 0; fi
  } >"$_d/output"
  remote_ok "$_id" "$_d/output"
}
