package overlay_test

// Privileged tests: the real PID-1 path, run as PID 1 of its own PID and
// mount namespace (unshare), chrooted into a loop-mounted ext4 image whose
// /sbin/init is a script that reports what it sees. Nothing touches the
// host's mounts: the namespace is private and dies with its PID 1.

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

const fakeInit = `#!/bin/sh
echo "INIT-START args=$*"
echo "ROOTFS=$(awk '$2=="/"{print $3}' /proc/mounts)"
echo "RWDATA-FS=$(awk '$2=="/overlay/rwdata"{print $3}' /proc/mounts)"
echo "ROBASE-FS=$(awk '$2=="/overlay/robase"{print $3}' /proc/mounts)"
if [ -e /etc/marker ]; then echo "MARKER=$(cat /etc/marker)"; else echo "MARKER=absent"; fi
echo "BAK=$(cat /overlay-rw-layer-bak/data/etc/marker 2>/dev/null)"
echo "CUSTOM=$(cat /overlay/robase/data/rw/data/etc/marker 2>/dev/null)"
echo "VISIBLE=$(cat /overlay/rwdata/data/etc/marker 2>/dev/null)"
echo "$BOOT" > /etc/marker && echo "WRITE=ok" || echo "WRITE=failed"
if [ -n "$FILL" ]; then
  dd if=/dev/zero of=/fill bs=1M count=$FILL 2>&1 | grep -o "No space left on device" | head -n 1 | sed 's/^/FILL-ERR=/'
  echo "AFTER-FILL=alive"
fi
echo "INIT-END"
`

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// overlayupdBinary returns the binary under test: $OVERLAYUPD_BIN, or a
// static build of ./cmd/overlayupd.
func overlayupdBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		if p := os.Getenv("OVERLAYUPD_BIN"); p != "" {
			binPath = p
			return
		}
		dir, err := os.MkdirTemp("", "overlayupd-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "overlayupd")
		cmd := exec.Command("go", "build", "-o", binPath, "../cmd/overlayupd")
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

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("privileged test: needs root for loop devices and mount namespaces (run: sudo go test ./overlay/)")
	}
	for _, tool := range []string{"unshare", "mkfs.ext4", "/bin/busybox"} {
		if _, err := exec.LookPath(tool); err != nil {
			msg := fmt.Sprintf("%s not found (run: make deps)", tool)
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
}

// fakeRoot is an ext4 image that plays the device's root filesystem.
type fakeRoot struct {
	img string
}

func newFakeRoot(t *testing.T, files map[string]string) *fakeRoot {
	t.Helper()
	tree := t.TempDir()
	for _, d := range []string{"bin", "sbin", "etc", "proc", "sys", "dev", "overlay", "tmp", "run"} {
		must(t, os.MkdirAll(filepath.Join(tree, d), 0o755))
	}
	bb, err := os.ReadFile("/bin/busybox")
	must(t, err)
	must(t, os.WriteFile(filepath.Join(tree, "bin/busybox"), bb, 0o755))
	for _, applet := range []string{"sh", "awk", "cat", "echo", "dd", "grep", "head", "sed", "ls"} {
		must(t, os.Symlink("busybox", filepath.Join(tree, "bin", applet)))
	}
	bin, err := os.ReadFile(overlayupdBinary(t))
	must(t, err)
	must(t, os.WriteFile(filepath.Join(tree, "sbin/init-overlay"), bin, 0o755))
	must(t, os.WriteFile(filepath.Join(tree, "sbin/init"), []byte(fakeInit), 0o755))
	must(t, os.WriteFile(filepath.Join(tree, "etc/marker"), []byte("pristine\n"), 0o644))
	for name, body := range files {
		p := filepath.Join(tree, name)
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		mode := os.FileMode(0o644)
		if strings.HasPrefix(name, "sbin/") {
			mode = 0o755
		}
		if strings.HasSuffix(name, "/") {
			must(t, os.MkdirAll(p, 0o755))
			continue
		}
		must(t, os.WriteFile(p, []byte(body), mode))
	}
	img := filepath.Join(t.TempDir(), "root.ext4")
	out, err := exec.Command("mkfs.ext4", "-q", "-F", "-d", tree, img, "64M").CombinedOutput()
	if err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	return &fakeRoot{img: img}
}

// boot runs init-overlay as PID 1 on the image, with cmdline as the kernel
// command line, and returns the init script's report as KEY=value pairs.
func (r *fakeRoot) boot(t *testing.T, cmdline string, env ...string) (map[string]string, string) {
	t.Helper()
	mnt := t.TempDir()
	cmdlineFile := filepath.Join(t.TempDir(), "cmdline")
	must(t, os.WriteFile(cmdlineFile, []byte(cmdline+"\n"), 0o644))
	// The shell runs in the new namespaces (propagation private, so no
	// mount reaches the host) and execs chroot, which execs init-overlay
	// as PID 1. Like a kernel booting with "ro", the device is writable and
	// the filesystem read-only; the loop device is autoclear, so it goes
	// when the namespace dies. The fake /proc/cmdline is a bind over the
	// real one.
	script := `set -e
mount -o loop "$IMG" "$MNT"
mount -o remount,ro "$MNT"
mount -t proc proc "$MNT/proc"
mount --bind "$CMDLINE" "$MNT/proc/cmdline"
exec chroot "$MNT" /sbin/init-overlay extra-arg`
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "--mount", "--pid", "--fork", "--propagation", "private", "sh", "-c", script)
	cmd.Env = append([]string{"IMG=" + r.img, "MNT=" + mnt, "CMDLINE=" + cmdlineFile, "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/"}, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	log := out.String()
	if err != nil || !strings.Contains(log, "INIT-END") {
		t.Fatalf("boot did not reach the end of /sbin/init (err %v):\n%s", err, log)
	}
	report := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^([A-Z-]+)=(.*)$`).FindAllStringSubmatch(log, -1) {
		report[m[1]] = m[2]
	}
	return report, log
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestPID1Modes(t *testing.T) {
	requireRoot(t)
	type boot struct {
		want map[string]string
	}
	tests := []struct {
		name    string
		files   map[string]string
		cmdline string
		env     []string
		boots   []map[string]string // expected report of boot 1, boot 2
		logHas  string
	}{
		{name: "tmpfs", boots: []map[string]string{
			{"ROOTFS": "overlay", "RWDATA-FS": "tmpfs", "ROBASE-FS": "ext4", "MARKER": "pristine", "WRITE": "ok"},
			{"ROOTFS": "overlay", "MARKER": "pristine"}}},
		{name: "persistent", files: map[string]string{"overlay-rw-layer/": ""}, boots: []map[string]string{
			{"ROOTFS": "overlay", "RWDATA-FS": "ext4", "MARKER": "pristine", "WRITE": "ok"},
			{"ROOTFS": "overlay", "MARKER": "boot1", "VISIBLE": "boot1"}}},
		{name: "persistent-clear", files: map[string]string{"overlay-rw-layer/": ""}, cmdline: "overlayupd.rwlayer=persistent-clear", boots: []map[string]string{
			{"ROOTFS": "overlay", "RWDATA-FS": "ext4", "MARKER": "pristine"},
			{"ROOTFS": "overlay", "MARKER": "pristine", "VISIBLE": ""}}},
		{name: "persistent-move", files: map[string]string{"sbin/init-overlay-get-mode": "OVERLAY_RW_LAYER=persistent\nOVERLAY_RW_LAYER_MOVE=yes\n"}, boots: []map[string]string{
			{"ROOTFS": "overlay", "RWDATA-FS": "ext4", "MARKER": "pristine", "BAK": ""},
			{"ROOTFS": "overlay", "MARKER": "pristine", "BAK": "boot1"}}},
		{name: "custom dir", files: map[string]string{"data/rw/": "", "sbin/init-overlay-get-mode": "OVERLAY_RW_LAYER_DIR=/data/rw\n"}, boots: []map[string]string{
			{"ROOTFS": "overlay", "RWDATA-FS": "ext4", "MARKER": "pristine"},
			{"ROOTFS": "overlay", "MARKER": "boot1", "CUSTOM": "boot1"}}},
		{name: "disable file", files: map[string]string{"overlay/disable": "1\n"}, logHas: "disabled by /overlay/disable", boots: []map[string]string{
			{"ROOTFS": "ext4", "WRITE": "failed"}, {"ROOTFS": "ext4", "MARKER": "pristine"}}},
		{name: "cmdline disable", cmdline: "ro overlay=disable", logHas: "overlay=disable", boots: []map[string]string{
			{"ROOTFS": "ext4", "WRITE": "failed"}, {"ROOTFS": "ext4"}}},
		{name: "get-mode disabled", files: map[string]string{"sbin/init-overlay-get-mode": "OVERLAY=disabled\n"}, logHas: "OVERLAY=disabled", boots: []map[string]string{
			{"ROOTFS": "ext4"}, {"ROOTFS": "ext4"}}},
		{name: "hanging get-mode falls back to defaults", files: map[string]string{"sbin/init-overlay-get-mode": "OVERLAY=disabled\nsleep 60\n"}, logHas: "did not finish", boots: []map[string]string{
			{"ROOTFS": "overlay", "RWDATA-FS": "tmpfs"}}},
		{name: "size cap", cmdline: "overlayupd.size=2m", env: []string{"FILL=8"}, boots: []map[string]string{
			{"ROOTFS": "overlay", "FILL-ERR": "No space left on device", "AFTER-FILL": "alive"}}},
		{name: "no union fs boots the plain root", cmdline: "overlayupd.fs=unionfs", logHas: "no union filesystem available", boots: []map[string]string{
			{"ROOTFS": "ext4", "MARKER": "pristine", "WRITE": "failed"}, {"ROOTFS": "ext4"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := newFakeRoot(t, tt.files)
			for i, want := range tt.boots {
				env := append([]string{fmt.Sprintf("BOOT=boot%d", i+1)}, tt.env...)
				got, log := root.boot(t, "root=/dev/vda ro init=/sbin/init-overlay "+tt.cmdline, env...)
				for k, v := range want {
					if got[k] != v {
						t.Errorf("boot %d: %s=%q, want %q\n%s", i+1, k, got[k], v, log)
					}
				}
				if !strings.Contains(log, "INIT-START args=extra-arg") {
					t.Errorf("boot %d: init did not get the original arguments\n%s", i+1, log)
				}
				if tt.logHas != "" && !strings.Contains(log, tt.logHas) {
					t.Errorf("boot %d: log lacks %q\n%s", i+1, tt.logHas, log)
				}
			}
		})
	}
}
