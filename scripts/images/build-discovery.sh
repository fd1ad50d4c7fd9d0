#!/usr/bin/env bash
# Builds the Underlay discovery image (vmlinuz + initrd.img) from Debian packages.
#
#   scripts/images/build-discovery.sh [--cache DIR] [--force] [--gzip]
#
# Output: ${UNDERLAY_CACHE:-$HOME/.cache/underlay}/images/discovery/<hash>/{vmlinuz,initrd.img,manifest.json}
# and the symlink .../images/discovery/current -> <hash>. The output directory is the LAST line of stdout.
# <hash> covers the recipe (images/discovery/*, this script) and the package versions used, so a rebuild
# with nothing changed returns at once. Reproducible: fixed mtimes (SOURCE_DATE_EPOCH), sorted cpio
# input, normalised cpio headers, gzip -n / xz without timestamps.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
RECIPE="$REPO/images/discovery"
CACHE="${UNDERLAY_CACHE:-$HOME/.cache/underlay}"
FORCE=0
COMPRESS=xz
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-1704067200}" # 2024-01-01T00:00:00Z unless the caller pins another
export LC_ALL=C TZ=UTC

while [ $# -gt 0 ]; do
  case "$1" in
    --cache) CACHE="$2"; shift 2 ;;
    --force) FORCE=1; shift ;;
    --gzip) COMPRESS=gzip; shift ;;
    -h | --help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-discovery: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

log() { echo "build-discovery: $*" >&2; }
die() { echo "build-discovery: error: $*" >&2; exit 1; }

# --- prerequisites -------------------------------------------------------------------------------------
need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found: install it with: apt-get install -y $2"; }
need apt-get apt
need apt-cache apt
need dpkg-deb dpkg
need dpkg-query dpkg
need openssl openssl
need ldd libc-bin
need perl perl-base
need sha256sum coreutils
need "$COMPRESS" "$COMPRESS"
BUSYBOX=/bin/busybox
if ! [ -x "$BUSYBOX" ] || ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed'; then
  die "busybox-static is not installed: install it with: apt-get install -y busybox-static"
fi
if ldd "$BUSYBOX" >/dev/null 2>&1; then die "$BUSYBOX is not statically linked: apt-get install -y busybox-static"; fi
RUNNER_FILES="collect.sh runner.sh lib.sh deploy.sh remote.sh os-report.sh cert.sh udhcpc.script underlay-runner.service"
for f in init modules.txt $RUNNER_FILES; do
  [ -f "$RECIPE/$f" ] || die "recipe file missing: $RECIPE/$f"
done

# --- what goes in: kernel package, userland package versions --------------------------------------------
# One apt-cache call: the metapackage pins the exact kernel package and version ("Depends: X (= V)").
if [ -n "${UNDERLAY_KERNEL_PACKAGE:-}" ]; then
  KPKG="$UNDERLAY_KERNEL_PACKAGE"
  KVER_DEB="$(apt-cache policy "$KPKG" | sed -n 's/^ *Candidate: //p')"
else
  META="$(apt-cache show --no-all-versions linux-image-amd64 2>/dev/null || true)"
  KPKG="$(echo "$META" | sed -n 's/^Depends: .*\(linux-image-[0-9][^ ,]*-amd64\).*/\1/p' | head -n 1)"
  KVER_DEB="$(echo "$META" | sed -n 's/^Depends: .*linux-image-[0-9][^ ,]*-amd64 (= \([^)]*\)).*/\1/p' | head -n 1)"
