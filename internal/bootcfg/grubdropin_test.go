package bootcfg

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const grubSample = "GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\nGRUB_CMDLINE_LINUX=\"console=ttyS0\"\n"

// TestGrubDropIns: an install refuses a GRUB defaults file whose
// /etc/default/grub.d/*.cfg drop-ins, which grub-mkconfig reads after it,
// would replace GRUB_CMDLINE_LINUX or add another init= or rw after it,
// and leaves the file as it was; drop-ins that keep the edit are fine.
func TestGrubDropIns(t *testing.T) {
	for _, c := range []struct {
		name, file, content string
		refused             string // part of the error; "" when accepted
	}{
		{"none", "", "", ""},
		{"other variables", "50-x.cfg", "GRUB_TIMEOUT=1\nGRUB_CMDLINE_LINUX_DEFAULT=\"quiet splash\"\n", ""},
		{"replaces", "50-cloudimg-settings.cfg", "GRUB_CMDLINE_LINUX=\"console=tty1 console=ttyS0\"\n", "without including its earlier value"},
		{"replaces, exported", "50-x.cfg", "export GRUB_CMDLINE_LINUX=net.ifnames=0\n", "without including its earlier value"},
		{"appends", "50-x.cfg", "GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX console=ttyS0\"\n", ""},
		{"appends, braces", "50-x.cfg", "GRUB_CMDLINE_LINUX=\"${GRUB_CMDLINE_LINUX} console=ttyS0\"\n", ""},
		{"single quotes do not expand", "50-x.cfg", "GRUB_CMDLINE_LINUX='$GRUB_CMDLINE_LINUX console=ttyS0'\n", "cannot safely edit"},
		{"the default's value is not its own", "50-x.cfg", "GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX_DEFAULT x\"\n", "cannot safely edit"},
		{"escaped, a literal", "50-x.cfg", "GRUB_CMDLINE_LINUX=\"\\$GRUB_CMDLINE_LINUX quiet\"\n", "cannot safely edit"},
		{"after --, init's", "50-x.cfg", "GRUB_CMDLINE_LINUX=\"-- $GRUB_CMDLINE_LINUX\"\n", "before any --"},
		{"a second assignment after ;", "50-x.cfg", "GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX\"; GRUB_CMDLINE_LINUX=\"quiet\"\n", "cannot safely edit"},
		{"readonly", "50-x.cfg", "readonly GRUB_CMDLINE_LINUX=\"quiet\"\n", "inside another command"},
		{"in an && list", "50-x.cfg", "[ -d /sys/firmware/efi ] && GRUB_CMDLINE_LINUX=\"console=ttyS0\"\n", "inside another command"},
		{"unset", "50-x.cfg", "unset GRUB_CMDLINE_LINUX\n", "cannot judge"},
		{"in an if block, judged as if it runs", "50-x.cfg", "if [ -x /sbin/upstart ]; then\n\tGRUB_CMDLINE_LINUX=\"quiet\"\nfi\n", "without including its earlier value"},
		{"rw before the earlier value: install's ro comes later", "50-x.cfg", "GRUB_CMDLINE_LINUX=\"rw $GRUB_CMDLINE_LINUX\"\n", ""},
		{"the default from the earlier value", "50-x.cfg", "GRUB_CMDLINE_LINUX_DEFAULT=\"$GRUB_CMDLINE_LINUX_DEFAULT splash\"\n", ""},
		{"a dot file, which the shell's *.cfg skips", ".hidden.cfg", "GRUB_CMDLINE_LINUX=\"quiet\"\n", ""},
		{"appends another init", "50-x.cfg", "GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX init=/bin/bash\"\n", "overrides init=/sbin/init-overlay"},
		{"appends rw", "50-x.cfg", "GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX rw\"\n", "has rw"},
		{"default with rw", "50-x.cfg", "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet rw\"\n", "has rw"},
		{"default with init", "50-x.cfg", "GRUB_CMDLINE_LINUX_DEFAULT=\"init=/lib/systemd/systemd\"\n", "overrides init=/sbin/init-overlay"},
		{"not a .cfg", "50-x.cfg.dpkg-old", "GRUB_CMDLINE_LINUX=\"console=ttyS0\"\n", ""},
		{"commented out", "50-x.cfg", "# GRUB_CMDLINE_LINUX=\"console=ttyS0\"\n", ""},
		{"too complex to judge", "50-x.cfg", "GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX\n  console=ttyS0\"\n", "cannot safely edit"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "grub")
			writeFile(t, p, grubSample, 0o644)
			if c.file != "" {
				writeFile(t, filepath.Join(dir, "grub.d", c.file), c.content, 0o644)
			}
			_, err := Edit(Target{Kind: Grub, Path: p}, true, false)
			if c.refused == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if !strings.Contains(readFile(t, p), initParam) {
					t.Fatalf("not installed:\n%s", readFile(t, p))
				}
				return
			}
			if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), c.refused) {
				t.Fatalf("err = %v, want ErrRefused saying %q", err, c.refused)
			}
			if c.file != "" && !strings.Contains(err.Error(), c.file) {
				t.Errorf("the error does not name the drop-in %s: %v", c.file, err)
			}
			if got := readFile(t, p); got != grubSample {
				t.Errorf("a refused install changed the file:\n%s", got)
			}
			if _, err := os.Stat(p + BackupSuffix); err == nil {
				t.Error("a refused install left a backup")
			}
		})
	}
}

