package bootcfg

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// step is one thing done to a boot configuration file: overlayupd's
// install or uninstall, or an edit by hand (the file's new content).
type step struct {
	install, uninstall bool
	hand               string
}

var (
	doInstall   = step{install: true}
	doUninstall = step{uninstall: true}
)

func byHand(content string) step { return step{hand: content} }

func (s step) run(t *testing.T, tg Target) {
	t.Helper()
	switch {
	case s.install, s.uninstall:
		if _, err := Edit(tg, s.install, false); err != nil {
			t.Fatalf("Edit(install=%v): %v", s.install, err)
		}
	default:
		writeFile(t, tg.Path, s.hand, 0o644)
	}
}

const (
	piOrig = "console=tty1 root=PARTUUID=6c586e13-02 rootfstype=ext4 rw init=/usr/lib/raspi-config/init_resize.sh rootwait\n"
	// The root moved to a USB disk, by hand, after an uninstall.
	piMoved = "console=tty1 root=PARTUUID=77aa1c2e-02 rootfstype=ext4 ro rootwait\n"
	// A console added by hand after an uninstall.
	piSerial = "console=serial0,115200 console=tty1 root=PARTUUID=6c586e13-02 rootfstype=ext4 ro rootwait\n"
)

// TestEditRefreshesStaleBackup: the backup is the file as it was before the
// latest install. A file changed by hand after an uninstall and installed
// again gets a new backup (the old one predates the change: restoring it
// would throw the change away, or boot the old root); a file that only went
// through overlayupd's own edits keeps the older backup, which still has
// what uninstall does not put back (rw, the init= install replaced).
func TestEditRefreshesStaleBackup(t *testing.T) {
	for _, tt := range []struct {
		name      string
		steps     []step
		bak       string // the backup after the steps
		refreshed bool   // the last install replaced an older backup
	}{
		{"root moved by hand after an uninstall", []step{doInstall, doUninstall, byHand(piMoved), doInstall}, piMoved, true},
		{"console added by hand after an uninstall", []step{doInstall, doUninstall, byHand(piSerial), doInstall}, piSerial, true},
		{"install, uninstall, install", []step{doInstall, doUninstall, doInstall}, piOrig, false},
		{"install, restore by hand, install", []step{doInstall, byHand(piOrig), doInstall}, piOrig, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "cmdline.txt")
			tg := Target{Kind: RPiCmdline, Path: p}
			writeFile(t, p, piOrig, 0o644)
			for _, s := range tt.steps[:len(tt.steps)-1] {
				s.run(t, tg)
			}
			before := readFile(t, p)
			res, err := Edit(tg, true, false)
			if err != nil {
				t.Fatal(err)
			}
			if got := readFile(t, p+BackupSuffix); got != tt.bak {
				t.Errorf("backup = %q\nwant %q", got, tt.bak)
			}
			if res.BackupRefreshed != tt.refreshed {
				t.Errorf("BackupRefreshed = %v, want %v", res.BackupRefreshed, tt.refreshed)
			}
			// A plain uninstall compares root= with the backup's: a root
			// moved by hand is not taken for one --store-device set.
			if _, err := Edit(tg, false, true); err != nil {
				t.Errorf("uninstall --dry-run: %v", err)
			}
			// The way back leads to the file as it was before this install
			// (after an uninstall: with what uninstall could not put back).
			if _, err := Restore(tg, false); err != nil {
				t.Fatalf("restore: %v", err)
			}
			if got := readFile(t, p); got != tt.bak {
				t.Errorf("after restore = %q\nwant %q (before the install: %q)", got, tt.bak, before)
			}
		})
	}
}

