# shellcheck shell=sh
# Underlay image deploy (task kind image-deploy) and release (task kind release): sourced by runner.sh.
# Needs from the runner: report ID STATE [EXITCODE [OUTPUTFILE [REASON]]], report_progress ID JSON,
# MACHINE, and lib.sh (http_request, jget, json_str, ul_log, backoff).
#
# image-deploy, in the discovery environment:
#   1. stream /files/sha256/<sha256> from the agent in one request (a dropped or stalled connection resumes
#      with HTTP Range from the last byte received), decompress on the fly (zstd, xz, gzip; raw goes
#      straight through) and write the target disk with 4 MiB direct writes;
#   2. drop the page cache and read back exactly rawSize bytes from the disk: their sha256 must be rawSha256;
#   3. grow the last partition to the disk (sfdisk) and its ext4 (e2fsck + resize2fs);
#   4. ask the agent for the installed OS's credential (once per deploy), mount the root, write the
#      config seed (cloud-init: /etc/cloud/cloud.cfg.d/90-underlay.cfg; Ignition: run ignition against
#      it), the runner's config /etc/underlay/runner.env (0600) and the runner itself (same scripts as here);
#   5. report succeeded (the agent turns netboot off), then reboot into the disk.
# Any failure reports failed with a reason (bad-payload, disk-not-found, disk-too-small, download-failed,
# write-failed, hash-mismatch, timeout, grow-failed, credential-failed, seed-failed) and the machine stays
# here, running tasks; the disk is never reported as deployed unless every step passed.

DEPLOY_STALL="${UNDERLAY_DEPLOY_STALL:-60}"              # seconds under 1 KiB/s before a request is resumed
DEPLOY_TIMEOUT="${UNDERLAY_DEPLOY_TIMEOUT:-3600}"        # seconds for the whole download + write
DEPLOY_TRIES="${UNDERLAY_DEPLOY_TRIES:-8}"               # attempts in a row without a byte of progress
PROGRESS_EVERY="${UNDERLAY_PROGRESS_EVERY:-10}"          # seconds between progress reports
TARGET="${UNDERLAY_TARGET:-/mnt/underlay-target}"

file_size() { if [ -f "$1" ]; then wc -c <"$1" | tr -d ' '; else echo 0; fi; }

# first_disk: /dev/NAME of the first non-removable, writable whole disk (virtio, SCSI/SATA, NVMe, MMC).
first_disk() {
  local _d
  _d=$(all_disks | head -n 1)
  [ -n "$_d" ] || return 1
  echo "$_d"
}

# disk_bytes DEV: size in bytes (a block device from sysfs; a regular file, for tests on a host, its size).
disk_bytes() {
  local _n
  if [ -b "$1" ]; then
    _n="$(basename "$(readlink -f "$1")")"
    echo $(($(cat "/sys/class/block/$_n/size") * 512))
  else file_size "$1"; fi
}

# sectors_written DEV: sectors written to DEV since boot (sysfs stat field 7), 0 when unknown.
sectors_written() {
  local _n
  _n="$(basename "$(readlink -f "$1")")"
  awk '{ print $7 + 0 }' "/sys/class/block/$_n/stat" 2>/dev/null || echo 0
}