fi
[ -n "$KPKG" ] || die "cannot resolve the kernel package from linux-image-amd64: run apt-get update (and check /etc/apt/sources.list)"
[ -n "$KVER_DEB" ] && [ "$KVER_DEB" != "(none)" ] || die "no candidate version for $KPKG: run apt-get update"
KREL="${KPKG#linux-image-}"
pkgver() { dpkg-query -W -f='${Package}=${Version}\n' "$@" 2>/dev/null | sort; }
# Debian binaries the runner needs beyond busybox (signatures; HTTP with byte ranges, which busybox wget
# refuses; the deploy: zstd, partitions, ext4) and the
# shared libraries they load, at the paths ldd reports.
need zstd zstd
need sfdisk fdisk
need e2fsck e2fsprogs
need resize2fs e2fsprogs
need curl curl
# Ignition creates passwd.users with the host's useradd/usermod/groupadd --root NEWROOT.
need useradd passwd
# The BMC's LAN address, read in-band through the kernel's IPMI driver (/dev/ipmi0): ipmitool (~1.5 MiB
# compressed with its libraries; collect.sh).
need ipmitool ipmitool
HOST_BINS=()
for b in openssl curl zstd sfdisk e2fsck resize2fs useradd usermod groupadd ipmitool; do HOST_BINS+=("$(command -v "$b")"); done
mapfile -t LIBS < <(for b in "${HOST_BINS[@]}"; do ldd "$b"; done | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p' | sort -u)
LIBPKGS="$(dpkg-query -S "${HOST_BINS[@]}" "${LIBS[@]}" $(readlink -f "${HOST_BINS[@]}" "${LIBS[@]}") 2>/dev/null | cut -d: -f1 | tr -d ' ' | tr ',' '\n' | sort -u | tr '\n' ' ' || true)"
# shellcheck disable=SC2086
# Ignition (Debian's package: the real binary from its dracut module) for Ignition-configured deploys.
IGN_VER="$(apt-cache policy ignition | sed -n 's/^ *Candidate: //p')"
[ -n "$IGN_VER" ] && [ "$IGN_VER" != "(none)" ] || die "no candidate version for ignition: run apt-get update"
VERSIONS="$KPKG=$KVER_DEB
ignition=$IGN_VER
$(pkgver busybox-static $LIBPKGS)"

HASH="$(
  {
    echo "recipe-v1 compress=$COMPRESS sde=$SOURCE_DATE_EPOCH"
    echo "$VERSIONS"
    for f in "$HERE/build-discovery.sh" "$RECIPE/init" "$RECIPE/modules.txt" $(for r in $RUNNER_FILES; do echo "$RECIPE/$r"; done); do
      echo "== ${f#"$REPO"/}"; cat "$f"
    done
  } | sha256sum | cut -c1-16
)"
BASE="$CACHE/images/discovery"
OUT="$BASE/$HASH"
mkdir -p "$BASE"
# One build per hash at a time; a second caller waits, then finds the finished output.
exec 9>"$BASE/.lock-$HASH"
flock 9 2>/dev/null || true
if [ "$FORCE" = 0 ] && [ -f "$OUT/.complete" ]; then
  ln -sfn "$HASH" "$BASE/current"
  log "up to date ($HASH)"
  echo "$OUT"
  exit 0
fi

