// Package testroot owns the fixtures of the privileged tests: root trees with
// busybox and the overlayupd binary, ext4 and squashfs images made from them
// without mounting anything, and "boots" of an image as PID 1 of its own PID
// and mount namespace. Only tests import it.
package testroot

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// RequireRoot skips a test that needs root and the named tools, or fails it
// under CI=true, where every tool must be there.
func RequireRoot(t testing.TB, tools ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("privileged test: skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("privileged test: needs root for loop devices and mount namespaces (run as root, or make test)")
	}
	for _, tool := range append([]string{"unshare", "/bin/busybox"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			msg := fmt.Sprintf("%s not found (run: make deps)", tool)
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// Binary returns the overlayupd binary under test: $OVERLAYUPD_BIN (make
// test sets it), or a static build of ./cmd/overlayupd.
func Binary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		if p := os.Getenv("OVERLAYUPD_BIN"); p != "" {
			binPath = p
			return
		}
		mod, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			binErr = fmt.Errorf("find the module: %w", err)
			return
		}
		dir, err := os.MkdirTemp("", "overlayupd-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "overlayupd")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/overlayupd")
		cmd.Dir = filepath.Dir(strings.TrimSpace(string(mod)))
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("build overlayupd: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// Tree makes a root tree: busybox with the applets tests use, the overlayupd
// binary as /usr/sbin/overlayupd and /sbin/init-overlay, the usual mount
// points, and files (a name ending in "/" is a directory; names under sbin/
// and usr/sbin/ are executable).
func Tree(t testing.TB, files map[string]string) string {
	t.Helper()
	tree := t.TempDir()
	for _, d := range []string{"bin", "sbin", "usr/sbin", "etc", "proc", "sys", "dev", "overlay", "tmp", "run"} {
		Must(t, os.MkdirAll(filepath.Join(tree, d), 0o755))
	}
	copyFile(t, "/bin/busybox", filepath.Join(tree, "bin/busybox"))
	for _, applet := range []string{"sh", "awk", "cat", "echo", "dd", "grep", "head", "sed", "ls", "sync", "sleep", "basename", "tr", "rm", "cp"} {
		Must(t, os.Symlink("busybox", filepath.Join(tree, "bin", applet)))
	}
	copyFile(t, Binary(t), filepath.Join(tree, "usr/sbin/overlayupd"))
	Must(t, os.Symlink("../usr/sbin/overlayupd", filepath.Join(tree, "sbin/init-overlay")))
	for name, body := range files {
		p := filepath.Join(tree, name)
		if strings.HasSuffix(name, "/") {
			Must(t, os.MkdirAll(p, 0o755))
			continue
		}
		Must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		mode := os.FileMode(0o644)
		if strings.HasPrefix(name, "sbin/") || strings.HasPrefix(name, "usr/sbin/") {
			mode = 0o755
		}
		Must(t, os.WriteFile(p, []byte(body), mode))
	}
	return tree
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	Must(t, err)
	Must(t, os.WriteFile(to, b, 0o755))
}

// Ext4 makes an ext4 image of tree (mkfs.ext4 -d: nothing is mounted).
func Ext4(t testing.TB, tree, size string) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "root.ext4")
	run(t, "mkfs.ext4", "-q", "-F", "-d", tree, img, size)
	return img
}

// Squashfs makes a squashfs image of tree at out (or a temp file when out
// is "").
func Squashfs(t testing.TB, tree, out string) string {
	t.Helper()
	if out == "" {
		out = filepath.Join(t.TempDir(), "root.sqsh")
	}
	run(t, "mksquashfs", tree, out, "-noappend", "-quiet", "-all-root", "-comp", "gzip")
	return out
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// Boot runs /sbin/init-overlay as PID 1 of a new PID and mount namespace,
// chrooted into the ext4 image img (with /proc and a nested /run, /run/lock
// already mounted, as an initramfs leaves them), with cmdline as the kernel command line
// and env as the kernel's environment for init. Like a kernel booting with
// "ro", the device is writable and the filesystem read-only. The loop
// device is autoclear: it goes when the namespace dies with its PID 1.
// Nothing reaches the host's mounts (propagation private). It returns the
// console output and the KEY=value lines in it.
func Boot(t testing.TB, img, cmdline string, env ...string) (map[string]string, string) {
	t.Helper()
	mnt := t.TempDir()
	cmdlineFile := filepath.Join(t.TempDir(), "cmdline")
	Must(t, os.WriteFile(cmdlineFile, []byte(cmdline+"\n"), 0o644))
	script := `set -e
mount -o loop "$IMG" "$MNT"
mount -o remount,ro "$MNT"
mount -t proc proc "$MNT/proc"
mount --bind "$CMDLINE" "$MNT/proc/cmdline"
mount -t tmpfs run "$MNT/run"
mkdir "$MNT/run/lock"
mount -t tmpfs lock "$MNT/run/lock"
exec chroot "$MNT" /sbin/init-overlay extra-arg`
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "--mount", "--pid", "--fork", "--propagation", "private", "sh", "-c", script)
	cmd.Env = append([]string{"IMG=" + img, "MNT=" + mnt, "CMDLINE=" + cmdlineFile,
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/"}, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	log := out.String()
	if err != nil || !strings.Contains(log, "INIT-END") {
		t.Fatalf("boot did not reach the end of /sbin/init (err %v):\n%s", err, log)
	}
	report := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^([A-Z][A-Z0-9-]*)=(.*)$`).FindAllStringSubmatch(log, -1) {
		report[m[1]] = m[2]
	}
	return report, log
}

// Must fails the test on err.
func Must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
