#!/bin/sh
# ipmi_sim's chassis_control script (ipmi_lan(5)): "get power boot" prints power:0|1 and boot:<dev>;
# "set power 1|0 | reset 1 | boot pxe|default …" acts. State lives beside this script (the rig copies it
# into its temp dir). With a file "qemu.cmd" there, power really starts and stops that QEMU (daemonized,
# pid in qemu.pid); the stored boot device becomes "-boot once=n" and is cleared after that boot (once).
D=$(dirname "$0")
case $1 in 0x*) shift;; esac
echo "$*" >> "$D/calls"
alive() { [ -f "$D/qemu.pid" ] && kill -0 "$(cat "$D/qemu.pid")" 2>/dev/null; }
power_state() {
  if [ -f "$D/qemu.cmd" ]; then if alive; then echo 1; else echo 0; fi
  else cat "$D/power" 2>/dev/null || echo 0; fi
}
start_vm() {
  if [ -f "$D/qemu.cmd" ]; then
    alive && return 0
    boot=""; [ "$(cat "$D/boot" 2>/dev/null)" = pxe ] && { boot="-boot once=n"; echo default > "$D/boot"; }
    # shellcheck disable=SC2046
    sh -c "$(cat "$D/qemu.cmd") $boot -daemonize -pidfile $D/qemu.pid" >> "$D/qemu.log" 2>&1
  else echo 1 > "$D/power"; fi
}
stop_vm() {
  if [ -f "$D/qemu.cmd" ]; then alive && kill "$(cat "$D/qemu.pid")"; rm -f "$D/qemu.pid"
  else echo 0 > "$D/power"; fi
}
cmd=$1; shift
if [ "$cmd" = get ]; then
  for p in "$@"; do
    case $p in
      power) echo "power:$(power_state)";;
      boot) echo "boot:$(cat "$D/boot" 2>/dev/null || echo default)";;
    esac
  done
else
  while [ $# -gt 1 ]; do
    case $1 in
      power) if [ "$2" = 1 ]; then start_vm; else stop_vm; fi;;
      reset) echo reset >> "$D/resets"; if [ -f "$D/qemu.cmd" ] && alive; then stop_vm; start_vm; fi;;
      boot) echo "$2" > "$D/boot";;
    esac
    shift 2
  done
fi
