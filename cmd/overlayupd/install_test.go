package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInstallCmdlineLength: with --boot-dir the board's kernel is not known,
// so a line that fits arm64's 2048 but not 32-bit ARM's 1024 is refused,
// with the length, the limit and what to do, and nothing written;
// --kernel-arch arm64 lets it through.
func TestInstallCmdlineLength(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "extlinux", "extlinux.conf")
	orig := "LABEL l\n  KERNEL /Image\n  APPEND root=/dev/mmcblk0p2 " + strings.TrimSpace(strings.Repeat("quiet ", 200)) + "\n"
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, e, "overlayupd", "install", "--boot-dir", dir)
	if err == nil {
		t.Fatalf("install of a 1,246-byte line for an unknown kernel succeeded:\n%s", out)
	}
	for _, want := range []string{"would be 1246 bytes", "only 895 fit", "--kernel-arch", "Remove parameters"} {
		if !strings.Contains(out+err.Error(), want) {
			t.Errorf("refusal lacks %q:\n%s%v", want, out, err)
		}
	}
	if got, _ := os.ReadFile(p); string(got) != orig {
		t.Errorf("refused install changed the file")
	}
	if _, err := os.Lstat(p + ".overlayupd.bak"); err == nil {
		t.Errorf("refused install left a backup")
	}
	if out, err := run(t, e, "overlayupd", "install", "--boot-dir", dir, "--kernel-arch", "mips"); err == nil || !strings.Contains(err.Error(), "--kernel-arch") {
		t.Errorf("--kernel-arch mips: %v\n%s", err, out)
	}
	if out, err := run(t, e, "overlayupd", "install", "--boot-dir", dir, "--kernel-arch", "aarch64"); err != nil {
		t.Fatalf("install --kernel-arch aarch64: %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(p); !strings.Contains(string(got), "quiet ro init=/sbin/init-overlay\n") {
		t.Errorf("extlinux.conf = %q, want it installed", got)
	}
}