# fetch_artifact URL SIZE DIR: writes the SIZE bytes at URL to stdout, in order, over one streaming request
# (no staging: curl writes straight into the decompressor or dd). A connection that breaks off or stalls is
# resumed at the byte where it stopped: `curl -C OFFSET` refuses to pass on a byte unless the agent answers
# 206 with a Content-Range starting at OFFSET. Gives up (DIR/fetch.fail = download-failed | timeout) after
# DEPLOY_TRIES attempts in a row without a byte of progress, or when the deadline in DIR/deadline passes.
# DIR/fetched holds "OFFSET CURLPID" while a request runs (progress adds the bytes that curl has written).
fetch_artifact() {
  local _url _size _d _off _got _rc _tries _deadline _left _pid
  _url="$1"; _size="$2"; _d="$3"; _off=0; _tries=0; _deadline=$(cat "$_d/deadline")
  [ -n "$UL_CURL" ] || { echo "curl is missing: busybox wget takes no byte ranges" >"$_d/fetch.log"; echo download-failed >"$_d/fetch.fail"; return 1; }
  ul_auth_header_file
  echo 0 >"$_d/fetched"; echo 0 >"$_d/resumes"
  while [ "$_off" -lt "$_size" ]; do
    [ "$_off" -gt 0 ] && echo $(($(cat "$_d/resumes") + 1)) >"$_d/resumes"
    _left=$((_deadline - $(date +%s)))
    if [ "$_left" -le 0 ]; then echo timeout >"$_d/fetch.fail"; return 1; fi
    curl -sS -f --connect-timeout 30 -m "$_left" --speed-limit 1024 --speed-time "$DEPLOY_STALL" \
      -H "@$UL_STATE/auth.header" -C "$_off" -w '%{stderr}\nul-bytes=%{size_download}\n' "$_url" 2>"$_d/fetch.err" &
    _pid=$!
    echo "$_off $_pid" >"$_d/fetched"
    wait "$_pid"; _rc=$?
    _got=$(sed -n 's/^ul-bytes=\([0-9]*\).*/\1/p' "$_d/fetch.err" | tail -n 1)
    _off=$((_off + ${_got:-0})); echo "$_off" >"$_d/fetched"
    # 23: curl could not write: the decompressor or dd stopped reading (their own error is reported).
    if [ "$_rc" = 23 ]; then echo downstream-closed >"$_d/fetch.fail"; return 1; fi
    if [ "$_off" -gt "$_size" ]; then
      echo "the agent sent $_off bytes for an artifact of $_size" >>"$_d/fetch.log"; echo download-failed >"$_d/fetch.fail"; return 1
    fi
    [ "$_rc" = 0 ] && [ "$_off" -eq "$_size" ] && break
    if [ "${_got:-0}" -gt 0 ]; then _tries=0; else _tries=$((_tries + 1)); fi
    echo "bytes $((_off - ${_got:-0}))-: got ${_got:-0} bytes, curl exit $_rc ($(grep -v '^ul-bytes=' "$_d/fetch.err" | tr '\n' ' ' | cut -c1-200)), resuming at $_off" >>"$_d/fetch.log"
    if [ "$_tries" -ge "$DEPLOY_TRIES" ]; then echo download-failed >"$_d/fetch.fail"; return 1; fi
    [ "$_tries" -gt 0 ] && sleep "$_tries"
  done
  return 0
}

# decompress FORMAT: stdin → stdout.
decompress() {
  case "$1" in
    zstd) zstd -q -d -c ;;
    xz) xz -d -c ;;
    gzip) gzip -d -c ;;
    *) return 2 ;;
  esac
}

# fetched_bytes DIR: bytes fetched so far (finished requests plus what the running curl has written).
fetched_bytes() {
  local _o _p _w _k _v
  read -r _o _p <"$1/fetched" 2>/dev/null || { echo 0; return; }
  _w=0
  if [ -n "$_p" ] && [ -r "/proc/$_p/io" ]; then
    while read -r _k _v; do [ "$_k" = "wchar:" ] && _w="$_v"; done <"/proc/$_p/io"
  fi
  echo $((${_o:-0} + _w))
}

# progress_loop ID DIR DISK SIZE RAWSIZE: posts a running report with progress 2 s into the write (an operator
# sees the write under way at once, a short write is still seen), then every PROGRESS_EVERY s.
progress_loop() {
  local _id _d _disk _size _raw _s0 _t0 _now _f _w _rate _wait
  _id="$1"; _d="$2"; _disk="$3"; _size="$4"; _raw="$5"
  _s0=$(sectors_written "$_disk"); _t0=$(date +%s)
  _wait=2; [ "$PROGRESS_EVERY" -lt 2 ] && _wait="$PROGRESS_EVERY"
  while [ ! -f "$_d/done" ]; do
    sleep "$_wait"; _wait="$PROGRESS_EVERY"
    [ -f "$_d/done" ] && break
    _now=$(date +%s); _f=$(fetched_bytes "$_d")
    if [ -b "$_disk" ]; then _w=$((($(sectors_written "$_disk") - _s0) * 512)); else _w=$(file_size "$_disk"); fi
    [ "$_w" -gt "$_raw" ] && _w="$_raw"
    _rate=$((_w / (_now - _t0 + 1)))
    report_progress "$_id" "{\"phase\":\"write\",\"bytesWritten\":$_w,\"rawSize\":$_raw,\"bytesFetched\":$_f,\"size\":$_size,\"rateBytesPerSec\":$_rate,\"elapsedSec\":$((_now - _t0))}"
  done
}

