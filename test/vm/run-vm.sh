#!/bin/bash
# Boots the guest image under QEMU's emulation (TCG: this machine's KVM is paravirtual and cannot
# run a stock kernel) with JOB_DIR on a second disk labelled f3s-job, until the guest powers off
# (reboots inside the run are fine) or TIMEOUT seconds pass; then copies the guest's
# /f3s-job/results to RESULT_DIR (read with debugfs: no mount needed) and the serial console
# to RESULT_DIR/console.log. The image is never written: the guest's root is a qcow2 overlay.
# With SSH_PORT set, the guest gets a network card on QEMU's user networking with restrict=on (it
# reaches nothing outside) and its port 22 forwarded to 127.0.0.1:SSH_PORT on this machine.
#   run-vm.sh IMAGE_DIR JOB_DIR RESULT_DIR [TIMEOUT]
set -euo pipefail
image=$1 job=$2 results=$3 timeout=${4:-1200}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$results"
qemu-img create -q -f qcow2 -b "$image/root.ext4" -F raw "$work/root.qcow2"
mkdir -p "$job/results"
mkfs.ext4 -q -L f3s-job -d "$job" "$work/job.ext4" 256M
cores=$(nproc)
[ "$cores" -gt 4 ] && cores=4
net=()
if [ -n "${SSH_PORT:-}" ]; then
	net=(-netdev "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:${SSH_PORT}-:22" -device "virtio-net-pci,netdev=n0")
fi
status=0
timeout --foreground "$timeout" qemu-system-x86_64 -accel tcg -smp "$cores" -m 2048 -nodefaults -display none \
	-kernel "$image/vmlinuz" -initrd "$image/initrd.img" \
	-append "root=/dev/vda rw console=ttyS0 panic=-1 quiet systemd.show_status=1" \
	-drive "file=$work/root.qcow2,if=virtio,format=qcow2" -drive "file=$work/job.ext4,if=virtio,format=raw" \
	-serial "file:$results/console.log" -no-user-config "${net[@]}" || status=$?
debugfs -R "rdump /results $results" "$work/job.ext4" >/dev/null 2>&1 || true
if [ -d "$results/results" ]; then
	cp -a "$results/results/." "$results/"
	rm -rf "$results/results"
fi
exit "$status"
