package main

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/overlayupd/overlayupd/dist"
)

// TestInstallAutoCommit: install --auto-commit --root puts the systemd unit
// (enabled) on a systemd root, the init.d script with its S99 links on a
// sysvinit or busybox root, and uninstall takes them away again.
func TestInstallAutoCommit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup []string // files (or dirs, ending in /) the root has
		want  map[string]string
	}{
		{"systemd", []string{"lib/systemd/systemd", "etc/init.d/"}, map[string]string{
			"etc/systemd/system/overlayupd-commit.service":                         "unit",
			"etc/systemd/system/multi-user.target.wants/overlayupd-commit.service": "-> /etc/systemd/system/overlayupd-commit.service",
		}},
		{"sysvinit", []string{"etc/init.d/", "etc/rc2.d/", "etc/rc3.d/", "etc/rcS.d/"}, map[string]string{
			"etc/init.d/overlayupd-commit":   "script",
			"etc/rc2.d/S99overlayupd-commit": "-> ../init.d/overlayupd-commit",
			"etc/rc3.d/S99overlayupd-commit": "-> ../init.d/overlayupd-commit",
		}},
		{"busybox", []string{"etc/init.d/rcS"}, map[string]string{
			"etc/init.d/overlayupd-commit":    "script",
			"etc/init.d/S99overlayupd-commit": "-> ../init.d/overlayupd-commit",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			for _, p := range tt.setup {
				full := filepath.Join(root, p)
				if strings.HasSuffix(p, "/") {
					if err := os.MkdirAll(full, 0o755); err != nil {
						t.Fatal(err)
					}
					continue
				}
				if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(full, nil, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			before := listTree(t, root)
			e := testEnv(t)
			e.geteuid = func() int { return 1000 } // --root needs no root
			out, err := run(t, e, "overlayupd", "install", "--auto-commit", "--root", root)
			if err != nil {
				t.Fatalf("install --auto-commit: %v\n%s", err, out)
			}
			for rel, what := range tt.want {
				p := filepath.Join(root, rel)
				switch {
				case strings.HasPrefix(what, "-> "):
					if got, err := os.Readlink(p); err != nil || got != strings.TrimPrefix(what, "-> ") {
						t.Errorf("%s: link to %q (%v), want %s", rel, got, err, what)
					}
				default:
					b, err := os.ReadFile(p)
					want := dist.CommitUnit
					if what == "script" {
						want = dist.CommitInit
					}
					fi, _ := os.Stat(p)
					if err != nil || !bytes.Equal(b, want) || (what == "script" && fi.Mode().Perm() != 0o755) {
						t.Errorf("%s: %v, mode %v; want the %s", rel, err, fi.Mode(), what)
					}
				}
				if !strings.Contains(out, "installed "+p) {
					t.Errorf("output lacks %s:\n%s", p, out)
				}
			}
			if got := len(listTree(t, root)) - len(before); got < len(tt.want) {
				t.Errorf("%d new paths, want at least %d", got, len(tt.want))
			}
			if out, err := run(t, e, "overlayupd", "uninstall", "--auto-commit", "--root", root); err != nil {
				t.Fatalf("uninstall --auto-commit: %v\n%s", err, out)
			}
			for rel := range tt.want {
				if _, err := os.Lstat(filepath.Join(root, rel)); !os.IsNotExist(err) {
					t.Errorf("%s left after uninstall: %v", rel, err)
				}
			}
		})
	}
	e := testEnv(t)
	if out, err := run(t, e, "overlayupd", "install", "--root", t.TempDir()); err == nil {
		t.Errorf("--root without --auto-commit accepted:\n%s", out)
	}
}

func listTree(t *testing.T, root string) []string {
	var out []string
	err := filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		out = append(out, p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// TestDistInitScript: the init.d script is valid sh and commits in the
// background with --if-trial --after.
func TestDistInitScript(t *testing.T) {
	t.Parallel()
	s := string(dist.CommitInit)
	for _, want := range []string{"### BEGIN INIT INFO", "overlayupd commit --if-trial --after", "&\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("init script lacks %q", want)
		}
	}
	u := string(dist.CommitUnit)
	for _, want := range []string{"After=boot-complete.target", "Requires=boot-complete.target", "ExecStart=/usr/sbin/overlayupd commit --if-trial"} {
		if !strings.Contains(u, want) {
			t.Errorf("unit lacks %q", want)
		}
	}
}
