// Package tests owns the end-to-end tests that boot real kernels under QEMU.
//
// The harness (all in _test.go files) fetches and caches Debian's cloud
// kernel, busybox-static and QEMU; builds a busybox initramfs that loads the
// block, loop, squashfs, overlay, btrfs, dm-mod and dm-verity modules from
// modules.dep, mounts /dev/vda read-only and switch_roots into it handing over
// the kernel's init=;
// boots the same on ARM with OVERLAYUPD_VM_ARCH=arm64 (qemu-system-aarch64
// -M virt, Debian's linux-image-arm64) or armhf (qemu-system-arm -M virt,
// linux-image-armmp), with that architecture's busybox-static and
// overlayupd build (arch_test.go holds the table of what differs);
// builds ext4 disk images from a directory tree with mkfs.ext4 -d (never
// mounting anything on the host); and boots them under QEMU in software (TCG)
// mode, streaming the serial console to tests that wait for expected lines.
//
// Every disk image holds busybox, the overlayupd binary (as /usr/sbin/overlayupd,
// /sbin/init-overlay and /sbin/overlayctl) and a test /sbin/init that prints
// "harness: " marker lines, runs the scenario step named by step=NAME on the
// kernel command line (the file /test/NAME.sh), and powers off.
//
// VM tests skip under go test -short. A missing kernel, busybox or QEMU that
// apt-get cannot install is a skip locally and a failure when CI=true. The
// console logs of a failed test are kept under tests/logs/<Test>-<time>/.
//
// Environment: OVERLAYUPD_BIN (the binary under test; built with make if
// unset), OVERLAYUPD_VM_ARCH (amd64, arm64 or armhf; default amd64),
// OVERLAYUPD_GUEST_BIN (an ARM guest's overlayupd test binary, init-overlay
// beside it; built with make build-test TARGET=ARCH if unset),
// OVERLAYUPD_CACHE (default tests/cache), OVERLAYUPD_VM_PARALLEL
// (concurrent boots, default 2), OVERLAYUPD_KEEP_LOGS=1 (keep the console
// logs of passing tests too), OVERLAYUPD_DEMO=1 (TestDemo narrates),
// OVERLAYUPD_BENCH=N (TestBench runs N boots per variant).
package tests
