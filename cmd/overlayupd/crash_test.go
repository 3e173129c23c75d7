package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

type crashed struct{}

// crashAt runs overlayupd args with a store step hook that stops the command
// when n of its renames are durable, as the crash hook of test builds does,
// and reports whether it stopped there; the store is left as the crash left it.
func crashAt(t *testing.T, e *env, n int, args ...string) bool {
	t.Helper()
	e.step = func(i int) {
		if i == n {
			panic(crashed{})
		}
	}
	defer func() { e.step = nil }()
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
		_, _ = run(t, e, "overlayupd", args...)
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
	t.Parallel()
	t.Run("apply before the rename", func(t *testing.T) {
		t.Parallel()
		e := testEnv(t)
		top, _ := newStore(t, e)
		if !crashAt(t, e, 0, "apply", "--store", top, bootable().squashfs(t)) {
			t.Fatal("apply did not stop at op 0")
		}
		names := slotNames(t, top)
		if len(names) != 2 || names[1] != "root.sqsh" || names[0][:7] != ".stage-" {
			t.Errorf("after a crash before the rename: %q, want a .stage-* leftover and root.sqsh", names)
		}
	})
	t.Run("commit after its commit point", func(t *testing.T) {
		t.Parallel()
		e := testEnv(t)
		top, _, _, _ := trialStore(t, e)
		if !crashAt(t, e, 1, "commit", "--store", top, "--health-dir", t.TempDir()) {
			t.Fatal("commit did not stop at op 1")
		}
		if got, want := slotNames(t, top), []string{"root.next.sqsh", "root.sqsh"}; !slices.Equal(got, want) {
			t.Errorf("after a crash at the commit point: %q, want %q", got, want)
		}
	})
	t.Run("release builds have no hook", func(t *testing.T) {
		t.Parallel()
		if systemEnv().step != nil && !crashHookBuilt {
			t.Fatal("a build without the overlayupd_crashhook tag has a crash hook")
		}
	})
}