START=$(date +%s.%N)
mkdir -p "$BASE" "$CACHE/downloads"
WORK="$(mktemp -d "$BASE/.build-$HASH.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# apt-get download into a private dir, then a rename into the shared download cache: a reader (another
# build, test/support/ignition.ts) never sees a half-written .deb, and an interrupted download leaves none.
download() {
  local tmp rc=0
  tmp="$(mktemp -d "$CACHE/downloads/.dl.XXXXXX")"
  (cd "$tmp" && apt-get download -q "$1" 2>&1 | grep -v 'unsandboxed' >&2) || rc=1
  [ "$rc" = 0 ] && for f in "$tmp"/*.deb; do [ -e "$f" ] && mv -f "$f" "$CACHE/downloads/"; done
  rm -rf "$tmp"
  return "$rc"
}
# --- kernel ----------------------------------------------------------------------------------------------
DEB="$(ls "$CACHE/downloads/${KPKG}_"*"_amd64.deb" 2>/dev/null | grep -F "_${KVER_DEB//:/%3a}_" | head -n 1 || true)"
if [ -z "$DEB" ]; then
  log "downloading $KPKG=$KVER_DEB"
  download "$KPKG=$KVER_DEB" || die "apt-get download $KPKG failed (network? run apt-get update)"
  DEB="$(ls "$CACHE/downloads/${KPKG}_"*"_amd64.deb" | head -n 1)"
fi
IGN_DEB="$(ls "$CACHE/downloads/ignition_"*"_amd64.deb" 2>/dev/null | grep -F "_${IGN_VER//:/%3a}_" | head -n 1 || true)"
if [ -z "$IGN_DEB" ]; then
  log "downloading ignition=$IGN_VER"
  download "ignition=$IGN_VER" || die "apt-get download ignition failed (network? run apt-get update)"
  IGN_DEB="$(ls "$CACHE/downloads/ignition_"*"_amd64.deb" | head -n 1)"
fi
log "extracting $(basename "$DEB")"
mkdir -p "$WORK/kernel"
dpkg-deb -x "$DEB" "$WORK/kernel"
KDIR="$WORK/kernel/lib/modules/$KREL"
[ -d "$KDIR" ] || KDIR="$(ls -d "$WORK"/kernel/lib/modules/* | head -n 1)"
KREL="$(basename "$KDIR")"
[ -f "$KDIR/modules.dep" ] || "$BUSYBOX" depmod -b "$WORK/kernel" "$KREL"

# --- rootfs ---------------------------------------------------------------------------------------------
R="$WORK/root"
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,run,tmp,etc,root,var,lib/underlay,lib/modules/"$KREL"}
cp "$BUSYBOX" "$R/bin/busybox"
for a in $("$BUSYBOX" --list-full); do
  [ -e "$R/$a" ] || [ -L "$R/$a" ] || ln -s /bin/busybox "$R/$a"
done
# The Debian binaries (replacing busybox applets of the same name) and the shared libraries they need.
for b in "${HOST_BINS[@]}"; do rm -f "$R/usr/bin/${b##*/}" "$R/bin/${b##*/}" "$R/sbin/${b##*/}" "$R/usr/sbin/${b##*/}"; cp "$b" "$R/usr/bin/${b##*/}"; done
for l in "${LIBS[@]}"; do mkdir -p "$R$(dirname "$l")"; cp -L "$l" "$R$l"; done
mkdir -p "$WORK/ignition"
dpkg-deb -x "$IGN_DEB" "$WORK/ignition"
cp "$WORK/ignition/usr/lib/dracut/modules.d/30ignition/ignition" "$R/usr/bin/ignition"
cp "$RECIPE/init" "$R/init"
for f in $RUNNER_FILES; do cp "$RECIPE/$f" "$R/lib/underlay/$f"; done
chmod 0755 "$R/init" "$R"/lib/underlay/*.sh "$R/lib/underlay/udhcpc.script"
chmod 1777 "$R/tmp"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$R/etc/passwd"
printf 'root:x:0:\n' >"$R/etc/group"
: >"$R/etc/resolv.conf"
echo discovery >"$R/etc/hostname"

# Kernel modules: the listed ones and their dependencies (modules.dep), dependencies first.
declare -A DEP SEEN
while IFS= read -r line; do
  m="${line%%:*}"; DEP["$m"]="${line#*:}"
done <"$KDIR/modules.dep"
declare -A BYNAME
for m in "${!DEP[@]}"; do b="${m##*/}"; b="${b%%.ko*}"; BYNAME["$b"]="$m"; BYNAME["${b//-/_}"]="$m"; done
ORDER=()
visit() {
  local m="$1" d
  [ -n "${SEEN[$m]:-}" ] && return
  SEEN["$m"]=1
  for d in ${DEP[$m]}; do visit "$d"; done
  ORDER+=("$m")
}
MISSING=()
while read -r name _; do
  case "$name" in '' | '#'*) continue ;; esac
  p="${BYNAME[$name]:-${BYNAME[${name//-/_}]:-}}"
  if [ -z "$p" ]; then
    if grep -q "/${name}.ko" "$KDIR/modules.builtin" 2>/dev/null; then continue; fi
    MISSING+=("$name"); continue
  fi
  visit "$p"
done <"$RECIPE/modules.txt"
[ ${#MISSING[@]} -eq 0 ] || die "modules not in $KPKG: ${MISSING[*]} (edit images/discovery/modules.txt)"
: >"$R/lib/modules/load.list"
for m in "${ORDER[@]}"; do
  dst="${m%.xz}"; dst="${dst%.zst}"; dst="${dst%.gz}"
  mkdir -p "$R/lib/modules/$KREL/$(dirname "$dst")"
  case "$m" in
    *.ko.xz) xz -dc "$KDIR/$m" >"$R/lib/modules/$KREL/$dst" ;;
    *.ko.zst) zstd -qdc "$KDIR/$m" >"$R/lib/modules/$KREL/$dst" ;;
    *.ko.gz) gzip -dc "$KDIR/$m" >"$R/lib/modules/$KREL/$dst" ;;
    *) cp "$KDIR/$m" "$R/lib/modules/$KREL/$dst" ;;
  esac
  echo "$dst" >>"$R/lib/modules/load.list"
