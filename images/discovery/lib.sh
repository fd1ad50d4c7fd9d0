# shellcheck shell=sh
# Shared helpers for the Underlay discovery image (busybox ash). Sourced by init, collect.sh, runner.sh.

UL_STATE="${UNDERLAY_STATE:-/run/underlay}"
UL_CMDLINE_FILE="${UNDERLAY_CMDLINE_FILE:-/proc/cmdline}"
UL_LIBDIR="$(dirname "${UNDERLAY_LIB:-/lib/underlay/lib.sh}")"

# ul_arg NAME: value of underlay.NAME=VALUE on the kernel command line (last one wins), empty if absent.
ul_arg() {
  tr ' ' '\n' <"$UL_CMDLINE_FILE" | sed -n "s/^underlay\\.$1=//p" | tail -n 1
}

# ul_log MESSAGE...: one line on the console (and stderr when there is no console).
ul_log() {
  if [ -w /dev/console ] && [ -z "${UNDERLAY_NO_CONSOLE:-}" ]; then
    echo "underlay: $*" >/dev/console
  else
    echo "underlay: $*" >&2
  fi
}

# json_str VALUE: VALUE as a JSON string literal (quotes, backslashes escaped, control characters dropped).
json_str() {
  printf '"%s"' "$(printf '%s' "$1" | tr -d '\000-\037\177' | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')"
}

# json_escape_file FILE: the bytes of FILE as one JSON string literal. Quotes, backslashes and every
# control character are escaped (\n \t \r \b \f or \u00XX); NUL bytes are dropped. The exact content is
# kept, including whether it ends with a newline (a sentinel byte is appended and removed again).
json_escape_file() {
  { tr -d '\000' <"$1"; printf 'X'; } | awk '
    BEGIN {
      for (i = 1; i < 32; i++) ctl[i] = sprintf("%c", i)
      ctl[127] = sprintf("%c", 127)
      short[8] = "\\b"; short[9] = "\\t"; short[12] = "\\f"; short[13] = "\\r"
      printf "\""
    }
    function esc(line,   i, out, rest, p, rep) {
      gsub(/\\/, "\\\\", line)
      gsub(/"/, "\\\"", line)
      for (i in ctl) {
        if (index(line, ctl[i]) == 0) continue
        rep = (i in short) ? short[i] : sprintf("\\u%04x", i + 0)
        out = ""; rest = line
        while ((p = index(rest, ctl[i])) > 0) { out = out substr(rest, 1, p - 1) rep; rest = substr(rest, p + 1) }
        line = out rest
      }
      return line
    }
    NR > 1 { printf "%s\\n", esc(prev) }
    { prev = $0 }
    END { printf "%s\"", esc(substr(prev, 1, length(prev) - 1)) }'
}

