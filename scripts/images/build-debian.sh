#!/usr/bin/env bash
# Builds the Underlay Debian disk image: one raw GPT disk that boots on BIOS (syslinux) and UEFI
# (systemd-boot), with systemd, Debian's kernel, cloud-init (NoCloud), python3, networkd DHCP.
#
#   scripts/images/build-debian.sh [--release bookworm] [--size 2G] [--packages p,...] [--ssh] [--force] [--out DIR]
#   scripts/images/build-debian.sh --print-key [options]   # print the cache key (<hash>) only
#
# Output: DIR/<hash>/{disk.raw,disk.raw.zst,manifest.json} and the symlink DIR/current -> <hash>, where DIR
# defaults to ${UNDERLAY_CACHE:-$HOME/.cache/underlay}/images/debian. The output directory is the LAST line
# of stdout. <hash> covers the recipe, the options and the apt state, so a rebuild with nothing changed
# returns at once. Packages come from this host's apt sources (never a hard-coded mirror). No loop
# devices, no mounts: mmdebstrap into a directory, mkfs.ext4 -d, mkfs.vfat + mtools, sfdisk, dd.
set -euo pipefail
# The whole script is one function, parsed before it runs: editing this file during a build cannot
# make the running build execute half-edited lines.
main() {

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
RECIPE="$REPO/images/debian"
RELEASE="" SIZE=2G PACKAGES="" SSH=0 FORCE=0 OUTBASE="" PRINT_KEY=0
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-1704067200}" # 2024-01-01T00:00:00Z unless the caller pins another
# Debian's own tools first (mmdebstrap's helpers are python3 scripts; a pyenv shim would only slow them).
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"
export LC_ALL=C TZ=UTC MTOOLS_SKIP_CHECK=1 E2FSPROGS_FAKE_TIME="$SOURCE_DATE_EPOCH"

log() { echo "build-debian: $*" >&2; }
die() { echo "build-debian: error: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case "$1" in
    --release) RELEASE="${2:?}"; shift 2 ;;
    --size) SIZE="${2:?}"; shift 2 ;;
    --packages) PACKAGES="${2?}"; shift 2 ;;
    --ssh) SSH=1; shift ;;
    --force) FORCE=1; shift ;;
    --out) OUTBASE="${2:?}"; shift 2 ;;
    --print-key) PRINT_KEY=1; shift ;;
    -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

# --- prerequisites -------------------------------------------------------------------------------------
need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found: install it with: apt-get install -y $2"; }
need mmdebstrap mmdebstrap; need sfdisk fdisk; need mkfs.ext4 e2fsprogs; need debugfs e2fsprogs
need dumpe2fs e2fsprogs; need mkfs.vfat dosfstools; need mcopy mtools; need mmd mtools; need syslinux syslinux
need zstd zstd; need sha256sum coreutils; need dpkg-query dpkg
GPTMBR=/usr/lib/syslinux/mbr/gptmbr.bin
[ -f "$GPTMBR" ] || die "$GPTMBR missing: apt-get install -y syslinux-common"

# The Underlay machine runner's unit (images/discovery/underlay-runner.service), installed and enabled by
# customize.sh; the runner's scripts come with each deploy (docs/decisions.md, "Installed-OS runner").
RUNNER_DIR="$REPO/images/discovery"
RUNNER_FILES="underlay-runner.service"
for f in $RUNNER_FILES; do [ -f "$RUNNER_DIR/$f" ] || die "runner file missing: $RUNNER_DIR/$f"; done

# --- inputs ---------------------------------------------------------------------------------------------
HOST_CODENAME="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
RELEASE="${RELEASE:-${HOST_CODENAME:-bookworm}}"
[[ "$RELEASE" =~ ^[a-z]+$ ]] || die "--release must be a Debian codename (got '$RELEASE')"
case "$SIZE" in
  *[Gg]) SIZE_MIB=$(( ${SIZE%[Gg]} * 1024 )) ;;
  *[Mm]) SIZE_MIB=${SIZE%[Mm]} ;;
  *) die "--size takes NG or NM (got '$SIZE')" ;;