# deploy_fail ID DIR REASON MESSAGE: reports failed with the reason; the machine stays in this environment.
deploy_fail() {
  { echo "image-deploy failed: $3"; echo "$4"; [ -s "$2/fetch.log" ] && tail -n 20 "$2/fetch.log"; } >"$2/output"
  ul_log "task $1 (image-deploy) failed: $3: $4"
  report "$1" failed 1 "$2/output" "$3"
}

# sha256_stdin: the hex sha256 of stdin. openssl's assembly is several times faster than busybox's
# sha256sum (the read-back of a 1.3 GiB image took twice as long as writing it under QEMU TCG).
sha256_stdin() {
  if command -v openssl >/dev/null 2>&1; then openssl dgst -sha256 -r | cut -d' ' -f1; else sha256sum | cut -d' ' -f1; fi
}

# read_back DISK BYTES: the first BYTES of DISK to stdout, in 4 MiB reads (direct I/O on a block device when
# BYTES is sector-aligned: no copy through the page cache; busybox head reads 4 KiB at a time).
read_back() {
  if [ -b "$1" ] && [ $(($2 % 512)) -eq 0 ]; then
    dd if="$1" bs=4M count="$2" iflag=direct,count_bytes,fullblock 2>/dev/null
  else
    dd if="$1" bs=4M count="$2" iflag=count_bytes,fullblock 2>/dev/null
  fi
}

