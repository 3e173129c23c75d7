package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/overlayupd/overlayupd/internal/testroot"
)

// allowed is the boot path's budget: every package outside the standard
// library that init-overlay may link. Adding one is a decision, made here
// with its reason, because every boot of every device pays for it.
var allowed = map[string]string{
	"github.com/overlayupd/overlayupd/boot":                "the PID-1 path",
	"github.com/overlayupd/overlayupd/overlay":             "config, mount plan, pivot, exec init",
	"github.com/overlayupd/overlayupd/trampoline":          "the slot protocol's boot decision",
	"github.com/overlayupd/overlayupd/squash":              "the squashfs Format (no image reader)",
	"github.com/overlayupd/overlayupd/snapshot":            "the btrfs Format: pure-Go ioctls, no cgo",
	"github.com/overlayupd/overlayupd/internal/mounts":     "mountinfo, mounts as data",
	"github.com/overlayupd/overlayupd/internal/remount":    "make the store writable for a transition",
	"github.com/overlayupd/overlayupd/internal/atomicfile": "durable state changes",
	"github.com/overlayupd/overlayupd/internal/kcmdline":   "kernel command line",
	"github.com/overlayupd/overlayupd/keeper":              "the trial watchdog and its keeper process",
	"github.com/overlayupd/overlayupd/internal/fsmode":     "stat modes of files opened inside a root",
	"github.com/overlayupd/overlayupd/internal/shebang":    "the kernel's reading of an init script's #! line",
	"github.com/overlayupd/overlayupd/internal/loop":       "loop devices for images",
	"github.com/overlayupd/overlayupd/internal/mountns":    "private mount namespaces",
	"github.com/overlayupd/overlayupd/verity":              "the dm-verity trailer and table of an image",
	"github.com/overlayupd/overlayupd/internal/dm":         "device-mapper ioctls: the dm-verity mount",
	"github.com/overlayupd/overlayupd/internal/layer":      "the trial layer's fold and the shadow check, before the mount",
	"github.com/overlayupd/overlayupd/internal/record":     "the store's JSON records, without encoding/json",
	"golang.org/x/sys/unix":                                "system calls",
	"golang.org/x/sys/cpu":                                 "x/sys/unix's dependency",
}

// denied are standard packages the boot path must not link: their
// initialisation or size is paid at every boot for nothing PID 1 does.
var denied = []string{"regexp", "text/template", "html/template", "net", "net/http", "runtime/cgo",
	"compress/", "archive/", "image", "database/", "go/", "plugin", "os/user", "crypto/tls", "crypto/x509"}

type pkg struct {
	ImportPath string
	Standard   bool
}

// deps lists what go list says the package at dir links, built as make
// builds init-overlay (CGO_ENABLED=0).
func deps(t *testing.T, dir string) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-json=ImportPath,Standard", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	var ps []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	return ps
}

// TestBootPathBudget fails when init-overlay links a package outside the
// allow-list (or a denied standard one): the cheapest guard against the
// PID-1 binary creeping back to the command line's size.
func TestBootPathBudget(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go command")
	}
	ps := deps(t, ".")
	if len(ps) < 10 {
		t.Fatalf("go list found only %d packages: %v", len(ps), ps)
	}
	for _, p := range ps {
		if p.ImportPath == "github.com/overlayupd/overlayupd/cmd/init-overlay" {
			continue
		}
		if !p.Standard {
			if _, ok := allowed[p.ImportPath]; !ok {
				t.Errorf("init-overlay links %s, which is not in the boot path's allow-list", p.ImportPath)
			}
			continue
		}
		for _, d := range denied {
			if p.ImportPath == d || (strings.HasSuffix(d, "/") && strings.HasPrefix(p.ImportPath, d)) {
				t.Errorf("init-overlay links the standard package %s, which the boot path must not", p.ImportPath)
			}
		}
	}
}

// TestBudgetCatchesTheCLI: the same check on the command line's package
// finds what it is there to catch (cobra, go-diskfs), so the guard above
// can fail.
func TestBudgetCatchesTheCLI(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go command")
	}
	var outside []string
	for _, p := range deps(t, filepath.Join("..", "overlayupd")) {
		if _, ok := allowed[p.ImportPath]; !ok && !p.Standard && !strings.HasPrefix(p.ImportPath, "github.com/overlayupd/") {
			outside = append(outside, p.ImportPath)
		}
	}
	joined := strings.Join(outside, " ")
	for _, want := range []string{"github.com/spf13/cobra", "github.com/diskfs/go-diskfs"} {
		if !strings.Contains(joined, want) {
			t.Errorf("the CLI's deps outside the allow-list lack %s: %v", want, outside)
		}
	}
}