// TestInstallRefreshesStaleBackup walks the stale-backup story through the
// commands: install, uninstall, the root moved by hand to a USB disk,
// install again. The backup must follow (install says it replaced it),
// uninstall must not take the moved root for --store-device's, and restore
// must bring back the moved root, not the old one; a change by hand while
// installed makes restore refuse and leave the file alone.
func TestInstallRefreshesStaleBackup(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "cmdline.txt")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	read := func() string {
		t.Helper()
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	write("console=tty1 root=PARTUUID=6c586e13-02 rootfstype=ext4 rw rootwait\n")
	for _, args := range [][]string{{"install"}, {"uninstall"}} {
		if out, err := run(t, e, "overlayupd", append(args, "--boot-dir", dir)...); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	moved := "console=tty1 root=PARTUUID=77aa1c2e-02 rootfstype=ext4 ro rootwait\n"
	write(moved)
	out, err := run(t, e, "overlayupd", "install", "--boot-dir", dir)
	if err != nil || !strings.Contains(out, "replacing an older backup") {
		t.Fatalf("install over a file changed by hand: %v\n%s", err, out)
	}
	if out, err := run(t, e, "overlayupd", "uninstall", "--boot-dir", dir, "--dry-run"); err != nil {
		t.Errorf("uninstall --dry-run after the root moved by hand: %v\n%s", err, out)
	}
	if out, err := run(t, e, "overlayupd", "uninstall", "--boot-dir", dir, "--restore"); err != nil || read() != moved {
		t.Errorf("uninstall --restore: %v, file %q; want %q\n%s", err, read(), moved, out)
	}
	if _, err := run(t, e, "overlayupd", "install", "--boot-dir", dir); err != nil {
		t.Fatal(err)
	}
	serial := strings.Replace(read(), "console=tty1", "console=serial0,115200 console=tty1", 1)
	write(serial)
	out, err = run(t, e, "overlayupd", "uninstall", "--boot-dir", dir, "--restore")
	if err == nil || !strings.Contains(out+err.Error(), "changed after its backup") || read() != serial {
		t.Errorf("uninstall --restore after a change by hand: %v, file %q\n%s", err, read(), out)
	}
}

// TestInstallNeedsTrampoline: install on the running system refuses, and
// changes nothing, when the kernel's root has no /sbin/init-overlay it can
// run: the next boot would end in a kernel panic. checkKernelInit takes an
// ELF binary, a link to one resolved inside the root (an older install's
// link to /usr/sbin/overlayupd), and a script whose interpreter is there.
func TestInstallNeedsTrampoline(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	// --grub names a file that is not there: were the check gone, the
	// install would not reach this machine's own GRUB defaults.
	grub := filepath.Join(t.TempDir(), "grub")
	for _, args := range [][]string{{"install", "--grub", grub}, {"install", "--dry-run", "--grub", grub}} {
		out, err := run(t, e, "overlayupd", args...)
		if err == nil || !strings.Contains(err.Error(), "install the binary first") || !strings.Contains(err.Error(), "/sbin/init-overlay") {
			t.Errorf("%v without /sbin/init-overlay: %v\n%s", args, err, out)
		}
	}
	elf, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	put := func(root, p string, b []byte) {
		t.Helper()
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	link := func(root, target, p string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(root, p)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		make func(root string)
		ok   bool
	}{
		{"missing", func(string) {}, false},
		{"ELF", func(r string) { put(r, "sbin/init-overlay", elf) }, true},
		{"link inside the root", func(r string) {
			put(r, "usr/sbin/overlayupd", elf)
			link(r, "/usr/sbin/overlayupd", "sbin/init-overlay")
		}, true},
		{"dangling link", func(r string) { link(r, "/usr/sbin/overlayupd", "sbin/init-overlay") }, false},
		{"directory", func(r string) {
			if err := os.MkdirAll(filepath.Join(r, "sbin/init-overlay"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"not executable", func(r string) {
			put(r, "sbin/init-overlay", elf)
			if err := os.Chmod(filepath.Join(r, "sbin/init-overlay"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"empty", func(r string) { put(r, "sbin/init-overlay", nil) }, false},
		{"script without its shell", func(r string) { put(r, "sbin/init-overlay", []byte("#!/bin/sh\n")) }, false},
		{"script with its shell", func(r string) {
			put(r, "sbin/init-overlay", []byte("#!/bin/sh\n"))
			put(r, "bin/sh", elf)
		}, true},
	} {
		root := t.TempDir()
		tc.make(root)
		if err := checkKernelInit(root); (err == nil) != tc.ok {
			t.Errorf("%s: checkKernelInit = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}

// TestUninstallRestoreWithoutBackup: on a file overlayupd never changed
// (the original script put init=/sbin/init-overlay there), uninstall
// --restore has no backup to put back: it takes the init= out as uninstall
// does, rather than say so and leave the overlay on. And after install
// (nothing to do), uninstall and uninstall --restore, the overlay stays
// off: uninstall keeps no backup of the file with init= in it.
func TestUninstallRestoreWithoutBackup(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	orig := "root=/dev/sda1 ro init=/sbin/init-overlay\n"
	for _, steps := range [][][]string{
		{{"uninstall", "--restore"}},
		{{"install"}, {"uninstall"}, {"uninstall", "--restore"}},
	} {
		dir := t.TempDir()
		p := filepath.Join(dir, "cmdline.txt")
		if err := os.WriteFile(p, []byte(orig), 0o644); err != nil {
			t.Fatal(err)
		}
		var out string
		for _, s := range steps {
			var err error
			if out, err = run(t, e, "overlayupd", append(s, "--boot-dir", dir)...); err != nil {
				t.Fatalf("%v: %v\n%s", s, err, out)
			}
		}
		got, _ := os.ReadFile(p)
		if strings.Contains(string(got), "init=") {
			t.Errorf("%v: cmdline.txt = %q: the overlay is still on", steps, got)
		}
		if len(steps) == 1 && !strings.Contains(out, "no backup to restore") {
			t.Errorf("%v: output does not say why:\n%s", steps, out)
		}
	}
}

// TestUpdateGrubFails: an update-grub that fails, or none at all, is an
// error: the GRUB defaults file changed but grub.cfg did not, and the
// next boot would not see the install.
func TestUpdateGrubFails(t *testing.T) {
	bin := t.TempDir()
	t.Setenv("PATH", bin)
	if _, err := updateGrub(false); err == nil {
		t.Error("no update-grub: no error")
	}
	if _, err := updateGrub(true); err != nil {
		t.Errorf("dry run without update-grub: %v", err)
	}
	if err := os.WriteFile(filepath.Join(bin, "update-grub"), []byte("#!/bin/sh\necho broken >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if msg, err := updateGrub(false); err == nil || !strings.Contains(msg, "broken") {
		t.Errorf("failing update-grub: %q, %v; want its output and an error", msg, err)
	}
	if err := os.WriteFile(filepath.Join(bin, "update-grub"), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := updateGrub(false); err != nil {
		t.Errorf("working update-grub: %v", err)
	}
}

// TestAutoCommitNeedsARoot: --auto-commit --root DIR refuses a DIR with no
// etc/ (mistyped, or not a root tree) instead of making one.
func TestAutoCommitNeedsARoot(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	root := filepath.Join(t.TempDir(), "typo")
	out, err := run(t, e, "overlayupd", "install", "--auto-commit", "--root", root)
	if err == nil || !strings.Contains(err.Error(), "no etc/ directory") {
		t.Errorf("install --auto-commit --root %s: %v\n%s", root, err, out)
	}
	if _, err := os.Lstat(root); err == nil {
		t.Errorf("%s was made", root)
	}
}

// TestInstallGrubNamed: --grub names a file to edit also with --boot-dir
// (an image tree's defaults file), and a --grub that is not there is an
// error, not a silent skip while other files are edited.
func TestInstallGrubNamed(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cmdline.txt"), []byte("root=/dev/mmcblk0p2 rootwait\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "grub")
	if out, err := run(t, e, "overlayupd", "install", "--boot-dir", dir, "--grub", missing); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("install --grub %s (missing): %v\n%s", missing, err, out)
	}
	grub := filepath.Join(t.TempDir(), "grub")
	if err := os.WriteFile(grub, []byte("GRUB_CMDLINE_LINUX=\"quiet\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, e, "overlayupd", "install", "--boot-dir", dir, "--grub", grub, "--dry-run")
	if err != nil || !strings.Contains(out, "init=/sbin/init-overlay") || !strings.Contains(out, grub) {
		t.Errorf("install --boot-dir --grub --dry-run: %v\n%s", err, out)
	}
}

// TestGrubCfgStale: grub.cfg is stale when it disagrees with the install
// or uninstall in the defaults file; with none there is nothing to tell.
func TestGrubCfgStale(t *testing.T) {
	t.Parallel()
	boot := t.TempDir()
	if grubCfgStale(boot, true) || grubCfgStale(boot, false) {
		t.Error("no grub.cfg: stale")
	}
	if err := os.MkdirAll(filepath.Join(boot, "grub"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(boot, "grub", "grub.cfg")
	if err := os.WriteFile(cfg, []byte("linux /vmlinuz root=/dev/sda1 ro quiet\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if !grubCfgStale(boot, true) || grubCfgStale(boot, false) {
		t.Error("grub.cfg without init=: want stale after an install only")
	}
	if err := os.WriteFile(cfg, []byte("linux /vmlinuz root=/dev/sda1 ro init=/sbin/init-overlay\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if grubCfgStale(boot, true) || !grubCfgStale(boot, false) {
		t.Error("grub.cfg with init=: want stale after an uninstall only")
	}
}
