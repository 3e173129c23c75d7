package keeper

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the keeper fit for the lean PID-1 binary: the standard
// library, golang.org/x/sys and the module's pure internal/kcmdline and
// internal/fsmode, and
// none of the packages that binary must not link (regexp, net, cgo).
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/overlayupd/overlayupd/keeper").Output()
	if err != nil {
		t.Skipf("go list: %v (the go tool is needed for this check)", err)
	}
	allowed := map[string]bool{
		"github.com/overlayupd/overlayupd/keeper":            true,
		"github.com/overlayupd/overlayupd/internal/kcmdline": true,
		"github.com/overlayupd/overlayupd/internal/fsmode":   true,
		"github.com/overlayupd/overlayupd/internal/remount":  true,
		"github.com/overlayupd/overlayupd/internal/mounts":   true,
		"golang.org/x/sys/unix":                              true,
	}
	for _, p := range strings.Fields(string(out)) {
		first, _, _ := strings.Cut(p, "/")
		if strings.Contains(first, ".") && !allowed[p] {
			t.Errorf("keeper links %s: only the standard library, x/sys, internal/kcmdline and internal/fsmode are allowed", p)
		}
		switch p {
		case "regexp", "net", "runtime/cgo", "text/template", "encoding/json", "flag":
			t.Errorf("keeper links %s, which the lean PID-1 binary must not", p)
		}
	}
}