// TestByHand: run with PID != 1, init-overlay says what it is, and where
// the commands are; --version and --help answer on stdout with exit 0.
func TestByHand(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		code     int
		inStdout string
	}{
		{nil, 2, ""},
		{[]string{"status"}, 2, ""},
		{[]string{"--version"}, 0, "init-overlay "},
		{[]string{"--help"}, 0, "overlayupd status"},
	} {
		var out, errw strings.Builder
		code := byHand(tc.args, &out, &errw)
		if code != tc.code {
			t.Errorf("byHand(%q) = %d, want %d", tc.args, code, tc.code)
		}
		if tc.code == 2 && !strings.Contains(errw.String(), "runs only as PID 1") {
			t.Errorf("byHand(%q) said %q on stderr, want the message", tc.args, errw.String())
		}
		if tc.inStdout != "" && !strings.Contains(out.String(), tc.inStdout) {
			t.Errorf("byHand(%q) said %q on stdout, want %q", tc.args, out.String(), tc.inStdout)
		}
	}
}

// TestBinaryNeverMountsByHand runs the built init-overlay (make build-test's,
// beside the overlayupd binary under test) as root, not PID 1, inside a
// private mount namespace, and checks that the namespace's mounts are the
// same after it, and that the binary is what make says: pure Go, static.
func TestBinaryNeverMountsByHand(t *testing.T) {
	testroot.RequireRoot(t, "unshare")
	bin, err := testroot.InitBinary()
	if err != nil {
		t.Fatal(err)
	}
	script := `before=$(cat /proc/self/mountinfo); "$1" status; rc=$?; after=$(cat /proc/self/mountinfo); [ "$before" = "$after" ] || { echo MOUNTED; exit 9; }; exit $rc`
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", bin)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Fatalf("init-overlay by hand: %v, want exit 2; output:\n%s", err, out)
	}
	if !strings.Contains(string(out), "runs only as PID 1") || strings.Contains(string(out), "MOUNTED") {
		t.Fatalf("init-overlay by hand said:\n%s", out)
	}
	info, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatalf("go version -m %s: %v", bin, err)
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath=true"} {
		if !strings.Contains(string(info), want) {
			t.Errorf("%s is not built as make builds init-overlay: no %s in\n%s", bin, want, info)
		}
	}
	for _, line := range strings.Split(string(info), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "dep" {
			if _, ok := allowed[f[1]]; !ok && !strings.HasPrefix(f[1], "golang.org/x/sys") {
				t.Errorf("%s links module %s, outside the boot path's allow-list", bin, f[1])
			}
		}
	}
	fi, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() >= 3<<20 {
		t.Errorf("%s is %d bytes, over the 3 MiB budget", bin, fi.Size())
	}
}

// deniedCode are functions the boot path must not link, by symbol prefix:
// their packages may be linked (a package imported for its types), but
// this code is not to be reachable from init-overlay's main. encoding/json
// and reflection were a ninth of the binary (package internal/record writes
// and reads the store's records instead); os/exec with context another
// twenty-fifth (overlay.runChild and keeper.start use os.StartProcess).
var deniedCode = []string{
	"encoding/json.(*encodeState)", "encoding/json.(*decodeState)", "encoding/json.Marshal", "encoding/json.Unmarshal",
	"os/exec.", "context.WithTimeout", "context.WithDeadline",
}

// linkedCode builds the package at dir as make builds init-overlay, with its
// symbol table, and returns the symbols of deniedCode it has.
func linkedCode(t *testing.T, dir string) []string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bin")
	build := exec.Command("go", "build", "-trimpath", "-tags", "osusergo netgo", "-o", bin, ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", dir, err, out)
	}
	out, err := exec.Command("go", "tool", "nm", bin).Output()
	if err != nil {
		t.Fatalf("go tool nm: %v", err)
	}
	var found []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || (f[1] != "T" && f[1] != "t") {
			continue
		}
		for _, d := range deniedCode {
			if strings.HasPrefix(f[2], d) {
				found = append(found, f[2])
			}
		}
	}
	return found
}

// TestBootPathCode fails when code the boot path must not run is reachable
// from init-overlay's main (deniedCode): the allow-list of packages cannot
// say that, since the admin commands' use of a package the boot path
// shares links it.
func TestBootPathCode(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go command")
	}
	if found := linkedCode(t, "."); len(found) > 0 {
		t.Errorf("init-overlay links code the boot path must not run: %v", found)
	}
	// The check finds what it is there to find.
	found := strings.Join(linkedCode(t, filepath.Join("testdata", "linksall")), " ")
	for _, want := range []string{"encoding/json.Marshal", "encoding/json.Unmarshal", "os/exec."} {
		if !strings.Contains(found, want) {
			t.Errorf("the check missed %s in testdata/linksall: %s", want, found)
		}
	}
}
