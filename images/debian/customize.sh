#!/usr/bin/env bash
# mmdebstrap customize hook of the Underlay Debian image (scripts/images/build-debian.sh).
# Runs on the build host after every package is installed; $1 is the root directory.
# Environment from the build script: UL_ROOT_UUID, UL_ESP_VOLID, UL_SSH (0|1), SOURCE_DATE_EPOCH,
# UL_RUNNER_DIR (images/discovery) and UL_RUNNER_FILES (the runner's scripts and unit).
set -euo pipefail
R="$1"
: "${UL_ROOT_UUID:?}" "${UL_ESP_VOLID:?}" "${UL_SSH:?}" "${UL_RUNNER_DIR:?}" "${UL_RUNNER_FILES:?}"

# --- identity: nothing of the build host, nothing unique to this build ---------------------------------
echo debian >"$R/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tdebian\n::1\t\tlocalhost ip6-localhost ip6-loopback\nff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n' >"$R/etc/hosts"
rm -f "$R/etc/resolv.conf"
ln -s ../run/systemd/resolve/stub-resolv.conf "$R/etc/resolv.conf"
: >"$R/etc/machine-id" # empty: systemd makes one at first boot (ConditionFirstBoot)
rm -f "$R/var/lib/dbus/machine-id"

# --- filesystems: fixed UUIDs, so the kernel line and fstab are known before the disk is written ----------
cat >"$R/etc/fstab" <<EOF
# <file system>          <mount point> <type> <options>                  <dump> <pass>
UUID=$UL_ROOT_UUID /             ext4   errors=remount-ro          0      1
UUID=$UL_ESP_VOLID                        /boot/efi     vfat   umask=0077,nofail          0      2
EOF
mkdir -p "$R/boot/efi"

# --- services -------------------------------------------------------------------------------------------
systemctl --root="$R" enable systemd-networkd.service systemd-resolved.service >/dev/null 2>&1
if [ "$UL_SSH" = 1 ]; then
  # Host keys are made at first boot by cloud-init, never baked into the image (every machine would share them).
  cat >"$R/etc/cloud/cloud.cfg.d/20-underlay-ssh.cfg" <<'EOF'
# Underlay Debian image built with --ssh: cloud-init generates this machine's SSH host keys at first boot.
ssh_genkeytypes: [ed25519, ecdsa, rsa]
ssh_deletekeys: true
EOF
fi
rm -f "$R"/etc/ssh/ssh_host_*

# --- cloud-init: no modules this image has nothing for ------------------------------------------------------
# locale (the image has no locales package) and, without --ssh, ssh (host keys and the default user's
# top-level ssh_authorized_keys; users' own keys come from the users module either way). Taken out of the
# module lists rather than switched off with `locale: false` / `ssh_genkeytypes: []`, which cloud-init's
# schema rejects ("Invalid cloud-config provided" at every boot).
drop_cloud_module() {
  grep -qx " - $1" "$R/etc/cloud/cloud.cfg" || { echo "customize.sh: /etc/cloud/cloud.cfg lists no module '$1'" >&2; exit 1; }
  sed -i "/^ - $1\$/d" "$R/etc/cloud/cloud.cfg"
}
drop_cloud_module locale
[ "$UL_SSH" = 1 ] || drop_cloud_module ssh

# --- Underlay machine runner: its unit, enabled. The deploy installs the runner's scripts (the same ones
# as in the site's discovery image) and its config; the unit starts only once both are there.
mkdir -p "$R/usr/lib/underlay"
for f in $UL_RUNNER_FILES; do install -m 0644 "$UL_RUNNER_DIR/$f" "$R/etc/systemd/system/$f"; done
systemctl --root="$R" enable underlay-runner.service >/dev/null 2>&1

# --- remove what differs between two builds of the same inputs (logs, caches, seeds, backups) ------------
rm -rf "$R"/var/log/* "$R"/var/cache/ldconfig/aux-cache "$R"/var/lib/systemd/catalog/database \
  "$R"/var/cache/debconf/*-old "$R"/var/lib/dpkg/*-old "$R"/etc/*- "$R"/var/lib/systemd/random-seed \
  "$R"/var/lib/cloud/* "$R"/var/cache/apt/*.bin
