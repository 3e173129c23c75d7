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