done
log "${#ORDER[@]} kernel modules"

# --- archive ----------------------------------------------------------------------------------------------
find "$R" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
# busybox cpio writes the source inode and device numbers; they are renumbered / zeroed afterwards so
# that two builds of the same inputs give the same bytes.
(cd "$R" && find . -mindepth 1 | sed 's|^\./||' | sort | "$BUSYBOX" cpio -o -H newc -R 0:0 2>/dev/null) >"$WORK/initrd.cpio"
perl -e '
  binmode STDIN; binmode STDOUT; local $/; my $d = <STDIN>; my ($o, $ino, $out) = (0, 0, "");
  while ($o < length $d) {
    my $h = substr($d, $o, 110); die "bad cpio header at $o\n" unless substr($h, 0, 6) eq "070701";
    my @f = map { hex substr($h, 6 + 8 * $_, 8) } 0 .. 12;
    my ($fs, $ns) = ($f[6], $f[11]);
    my $name = substr($d, $o + 110, $ns - 1);
    my $hl = 110 + $ns; $hl += (4 - $hl % 4) % 4; my $dl = $fs + (4 - $fs % 4) % 4;
    $f[0] = $name eq "TRAILER!!!" ? 0 : ++$ino; $f[7] = $f[8] = 0;
    $out .= "070701" . join("", map { sprintf "%08X", $_ } @f) . substr($d, $o + 110, $hl - 110 + $dl);
    $o += $hl + $dl;
    last if $name eq "TRAILER!!!";
  }
  $out .= "\0" x ((512 - length($out) % 512) % 512);
  print $out;' <"$WORK/initrd.cpio" >"$WORK/initrd.norm.cpio"
case "$COMPRESS" in
  xz) xz --check=crc32 -9 -T1 -c "$WORK/initrd.norm.cpio" >"$WORK/initrd.img" ;;
  gzip) gzip -n -9 -c "$WORK/initrd.norm.cpio" >"$WORK/initrd.img" ;;
esac

STAGE="$WORK/out"
mkdir -p "$STAGE"
cp "$WORK/kernel/boot/vmlinuz-$KREL" "$STAGE/vmlinuz"
mv "$WORK/initrd.img" "$STAGE/initrd.img"
touch -d "@$SOURCE_DATE_EPOCH" "$STAGE/vmlinuz" "$STAGE/initrd.img"
KSIZE=$(stat -c %s "$STAGE/vmlinuz"); ISIZE=$(stat -c %s "$STAGE/initrd.img"); USIZE=$(stat -c %s "$WORK/initrd.norm.cpio")
KSHA=$(sha256sum "$STAGE/vmlinuz" | cut -d' ' -f1); ISHA=$(sha256sum "$STAGE/initrd.img" | cut -d' ' -f1)
{
  printf '{\n  "name": "discovery",\n  "hash": "%s",\n  "kernelRelease": "%s",\n' "$HASH" "$KREL"
  printf '  "kernel": {"file": "vmlinuz", "size": %d, "sha256": "%s"},\n' "$KSIZE" "$KSHA"
  printf '  "initrd": {"file": "initrd.img", "size": %d, "uncompressedSize": %d, "compression": "%s", "sha256": "%s"},\n' "$ISIZE" "$USIZE" "$COMPRESS" "$ISHA"
  printf '  "cmdline": "underlay.url=http://AGENT:PORT underlay.token=TOKEN underlay.mac=${mac} underlay.pubkey=BASE64_ED25519_PUBLIC_KEY console=ttyS0",\n'
  printf '  "modules": %d,\n  "packages": [%s]\n}\n' "${#ORDER[@]}" "$(echo "$VERSIONS" | sed 's/.*/"&"/' | paste -sd, -)"
} >"$STAGE/manifest.json"

rm -rf "$OUT"
mv "$STAGE" "$OUT"
touch "$OUT/.complete"
ln -sfn "$HASH" "$BASE/current"
END=$(date +%s.%N)
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo "kernel     $KREL  $(mib "$KSIZE")"
echo "initrd.img $(mib "$ISIZE") ($COMPRESS; $(mib "$USIZE") uncompressed, ${#ORDER[@]} modules)"
echo "build time $(awk -v s="$START" -v e="$END" 'BEGIN { printf "%.1f s", e - s }')"
echo "$OUT"
