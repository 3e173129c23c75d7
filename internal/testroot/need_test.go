package testroot

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func TestMissingTools(t *testing.T) {
	have := map[string]bool{"mkfs.ext4": true, "sh": true}
	look := func(name string) (string, error) {
		if have[name] {
			return "/usr/sbin/" + name, nil
		}
		return "", errors.New("not found")
	}
	tests := []struct {
		tools       []string
		wantMissing string
		wantMsg     string
	}{
		{nil, "", ""},
		{[]string{"mkfs.ext4", "sh"}, "", ""},
		{[]string{"mkfs.ext4", "mksquashfs"}, "mksquashfs", "mksquashfs not found (run: make deps; or apt-get install -y squashfs-tools)"},
		{[]string{"mkfs.btrfs", "frobnicate"}, "mkfs.btrfs frobnicate", "mkfs.btrfs, frobnicate not found (run: make deps; or apt-get install -y btrfs-progs)"},
		{[]string{"frobnicate"}, "frobnicate", "frobnicate not found (run: make deps)"},
	}
	for _, tt := range tests {
		missing, msg := missingTools(look, tt.tools...)
		if got := strings.Join(missing, " "); got != tt.wantMissing || msg != tt.wantMsg {
			t.Errorf("missingTools(%v) = %q, %q; want %q, %q", tt.tools, got, msg, tt.wantMissing, tt.wantMsg)
		}
	}
}

func TestStrict(t *testing.T) {
	for _, tt := range []struct {
		ci   string
		want bool
	}{{"true", true}, {"", false}, {"false", false}, {"1", false}} {
		if got := strict(func(string) string { return tt.ci }); got != tt.want {
			t.Errorf("strict(CI=%q) = %v, want %v", tt.ci, got, tt.want)
		}
	}
}

// TestNeedToolsChild is the subprocess of TestNeedToolsCI.
func TestNeedToolsChild(t *testing.T) {
	if os.Getenv("TESTROOT_NEED_CHILD") != "1" {
		t.Skip("run by TestNeedToolsCI")
	}
	NeedTools(t, "overlayupd-no-such-tool")
	t.Log("NeedTools returned")
}

// TestNeedToolsCI runs NeedTools for a missing tool in a subprocess: it
// skips the test, and under CI=true fails it.
func TestNeedToolsCI(t *testing.T) {
	tests := []struct {
		ci      string
		wantErr bool
		want    string
	}{
		{"", false, "--- SKIP: TestNeedToolsChild"},
		{"false", false, "--- SKIP: TestNeedToolsChild"},
		{"true", true, "--- FAIL: TestNeedToolsChild"},
	}
	for _, tt := range tests {
		cmd := SelfCommand("-test.run=^TestNeedToolsChild$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "TESTROOT_NEED_CHILD=1", "CI="+tt.ci)
		out, err := cmd.CombinedOutput()
		if (err != nil) != tt.wantErr || !strings.Contains(string(out), tt.want) ||
			!strings.Contains(string(out), "overlayupd-no-such-tool not found") || strings.Contains(string(out), "NeedTools returned") {
			t.Errorf("CI=%q: err %v, want error %v and %q:\n%s", tt.ci, err, tt.wantErr, tt.want, out)
		}
	}
}
