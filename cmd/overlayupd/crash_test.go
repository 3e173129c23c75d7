package main

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

type crashed struct{}

// crashAt runs overlayupd args with the crash hook set to n and reports
// whether the command stopped there; the store is left as the crash left it.
func crashAt(t *testing.T, n int, args ...string) bool {
	t.Helper()
	old := crashNow
	crashNow = func() { panic(crashed{}) }
	t.Cleanup(func() { crashNow = old })
	t.Setenv(CrashEnv, strconv.Itoa(n))
	stopped := false
	func() {
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(crashed); !ok {
					panic(r)
				}
				stopped = true
			}
		}()
		_, _ = run(t, "overlayupd", args...)
	}()
	return stopped
}

func slotNames(t *testing.T, top string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(top, "roots"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if e.Name() != ".lock" && !slices.Contains([]string{"failed.reason", "boot.reason"}, e.Name()) {
			names = append(names, e.Name())
		}
	}
	return names
}

// The hook stops a command at the named point: after exactly n of its
// renames. (The VM tests reboot there; here the command just stops.)
func TestCrashHookStopsAtTheNamedPoint(t *testing.T) {
	t.Run("apply before the rename", func(t *testing.T) {
		top, _ := newStore(t)
		if !crashAt(t, 0, "apply", "--store", top, bootable().squashfs(t)) {
			t.Fatal("apply did not stop at op 0")
		}
		names := slotNames(t, top)
		if len(names) != 2 || names[1] != "root.sqsh" || names[0][:7] != ".stage-" {
			t.Errorf("after a crash before the rename: %q, want a .stage-* leftover and root.sqsh", names)
		}
	})
	t.Run("commit after its commit point", func(t *testing.T) {
		top, _, _, _ := trialStore(t)
		if !crashAt(t, 1, "commit", "--store", top, "--health-dir", t.TempDir()) {
			t.Fatal("commit did not stop at op 1")
		}
		if got, want := slotNames(t, top), []string{"root.next.sqsh", "root.sqsh"}; !slices.Equal(got, want) {
			t.Errorf("after a crash at the commit point: %q, want %q", got, want)
		}
	})
	t.Run("no hook without the variable", func(t *testing.T) {
		old := crashNow
		crashNow = func() { t.Fatal("crash hook ran without " + CrashEnv) }
		t.Cleanup(func() { crashNow = old })
		top, _, _, _ := trialStore(t)
		if out, err := run(t, "overlayupd", "commit", "--store", top, "--health-dir", t.TempDir()); err != nil {
			t.Fatalf("commit: %v\n%s", err, out)
		}
	})
}