// TestGrubDropInsInstalledAlready: a drop-in added after the install is
// reported when install runs again, although the file needs no change.
func TestGrubDropInsInstalledAlready(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "grub")
	writeFile(t, p, grubSample, 0o644)
	if _, err := Edit(Target{Kind: Grub, Path: p}, true, false); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "grub.d", "60-later.cfg"), "GRUB_CMDLINE_LINUX=\"quiet\"\n", 0o644)
	if _, err := Edit(Target{Kind: Grub, Path: p}, true, false); !errors.Is(err, ErrRefused) {
		t.Fatalf("err = %v, want ErrRefused for the later drop-in", err)
	}
}

// TestGrubDefaultRW: in the defaults file itself, a rw in
// GRUB_CMDLINE_LINUX_DEFAULT (after GRUB_CMDLINE_LINUX's ro) is refused.
func TestGrubDefaultRW(t *testing.T) {
	_, err := Install(Grub, []byte("GRUB_CMDLINE_LINUX_DEFAULT=\"quiet rw\"\nGRUB_CMDLINE_LINUX=\"\"\n"))
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "has rw") {
		t.Fatalf("err = %v, want ErrRefused for rw", err)
	}
}

// TestGrubDropInHostile: a FIFO, a directory or a device named *.cfg is
// refused at once, never read (a FIFO would block install for ever); a
// link to a regular drop-in is read through; a dangling one is skipped,
// as grub-mkconfig's [ -e ] skips it.
func TestGrubDropInHostile(t *testing.T) {
	for _, c := range []struct {
		name    string
		make    func(t *testing.T, p string)
		refused string
	}{
		{"fifo", func(t *testing.T, p string) {
			if err := syscall.Mkfifo(p, 0o644); err != nil {
				t.Fatal(err)
			}
		}, "not a file grub-mkconfig can source"},
		{"directory", func(t *testing.T, p string) {
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
		}, "not a file grub-mkconfig can source"},
		{"device", func(t *testing.T, p string) {
			if err := os.Symlink("/dev/zero", p); err != nil {
				t.Fatal(err)
			}
		}, "not a file grub-mkconfig can source"},
		{"link to a replacing drop-in", func(t *testing.T, p string) {
			target := filepath.Join(filepath.Dir(p), "..", "elsewhere.cfg")
			writeFile(t, target, "GRUB_CMDLINE_LINUX=\"quiet\"\n", 0o644)
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
		}, "without including its earlier value"},
		{"dangling link", func(t *testing.T, p string) {
			if err := os.Symlink("/nonexistent/x.cfg", p); err != nil {
				t.Fatal(err)
			}
		}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "grub")
			writeFile(t, p, grubSample, 0o644)
			if err := os.MkdirAll(filepath.Join(dir, "grub.d"), 0o755); err != nil {
				t.Fatal(err)
			}
			c.make(t, filepath.Join(dir, "grub.d", "50-x.cfg"))
			done := make(chan error, 1)
			go func() {
				_, err := Edit(Target{Kind: Grub, Path: p}, true, false)
				done <- err
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("install blocked on the drop-in")
			}
			if c.refused == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), c.refused) {
				t.Fatalf("err = %v, want ErrRefused saying %q", err, c.refused)
			}
			if got := readFile(t, p); got != grubSample {
				t.Errorf("a refused install changed the file:\n%s", got)
			}
		})
	}
}
