#!/bin/sh
# Underlay discovery collector: gathers hardware facts from /sys and /proc, POSTs them to the site agent
# (${underlay.url}/api/v1/discovery, bearer ${underlay.token}) until it answers 2xx, then prints one line.
# Usage: collect.sh [BOOT_IFACE]    (facts only, no POST: collect.sh --print [BOOT_IFACE])
. "${UNDERLAY_LIB:-/lib/underlay/lib.sh}"
ul_init_env

PRINT_ONLY=
if [ "$1" = "--print" ]; then PRINT_ONLY=1; shift; fi
BOOT_IF="$1"

rd() { [ -r "$1" ] && tr -d '\000' <"$1" 2>/dev/null | sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' | head -n 1; }
num_or_null() { case "$1" in '' | *[!0-9]*) echo null ;; *) echo "$1" ;; esac }

# --- system (SMBIOS type 1 as the kernel exposes it) -------------------------------------------------
DMI=/sys/class/dmi/id
UUID=$(rd $DMI/product_uuid | tr 'A-F' 'a-f')
SERIAL=$(rd $DMI/product_serial)
VENDOR=$(rd $DMI/sys_vendor)
PRODUCT=$(rd $DMI/product_name)

# --- firmware ------------------------------------------------------------------------------------------
if [ -d /sys/firmware/efi ]; then FIRMWARE=uefi; else FIRMWARE=bios; fi

# --- cpu: logical CPUs from sysfs topology, packages and cores as distinct ids ---------------------------
CPU_MODEL=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)
THREADS=0; TOPO=""
for c in /sys/devices/system/cpu/cpu[0-9]*; do
  [ -d "$c" ] || continue
  THREADS=$((THREADS + 1))
  pkg=$(rd "$c/topology/physical_package_id"); core=$(rd "$c/topology/core_id")
  TOPO="$TOPO${pkg:-0}:${core:-$THREADS}
"
done
if [ "$THREADS" -eq 0 ]; then THREADS=$(grep -c '^processor' /proc/cpuinfo); TOPO=""; fi
if [ -n "$TOPO" ]; then
  SOCKETS=$(printf '%s' "$TOPO" | cut -d: -f1 | sort -u | grep -c .)
  CORES=$(printf '%s' "$TOPO" | sort -u | grep -c .)
else
  SOCKETS=1; CORES=$THREADS
fi

# --- memory: installed DIMMs from SMBIOS type 17, else online memory blocks, else MemTotal ---------------
MEM=0
for e in /sys/firmware/dmi/entries/17-*; do
  [ -r "$e/raw" ] || continue
  len=$(od -An -tu1 -j1 -N1 "$e/raw" | tr -d ' ')
  size=$(od -An -tu2 -j12 -N2 "$e/raw" | tr -d ' ')
  [ -n "$size" ] || continue
  if [ "$size" -eq 65535 ] || [ "$size" -eq 0 ]; then continue; fi
  if [ "$size" -eq 32767 ] && [ "${len:-0}" -ge 32 ]; then
    ext=$(od -An -tu4 -j28 -N4 "$e/raw" | tr -d ' ')
    MEM=$((MEM + (ext & 2147483647) * 1048576))
  elif [ $((size & 32768)) -ne 0 ]; then
    MEM=$((MEM + (size & 32767) * 1024))
  else
    MEM=$((MEM + size * 1048576))
  fi
done
if [ "$MEM" -eq 0 ] && [ -r /sys/devices/system/memory/block_size_bytes ]; then
  bs=$((0x$(rd /sys/devices/system/memory/block_size_bytes)))
  for b in /sys/devices/system/memory/memory[0-9]*; do
    [ "$(rd "$b/online")" = 1 ] && MEM=$((MEM + bs))
  done
fi
if [ "$MEM" -eq 0 ]; then
  MEM=$(($(sed -n 's/^MemTotal:[[:space:]]*\([0-9]*\).*/\1/p' /proc/meminfo) * 1024))
fi

