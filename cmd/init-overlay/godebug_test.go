package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/overlayupd/overlayupd/internal/testroot"
)

// initGodebug is the default GODEBUG make links into init-overlay
// (build-init in the Makefile): the go command's own, as go list gives
// it, and the Makefile's INIT_GODEBUG_ADD after it.
func initGodebug(t *testing.T) (want, add string) {
	t.Helper()
	mk, err := os.ReadFile(filepath.Join("..", "..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^INIT_GODEBUG_ADD := (\S+)$`).FindSubmatch(mk)
	if m == nil {
		t.Fatal("Makefile: no INIT_GODEBUG_ADD := line")
	}
	add = string(m[1])
	out, err := exec.Command("go", "list", "-f", "{{.DefaultGODEBUG}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	if base := strings.TrimSpace(string(out)); base != "" {
		return base + "," + add, add
	}
	return add, add
}

// preemptProbe spins on one P without a call (no point where the
// goroutine yields by itself) until a second goroutine sets a flag: only
// an asynchronous preemption (a signal from the runtime) lets that one run
// before the loop's end.
const preemptProbe = `package main

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"time"
)

func main() {
	runtime.GOMAXPROCS(1)
	var flag atomic.Bool
	go func() { time.Sleep(time.Millisecond); flag.Store(true) }() // runs only if main is preempted
	i := 0
	for ; i < 2000000000 && !flag.Load(); i++ {
	}
	if i < 2000000000 {
		fmt.Println("preempted")
	} else {
		fmt.Println("not preempted")
	}
}
`

// TestGodebugDefault: the default GODEBUG the Makefile links into
// init-overlay (build-init) is the go command's own (go.mod's go line,
// main.go's //go:debug lines) with asyncpreemptoff=1 after it, is in the
// binary make built, and takes: a program linked the same way is never
// preempted asynchronously, and is without it.
// The -X of runtime.godebugDefault is how the go command itself links the
// //go:debug lines; if a Go release renamed the variable, the linker would
// drop the -X without a word, and this test fails.
func TestGodebugDefault(t *testing.T) {
	testroot.NeedTools(t, "go")
	want, add := initGodebug(t)
	settings := "," + want + ","
	for _, s := range []string{"asyncpreemptoff=1", "decoratemappings=0", "containermaxprocs=0"} {
		if !strings.Contains(settings, ","+s+",") {
			t.Errorf("init-overlay's default GODEBUG %q lacks %s", want, s)
		}
	}
	if !strings.Contains(","+add+",", ",asyncpreemptoff=1,") {
		t.Errorf("the Makefile's INIT_GODEBUG_ADD %q lacks asyncpreemptoff=1", add)
	}
	bin, err := testroot.InitBinary()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(want)) {
		t.Errorf("%s does not hold %q: the Makefile's -X runtime.godebugDefault did not take", bin, want)
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(preemptProbe), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module probe\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, ldflags, want string
	}{
		{"INIT_GODEBUG", "-X runtime.godebugDefault=" + want, "not preempted"},
		{"default", "", "preempted"},
	} {
		out := filepath.Join(dir, c.name)
		build := exec.Command("go", "build", "-ldflags", c.ldflags, "-o", out, ".")
		build.Dir = dir
		build.Env = append(os.Environ(), "CGO_ENABLED=0", "GODEBUG=")
		if b, err := build.CombinedOutput(); err != nil {
			t.Fatalf("build the probe: %v\n%s", err, b)
		}
		run := exec.Command(out)
		run.Env = append(os.Environ(), "GODEBUG=")
		got, err := run.Output()
		if err != nil {
			t.Fatalf("run the probe: %v", err)
		}
		if strings.TrimSpace(string(got)) != c.want {
			t.Errorf("probe linked with %s: %q, want %q", c.name, strings.TrimSpace(string(got)), c.want)
		}
	}
}
