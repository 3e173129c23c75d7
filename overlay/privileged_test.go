package overlay_test

// Privileged tests: the real PID-1 path, run as PID 1 of its own PID and
// mount namespace (unshare), chrooted into a loop-mounted ext4 image whose
// /sbin/init is a script that reports what it sees. Nothing touches the
// host's mounts: the namespace is private and dies with its PID 1.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/overlayupd/overlayupd/internal/testroot"
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
if [ -n "$ACTION" ]; then sh -c "$ACTION"; echo "ACTION-RC=$?"; fi
echo "INIT-END"
`

func TestPID1Modes(t *testing.T) {
	testroot.RequireRoot(t, "mkfs.ext4")
	tests := []struct {
		name    string
		files   map[string]string
		remove  []string // paths removed from the root tree
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
		{name: "missing /overlay is created", remove: []string{"overlay"}, boots: []map[string]string{
			{"ROOTFS": "overlay", "RWDATA-FS": "tmpfs", "MARKER": "pristine"}, {"ROOTFS": "overlay", "MARKER": "pristine"}}},
		{name: "no union fs boots the plain root", cmdline: "overlayupd.fs=unionfs", logHas: "no union filesystem available", boots: []map[string]string{
			{"ROOTFS": "ext4", "MARKER": "pristine", "WRITE": "failed"}, {"ROOTFS": "ext4"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			files := map[string]string{"sbin/init": fakeInit, "etc/marker": "pristine\n"}
			for k, v := range tt.files {
				files[k] = v
			}
			tree := testroot.Tree(t, files)
			for _, p := range tt.remove {
				testroot.Must(t, os.RemoveAll(filepath.Join(tree, p)))
			}
			img := testroot.Ext4(t, tree, "64M")
			for i, want := range tt.boots {
				env := append([]string{fmt.Sprintf("BOOT=boot%d", i+1)}, tt.env...)
				got, log := testroot.Boot(t, img, "root=/dev/vda ro init=/sbin/init-overlay "+tt.cmdline, env...)
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

// The admin commands change the real root under the running overlay:
// disable and enable take effect at the next boot, and a change made
// between unlock and lock survives.
func TestAdminCommands(t *testing.T) {
	testroot.RequireRoot(t, "mkfs.ext4")
	img := testroot.Ext4(t, testroot.Tree(t, map[string]string{"sbin/init": fakeInit, "etc/marker": "pristine\n"}), "64M")
	boots := []struct {
		action string
		want   map[string]string
	}{
		// With --json, what changed and the status after: a second
		// disable changes nothing.
		{"overlayupd disable --json | tr -d ' \\n' | grep -q '\"command\":\"disable\",\"changed\":true' && " +
			"overlayupd disable --json | tr -d ' \\n' | grep -q '\"changed\":false.*\"enabled_next_boot\":false' && " +
			"overlayupd status --json | grep -q '\"enabled_next_boot\": false'",
			map[string]string{"ROOTFS": "overlay", "ACTION-RC": "0"}},
		{"", map[string]string{"ROOTFS": "ext4"}},
		{"overlayupd enable", map[string]string{"ROOTFS": "ext4", "ACTION-RC": "0"}},
		{"overlayupd unlock --json | tr -d ' \\n' | grep -q '\"changed\":true.*\"base_read_only\":false' && echo kept > /overlay/robase/etc/marker && overlayupd lock && ! echo x > /overlay/robase/etc/x",
			map[string]string{"ROOTFS": "overlay", "ACTION-RC": "0"}},
		{"", map[string]string{"ROOTFS": "overlay", "MARKER": "kept"}},
	}
	for i, b := range boots {
		got, log := testroot.Boot(t, img, "root=/dev/vda ro init=/sbin/init-overlay", "BOOT=x", "ACTION="+b.action)
		for k, v := range b.want {
			if got[k] != v {
				t.Errorf("boot %d (%s): %s=%q, want %q\n%s", i+1, b.action, k, got[k], v, log)
			}
		}
	}
}