// TestRestoreRefusesChangesSinceBackup: restore puts back the backup only
// when the file is what overlayupd's edits made of it. A file changed by
// hand since (while installed, or after an uninstall) is left alone, with a
// refusal that says why and what to do, in a dry run too; so is a backup
// that an older overlayupd left stale.
func TestRestoreRefusesChangesSinceBackup(t *testing.T) {
	piInstalledSerial := "console=serial0,115200 console=tty1 root=PARTUUID=6c586e13-02 rootfstype=ext4 ro rootwait init=/sbin/init-overlay\n"
	for _, tt := range []struct {
		name  string
		steps []step
		ok    bool
	}{
		{"root moved by hand after an uninstall", []step{doInstall, doUninstall, byHand(piMoved)}, false},
		{"console added by hand after an uninstall", []step{doInstall, doUninstall, byHand(piSerial)}, false},
		{"console added by hand while installed", []step{doInstall, byHand(piInstalledSerial)}, false},
		// What an older overlayupd left: its reinstall over a file changed
		// by hand kept the first backup.
		{"stale backup from an older overlayupd", []step{doInstall, doUninstall, byHand(piSerial),
			byHand(piInstalledSerial)}, false},
		{"installed", []step{doInstall}, true},
		{"installed, then uninstalled", []step{doInstall, doUninstall}, true},
		{"installed, then spacing changed by hand", []step{doInstall,
			byHand("console=tty1  root=PARTUUID=6c586e13-02 rootfstype=ext4 ro rootwait init=/sbin/init-overlay\n")}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "cmdline.txt")
			tg := Target{Kind: RPiCmdline, Path: p}
			writeFile(t, p, piOrig, 0o644)
			for _, s := range tt.steps {
				s.run(t, tg)
			}
			before := readFile(t, p)
			for _, dry := range []bool{true, false} {
				res, err := Restore(tg, dry)
				if tt.ok {
					if err != nil || !res.Changed {
						t.Fatalf("restore (dry run %v): %+v, %v; want the backup put back", dry, res, err)
					}
					continue
				}
				if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "changed after its backup") ||
					!strings.Contains(err.Error(), "copy it over the file by hand") {
					t.Errorf("restore (dry run %v): err = %v, want ErrRefused saying the file changed since and what to do", dry, err)
				}
			}
			want := before
			if tt.ok {
				want = piOrig
			}
			if got := readFile(t, p); got != want {
				t.Errorf("file after restore = %q\nwant %q", got, want)
			}
			if got := readFile(t, p+BackupSuffix); got != piOrig {
				t.Errorf("backup changed to %q", got)
			}
		})
	}
}

// TestRestoreEveryKind: for each kind, restore after an install and after
// install+uninstall puts the original back (install may have appended a
// line: uEnv.txt's cmdline=, GRUB_CMDLINE_LINUX), and a line changed by
// hand since is refused.
func TestRestoreEveryKind(t *testing.T) {
	for _, tt := range []struct {
		kind       Kind
		file, orig string
		hand       func(string) string // a change by hand of the installed file
	}{
		{UEnv, "uEnv.txt", "bootpart=0:1\nuenvcmd=run boot\n",
			func(s string) string { return s + "optargs=quiet\n" }},
		{UEnv, "uEnv.txt", "cmdline=root=/dev/mmcblk0p2 rw\n",
			func(s string) string { return strings.Replace(s, "root=", "quiet root=", 1) }},
		{Extlinux, "extlinux.conf", "LABEL a\n  APPEND root=/dev/sda2 rw\nLABEL b\n  APPEND root=/dev/sda2 single\n",
			func(s string) string { return strings.Replace(s, "single", "emergency", 1) }},
		{Grub, "grub", "GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\n",
			func(s string) string { return strings.Replace(s, "quiet", "quiet splash", 1) }},
		{Grub, "grub", "GRUB_CMDLINE_LINUX='console=ttyS0 rw'  # serial\n",
			func(s string) string { return strings.Replace(s, "ttyS0", "ttyS1", 1) }},
	} {
		t.Run(tt.file+" "+strings.Fields(tt.orig)[0], func(t *testing.T) {
			p := filepath.Join(t.TempDir(), tt.file)
			tg := Target{Kind: tt.kind, Path: p}
			for _, steps := range [][]step{{doInstall}, {doInstall, doUninstall}} {
				writeFile(t, p, tt.orig, 0o644)
				for _, s := range steps {
					s.run(t, tg)
				}
				if _, err := Restore(tg, false); err != nil || readFile(t, p) != tt.orig {
					t.Errorf("restore after %d steps: %v, file %q; want %q", len(steps), err, readFile(t, p), tt.orig)
				}
			}
			doInstall.run(t, tg)
			changed := tt.hand(readFile(t, p))
			writeFile(t, p, changed, 0o644)
			if _, err := Restore(tg, false); !errors.Is(err, ErrRefused) || readFile(t, p) != changed {
				t.Errorf("restore after a change by hand: %v, file %q; want ErrRefused and the file left alone", err, readFile(t, p))
			}
		})
	}
}
