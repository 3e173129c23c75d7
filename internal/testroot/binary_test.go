package testroot

import (
	"debug/buildinfo"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// makeVar is a variable of the Makefile as make evaluates it, with vars
// (NAME=value) on its command line.
func makeVar(t *testing.T, name string, vars ...string) string {
	t.Helper()
	root, err := ModuleRoot()
	Must(t, err)
	args := append([]string{"-s", "--no-print-directory", "-C", root, "--eval", "print-%: ; @echo $($*)", "print-" + name}, vars...)
	out, err := exec.Command("make", args...).Output()
	if err != nil {
		t.Fatalf("make %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out))
}

// TestBinaryIsMakeBuild checks that the binary the tests run is the one
// make build makes: static (no ELF interpreter: PID 1 has no loader),
// built with cgo, the Makefile's tags (plus the crash hook's, make
// build-test) and ldflags, and -trimpath.
func TestBinaryIsMakeBuild(t *testing.T) {
	if testing.Short() && os.Getenv("OVERLAYUPD_BIN") == "" {
		t.Skip("builds overlayupd with make: skipped with -short unless OVERLAYUPD_BIN is set")
	}
	NeedTools(t, "make")
	bin := BinaryPath(t)
	tags, ldflags := makeVar(t, "TAGS"), makeVar(t, "LDFLAGS")

	f, err := elf.Open(bin)
	Must(t, err)
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has an ELF interpreter: not statically linked as make build links it", bin)
		}
	}
	if strings.Contains(" "+ldflags+" ", " -s ") && f.Section(".symtab") != nil {
		t.Errorf("%s has a symbol table, but the Makefile's ldflags (%s) strip it", bin, ldflags)
	}

	info, err := buildinfo.ReadFile(bin)
	Must(t, err)
	got := map[string]string{}
	for _, s := range info.Settings {
		got[s.Key] = s.Value
	}
	want := map[string]string{
		"CGO_ENABLED": "1", // containerd/btrfs needs cgo
		"-tags":       strings.Join(append(strings.Fields(tags), "overlayupd_crashhook"), ","),
		"-trimpath":   "true",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s built with %s=%q, want %q as make build (settings %v)", bin, k, got[k], v, info.Settings)
		}
	}

	if strings.Contains(ldflags, "-X main.version=") {
		out, err := exec.Command(bin, "--version").Output()
		if err != nil || strings.TrimSpace(string(out)) == "overlayupd version dev" {
			t.Errorf("%s --version = %q, %v; want the version make build sets", bin, out, err)
		}
	}
}

// TestMakefileBIN: make build BIN=elsewhere exports OVERLAYUPD_BIN as that
// file, so make test with another BIN tests the binary it built.
func TestMakefileBIN(t *testing.T) {
	NeedTools(t, "make")
	root, err := ModuleRoot()
	Must(t, err)
	abs := filepath.Join(t.TempDir(), "overlayupd")
	tests := []struct {
		vars []string
		want string
	}{
		{nil, filepath.Join(root, "bin/overlayupd")},
		{[]string{"BIN=" + abs}, abs},
		{[]string{"BIN=out/x"}, filepath.Join(root, "out/x")},
	}
	for _, tt := range tests {
		if got := makeVar(t, "OVERLAYUPD_BIN", tt.vars...); got != tt.want {
			t.Errorf("make %v: OVERLAYUPD_BIN = %q, want %q", tt.vars, got, tt.want)
		}
	}
}
