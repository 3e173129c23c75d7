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
