package testroot

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// toolPackages are the Debian packages of the tools tests use, for hints.
var toolPackages = map[string]string{
	"mkfs.ext4": "e2fsprogs", "debugfs": "e2fsprogs", "mkfs.btrfs": "btrfs-progs",
	"mksquashfs": "squashfs-tools", "unshare": "util-linux", "/bin/busybox": "busybox-static",
	"qemu-system-x86_64": "qemu-system-x86", "cpio": "cpio", "depmod": "kmod",
	"make": "make", "gcc": "gcc", "veritysetup": "cryptsetup-bin",
}

// LookTool finds a tool in PATH, then in the sbin and bin directories a
// test's PATH may lack. A name with a slash is checked as it is.
func LookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil || strings.Contains(name, "/") {
		return p, err
	}
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}

// missingTools returns the tools LookTool cannot find, and a message that
// names them with the packages to install.
func missingTools(look func(string) (string, error), tools ...string) (missing []string, msg string) {
	var pkgs []string
	for _, tool := range tools {
		if _, err := look(tool); err != nil {
			missing = append(missing, tool)
			if pkg := toolPackages[tool]; pkg != "" {
				pkgs = append(pkgs, pkg)
			}
		}
	}
	if len(missing) == 0 {
		return nil, ""
	}
	msg = strings.Join(missing, ", ") + " not found (run: make deps"
	if len(pkgs) > 0 {
		msg += "; or apt-get install -y " + strings.Join(pkgs, " ")
	}
	return missing, msg + ")"
}

// strict reports whether a missing prerequisite fails the test rather
// than skipping it: under CI=true, where everything must be there.
func strict(getenv func(string) string) bool { return getenv("CI") == "true" }

// SkipOrFail ends the test for a missing prerequisite: it fails under
// CI=true and skips elsewhere.
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if strict(os.Getenv) {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// NeedTools skips the test if a tool is missing, or fails it under CI=true.
func NeedTools(t testing.TB, tools ...string) {
	t.Helper()
	if _, msg := missingTools(LookTool, tools...); msg != "" {
		SkipOrFail(t, "%s", msg)
	}
}

// RequireRoot skips a test that needs root and the named tools (besides
// unshare and busybox, which Boot needs), or fails it under CI=true when a
// tool is missing. Privileged tests skip with -short.
func RequireRoot(t testing.TB, tools ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("privileged test: skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("privileged test: needs root for loop devices and mount namespaces (run as root, or make test)")
	}
	NeedTools(t, append([]string{"unshare", BusyboxPath}, tools...)...)
}
