package bootcfg

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const rpiSample = "console=tty1 root=/dev/mmcblk0p2 rootwait\n"

func writeFile(t *testing.T, path, content string, perm os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil { // umask-proof
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestEditWritesBackupAndKeepsMode(t *testing.T) {
	p := filepath.Join(t.TempDir(), "cmdline.txt")
	writeFile(t, p, rpiSample, 0o600)
	res, err := Edit(Target{Kind: RPiCmdline, Path: p}, true, false)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := readFile(t, p), "console=tty1 root=/dev/mmcblk0p2 rootwait ro init=/sbin/init-overlay\n"; got != want {
		t.Errorf("file = %q, want %q", got, want)
	}
	if got, want := res.Backup, p+BackupSuffix; got != want {
		t.Errorf("Backup = %q, want %q", got, want)
	}
	if got := readFile(t, p+BackupSuffix); got != rpiSample {
		t.Errorf("backup = %q, want the original %q", got, rpiSample)
	}
	for _, path := range []string{p, p + BackupSuffix} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := st.Mode().Perm(), os.FileMode(0o600); got != want {
			t.Errorf("%s mode = %v, want %v", path, got, want)
		}
	}
	if !res.Changed || res.NeedsGrubUpdate || !strings.Contains(res.Diff, "+console=tty1 root=/dev/mmcblk0p2 rootwait ro init=/sbin/init-overlay\n") {
		t.Errorf("Result = %+v, want Changed, no grub update, a diff with the new line", res)
	}

	// Uninstall keeps the first backup: it still holds the pre-overlayupd file.
	res, err = Edit(Target{Kind: RPiCmdline, Path: p}, false, false)
	if err != nil || !res.Changed {
		t.Fatalf("uninstall: %+v, %v", res, err)
	}
	if got := readFile(t, p+BackupSuffix); got != rpiSample {
		t.Errorf("backup after uninstall = %q, want the original %q", got, rpiSample)
	}
}

func TestEditDryRunWritesNothing(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "grub")
	writeFile(t, p, "GRUB_CMDLINE_LINUX=\"\"\n", 0o644)
	res, err := Edit(Target{Kind: Grub, Path: p}, true, true)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || !res.NeedsGrubUpdate || res.Backup != "" || res.Diff == "" {
		t.Errorf("Result = %+v, want Changed, NeedsGrubUpdate, a diff and no backup", res)
	}
	if got := readFile(t, p); got != "GRUB_CMDLINE_LINUX=\"\"\n" {
		t.Errorf("dry run changed the file to %q", got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("dry run left %d files in the dir, want 1", len(entries))
	}
}

func TestEditUnchangedNotRewritten(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "cmdline.txt")
	writeFile(t, p, rpiSample, 0o644)
	before, _ := os.Stat(p)
	res, err := Edit(Target{Kind: RPiCmdline, Path: p}, false, false) // nothing to uninstall
	if err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(p)
	if res.Changed || res.Diff != "" || res.Backup != "" {
		t.Errorf("Result = %+v, want unchanged", res)
	}
	if !os.SameFile(before, after) {
		t.Errorf("unchanged file was replaced")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("dir has %d files, want 1 (no backup)", len(entries))
	}
}

func TestEditFollowsSymlink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "firmware", "cmdline.txt")
	writeFile(t, real, rpiSample, 0o644)
	link := filepath.Join(dir, "cmdline.txt")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if _, err := Edit(Target{Kind: RPiCmdline, Path: link}, true, false); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("symlink replaced by a file: %v, %v", fi, err)
	}
	if got := readFile(t, real); !strings.Contains(got, initParam) {
		t.Errorf("target = %q, want it installed", got)
	}
}

func TestEditRefusalNamesFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "cmdline.txt")
	writeFile(t, p, "quiet\n", 0o644)
	_, err := Edit(Target{Kind: RPiCmdline, Path: p}, true, false)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), p) {
		t.Errorf("err = %v, want ErrRefused naming %s", err, p)
	}
	if got := readFile(t, p); got != "quiet\n" {
		t.Errorf("refused file changed to %q", got)
	}
}

