#!/bin/bash
# PID 1 of a test host. tests/common/testhost.rs starts it with
# `unshare --pid --fork --mount --uts --mount-proc`, so this shell is the host's init:
# killing it kills every process of the host, as a power-off does.
#
# Usage: boot.sh HOST_DIR HOSTNAME REBOOT_DELAY_SECONDS
#   HOST_DIR/root  becomes /root (kept across reboots)
#   HOST_DIR/etc   sshd_config, host keys, authorized_keys, machine-id
#   HOST_DIR/run   boot_id (bound over /proc/sys/kernel/random/boot_id), sshd.log
# Standard input is a pipe whose other end the harness holds: when the harness is
# gone (even killed), the host shuts itself down instead of outliving the test.
#
# `reboot` (tests/testhost/bin) sends SIGUSR1: every process is killed, then after
# the delay the host comes back with a new boot id and a fresh /tmp.
set -u
host_dir=$1 name=$2 reboot_delay=$3

reboot_requested=0
trap 'reboot_requested=1' USR1
trap 'exit 0' TERM
exec 3<&0 </dev/null

hostname "$name"
mount --bind "$host_dir/root" /root
mount --bind "$host_dir/etc/machine-id" /etc/machine-id 2>/dev/null
mount --bind "$host_dir/run/boot_id" /proc/sys/kernel/random/boot_id || exit 1
mkdir -p /run/sshd

boot() {
    # Written in place: the bind mount follows the inode, not the name.
    cat /proc/sys/kernel/random/uuid >"$host_dir/run/boot_id"
    umount -l /tmp 2>/dev/null
    mount -t tmpfs -o mode=1777,size=256m tmpfs /tmp
    (cat <&3 >/dev/null; kill -TERM 1) >/dev/null 2>&1 &
    /usr/sbin/sshd -D -e -f "$host_dir/etc/sshd_config" </dev/null >>"$host_dir/run/sshd.log" 2>&1 3<&- &
    sshd_pid=$!
}

boot
while :; do
    wait
    if ((reboot_requested)); then
        reboot_requested=0
        kill -KILL -1
        # Orphans are ours now; reap until only this shell is left (bounded).
        for _ in $(seq 100); do
            procs=(/proc/[0-9]*)
            ((${#procs[@]} <= 1)) && break
            wait
            sleep 0.05
        done
        sleep "$reboot_delay"
        boot
    elif ! kill -0 "$sshd_pid" 2>/dev/null; then
        echo "sshd ended" >>"$host_dir/run/sshd.log"
        exit 1
    fi
done
