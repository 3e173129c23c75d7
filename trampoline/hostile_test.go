package trampoline_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMoveHostile: links and FIFOs under protocol names (an entry's, the
// boot counter's) are moved aside, numbered past a name already taken,
// and files and other names stay. Then the boot budget runs again: with a
// link at boots-1 every count failed (EEXIST), and a committed root that
// never marks good booted for ever instead of falling back to root.prev.
func TestMoveHostile(t *testing.T) {
	s := newFileStore(t, map[string]string{"root.sqsh": "A", "root.prev.sqsh": "B", "boots-0": "", "notes.txt": "x"})
	dir := s.SlotDir
	for _, l := range [][2]string{{"nowhere", "boots-1"}, {"/etc/passwd", ".hostile-boots-1"}, {"/etc", "other-link"}} {
		if err := os.Symlink(l[0], filepath.Join(dir, l[1])); err != nil {
			t.Fatal(err)
		}
	}
	// A name too long for the prefix, sorted before the others: it moves
	// under a number, and does not stop the rest.
	long := ".stage-" + strings.Repeat("x", 240)
	for _, n := range []string{"root.failed.sqsh", long} {
		if err := unix.Mkfifo(filepath.Join(dir, n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	moved, err := s.MoveHostile()
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]string{{long, ".hostile-0"}, {"boots-1", ".hostile-boots-1.1"}, {"root.failed.sqsh", ".hostile-root.failed.sqsh"}}
	if !slices.Equal(moved, want) {
		t.Fatalf("moved %q, want %q", moved, want)
	}
	for _, n := range []string{".hostile-boots-1", ".hostile-boots-1.1", ".hostile-root.failed.sqsh", "other-link", "notes.txt", "root.sqsh"} {
		if _, err := os.Lstat(filepath.Join(dir, n)); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
	if l, _ := os.Readlink(filepath.Join(dir, ".hostile-boots-1.1")); l != "nowhere" {
		t.Errorf(".hostile-boots-1.1 links to %q: a rename must move the link itself", l)
	}
	s.BootBudget = 3
	var boots []string
	for range 5 {
		_, got := boot(t, s) // fails the test on a boot that could not count
		boots = append(boots, got)
	}
	// The fallback exchanges the two roots: B boots as root.sqsh.
	if !slices.Equal(boots, []string{"A", "A", "A", "B", "B"}) {
		t.Errorf("booted %q, want A three times, then B: the budget of 3 did not fall back to root.prev", boots)
	}
	if again, err := s.MoveHostile(); err != nil || len(again) != 0 {
		t.Errorf("second MoveHostile: %q, %v; want nothing to move", again, err)
	}
}
