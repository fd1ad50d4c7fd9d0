# shellcheck shell=sh
# Machine certificates from a service CA (docs/pki.md). Sourced by runner.sh (discovery image and
# installed OS alike). The key is made HERE with openssl and never leaves the machine; the CSR goes to
# the agent with this machine's credential, the agent forwards it to the central, which issues only
# names it knows for this machine. Files per CA, under $CERT_ROOT/<ca>/ (0700):
#   key.pem (0600)  cert.pem  ca.pem  crl.pem  renew-at (epoch s)  request.conf (sans=, ttl=)
# Renewal: cert_maintain (called by the runner's poll loop) asks for a new certificate, with a new key,
# once 2/3 of the lifetime have passed, and refreshes every CA's CRL.
#   POST ${underlay.url}/api/v1/runner/csr {ca, csr, ttl?}  -> 202 {request}
#   GET  ${underlay.url}/api/v1/runner/csr/<request>        -> 202 pending | 200 {state: issued|refused, ...}
#   GET  ${underlay.url}/api/v1/pki/<ca>/crl.pem            -> the CA's current CRL
if [ -n "${UNDERLAY_CERT_DIR:-}" ]; then CERT_ROOT="$UNDERLAY_CERT_DIR"
elif [ "$UL_MODE" = os ]; then CERT_ROOT=/etc/underlay/certs
else CERT_ROOT="$UL_STATE/certs"; fi
CERT_WAIT="${UNDERLAY_CERT_WAIT:-120}"   # seconds to wait for the central's answer
export UNDERLAY_CERT_DIR="$CERT_ROOT"    # run-script tasks find the certificates here

cert_ca_ok() { case "$1" in '' | -* | *- | *[!a-z0-9-]*) return 1 ;; *) [ "${#1}" -le 63 ] ;; esac }
cert_san_ok() { case "$1" in '' | *[!A-Za-z0-9.:-]*) return 1 ;; *) [ "${#1}" -le 253 ] ;; esac }
cert_ttl_ok() { case "$1" in '') return 0 ;; *[!0-9smhd]*) return 1 ;; *) return 0 ;; esac }

# cert_pem_field FILE NAME: the PEM string field NAME of a JSON answer, with its \n escapes undone.
cert_pem_field() {
  tr -d '\n\r' <"$1" | sed -n "s/.*\"$2\"[[:space:]]*:[[:space:]]*\"\([^\"]*\)\".*/\1/p" | awk '{ gsub(/\\n/, "\n"); gsub(/\\\//, "/"); printf "%s", $0 }'
}

# cert_epoch ISO: seconds since the epoch of an ISO-8601 UTC time (iso_to_epoch of runner.sh).
cert_epoch() { iso_to_epoch "$1"; }

# cert_obtain CA SANS TTL: new key + CSR (SANS: comma-separated names/addresses, empty = every name the
# central knows for this machine), sent through the agent; on "issued" the files are replaced (key and
# certificate renamed into place together). Returns 0 issued, 1 refused (reason in $dir/refusal), 2 error.
cert_obtain() {
  local _ca _sans _ttl _d _alt _s _c _req _st _n _nb _na
  _ca="$1"; _sans="$2"; _ttl="$3"; _d="$CERT_ROOT/$_ca"
  (umask 077; mkdir -p "$_d")
  rm -f "$_d/key.new" "$_d/csr.new" "$_d/cert.new" "$_d/refusal"
  (umask 077; openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$_d/key.new" 2>"$_d/openssl.err") || { ul_log "cert $_ca: openssl could not make a key"; return 2; }
  _alt=""
  if [ -n "$_sans" ]; then
    for _s in $(printf '%s' "$_sans" | tr ',' ' '); do
      case "$_s" in *:* | [0-9]*.[0-9]*.[0-9]*.[0-9]*) _alt="$_alt,IP:$_s" ;; *) _alt="$_alt,DNS:$_s" ;; esac
    done
    _alt="subjectAltName=${_alt#,}"
  fi
  if [ -n "$_alt" ]; then
    openssl req -new -key "$_d/key.new" -subj "/CN=${MACHINE:-machine}" -addext "$_alt" -out "$_d/csr.new" 2>>"$_d/openssl.err"
  else
    openssl req -new -key "$_d/key.new" -subj "/CN=${MACHINE:-machine}" -out "$_d/csr.new" 2>>"$_d/openssl.err"
  fi || { ul_log "cert $_ca: openssl could not make a CSR"; return 2; }
  {
    printf '{"ca":%s,"csr":' "$(json_str "$_ca")"
    json_escape_file "$_d/csr.new"
    [ -n "$_ttl" ] && printf ',"ttl":%s' "$(json_str "$_ttl")"
    printf '}'
  } >"$_d/csr.json"
  _c=$(http_request POST "$UL_URL/api/v1/runner/csr" "$_d/csr.json" "$_d/csr.response")
  if [ "$_c" != 202 ]; then
    cp "$_d/csr.response" "$_d/refusal" 2>/dev/null
    ul_log "cert $_ca: the agent did not take the CSR (HTTP $_c)"
    case "$_c" in 4??) return 1 ;; *) return 2 ;; esac
  fi
  _req=$(json_flat <"$_d/csr.response" | awk -F '\t' '$1 == "request" { print $2; exit }')
  case "$_req" in '' | *[!A-Za-z0-9_-]*) ul_log "cert $_ca: no request id in the agent's answer"; return 2 ;; esac
  _n=0
  while :; do
    _c=$(http_request GET "$UL_URL/api/v1/runner/csr/$_req" "" "$_d/answer.json")
    if [ "$_c" = 200 ]; then
      _st=$(json_flat <"$_d/answer.json" | awk -F '\t' '$1 == "state" { print $2; exit }')
      break
    fi
    _n=$((_n + 1))
    if [ "$_n" -ge "$CERT_WAIT" ]; then ul_log "cert $_ca: no answer from the central after $CERT_WAIT s (HTTP $_c)"; return 2; fi
    sleep 1
  done
  if [ "$_st" != issued ]; then
    json_flat <"$_d/answer.json" | awk -F '\t' '$1 == "reason" { print $2; exit }' >"$_d/refusal"
    ul_log "cert $_ca: refused: $(cat "$_d/refusal")"
    return 1
  fi
  cert_pem_field "$_d/answer.json" certificate >"$_d/cert.new"
  cert_pem_field "$_d/answer.json" caCertificate >"$_d/ca.new"
  # The certificate must be for the key made here (the agent or the pipe cannot swap it).
  if [ "$(openssl x509 -noout -pubkey -in "$_d/cert.new" 2>/dev/null)" != "$(openssl pkey -pubout -in "$_d/key.new" 2>/dev/null)" ] ||
    ! openssl verify -CAfile "$_d/ca.new" "$_d/cert.new" >/dev/null 2>&1; then
    ul_log "cert $_ca: the answer is not a certificate of CA $_ca for this key; kept the old one"
    return 2
  fi
  _nb=$(date -u +%s)   # notBefore is backdated for clock skew: the lifetime counts from now
  _na=$(cert_epoch "$(json_flat <"$_d/answer.json" | awk -F '\t' '$1 == "notAfter" { print $2; exit }')")
  mv -f "$_d/ca.new" "$_d/ca.pem"
  mv -f "$_d/key.new" "$_d/key.pem"
  mv -f "$_d/cert.new" "$_d/cert.pem"
  printf 'sans=%s\nttl=%s\n' "$_sans" "$_ttl" >"$_d/request.conf"
  if [ -n "$_nb" ] && [ -n "$_na" ]; then echo $((_nb + (_na - _nb) * 2 / 3)) >"$_d/renew-at"; fi
  json_flat <"$_d/answer.json" | awk -F '\t' '$1 == "serial" { print $2; exit }' >"$_d/serial"
  cert_refresh_crl "$_ca"
  ul_log "cert $_ca: certificate $(cat "$_d/serial") issued, valid until $(json_flat <"$_d/answer.json" | awk -F '\t' '$1 == "notAfter" { print $2; exit }')"
  return 0
}