# json_flat: reads one JSON document on stdin and prints one line per scalar: "path<TAB>value", with
# paths like id, payload.scriptB64, nics.0.mac; strings are unescaped (\uXXXX only for ASCII), other
# scalars are printed as they appear (true, false, null, numbers). Enough for the small, trusted-shape
# documents the image reads (signed envelopes after verification, the agent's discovery answer).
json_flat() {
  awk '
    BEGIN { RS = "\001" }
    function emit(v) { print path() "\t" v }
    function path(   i, p) { p = ""; for (i = 1; i <= depth; i++) { if (i > 1) p = p "."; p = p key[i] } return p }
    {
      s = $0; n = length(s); i = 1; depth = 0
      while (i <= n) {
        c = substr(s, i, 1)
        if (c == "{") { depth++; type[depth] = "o"; key[depth] = ""; expectkey[depth] = 1; i++; continue }
        if (c == "[") { depth++; type[depth] = "a"; key[depth] = 0; i++; continue }
        if (c == "}" || c == "]") { depth--; i++; continue }
        if (c == ",") { if (type[depth] == "a") key[depth]++; else expectkey[depth] = 1; i++; continue }
        if (c == ":") { expectkey[depth] = 0; i++; continue }
        if (c == " " || c == "\t" || c == "\n" || c == "\r") { i++; continue }
        if (c == "\"") {
          v = ""; i++
          while (i <= n) {
            # a run of plain characters at once (base64 payloads are long: char by char is quadratic; 64 KiB
            # windows were 3x faster than 4 KiB on a 400 KB module in busybox awk and mawk, larger ones not)
            w = substr(s, i, 65536)
            if (match(w, /^[^"\\]+/)) { v = v substr(w, 1, RLENGTH); i += RLENGTH; continue }
            c = substr(s, i, 1)
            if (c == "\"") break
            if (c == "\\") {
              i++; c = substr(s, i, 1)
              if (c == "n") v = v "\n"; else if (c == "t") v = v "\t"; else if (c == "r") v = v "\r"
              else if (c == "b") v = v "\b"; else if (c == "f") v = v "\f"
              else if (c == "u") {
                h = tolower(substr(s, i + 1, 4)); i += 4; code = 0
                for (k = 1; k <= 4; k++) code = code * 16 + index("0123456789abcdef", substr(h, k, 1)) - 1
                v = v (code < 128 && code > 0 ? sprintf("%c", code) : "?")
              } else v = v c
            } else v = v c
            i++
          }
          i++
          if (type[depth] == "o" && expectkey[depth]) { key[depth] = v; continue }
          emit(v); continue
        }
        # bare scalar: number, true, false, null
        v = ""
        while (i <= n) { c = substr(s, i, 1); if (c == "," || c == "}" || c == "]" || c == " " || c == "\n" || c == "\r" || c == "\t") break; v = v c; i++ }
        emit(v)
      }
    }'
}

# jget FILE PATH: the value of PATH in a file produced by json_flat (first match), empty if absent.
jget() {
  awk -F '\t' -v p="$2" '$1 == p { sub(/^[^\t]*\t/, ""); print; exit }' "$1"
}

# jvars FILE VAR=PATH...: several values of a json_flat file in one pass (one process instead of one jget
# each), printed as VAR='value' lines for eval: values are single-quoted, so nothing in them is ever
# evaluated. A path that is absent gives VAR=''. VAR=?PATH gives VAR=1 when PATH is present (without
# copying a large value into the shell). Variable names are the caller's literals, never data.
jvars() {
  local _f
  _f="$1"; shift
  awk -F '\t' -v q="'" -v spec="$*" '
    function sq(s,   out, p) { out = ""; while ((p = index(s, q)) > 0) { out = out substr(s, 1, p - 1) q "\\" q q; s = substr(s, p + 1) } return q out s q }
    BEGIN {
      n = split(spec, a, " ")
      for (i = 1; i <= n; i++) {
        e = index(a[i], "="); name[i] = substr(a[i], 1, e - 1); p = substr(a[i], e + 1)
        if (substr(p, 1, 1) == "?") { p = substr(p, 2); flag[i] = 1 }
        want[p] = (p in want) ? want[p] SUBSEP i : i; val[i] = ""
      }
    }
    $1 in want {
      m = split(want[$1], idx, SUBSEP)
      for (k = 1; k <= m; k++) { i = idx[k]; if (i in got) continue; got[i] = 1
        if (flag[i]) val[i] = 1; else { v = $0; sub(/^[^\t]*\t/, "", v); val[i] = v } }
    }
    END { for (i = 1; i <= n; i++) printf "%s=%s\n", name[i], sq(val[i]) }' "$_f"
}

# http_request METHOD URL BODYFILE OUTFILE: one HTTP request with this machine's credential (the boot
# session of ul_claim, or the installed OS's credential from its runner config). Prints the HTTP status
# code (000 when there was no HTTP answer). Response body goes to OUTFILE. curl (Debian's, in the
# discovery image and in an installed OS), busybox wget as a fallback. With curl the credential goes in a
# header file (curl -H @FILE), never on a command line other local users could read in /proc.
http_request() {
  local _m _u _b _o _h _code
  _m="$1"; _u="$2"; _b="$3"; _o="$4"; _h="$UL_STATE/http.headers.$$"
  if [ -n "$UL_CURL" ]; then
    : >"$_o" # curl writes no file for an answer without a body: no stale answer is read then
    ul_auth_header_file
    if [ "$_m" = POST ]; then
      _code=$(curl -sS -m 120 -o "$_o" -w '%{http_code}' -H "@$UL_STATE/auth.header" -H 'Content-Type: application/json' \
        --data-binary "@$_b" "$_u" 2>/dev/null)
    else
      _code=$(curl -sS -m 120 -o "$_o" -w '%{http_code}' -H "@$UL_STATE/auth.header" "$_u" 2>/dev/null)
    fi
    case "$_code" in [0-9][0-9][0-9]) echo "$_code" ;; *) echo 000 ;; esac
    return 0
  fi
  rm -f "$_o" "$_h"
  if [ "$_m" = POST ]; then
    wget -S -q -O "$_o" --header "Authorization: Bearer $UL_SESSION" --header "Content-Type: application/json" \
      --post-file "$_b" "$_u" 2>"$_h"
  else
    wget -S -q -O "$_o" --header "Authorization: Bearer $UL_SESSION" "$_u" 2>"$_h"
  fi
  _code=$(sed -n 's/^ *HTTP\/[0-9.]* \([0-9][0-9][0-9]\).*/\1/p' "$_h" | tail -n 1)
  rm -f "$_h"
  [ -f "$_o" ] || : >"$_o"
  echo "${_code:-000}"
}

# ul_auth_header_file: $UL_STATE/auth.header (0600) holds "Authorization: Bearer <credential>" for curl.
ul_auth_header_file() {
  local _l=
  { IFS= read -r _l <"$UL_STATE/auth.header"; } 2>/dev/null # read: a builtin, no process per request
  [ "$_l" = "Authorization: Bearer $UL_SESSION" ] && return 0
  (umask 077; printf 'Authorization: Bearer %s\n' "$UL_SESSION" >"$UL_STATE/auth.header")
}

# backoff ATTEMPT: sleep 1, 2, 4 … 60 seconds (plus up to 25% jitter) for attempt 1, 2, 3 …
backoff() {
  local _d=1 _i
  _d=1; _i=1
  while [ "$_i" -lt "$1" ] && [ "$_d" -lt 60 ]; do _d=$((_d * 2)); _i=$((_i + 1)); done
  [ "$_d" -gt 60 ] && _d=60
  sleep $((_d + RANDOM % (_d / 4 + 1)))
}

# ul_claim: trades the single-use boot token of the kernel command line for this boot's session
# credential (POST /api/v1/boot/claim), once per boot; the answer is kept in $UL_STATE/claim.flat (RAM)
# and the credential in $UL_STATE/session. Retries network errors, 429 and 5xx with backoff. A refusal
# (403 expired/unknown, 409 already claimed by another client) is final: the agent raised an event, and
# this boot can do nothing more with the agent.
ul_claim() {
  local _a _c
  [ -s "$UL_STATE/session" ] && { UL_SESSION=$(cat "$UL_STATE/session"); return 0; }
  case "$UL_TOKEN" in '' | *[!A-Za-z0-9_-]*) ul_log "no usable underlay.token on the kernel command line"; return 1 ;; esac
  printf '{"token":"%s"}' "$UL_TOKEN" >"$UL_STATE/claim.json"
  _a=0
  while :; do
    _a=$((_a + 1))
    _c=$(http_request POST "$UL_URL/api/v1/boot/claim" "$UL_STATE/claim.json" "$UL_STATE/claim.response")
    case "$_c" in
      2??) break ;;
      401 | 403 | 404 | 409 | 410)
        ul_log "the agent refused this boot's token (HTTP $_c): another client claimed it first, or it expired; reboot to get a new one"
        return 1 ;;
    esac
    [ $((_a % 5)) -eq 1 ] && ul_log "claiming the boot token at $UL_URL failed (HTTP $_c), retrying"
    backoff "$_a"
  done
  json_flat <"$UL_STATE/claim.response" >"$UL_STATE/claim.flat"
  UL_SESSION=$(jget "$UL_STATE/claim.flat" session)
  case "$UL_SESSION" in '' | *[!A-Za-z0-9_-]*) ul_log "the agent's claim answer carried no session"; UL_SESSION=""; return 1 ;; esac
  printf '%s' "$UL_SESSION" >"$UL_STATE/session"
  ul_log "boot token claimed: session for machine $(jget "$UL_STATE/claim.flat" machine)"
}

