package trampoline_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/overlayupd/overlayupd/"

// deps lists the module's packages that pkg imports, directly or not.
func deps(t *testing.T, pkg string) map[string]bool {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", module+pkg).Output()
	if err != nil {
		t.Skipf("go list: %v (the go tool is needed for this check)", err)
	}
	got := map[string]bool{}
	for _, p := range strings.Fields(string(out)) {
		if rest, ok := strings.CutPrefix(p, module); ok {
			got[rest] = true
		}
	}
	return got
}

// TestLayering keeps the dependencies pointing one way: cmd → boot →
// {trampoline, overlay, formats}; formats → trampoline, internal; trampoline
// → internal/{atomicfile,mounts,record} only; no format imports another.
func TestLayering(t *testing.T) {
	for _, tc := range []struct {
		pkg       string
		want, not []string
	}{
		{"trampoline", nil, []string{"overlay", "squash", "snapshot", "boot", "cmd/overlayupd", "internal/loop", "internal/remount"}},
		{"trampoline/conformance", []string{"trampoline"}, []string{"overlay", "squash", "snapshot", "boot"}},
		{"squash", []string{"trampoline"}, []string{"overlay", "snapshot", "boot"}},
		{"overlay", nil, []string{"trampoline", "squash", "snapshot", "boot"}},
		{"snapshot", []string{"trampoline"}, []string{"overlay", "squash", "boot"}},
		{"boot", []string{"trampoline", "overlay", "squash", "snapshot"}, []string{"cmd/overlayupd"}},
	} {
		got := deps(t, tc.pkg)
		for _, w := range tc.want {
			if !got[w] {
				t.Errorf("%s does not import %s", tc.pkg, w)
			}
		}
		for _, n := range tc.not {
			if got[n] {
				t.Errorf("%s imports %s", tc.pkg, n)
			}
		}
	}
	for p := range deps(t, "trampoline") {
		if p != "trampoline" && p != "internal/atomicfile" && p != "internal/mounts" && p != "internal/record" {
			t.Errorf("trampoline imports %s; the protocol may import only internal/atomicfile, internal/mounts and internal/record", p)
		}
	}
}