// TestEditUninstallKeepsStoreRootRefused: after install --store-device,
// root= names the store's partition, which holds the trampoline and no
// /sbin/init. Uninstall removes only init=/sbin/init-overlay, so it would
// leave a command line that boots the store partition with the kernel's
// default init: "No working init found", a board that needs its card
// edited elsewhere. It must refuse and point at --restore, and change
// nothing; a plain install (root= unchanged) still uninstalls.
func TestEditUninstallKeepsStoreRootRefused(t *testing.T) {
	store := Options{Root: "PARTUUID=6c586e13-03", RootFSType: "ext4"}
	for _, c := range []struct {
		name    string
		kind    Kind
		file    string
		orig    string
		o       Options
		refused bool
	}{
		{"cmdline.txt, --store-device", RPiCmdline, "cmdline.txt",
			"console=tty1 root=PARTUUID=6c586e13-02 rootfstype=ext4 rootwait\n", store, true},
		{"extlinux, --store-device", Extlinux, "extlinux.conf",
			"LABEL a\n  APPEND root=/dev/mmcblk0p2 rootwait\nLABEL b\n  APPEND root=/dev/mmcblk0p2 single\n", store, true},
		{"uEnv.txt, --store-device", UEnv, "uEnv.txt",
			"cmdline=root=/dev/mmcblk0p2 quiet\n", store, true},
		{"cmdline.txt, plain install", RPiCmdline, "cmdline.txt",
			"console=tty1 root=PARTUUID=6c586e13-02 rootfstype=ext4 rootwait\n", Options{}, false},
		{"cmdline.txt, --store-device naming the partition it had", RPiCmdline, "cmdline.txt",
			"console=tty1 root=PARTUUID=6c586e13-03 rootwait\n", store, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), c.file)
			writeFile(t, p, c.orig, 0o644)
			tg := Target{Kind: c.kind, Path: p, Root: c.o.Root, RootFSType: c.o.RootFSType}
			if _, err := Edit(tg, true, false); err != nil {
				t.Fatal(err)
			}
			installed := readFile(t, p)
			res, err := Edit(Target{Kind: c.kind, Path: p}, false, false)
			if !c.refused {
				if err != nil || !res.Changed || strings.Contains(readFile(t, p), initParam) {
					t.Fatalf("uninstall: %+v, %v; file %q", res, err, readFile(t, p))
				}
				return
			}
			if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "--restore") {
				t.Errorf("uninstall after --store-device: err = %v, want ErrRefused pointing at --restore", err)
			}
			if got := readFile(t, p); got != installed {
				t.Errorf("refused uninstall changed the file to %q", got)
			}
			// The dry run says the same.
			if _, err := Edit(Target{Kind: c.kind, Path: p}, false, true); !errors.Is(err, ErrRefused) {
				t.Errorf("uninstall --dry-run after --store-device: err = %v, want ErrRefused", err)
			}
			if _, err := Restore(Target{Kind: c.kind, Path: p}, false); err != nil || readFile(t, p) != c.orig {
				t.Errorf("restore: %v, file %q; want the original", err, readFile(t, p))
			}
		})
	}
}

// TestEditRefusesWhatIsNotAConfig: Edit leaves alone, with no backup, a
// file with a NUL byte (an init= after it is not seen by the boot loader),
// one over maxBackup (its backup could not be read back), and, with Within
// set (another machine's boot partition), a link out of Within: the build
// host's own file. A link inside Within is followed.
func TestEditRefusesWhatIsNotAConfig(t *testing.T) {
	dir := t.TempDir()
	card, host := filepath.Join(dir, "card"), filepath.Join(dir, "host")
	line := "console=tty1 root=/dev/mmcblk0p2 rootwait\n"
	for _, tc := range []struct {
		name, want string
		target     Target
		content    string
		ok         bool
	}{
		{"NUL byte", "NUL byte at offset 12", Target{Kind: RPiCmdline, Path: filepath.Join(dir, "nul/cmdline.txt")}, "console=tty1\x00 root=/dev/mmcblk0p2\n", false},
		{"over 1 MiB", "more than a boot configuration file holds", Target{Kind: Extlinux, Path: filepath.Join(dir, "big/extlinux.conf")},
			"LABEL l\n  APPEND root=/dev/sda1\n" + strings.Repeat("# comment\n", 110_000), false},
		{"link out of the card", "outside " + card, Target{Kind: RPiCmdline, Path: filepath.Join(card, "cmdline.txt"), Within: card}, line, false},
		{"link inside the card", "", Target{Kind: RPiCmdline, Path: filepath.Join(card, "firmware/cmdline.txt"), Within: card}, line, true},
	} {
		real := tc.target.Path
		switch tc.name {
		case "link out of the card":
			real = filepath.Join(host, "cmdline.txt")
			writeFile(t, real, tc.content, 0o644)
			if err := os.MkdirAll(card, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(real, tc.target.Path); err != nil {
				t.Fatal(err)
			}
		case "link inside the card":
			real = filepath.Join(card, "real-cmdline.txt")
			writeFile(t, real, tc.content, 0o644)
			if err := os.MkdirAll(filepath.Dir(tc.target.Path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("../real-cmdline.txt", tc.target.Path); err != nil {
				t.Fatal(err)
			}
		default:
			writeFile(t, real, tc.content, 0o644)
		}
		_, err := Edit(tc.target, true, false)
		got, _ := os.ReadFile(real)
		if tc.ok {
			if err != nil || !strings.Contains(string(got), "init=/sbin/init-overlay") {
				t.Errorf("%s: Edit = %v; file %q, want it installed", tc.name, err, got)
			}
			continue
		}
		if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Edit = %v, want a refusal saying %q", tc.name, err, tc.want)
		}
		if string(got) != tc.content {
			t.Errorf("%s: the file changed", tc.name)
		}
		if _, err := os.Lstat(real + BackupSuffix); err == nil {
			t.Errorf("%s: a backup was written", tc.name)
		}
	}
}

// TestUninstallKeepsNoBackup: an uninstall writes no backup. Its "before"
// holds init=/sbin/init-overlay: a backup of it had uninstall --restore
// turn the overlay back on, on a file the original script had set up.
func TestUninstallKeepsNoBackup(t *testing.T) {
	p := filepath.Join(t.TempDir(), "cmdline.txt")
	writeFile(t, p, "root=/dev/sda1 ro init=/sbin/init-overlay\n", 0o644)
	res, err := Edit(Target{Kind: RPiCmdline, Path: p}, false, false)
	if err != nil || !res.Changed {
		t.Fatalf("uninstall: %+v, %v", res, err)
	}
	if _, err := os.Lstat(p + BackupSuffix); err == nil || res.Backup != "" {
		t.Errorf("uninstall wrote a backup (%q)", res.Backup)
	}
	if got, _ := os.ReadFile(p); strings.Contains(string(got), "init=") {
		t.Errorf("after uninstall: %q", got)
	}
}