esac
[[ "$SIZE_MIB" =~ ^[0-9]+$ ]] && [ "$SIZE_MIB" -ge 1024 ] || die "--size must be at least 1G (got '$SIZE')"
EXTRA="$(echo "$PACKAGES" | tr ', ' '\n\n' | sed '/^$/d' | sort -u | paste -sd, -)"
[[ -z "$EXTRA" || "$EXTRA" =~ ^[a-z0-9][a-z0-9.+-]*(,[a-z0-9][a-z0-9.+-]*)*$ ]] || die "--packages: not Debian package names: $EXTRA"
BASE_PACKAGES="linux-image-amd64,systemd-sysv,systemd-resolved,systemd-boot-efi,udev,dbus,initramfs-tools,cloud-init,python3,e2fsprogs,zstd,iproute2,netbase,ca-certificates,curl"
[ "$SSH" = 1 ] && BASE_PACKAGES="$BASE_PACKAGES,openssh-server"
INCLUDE="$BASE_PACKAGES${EXTRA:+,$EXTRA}"

# The host's apt sources, with the host's release name replaced by --release (mirrors stay the host's).
APT_FILES=()
if [ -n "${UNDERLAY_APT_SOURCES:-}" ]; then APT_FILES=("$UNDERLAY_APT_SOURCES")
else
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && grep -qE '^[[:space:]]*(deb[[:space:]]|Types:.*deb([[:space:]]|$))' "$f" && APT_FILES+=("$f")
  done