# now_ms: milliseconds since boot (busybox date has no %N; /proc/uptime has centiseconds).
now_ms() {
  local _u _r
  read -r _u _r </proc/uptime
  echo $((${_u%.*} * 1000 + 10 * 1${_u#*.} - 1000))
}

# write_and_verify ID DIR URL SIZE FORMAT DISK RAWSIZE RAWSHA: 0 when the disk holds exactly the image.
# Leaves DIR/timing: "write_ms=… verify_ms=…" (scripts/bench/deploy compares the write with curl | dd).
write_and_verify() {
  local _id _d _url _size _fmt _disk _raw _sha _fail _got _pp _w0 _w1
  _id="$1"; _d="$2"; _url="$3"; _size="$4"; _fmt="$5"; _disk="$6"; _raw="$7"; _sha="$8"
  rm -f "$_d/fetch.fail" "$_d/dec.rc" "$_d/dd.rc" "$_d/done"
  echo $(($(date +%s) + DEPLOY_TIMEOUT)) >"$_d/deadline"
  progress_loop "$_id" "$_d" "$_disk" "$_size" "$_raw" &
  _pp=$!
  _w0=$(now_ms)
  if [ "$_fmt" = raw ]; then
    echo 0 >"$_d/dec.rc"
    { fetch_artifact "$_url" "$_size" "$_d"; } |
      { dd of="$_disk" bs=4M iflag=fullblock oflag=direct conv=notrunc 2>"$_d/dd.err"; echo $? >"$_d/dd.rc"; }
  else
    { fetch_artifact "$_url" "$_size" "$_d"; } |
      { decompress "$_fmt"; echo $? >"$_d/dec.rc"; } |
      { dd of="$_disk" bs=4M iflag=fullblock oflag=direct conv=notrunc 2>"$_d/dd.err"; echo $? >"$_d/dd.rc"; }
  fi
  touch "$_d/done"; kill "$_pp" 2>/dev/null; wait "$_pp" 2>/dev/null
  _fail=$(cat "$_d/fetch.fail" 2>/dev/null)
  case "$_fail" in download-failed | timeout) deploy_fail "$_id" "$_d" "$_fail" "fetching $_url: $(tail -n 1 "$_d/fetch.log" 2>/dev/null)"; return 1 ;; esac
  if [ "$(cat "$_d/dd.rc" 2>/dev/null)" != 0 ]; then deploy_fail "$_id" "$_d" write-failed "writing $_disk: $(tail -n 2 "$_d/dd.err" | tr '\n' ' ')"; return 1; fi
  if [ "$(cat "$_d/dec.rc" 2>/dev/null)" != 0 ] || [ -n "$_fail" ]; then deploy_fail "$_id" "$_d" hash-mismatch "the $_fmt stream did not decompress (corrupt artifact)"; return 1; fi
  sync
  [ -b "$_disk" ] && { blockdev --flushbufs "$_disk" 2>/dev/null; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null; }
  _w1=$(now_ms)
  report_progress "$_id" "{\"phase\":\"verify\",\"bytesWritten\":$_raw,\"rawSize\":$_raw,\"bytesFetched\":$_size,\"size\":$_size}"
  _got=$(read_back "$_disk" "$_raw" | sha256_stdin)
  if [ "$_got" != "$_sha" ]; then deploy_fail "$_id" "$_d" hash-mismatch "sha256 of the first $_raw bytes of $_disk is $_got, expected $_sha"; return 1; fi
  echo "write_ms=$((_w1 - _w0)) verify_ms=$(($(now_ms) - _w1)) resumes=$(cat "$_d/resumes" 2>/dev/null || echo 0)" >"$_d/timing"
  ul_log "task $_id: $_raw bytes written to $_disk and verified (sha256 $_sha)"
  return 0
}

# last_partition DISK: "NUMBER DEVICE" of the partition with the highest number (after a re-read).
last_partition() {
  local _n _p _best _bestdev
  _n="$(basename "$(readlink -f "$1")")"; _best=0; _bestdev=""
  for _p in /sys/class/block/"$_n"/"$_n"*; do
    [ -f "$_p/partition" ] || continue
    if [ "$(cat "$_p/partition")" -gt "$_best" ]; then _best=$(cat "$_p/partition"); _bestdev="/dev/${_p##*/}"; fi
  done
  [ "$_best" -gt 0 ] && echo "$_best $_bestdev"
}

# grow_root DISK DIR: the last partition and its ext4 take the rest of the disk. Prints the partition device.
grow_root() {
  local _disk _d _lp _num _dev _rc
  _disk="$1"; _d="$2"
  blockdev --rereadpt "$_disk" 2>/dev/null || partprobe "$_disk" 2>/dev/null
  sleep 1
  _lp=$(last_partition "$_disk") || { echo "no partition on $_disk after writing the image" >"$_d/grow.err"; return 1; }
  _num="${_lp%% *}"; _dev="${_lp#* }"
  # A GPT's backup header sits at the end of the image, not of the disk: move it, then grow the partition.
  sfdisk --relocate gpt-bak-std "$_disk" >"$_d/grow.log" 2>&1 || true
  echo ', +' | sfdisk --no-reread --no-tell-kernel -N "$_num" "$_disk" >>"$_d/grow.log" 2>&1 || { cp "$_d/grow.log" "$_d/grow.err"; return 1; }
  blockdev --rereadpt "$_disk" 2>>"$_d/grow.log" || partprobe "$_disk" 2>>"$_d/grow.log"
  sleep 1
  if [ "$(blkid_type "$_dev")" = ext4 ]; then
    e2fsck -f -p "$_dev" >>"$_d/grow.log" 2>&1; _rc=$?
    [ "$_rc" -lt 4 ] || { echo "e2fsck $_dev exited $_rc" >"$_d/grow.err"; return 1; }
    resize2fs "$_dev" >>"$_d/grow.log" 2>&1 || { tail -n 3 "$_d/grow.log" >"$_d/grow.err"; return 1; }
  fi
  echo "$_dev"
}

# blkid_type DEV: ext4 when DEV holds an ext2/3/4 superblock (magic 0xEF53 at byte 1080), else empty.
blkid_type() {
  [ "$(dd if="$1" bs=1 skip=1080 count=2 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 53ef ] && echo ext4
}

# os_credential ID DIR: the installed OS's credential for this deploy → DIR/credential.flat.
os_credential() {
  local _a _c
  printf '{"task":%s}' "$(json_str "$1")" >"$2/cred.req"
  _a=0
  while :; do
    _a=$((_a + 1))
    _c=$(http_request POST "$UL_URL/api/v1/runner/os-credential" "$2/cred.req" "$2/cred.resp")
    case "$_c" in
      2??) json_flat <"$2/cred.resp" >"$2/credential.flat"; return 0 ;;
      4??) echo "agent refused the credential (HTTP $_c): $(head -c 300 "$2/cred.resp")" >"$2/cred.err"; return 1 ;;
    esac
    [ "$_a" -ge 8 ] && { echo "agent unreachable for the credential (HTTP $_c)" >"$2/cred.err"; return 1; }
    backoff "$_a"
  done
}

# install_runner ROOT: this environment's runner scripts and unit into the installed OS, enabled.
install_runner() {
  local _r _f
  _r="$1"
  mkdir -p "$_r/usr/lib/underlay" "$_r/etc/systemd/system/multi-user.target.wants"
  for _f in lib.sh runner.sh deploy.sh remote.sh os-report.sh cert.sh; do
    [ -f "$UL_LIBDIR/$_f" ] && cp "$UL_LIBDIR/$_f" "$_r/usr/lib/underlay/$_f"
  done
  chmod 0755 "$_r"/usr/lib/underlay/*.sh
  [ -f "$UL_LIBDIR/underlay-runner.service" ] && cp "$UL_LIBDIR/underlay-runner.service" "$_r/etc/systemd/system/underlay-runner.service"
  ln -sfn /etc/systemd/system/underlay-runner.service "$_r/etc/systemd/system/multi-user.target.wants/underlay-runner.service"
}

# install_seed ID DIR ROOT CONFIG: the runner's config and the first-boot config seed into the mounted root.
install_seed() {
  local _d _r _cred _seed _url
  _d="$2"; _r="$3"
  _cred=$(jget "$_d/credential.flat" credential); _seed=$(jget "$_d/credential.flat" seedUrl)
  case "$_cred" in '' | *[!A-Za-z0-9_-]*) echo "the agent's credential answer is malformed" >"$_d/seed.err"; return 1 ;; esac
  case "$_seed" in http://* | https://*) ;; *) echo "the agent's seed URL is malformed" >"$_d/seed.err"; return 1 ;; esac
  mkdir -p "$_r/etc/underlay" && chmod 0700 "$_r/etc/underlay" || return 1
  (
    umask 077
    {
      echo "url=$UL_URL"
      echo "credential=$_cred"
      echo "machine=$MACHINE"
      echo "mac=$UL_MAC"
      echo "pubkey=$UL_PUBKEY"
      echo "agent=$(jget "$_d/credential.flat" agent)"
      echo "seqFloor=$(jget "$_d/credential.flat" seqFloor)"
      echo "deployTask=$1"
    } >"$_r/etc/underlay/runner.env"
  ) || return 1
  chmod 0600 "$_r/etc/underlay/runner.env"
  install_runner "$_r" || return 1
  case "$4" in
    cloud-init)
      mkdir -p "$_r/etc/cloud/cloud.cfg.d"
      (
        umask 077
        printf '# Written by the Underlay deploy (task %s): cloud-init reads NoCloud from the site agent with this\n# machine'"'"'s per-deploy credential. Readable by root only.\ndatasource:\n  NoCloud:\n    seedfrom: %s\n' "$1" "$_seed" \
          >"$_r/etc/cloud/cloud.cfg.d/90-underlay.cfg"
      ) || return 1
      ;;
    ignition)
      run_ignition "$1" "$_d" "$_r" "$_seed" || return 1
      ;;
  esac
  sync
}

# run_ignition ID DIR ROOT SEEDURL: the real ignition binary applies the machine's rendered Ignition config
# (SEEDURL/config.ign, fetched with the installed OS's credential in the URL) to the mounted root.
run_ignition() {
  local _d _r _ig _selinux
  _d="$2"; _r="$3"
  _ig=$(command -v ignition || echo /usr/lib/underlay/ignition)
  [ -x "$_ig" ] || { echo "this image has no ignition binary" >"$_d/seed.err"; return 1; }
  mkdir -p "$_d/ign"
  if [ "$(http_request GET "$4config.ign" "" "$_d/ign/config.ign")" != 200 ]; then
    echo "fetching the Ignition config failed" >"$_d/seed.err"; return 1
  fi
  # Debian's ignition always relabels: it reads SELINUXTYPE and runs setfiles (a no-op without SELinux).
  _selinux=""
  if [ ! -f "$_r/etc/selinux/config" ]; then
    mkdir -p "$_r/etc/selinux"; printf 'SELINUX=disabled\nSELINUXTYPE=targeted\n' >"$_r/etc/selinux/config"; _selinux=1
  fi
  command -v setfiles >/dev/null 2>&1 || { mkdir -p "$_d/ign/bin"; printf '#!/bin/sh\nexit 0\n' >"$_d/ign/bin/setfiles"; chmod 0755 "$_d/ign/bin/setfiles"; PATH="$PATH:$_d/ign/bin"; }
  (
    cd "$_d/ign" || exit 1
    export IGNITION_CONFIG_FILE="$_d/ign/config.ign"
    "$_ig" -platform file -stage fetch-offline -config-cache "$_d/ign/cache.json" -state-file "$_d/ign/state" \
      -neednet "$_d/ign/neednet" -log-to-stdout &&
      "$_ig" -platform file -stage files -root "$_r" -config-cache "$_d/ign/cache.json" -state-file "$_d/ign/state" \
        -neednet "$_d/ign/neednet" -log-to-stdout
  ) >"$_d/ign/log" 2>&1 || { { grep -E 'CRITICAL|ERROR' "$_d/ign/log" | head -n 5; echo "ignition failed (log: $_d/ign/log)"; } >"$_d/seed.err"; return 1; }
  [ -n "$_selinux" ] && rm -rf "$_r/etc/selinux"
  apply_ignition_presets "$_r"
  return 0
}

# apply_ignition_presets ROOT: Ignition enables a unit by writing a preset (20-ignition.preset); Fedora
# CoreOS applies presets at first boot, Debian's systemd does not. Enable what the preset names the way
# `systemctl enable` would: a link in each WantedBy=/RequiredBy= target's .wants/.requires directory.
apply_ignition_presets() {
  local _r _u _dir _f _key _t _s
  _r="$1"
  [ -f "$_r/etc/systemd/system-preset/20-ignition.preset" ] || return 0
  sed -n 's/^enable \([A-Za-z0-9@._:-]*\)$/\1/p' "$_r/etc/systemd/system-preset/20-ignition.preset" | while read -r _u; do
    _f=""
    for _dir in /etc/systemd/system /lib/systemd/system /usr/lib/systemd/system; do
      [ -f "$_r$_dir/$_u" ] && { _f="$_dir/$_u"; break; }
    done
    [ -n "$_f" ] || continue
    for _key in WantedBy:wants RequiredBy:requires; do
      for _t in $(sed -n "s/^${_key%%:*}=//p" "$_r$_f" | tr ' ' '\n'); do
        case "$_t" in *[!A-Za-z0-9@._:-]* | '') continue ;; esac
        _s="$_r/etc/systemd/system/$_t.${_key#*:}"
        mkdir -p "$_s" && ln -sfn "$_f" "$_s/$_u"
      done
    done
  done
}

# deploy_image ID FLATFILE: the image-deploy task (see the top of this file).
deploy_image() {
  local _id _f _d _sha _size _fmt _raw _rsha _disk _cfg _part _dsize _t0
  _id="$1"; _f="$2"; _d="$TASKS/$_id"
  _sha=$(jget "$_f" payload.image.sha256); _size=$(jget "$_f" payload.image.size); _fmt=$(jget "$_f" payload.image.format)
  _rsha=$(jget "$_f" payload.image.rawSha256); _raw=$(jget "$_f" payload.image.rawSize)
  _disk=$(jget "$_f" payload.disk); _cfg=$(jget "$_f" payload.config)
  report "$_id" running
  _t0=$(date +%s)
  case "$_sha$_rsha" in *[!0-9a-f]*) deploy_fail "$_id" "$_d" bad-payload "image hashes are not hex"; return ;; esac
  if [ "${#_sha}" -ne 64 ] || [ "${#_rsha}" -ne 64 ]; then deploy_fail "$_id" "$_d" bad-payload "image hashes are not sha256"; return; fi
  case "$_size$_raw" in '' | *[!0-9]*) deploy_fail "$_id" "$_d" bad-payload "image sizes are not numbers"; return ;; esac
  case "$_fmt" in raw | zstd | xz | gzip) ;; *) deploy_fail "$_id" "$_d" bad-payload "unknown image format $_fmt"; return ;; esac
  case "$_cfg" in cloud-init | ignition) ;; *) deploy_fail "$_id" "$_d" bad-payload "unknown config $_cfg"; return ;; esac
  if [ "$UL_MODE" != discovery ]; then deploy_fail "$_id" "$_d" bad-payload "image-deploy runs in the discovery environment only (release this machine first)"; return; fi
  if [ -z "$_disk" ]; then _disk=$(first_disk) || { deploy_fail "$_id" "$_d" disk-not-found "no non-removable disk on this machine"; return; }; fi
  case "$_disk" in /dev/*) ;; *) [ -n "${UNDERLAY_DEPLOY_ALLOW_FILE:-}" ] || { deploy_fail "$_id" "$_d" bad-payload "disk must be under /dev"; return; } ;; esac
  if [ ! -b "$_disk" ] && [ -z "${UNDERLAY_DEPLOY_ALLOW_FILE:-}" ]; then deploy_fail "$_id" "$_d" disk-not-found "$_disk is not a block device"; return; fi
  _dsize=$(disk_bytes "$_disk")
  if [ -b "$_disk" ] && [ "$_dsize" -lt "$_raw" ]; then deploy_fail "$_id" "$_d" disk-too-small "$_disk has $_dsize bytes, the image needs $_raw"; return; fi
  ul_log "task $_id (image-deploy): $(jget "$_f" payload.image.name) ($_fmt, $_size bytes → $_raw) onto $_disk"
  write_and_verify "$_id" "$_d" "$UL_URL/files/sha256/$_sha" "$_size" "$_fmt" "$_disk" "$_raw" "$_rsha" || return
  if [ -b "$_disk" ]; then
    report_progress "$_id" "{\"phase\":\"grow\",\"bytesWritten\":$_raw,\"rawSize\":$_raw}"
    _part=$(grow_root "$_disk" "$_d") || { deploy_fail "$_id" "$_d" grow-failed "$(cat "$_d/grow.err" 2>/dev/null)"; return; }
    os_credential "$_id" "$_d" || { deploy_fail "$_id" "$_d" credential-failed "$(cat "$_d/cred.err")"; return; }
    mkdir -p "$TARGET"
    mount -t ext4 "$_part" "$TARGET" 2>"$_d/mount.err" || { deploy_fail "$_id" "$_d" seed-failed "mounting $_part: $(cat "$_d/mount.err")"; return; }
    if ! install_seed "$_id" "$_d" "$TARGET" "$_cfg"; then
      umount "$TARGET" 2>/dev/null
      deploy_fail "$_id" "$_d" seed-failed "$(cat "$_d/seed.err" 2>/dev/null)"; return
    fi
    umount "$TARGET" || { deploy_fail "$_id" "$_d" seed-failed "unmounting $_part failed"; return; }
    sync
  fi
  echo "image $(jget "$_f" payload.image.name) written to $_disk ($_raw bytes, sha256 $_rsha verified) in $(($(date +%s) - _t0)) s ($(cat "$_d/timing")); root ${_part:-not grown}; config $_cfg" >"$_d/output"
  DEPLOYED=1
  report_final_until_acked "$_id" succeeded 0 "$_d/output"
  ul_log "task $_id (image-deploy) succeeded: rebooting into $_disk"
  sync
  $POWER_CMD reboot -f
}

# all_disks: every non-removable, writable whole disk with a size, one /dev path a line (in /sys order).
all_disks() {
  local _b _n
  for _b in /sys/block/*; do
    _n="${_b##*/}"
    case "$_n" in loop* | ram* | sr* | fd* | zram* | md* | dm-* | nbd*) continue ;; esac
    [ "$(cat "$_b/removable" 2>/dev/null)" = 1 ] && continue
    [ "$(cat "$_b/ro" 2>/dev/null)" = 1 ] && continue
    [ "$(cat "$_b/size" 2>/dev/null || echo 0)" -gt 0 ] || continue
    echo "/dev/$_n"
  done
}