# --- disks: block devices backed by a device (no loop/ram/dm/md), without optical drives ----------------
DISKS=""; NDISKS=0
for b in /sys/block/*; do
  [ -e "$b/device" ] || continue
  name=${b##*/}
  case "$name" in sr* | fd* | loop* | ram* | zram* | dm-* | md* | nbd*) continue ;; esac
  sectors=$(rd "$b/size"); sizeb=$(( ${sectors:-0} * 512 ))
  model=$(rd "$b/device/model"); [ -n "$model" ] || model=$(rd "$b/device/name")
  serial=$(rd "$b/device/serial"); [ -n "$serial" ] || serial=$(rd "$b/serial")
  if [ -z "$serial" ] && [ -r "$b/device/vpd_pg80" ]; then
    serial=$(tail -c +5 "$b/device/vpd_pg80" | tr -d '\000' | sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//')
  fi
  if [ "$(rd "$b/queue/rotational")" = 1 ]; then rot=true; else rot=false; fi
  [ -n "$DISKS" ] && DISKS="$DISKS,"
  DISKS="$DISKS{\"name\":$(json_str "$name"),\"sizeBytes\":$sizeb,\"model\":$(json_str "$model"),\"serial\":$(json_str "$serial"),\"rotational\":$rot}"
  NDISKS=$((NDISKS + 1))
done

# --- nics: physical interfaces (those with a device link) ------------------------------------------------
NICS=""; BOOT_MAC=""
for n in /sys/class/net/*; do
  [ -e "$n/device" ] || continue
  name=${n##*/}
  mac=$(rd "$n/address" | tr 'A-F' 'a-f')
  drv=$(readlink "$n/device/driver" 2>/dev/null); drv=${drv##*/}
  if [ "$(rd "$n/carrier" 2>/dev/null)" = 1 ]; then link=true; else link=false; fi
  speed=$(rd "$n/speed" 2>/dev/null)
  # Its addresses (with prefix): in proxy mode the site's DHCP leased them, and this is how the central learns them.
  ADDRS=""
  for a in $(ip -o addr show dev "$name" 2>/dev/null | awk '{print $4}' | head -n 16); do
    [ -n "$ADDRS" ] && ADDRS="$ADDRS,"
    ADDRS="$ADDRS$(json_str "$a")"
  done
  [ -n "$NICS" ] && NICS="$NICS,"
  NICS="$NICS{\"name\":$(json_str "$name"),\"mac\":$(json_str "$mac"),\"driver\":$(json_str "$drv"),\"link\":$link,\"speedMbps\":$(num_or_null "$speed"),\"addresses\":[$ADDRS]}"
  if [ -n "$BOOT_IF" ] && [ "$name" = "$BOOT_IF" ]; then BOOT_MAC=$mac; fi
done
[ -n "$BOOT_MAC" ] || BOOT_MAC="$UL_MAC"

# --- bmc: only when the firmware describes an IPMI device (SMBIOS type 38) and the kernel's IPMI driver
# made /dev/ipmi0 (ipmi_si + ipmi_devintf): ipmitool asks the BMC in-band for its LAN configuration -------
BMC=""
if ls /sys/firmware/dmi/entries/38-* >/dev/null 2>&1 && command -v ipmitool >/dev/null 2>&1; then
  i=0
  while [ ! -e /dev/ipmi0 ] && [ $i -lt 10 ]; do sleep 1; i=$((i + 1)); done
  addr=$(timeout 30 ipmitool lan print 2>/dev/null | sed -n 's/^IP Address[[:space:]]*:[[:space:]]*//p' | head -n 1)
  [ -n "$addr" ] || ul_log "the firmware describes a BMC but its LAN address could not be read in-band (/dev/ipmi0: $([ -e /dev/ipmi0 ] && echo present || echo missing))"
  case "$addr" in '' | 0.0.0.0) ;; *) ul_log "BMC LAN address $addr (read in-band)"; BMC=",\"bmc\":{\"address\":$(json_str "$addr")}" ;; esac
fi

FACTS="$UL_STATE/facts.json"
mkdir -p "$UL_STATE"
printf '{"system":{"uuid":%s,"serial":%s,"vendor":%s,"product":%s},"firmware":"%s","cpu":{"model":%s,"sockets":%d,"cores":%d,"threads":%d},"memory":{"totalBytes":%s},"disks":[%s],"nics":[%s]%s,"bootMac":%s}\n' \
  "$(json_str "$UUID")" "$(json_str "$SERIAL")" "$(json_str "$VENDOR")" "$(json_str "$PRODUCT")" "$FIRMWARE" \
  "$(json_str "$CPU_MODEL")" "$SOCKETS" "$CORES" "$THREADS" "$MEM" "$DISKS" "$NICS" "$BMC" "$(json_str "$BOOT_MAC")" >"$FACTS"

if [ -n "$PRINT_ONLY" ]; then cat "$FACTS"; exit 0; fi

if [ -z "$UL_URL" ]; then ul_log "no underlay.url on the kernel command line; facts not reported"; exit 1; fi
attempt=0
while :; do
  attempt=$((attempt + 1))
  code=$(http_request POST "$UL_URL/api/v1/discovery" "$FACTS" "$UL_STATE/discovery.response")
  case "$code" in 2??) break ;; esac
  [ $((attempt % 5)) -eq 1 ] && ul_log "discovery report to $UL_URL failed (HTTP $code), retrying"
  backoff "$attempt"
done
json_flat <"$UL_STATE/discovery.response" >"$UL_STATE/discovery.flat" 2>/dev/null || : >"$UL_STATE/discovery.flat"
ul_log "discovered $BOOT_MAC (uuid ${UUID:-unknown}, $THREADS cpus, $((MEM / 1048576)) MiB, $NDISKS disks) reported to $UL_URL"
exit 0