# ul_conf KEY: the value of KEY=VALUE in the installed OS's runner config ($UNDERLAY_CONFIG), never sourced.
ul_conf() {
  sed -n "s/^$1=//p" "$UNDERLAY_CONFIG" | tail -n 1
}

# ul_init_env: who this runner is and where its agent is. In the discovery image: the kernel command line
# (underlay.url, .token, .mac, .pubkey, .machine) and this boot's session. In an installed OS:
# $UNDERLAY_CONFIG (/etc/underlay/runner.env, 0600, written by the deploy), which carries the installed
# OS's own credential instead of a boot token; UL_MODE says which (discovery | os).
ul_init_env() {
  mkdir -p "$UL_STATE"
  if [ -n "${UNDERLAY_CONFIG:-}" ] && [ -r "$UNDERLAY_CONFIG" ]; then
    UL_MODE=os
    UL_URL="$(ul_conf url)"; UL_URL="${UL_URL%/}"
    UL_TOKEN=""
    UL_MAC="$(ul_conf mac)"
    UL_PUBKEY="$(ul_conf pubkey)"
    UL_MACHINE="$(ul_conf machine)"
    UL_SESSION="$(ul_conf credential)"
    UL_AGENT="$(ul_conf agent)"
    UL_SEQ_FLOOR="$(ul_conf seqFloor)"
    UL_DEPLOY_TASK="$(ul_conf deployTask)"
  else
    UL_MODE=discovery
    UL_URL="$(ul_arg url)"; UL_URL="${UL_URL%/}"
    UL_TOKEN="$(ul_arg token)"
    UL_MAC="$(ul_arg mac | tr 'A-F-' 'a-f:')"
    UL_PUBKEY="$(ul_arg pubkey)"
    UL_MACHINE="$(ul_arg machine)"
    UL_SESSION="$(cat "$UL_STATE/session" 2>/dev/null)"
    UL_AGENT=""; UL_SEQ_FLOOR=""; UL_DEPLOY_TASK=""
  fi
  # curl when there is one (the discovery image ships Debian's; an installed OS has it), else busybox wget.
  UL_CURL=""
  if command -v curl >/dev/null 2>&1; then UL_CURL=1; fi
  export UL_MODE UL_URL UL_TOKEN UL_MAC UL_PUBKEY UL_MACHINE UL_SESSION UL_AGENT UL_SEQ_FLOOR UL_DEPLOY_TASK UL_CURL
}
