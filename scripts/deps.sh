#!/usr/bin/env bash
# Installs the Debian packages that the build, the tests, the demo and the bench need.
# Missing tools are installed with apt-get when we are root; otherwise we say what to run.
set -euo pipefail
export PATH=$PATH:/usr/local/go/bin

# command -> Debian package
declare -A need=(
  [gcc]=gcc
  [file]=file
  [qemu-system-x86_64]=qemu-system-x86
  [mksquashfs]=squashfs-tools
  [mkfs.btrfs]=btrfs-progs
  [mkfs.ext4]=e2fsprogs
  [cpio]=cpio
  [depmod]=kmod
  [unshare]=util-linux
  [unsquashfs]=squashfs-tools
  [rsync]=rsync
  [minisign]=minisign
  [veritysetup]=cryptsetup-bin
  [mmdebstrap]=mmdebstrap
  [sfdisk]=fdisk
  [dpkg-deb]=dpkg
  [readelf]=binutils
  # init-overlay's prelude test reads its first system call.
  [strace]=strace
  # The release's and the ARM tests' cross builds (cgo, static), their
  # --version and unit tests under qemu-user, and the ARM VMs.
  [aarch64-linux-gnu-gcc]=gcc-aarch64-linux-gnu
  [arm-linux-gnueabihf-gcc]=gcc-arm-linux-gnueabihf
  [qemu-aarch64-static]=qemu-user-static
  [qemu-arm-static]=qemu-user-static
  [qemu-system-aarch64]=qemu-system-arm
  [qemu-system-arm]=qemu-system-arm
)
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || PATH=$PATH:/sbin:/usr/sbin command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
# busybox-static ships /bin/busybox statically linked; the dynamic busybox package will not do in a guest.
if ! { [ -x /bin/busybox ] && file -L /bin/busybox | grep -q 'statically linked'; }; then
  missing+=(busybox-static)
fi
# glibc's static archive for the cgo static link.
[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || missing+=(libc6-dev)
# ... and the cross builds': the targets' glibc and kernel headers.
[ -f /usr/aarch64-linux-gnu/lib/libc.a ] || missing+=(libc6-dev-arm64-cross)
[ -f /usr/arm-linux-gnueabihf/lib/libc.a ] || missing+=(libc6-dev-armhf-cross)
[ -f /usr/aarch64-linux-gnu/include/linux/btrfs.h ] || missing+=(linux-libc-dev-arm64-cross)
[ -f /usr/arm-linux-gnueabihf/include/linux/btrfs.h ] || missing+=(linux-libc-dev-armhf-cross)

# staticcheck, the linter of make test, from the Go module proxy.
gobin=$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin
if ! command -v staticcheck >/dev/null 2>&1 && [ ! -x "$gobin/staticcheck" ]; then
  echo "deps: installing staticcheck"
  go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing packages: $pkgs" >&2
  echo "deps: run as root: apt-get install -y $pkgs" >&2
  exit 1
fi
echo "deps: installing $pkgs"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $pkgs
