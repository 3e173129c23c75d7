package trampoline_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/overlayupd/overlayupd/trampoline"
	"golang.org/x/sys/unix"
)

func TestPersistLayerRecords(t *testing.T) {
	dir := t.TempDir()
	s := &trampoline.Store{SlotDir: dir}
	exists := func(f string) bool { _, err := os.Lstat(filepath.Join(dir, f)); return err == nil }

	// No persist: nothing to clear.
	if c, err := s.AfterCommit("u7"); c || err != nil {
		t.Fatalf("AfterCommit without a persist: %v, %v", c, err)
	}
	// Persist staged u7, another root (u8) was committed: the layer stays.
	must(t, s.NotePersist("u7"))
	if c, err := s.AfterCommit("u8"); c || err != nil || exists(trampoline.PersistPendingFile) {
		t.Fatalf("AfterCommit of another root: %v, %v (pending left: %v)", c, err, exists(trampoline.PersistPendingFile))
	}
	// Persist staged u7, u7 committed: its next boot clears, once.
	must(t, s.NotePersist("u7"))
	if c, err := s.AfterCommit("u7"); !c || err != nil || !exists(trampoline.ClearLayerFile) {
		t.Fatalf("AfterCommit of the persisted root: %v, %v", c, err)
	}
	if c, err := s.TakeClearLayer("u9"); c || err != nil || exists(trampoline.ClearLayerFile) {
		t.Fatalf("TakeClearLayer for another root: %v, %v; want false and the record gone", c, err)
	}
	must(t, s.NotePersist("u7"))
	if _, err := s.AfterCommit("u7"); err != nil {
		t.Fatal(err)
	}
	if c, err := s.TakeClearLayer("u7"); !c || err != nil || exists(trampoline.ClearLayerFile) {
		t.Fatalf("TakeClearLayer: %v, %v; want true and the record gone", c, err)
	}
	if c, _ := s.TakeClearLayer("u7"); c {
		t.Error("the layer is cleared twice")
	}
	// A record that is a link is not followed, and clears nothing.
	must(t, os.Symlink("/etc/hostname", filepath.Join(dir, trampoline.ClearLayerFile)))
	if c, _ := s.TakeClearLayer("u7"); c {
		t.Error("a linked record cleared the layer")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestReasonsHostile: reason files planted as a link to /dev/zero or as a
// FIFO neither hang nor exhaust memory; they are left out.
func TestReasonsHostile(t *testing.T) {
	dir := t.TempDir()
	must(t, os.Symlink("/dev/zero", filepath.Join(dir, trampoline.FailedReasonFile)))
	must(t, unix.Mkfifo(filepath.Join(dir, trampoline.BootReasonFile), 0o644))
	s := &trampoline.Store{SlotDir: dir}
	done := make(chan map[string]trampoline.Reason, 1)
	go func() { done <- s.Reasons() }()
	select {
	case r := <-done:
		if len(r) != 0 {
			t.Errorf("Reasons = %v, want none", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Reasons hangs on a FIFO")
	}
}
