#!/bin/bash
# Builds the Debian 12 guest the VM test boots, from Debian's packages only, once per cache
# directory: a root filesystem (mmdebstrap), a small initrd (virtio + ext4 only) and the kernel.
# The guest knows one thing of its own: f3s-job.service runs /f3s-job/boot early at every boot
# when a disk labelled f3s-job is attached; everything a test does comes on that disk.
# Prints the image directory. Needs root (mmdebstrap's root mode, mkfs.ext4 -d keeps ownership).
#   F3S_VM_CACHE   where images are kept (default ~/.cache/f3s-gen/vm); bump IMAGE_VERSION when the
#                  package list or the guest's own setup below changes, so old caches are not reused.
set -euo pipefail
IMAGE_VERSION=3
cache=${F3S_VM_CACHE:-$HOME/.cache/f3s-gen/vm}
image=$cache/debian12-v$IMAGE_VERSION
if [ -f "$image/ready" ]; then
	echo "$image"
	exit 0
fi
export F3S_VM_DIR
F3S_VM_DIR=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$cache"
work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT

# openssh-server and python3: the rollout test reaches the guest with Ansible over SSH.
packages=systemd,systemd-sysv,udev,dbus,kmod,iproute2,procps,util-linux,e2fsprogs,stunnel4,nfs-common,nfs-kernel-server,nftables,linux-image-amd64,initramfs-tools,tar,gzip,openssh-server,python3

# The machine's own Debian sources for bookworm (none is named here): "deb URI SUITE COMPONENTS"
# for every enabled bookworm suite of /etc/apt/sources.list and /etc/apt/sources.list.d/*.sources.
debian_sources() {
	# (errexit holds in this function's subshell: a missing sources.list must not end it)
	if [ -f /etc/apt/sources.list ]; then
		sed -n 's/^deb[[:space:]]\{1,\}\(\[[^]]*\][[:space:]]\{1,\}\)\{0,1\}\([^[:space:]]\{1,\}\)[[:space:]]\{1,\}\(bookworm[^[:space:]]*\)[[:space:]]\{1,\}\(.*\)$/deb \2 \3 \4/p' /etc/apt/sources.list
	fi
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk '
			function flush() {
				if (types ~ /(^| )deb( |$)/ && enabled != "no")
					for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++) if (suite[j] ~ /^bookworm/) print "deb", uri[i], suite[j], comps
				types = ""; nu = 0; ns = 0; comps = ""; enabled = ""
			}
			/^[[:space:]]*$/ { flush(); next }
			/^#/ { next }
			/^Types:/ { types = $0; sub(/^Types:[[:space:]]*/, "", types) }
			/^Enabled:/ { enabled = $2 }
			/^URIs:/ { for (i = 2; i <= NF; i++) uri[++nu] = $i }
			/^Suites:/ { for (i = 2; i <= NF; i++) suite[++ns] = $i }
			/^Components:/ { comps = $0; sub(/^Components:[[:space:]]*/, "", comps) }
			END { flush() }
		' "$f"
	done
}
mirrors=()
while IFS= read -r line; do mirrors+=("$line"); done < <(debian_sources)
if ((${#mirrors[@]} == 0)); then
	echo "build-image.sh: no bookworm sources in /etc/apt/sources.list or /etc/apt/sources.list.d/*.sources" >&2
	exit 1
fi
# Guest setup before the kernel's package runs initramfs-tools: only the modules a virtio disk
# with ext4 needs, so the initrd is small and built without probing this machine's hardware.
# shellcheck disable=SC2016 # the hooks' $1 is mmdebstrap's, expanded when it runs them
mmdebstrap --variant=apt --include="$packages" \
	--setup-hook='mkdir -p "$1/etc/initramfs-tools/conf.d"; echo MODULES=list > "$1/etc/initramfs-tools/conf.d/f3s"; printf "virtio_pci\nvirtio_blk\next4\n" > "$1/etc/initramfs-tools/modules"' \
	--customize-hook='cp "$F3S_VM_DIR/guest/f3s-job.service" "$1/etc/systemd/system/"; chroot "$1" systemctl enable f3s-job.service' \
	--customize-hook='echo f3s-guest > "$1/etc/hostname"; printf "/dev/vda / ext4 rw,errors=remount-ro 0 1\nLABEL=f3s-job /f3s-job ext4 rw,nofail 0 2\n" > "$1/etc/fstab"; mkdir -p "$1/f3s-job"; chroot "$1" passwd -d root; chroot "$1" systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer man-db.timer systemd-timesyncd.service' \
	bookworm "$work/rootfs" "${mirrors[@]}"

cp "$work"/rootfs/boot/vmlinuz-* "$work/vmlinuz"
cp "$work"/rootfs/boot/initrd.img-* "$work/initrd.img"
rm -rf "$work"/rootfs/boot/initrd.img-*
mkfs.ext4 -q -L f3s-root -d "$work/rootfs" "$work/root.ext4" 2G
rm -rf "$work/rootfs"
mkdir -p "$image"
mv "$work/vmlinuz" "$work/initrd.img" "$work/root.ext4" "$image/"
touch "$image/ready"
echo "$image"