fi
[ ${#APT_FILES[@]} -gt 0 ] || die "no apt sources on this host (/etc/apt/sources.list, /etc/apt/sources.list.d/); set UNDERLAY_APT_SOURCES=FILE"
sources_for_release() { # file → its text with the host codename replaced by $RELEASE (bookworm-updates → trixie-updates, …)
  if [ -n "$HOST_CODENAME" ] && [ "$HOST_CODENAME" != "$RELEASE" ]; then
    perl -pe "s/(?<![\\w.\\/-])$HOST_CODENAME(?=(-[a-z]+)?(\\s|\$))/$RELEASE/g" "$1"
  else cat "$1"; fi
}
# What the mirror had when this host last ran apt-get update: the Date of each Release file for $RELEASE.
APT_STATE="$(for f in /var/lib/apt/lists/*_dists_"$RELEASE"*Release; do if [ -f "$f" ]; then echo "${f##*/} $(sed -n 's/^Date: //p' "$f" | head -n 1)"; fi; done | sort)"
TOOLS="$(dpkg-query -W -f='${Package}=${Version}\n' mmdebstrap e2fsprogs dosfstools mtools syslinux syslinux-common fdisk zstd 2>/dev/null | sort)"

HASH="$(
  {
    echo "debian-image-v1 release=$RELEASE size=${SIZE_MIB}M ssh=$SSH sde=$SOURCE_DATE_EPOCH include=$INCLUDE"
    echo "$TOOLS"; echo "$APT_STATE"
    for f in "${APT_FILES[@]}"; do echo "== $f"; sources_for_release "$f"; done
    for f in "$HERE/build-debian.sh" $(cd "$REPO" && find images/debian -type f ! -name README.md | sort) \
      $(for r in $RUNNER_FILES; do echo "images/discovery/$r"; done); do
      echo "== ${f#"$REPO"/}"; cat "$REPO/${f#"$REPO"/}"
    done
  } | sha256sum | cut -c1-16
)"
if [ "$PRINT_KEY" = 1 ]; then echo "$HASH"; exit 0; fi
[ "$(id -u)" = 0 ] || die "run as root (mmdebstrap installs packages into a chroot)"
BASE="${OUTBASE:-${UNDERLAY_CACHE:-$HOME/.cache/underlay}/images/debian}"
OUT="$BASE/$HASH"
mkdir -p "$BASE"
exec 9>"$BASE/.lock-$HASH"
flock 9 # one build per hash at a time; a second caller waits, then finds the finished output
if [ "$FORCE" = 0 ] && [ -f "$OUT/.complete" ]; then
  ln -sfn "$HASH" "$BASE/current"
  log "up to date ($HASH)"
  echo "$OUT"
  exit 0
fi

# Fixed identifiers derived from the inputs: same inputs, same UUIDs (and so the same bytes).
uuid_for() { local h; h="$(echo -n "$HASH/$1" | sha256sum)"; echo "${h:0:8}-${h:8:4}-4${h:13:3}-a${h:17:3}-${h:20:12}"; }
DISK_GUID="$(uuid_for disk)" ESP_PARTUUID="$(uuid_for esp-part)" ROOT_PARTUUID="$(uuid_for root-part)"
ROOT_UUID="$(uuid_for root-fs)" HASH_SEED="$(uuid_for root-hash-seed)"
ESP_VOLID="$(echo -n "$HASH/esp-fs" | sha256sum | cut -c1-8 | tr a-f A-F)"
ESP_VOLID_DASHED="${ESP_VOLID:0:4}-${ESP_VOLID:4:4}"

START=$(date +%s)
WORK="$(mktemp -d "$BASE/.build-$HASH.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
ROOT="$WORK/root"
DEBS="${UNDERLAY_CACHE:-$HOME/.cache/underlay}/downloads/debian-$RELEASE"
mkdir -p "$WORK/apt" "$DEBS"
MIRRORS=()
i=0
for f in "${APT_FILES[@]}"; do
  i=$((i + 1)); ext="${f##*.}"; [ "$ext" = sources ] || ext=list
  sources_for_release "$f" >"$WORK/apt/$i.$ext"; MIRRORS+=("$WORK/apt/$i.$ext")
done

# --- 1. root filesystem ---------------------------------------------------------------------------------
log "mmdebstrap $RELEASE: $INCLUDE"
UL_ROOT_UUID="$ROOT_UUID" UL_ESP_VOLID="$ESP_VOLID_DASHED" UL_SSH="$SSH" UL_RUNNER_DIR="$RUNNER_DIR" UL_RUNNER_FILES="$RUNNER_FILES" \
  mmdebstrap --mode=unshare --variant=minbase --include="$INCLUDE" --skip=download/empty --skip=essential/unlink \
  --aptopt='Acquire::Languages "none"' \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
  --setup-hook='mkdir -p "$1/var/cache/apt/archives"' --setup-hook="sync-in $DEBS /var/cache/apt/archives" \
  --essential-hook="cp -rT --no-preserve=ownership $RECIPE/rootfs \"\$1\"" \
  --customize-hook="sync-out /var/cache/apt/archives $DEBS" \
  --customize-hook="$RECIPE/customize.sh" \
  "$RELEASE" "$ROOT" "${MIRRORS[@]}" 2>&1 | sed -u 's/^/  /' >&2
KREL="$(cd "$ROOT/boot" && ls vmlinuz-* | sed 's/^vmlinuz-//' | sort -V | tail -n 1)"
[ -n "$KREL" ] && [ -f "$ROOT/boot/initrd.img-$KREL" ] || die "no kernel/initrd in the root filesystem"
dpkg-query --admindir="$ROOT/var/lib/dpkg" -W -f='${Package}\t${Version}\t${Architecture}\n' | sort >"$WORK/packages.tsv"
# Every mtime clamped to SOURCE_DATE_EPOCH (package files already are; files made by maintainer scripts not).
find "$ROOT" -newermt "@$SOURCE_DATE_EPOCH" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

# --- 2. partition table -----------------------------------------------------------------------------------
# GPT: 1 = ESP (FAT32, 256 MiB, LegacyBIOSBootable: syslinux + systemd-boot + kernel), 2 = root (ext4, rest).
SECTORS=$((SIZE_MIB * 2048)); ESP_START=2048; ESP_SECTORS=524288; ROOT_START=$((ESP_START + ESP_SECTORS))
ROOT_SECTORS=$(( (SECTORS - 34 - ROOT_START) / 2048 * 2048 ))
IMG="$WORK/disk.raw"
truncate -s "${SIZE_MIB}M" "$IMG"
sfdisk --quiet --no-reread --no-tell-kernel "$IMG" >/dev/null <<EOF
label: gpt
label-id: $DISK_GUID
first-lba: 2048
start=$ESP_START, size=$ESP_SECTORS, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=$ESP_PARTUUID, name="ESP", attrs="LegacyBIOSBootable"
start=$ROOT_START, size=$ROOT_SECTORS, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, uuid=$ROOT_PARTUUID, name="root"
EOF
dd if="$GPTMBR" of="$IMG" bs=440 count=1 conv=notrunc status=none

# --- 3. root filesystem into partition 2 (mkfs.ext4 -d; no mount) --------------------------------------
log "ext4: $((ROOT_SECTORS / 2048)) MiB, UUID $ROOT_UUID"
mkfs.ext4 -q -F -b 4096 -I 256 -L root -U "$ROOT_UUID" -E "hash_seed=$HASH_SEED,offset=$((ROOT_START * 512))" \
  -d "$ROOT" "$IMG" "$((ROOT_SECTORS / 2))k"
# mke2fs copies each source file's ctime and atime (not settable from user space): pin them on every used inode.
dumpe2fs "$IMG?offset=$((ROOT_START * 512))" 2>/dev/null | awk -v sde="$SOURCE_DATE_EPOCH" '
  /^Inodes per group:/ { ipg = $4 } /^Inode count:/ { total = $3 }
  /^  Free inodes: / { sub(/^  Free inodes: */, ""); n = split($0, r, ", "); for (i = 1; i <= n; i++) { if (r[i] == "") continue; split(r[i], ab, "-"); if (ab[2] == "") ab[2] = ab[1]; for (j = ab[1]; j <= ab[2]; j++) free[j] = 1 } }
  END { for (i = 1; i <= total; i++) if (!(i in free)) printf "sif <%d> ctime @%s\nsif <%d> atime @%s\n", i, sde, i, sde }' >"$WORK/pin-times.debugfs"
debugfs -w -f "$WORK/pin-times.debugfs" "$IMG?offset=$((ROOT_START * 512))" >/dev/null 2>"$WORK/debugfs.err" ||
  die "debugfs: $(tail -n 3 "$WORK/debugfs.err")"
e2fsck -fn "$IMG?offset=$((ROOT_START * 512))" >"$WORK/fsck.log" 2>&1 || die "e2fsck found errors in the new root filesystem: $(tail -n 5 "$WORK/fsck.log")"

# --- 4. ESP: FAT32 in its own file, filled with mtools, then copied into partition 1 --------------------
CMDLINE="root=UUID=$ROOT_UUID ro console=tty0 console=ttyS0,115200n8"
ESP="$WORK/esp.img"
mkfs.vfat -C -F 32 -h "$ESP_START" -i "$ESP_VOLID" -n ESP --invariant "$ESP" $((ESP_SECTORS / 2)) >/dev/null
mkdir -p "$WORK/esp/EFI/BOOT" "$WORK/esp/loader/entries" "$WORK/esp/syslinux"
cp "$ROOT/boot/vmlinuz-$KREL" "$WORK/esp/vmlinuz"
cp "$ROOT/boot/initrd.img-$KREL" "$WORK/esp/initrd.img"
cp "$ROOT/usr/lib/systemd/boot/efi/systemd-bootx64.efi" "$WORK/esp/EFI/BOOT/BOOTX64.EFI"
printf 'default debian.conf\ntimeout 0\neditor no\n' >"$WORK/esp/loader/loader.conf"
printf 'title Debian (Underlay image)\nlinux /vmlinuz\ninitrd /initrd.img\noptions %s\n' "$CMDLINE" >"$WORK/esp/loader/entries/debian.conf"
printf 'SERIAL 0 115200\nDEFAULT debian\nPROMPT 0\nTIMEOUT 0\nLABEL debian\n  LINUX /vmlinuz\n  INITRD /initrd.img\n  APPEND %s\n' "$CMDLINE" >"$WORK/esp/syslinux/syslinux.cfg"
find "$WORK/esp" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
mcopy -s -m -Q -i "$ESP" "$WORK"/esp/EFI "$WORK"/esp/loader "$WORK"/esp/syslinux "$WORK"/esp/vmlinuz "$WORK"/esp/initrd.img ::/
syslinux --install --directory /syslinux "$ESP"
dd if="$ESP" of="$IMG" bs=1M seek=$((ESP_START / 2048)) conv=notrunc,sparse status=none

# --- 5. compressed artifact + manifest --------------------------------------------------------------------
log "zstd -T0 -3"
zstd -q -T0 -3 --no-progress -c "$IMG" >"$IMG.zst"
RAW_SHA="$(sha256sum "$IMG" | cut -d' ' -f1)" ZST_SHA="$(sha256sum "$IMG.zst" | cut -d' ' -f1)"
RAW_SIZE="$(stat -c %s "$IMG")" ZST_SIZE="$(stat -c %s "$IMG.zst")"
jstr() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"; }
jlist() { local first=1 x; printf '['; while IFS= read -r x; do [ -n "$x" ] || continue; [ $first = 1 ] || printf ', '; jstr "$x"; first=0; done; printf ']'; }
{
  printf '{\n  "name": "debian-%s",\n  "hash": "%s",\n  "release": "%s",\n  "kernelRelease": "%s",\n' "$RELEASE" "$HASH" "$RELEASE" "$KREL"
  printf '  "raw": {"file": "disk.raw", "size": %d, "sha256": "%s"},\n' "$RAW_SIZE" "$RAW_SHA"
  printf '  "compressed": {"file": "disk.raw.zst", "format": "zstd", "size": %d, "sha256": "%s"},\n' "$ZST_SIZE" "$ZST_SHA"
  printf '  "partitionTable": "gpt",\n  "diskGuid": "%s",\n  "partitions": [\n' "$DISK_GUID"
  printf '    {"number": 1, "name": "ESP", "type": "esp", "startSector": %d, "sectors": %d, "partUuid": "%s", "filesystem": "vfat", "fsUuid": "%s", "attributes": ["LegacyBIOSBootable"], "contents": ["EFI/BOOT/BOOTX64.EFI (systemd-boot)", "loader/entries/debian.conf", "syslinux/syslinux.cfg", "syslinux/ldlinux.sys", "vmlinuz", "initrd.img"]},\n' "$ESP_START" "$ESP_SECTORS" "$ESP_PARTUUID" "$ESP_VOLID_DASHED"
  printf '    {"number": 2, "name": "root", "type": "linux-root-x86-64", "startSector": %d, "sectors": %d, "partUuid": "%s", "filesystem": "ext4", "fsUuid": "%s"}\n  ],\n' "$ROOT_START" "$ROOT_SECTORS" "$ROOT_PARTUUID" "$ROOT_UUID"
  printf '  "sectorSize": 512,\n  "bootloaders": {"bios": "syslinux (gptmbr.bin in the MBR)", "uefi": "systemd-boot"},\n'
  printf '  "cmdline": %s,\n  "ssh": %s,\n' "$(jstr "$CMDLINE")" "$([ "$SSH" = 1 ] && echo true || echo false)"
  printf '  "inputs": {"release": "%s", "sizeMiB": %d, "include": %s, "extraPackages": %s, "sourceDateEpoch": %s, "aptSources": %s, "aptReleaseDates": %s, "buildTools": %s},\n' \
    "$RELEASE" "$SIZE_MIB" "$(echo "$INCLUDE" | tr , '\n' | jlist)" "$(echo "$EXTRA" | tr , '\n' | jlist)" "$SOURCE_DATE_EPOCH" \
    "$(printf '%s\n' "${APT_FILES[@]}" | jlist)" "$(echo "$APT_STATE" | jlist)" "$(echo "$TOOLS" | jlist)"
  printf '  "packages": {'
  awk -F'\t' 'BEGIN { first = 1 } { if (!first) printf ", "; printf "\"%s\": \"%s\"", $1, $2; first = 0 }' "$WORK/packages.tsv"
  printf '}\n}\n'
} >"$WORK/manifest.json"

STAGE="$WORK/out"
mkdir -p "$STAGE"
mv "$IMG" "$IMG.zst" "$WORK/manifest.json" "$STAGE/"
rm -rf "$OUT"
mv "$STAGE" "$OUT"
touch "$OUT/.complete"
ln -sfn "$HASH" "$BASE/current"
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo "image      debian-$RELEASE $KREL, $(wc -l <"$WORK/packages.tsv") packages"
echo "disk.raw   $(mib "$RAW_SIZE") sha256:$RAW_SHA"
echo "disk.raw.zst $(mib "$ZST_SIZE") sha256:$ZST_SHA"
echo "build time $(($(date +%s) - START)) s"
echo "$OUT"
}
main "$@"