# release_machine ID FLATFILE: wipes every disk (quick: signatures + first and last MiB; secure: every
# byte, discard or zeros), reports succeeded (the agent turns netboot back on), reboots into discovery.
release_machine() {
  local _id _f _d _wipe _disk _bytes _rc _disks
  _id="$1"; _f="$2"; _d="$TASKS/$_id"; _wipe=$(jget "$_f" payload.wipe)
  case "$_wipe" in '' ) _wipe=quick ;; quick | secure) ;; *) refuse "$_id" bad-envelope; return ;; esac
  report "$_id" running
  _disks="${UNDERLAY_RELEASE_DISKS:-$(all_disks)}"
  : >"$_d/output"; _rc=0
  for _disk in $_disks; do
    _bytes=$(disk_bytes "$_disk")
    if [ "$_wipe" = secure ]; then
      if blkdiscard -z "$_disk" 2>/dev/null || blkdiscard "$_disk" 2>/dev/null; then echo "$_disk: discarded ($_bytes bytes)" >>"$_d/output"
      else
        # dd to a block device ends with "No space left on device" at its end: that is the success case.
        dd if=/dev/zero of="$_disk" bs=4M count=$(((_bytes + 4194303) / 4194304)) oflag=direct conv=notrunc,fsync 2>"$_d/dd.err"
        if [ "$(sectors_written "$_disk")" -ge 0 ] && ! grep -qiv 'records\|no space\|copied' "$_d/dd.err"; then echo "$_disk: zeroed ($_bytes bytes)" >>"$_d/output"
        else echo "$_disk: zeroing failed: $(tail -n 1 "$_d/dd.err")" >>"$_d/output"; _rc=1; fi
      fi
    else
      if command -v wipefs >/dev/null 2>&1; then
        for _p in "$_disk"?*; do [ -b "$_p" ] && wipefs -a -q "$_p" 2>/dev/null; done
        wipefs -a -q "$_disk" 2>/dev/null
      fi
      dd if=/dev/zero of="$_disk" bs=1M count=1 conv=notrunc,fsync 2>/dev/null || _rc=1
      [ "$_bytes" -gt 1048576 ] && { dd if=/dev/zero of="$_disk" bs=1M count=1 seek=$((_bytes / 1048576 - 1)) conv=notrunc,fsync 2>/dev/null || _rc=1; }
      echo "$_disk: signatures wiped, first and last MiB zeroed" >>"$_d/output"
    fi
  done
  sync
  [ -n "$_disks" ] || echo "no disks to wipe" >>"$_d/output"
  if [ "$_rc" -ne 0 ]; then report "$_id" failed 1 "$_d/output" write-failed; return; fi
  report_final_until_acked "$_id" succeeded 0 "$_d/output"
  ul_log "task $_id (release, $_wipe) succeeded: rebooting into discovery"
  sync
  $POWER_CMD reboot -f
}
