package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/overlayupd/overlayupd/internal/testroot"
)

// testInit is the disk's /sbin/init: it proves it runs as PID 1, prints the
// root mount, runs the step named by step= on the kernel command line
// (/test/<step>.sh, in a subshell) and powers off. Lines meant for the tests
// start with "harness: " or "result: ".
const testInit = `#!/bin/sh
export PATH=/sbin:/usr/sbin:/bin:/usr/bin
[ -r /proc/uptime ] || mount -t proc proc /proc
[ -c /dev/kmsg ] || mount -t devtmpfs devtmpfs /dev
echo "<2>harness: init-start" > /dev/kmsg
read up idle < /proc/uptime
echo "harness: init-start uptime=$up pid=$$"
[ -d /sys/kernel ] || mount -t sysfs sysfs /sys
step=
hardoff=
for arg in $(cat /proc/cmdline); do
	case $arg in step=*) step=${arg#step=} ;; harness.hardoff=1) hardoff=1 ;; esac
done
echo "harness: rootmount $(awk '$2 == "/" {m = $1 " " $3 " " $4} END {print m}' /proc/mounts)"
rc=0
if [ -n "$step" ]; then
	if [ -f "/test/$step.sh" ]; then
		(. "/test/$step.sh")
		rc=$?
	else
		echo "harness: no step /test/$step.sh"
		rc=127
	fi
fi
echo "harness: step-done step=$step rc=$rc"
# An orderly shutdown, as every real init does it: SIGTERM to all processes
# (the boot budget's keeper marks a committed boot good then, once it has
# run long enough), a moment for them to finish, then the power. With
# harness.hardoff=1 (the budget's scenarios: a failing device that is
# power-cycled), the power only.
if [ -z "$hardoff" ]; then
	kill -TERM -1 2>/dev/null
	i=0
	while [ $i -lt 50 ] && cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\0' '\n' | grep -q '^overlayupd-keepe[r]$'; do sleep 0.1; i=$((i+1)); done
fi
sync
poweroff -f
echo o > /proc/sysrq-trigger
`

// rootTree is a directory that becomes a root filesystem image.
type rootTree struct {
	t   testing.TB
	dir string
}

// newRootTree lays out a minimal root: busybox with its applet links, the
// overlayupd binary and its links, the test /sbin/init, empty mount points;
// the binaries are the guest architecture's.
func newRootTree(t testing.TB, a *assets) *rootTree {
	t.Helper()
	var tree []testroot.Applier
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "etc", "dev", "proc", "sys", "tmp", "run", "overlay", "test", "root", "var", "mnt"} {
		tree = append(tree, testroot.Dir(d, 0o755))
	}
	tree = append(tree,
		testroot.BusyboxFrom(a.busybox),
		testroot.CopyFile(a.guestBin, "usr/sbin/overlayupd", 0o755),
		testroot.CopyFile(a.guestInit, "usr/sbin/init-overlay", 0o755),
		testroot.Symlink("/usr/sbin/init-overlay", "sbin/init-overlay"),
		testroot.Symlink("/usr/sbin/overlayupd", "sbin/overlayctl"),
		testroot.File("sbin/init", testInit, 0o755),
		testroot.File("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n", 0o644),
		testroot.File("etc/group", "root:x:0:\n", 0o644),
	)
	return &rootTree{t: t, dir: testroot.NewTree(t, tree...)}
}

func (r *rootTree) apply(a ...testroot.Applier) {
	r.t.Helper()
	testroot.Apply(r.t, r.dir, a...)
}

func (r *rootTree) mkdir(rel string) { r.t.Helper(); r.apply(testroot.Dir(rel, 0o755)) }

func (r *rootTree) write(rel, content string, mode os.FileMode) {
	r.t.Helper()
	r.apply(testroot.File(rel, content, mode))
}

func (r *rootTree) copy(src, rel string, mode os.FileMode) {
	r.t.Helper()
	r.apply(testroot.CopyFile(src, rel, mode))
}

// step adds /test/<name>.sh, run by /sbin/init when booted with step=<name>.
func (r *rootTree) step(name, script string) {
	r.t.Helper()
	r.write(filepath.Join("test", name+".sh"), script, 0o755)
}

// ext4 builds a 64 MiB ext4 image of the tree with mkfs.ext4 -d; nothing is
// mounted on the host. The image is removed with the test's temp dir.
func (r *rootTree) ext4() *disk {
	r.t.Helper()
	return &disk{t: r.t, path: testroot.Ext4(r.t, r.dir, "64M", "-L", "root"), fstype: "ext4"}
}

// disk is a root filesystem image that boots can share, one at a time.
type disk struct {
	t      testing.TB
	path   string
	fstype string
}

// debugfs runs one debugfs request on the (not running) image; write opens it
// read-write. It reads and edits the image without mounting it.
func (d *disk) debugfs(write bool, request string) (stdout, stderr string) {
	d.t.Helper()
	tool, err := testroot.LookTool("debugfs")
	if err != nil {
		d.t.Fatal(err)
	}
	args := []string{"-R", request, d.path}
	if write {
		args = append([]string{"-w"}, args...)
	}
	var o, e strings.Builder
	cmd := exec.Command(tool, args...)
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		d.t.Fatalf("debugfs %s: %v\n%s%s", request, err, &o, &e)
	}
	return o.String(), e.String()
}

// exists reports whether path exists in the image.
func (d *disk) exists(path string) bool {
	out, _ := d.debugfs(false, "stat "+path)
	return strings.Contains(out, "Inode:")
}

// cat returns the content of a file in the image, or fails the test.
func (d *disk) cat(path string) string {
	d.t.Helper()
	if !d.exists(path) {
		d.t.Fatalf("%s: not in image %s", path, d.path)
	}
	out, _ := d.debugfs(false, "cat "+path)
	return out
}

func (d *disk) rm(path string) {
	d.t.Helper()
	d.debugfs(true, "rm "+path)
	if d.exists(path) {
		d.t.Fatalf("debugfs rm %s: still there", path)
	}
}

func (d *disk) String() string { return fmt.Sprintf("%s image %s", d.fstype, d.path) }

// btrfs builds a 256 MiB btrfs image of the tree with mkfs.btrfs --rootdir
// (no mount). Boots pass rootfstype=btrfs; the debugfs helpers are ext4 only.
func (r *rootTree) btrfs() *disk {
	r.t.Helper()
	return &disk{t: r.t, path: testroot.Btrfs(r.t, r.dir, "256M", "-L", "root"), fstype: "btrfs"}
}

// squashfs packs the tree into a squashfs image file and returns its path,
// e.g. to place it in a store tree; as a disk it boots with rootfstype=squashfs.
func (r *rootTree) squashfs() string {
	r.t.Helper()
	return testroot.Squashfs(r.t, r.dir, "")
}