# cert_refresh_crl CA: fetch the CA's current CRL from the agent (kept only if openssl reads it).
cert_refresh_crl() {
  local _d _c
  _d="$CERT_ROOT/$1"
  _c=$(http_request GET "$UL_URL/api/v1/pki/$1/crl.pem" "" "$_d/crl.new")
  if [ "$_c" = 200 ] && openssl crl -noout -in "$_d/crl.new" 2>/dev/null; then mv -f "$_d/crl.new" "$_d/crl.pem"; else rm -f "$_d/crl.new"; fi
}

# cert_request_task ID FLAT: the signed `cert-request` task {ca, sans?, ttl?}.
cert_request_task() {
  local _id _flat _ca _sans _ttl _i _s _d
  _id="$1"; _flat="$2"; _d="$TASKS/$_id"
  _ca=$(jget "$_flat" payload.ca); _ttl=$(jget "$_flat" payload.ttl)
  cert_ca_ok "$_ca" && cert_ttl_ok "$_ttl" || { refuse "$_id" bad-envelope; return; }
  _sans=""; _i=0
  while _s=$(jget "$_flat" "payload.sans.$_i") && [ -n "$_s" ]; do
    cert_san_ok "$_s" || { refuse "$_id" bad-envelope; return; }
    _sans="$_sans,$_s"; _i=$((_i + 1))
  done
  _sans="${_sans#,}"
  report "$_id" running
  cert_obtain "$_ca" "$_sans" "$_ttl"
  case $? in
    0) printf 'certificate %s of CA %s in %s\n' "$(cat "$CERT_ROOT/$_ca/serial")" "$_ca" "$CERT_ROOT/$_ca" >"$_d/output"
       report "$_id" succeeded 0 "$_d/output" ;;
    1) { printf 'refused: '; cat "$CERT_ROOT/$_ca/refusal" 2>/dev/null; } >"$_d/output"; report "$_id" failed 1 "$_d/output" cert-refused ;;
    *) printf 'no certificate: see the runner log\n' >"$_d/output"; report "$_id" failed 2 "$_d/output" cert-unavailable ;;
  esac
}

# cert_maintain: renew every certificate past its renew-at; refresh every CA's CRL. Called between polls.
cert_maintain() {
  local _d _ca _at _now
  [ -d "$CERT_ROOT" ] || return 0
  _now=$(date -u +%s)
  for _d in "$CERT_ROOT"/*/; do
    _ca=$(basename "$_d"); cert_ca_ok "$_ca" || continue
    [ -s "$_d/cert.pem" ] || continue
    _at=$(cat "$_d/renew-at" 2>/dev/null)
    case "$_at" in '' | *[!0-9]*) ;; *)
      if [ "$_now" -ge "$_at" ]; then
        ul_log "cert $_ca: renewing (2/3 of its lifetime passed)"
        cert_obtain "$_ca" "$(sed -n 's/^sans=//p' "$_d/request.conf")" "$(sed -n 's/^ttl=//p' "$_d/request.conf")"
        continue
      fi ;;
    esac
    cert_refresh_crl "$_ca"
  done
}
