package trampoline_test

import (
	"errors"
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

// TestLayerTransitions: the trial layer's names through the protocol, as
// pure decisions (the conformance suite crashes them on real backends).
func TestLayerTransitions(t *testing.T) {
	const s = ".sqsh"
	for _, c := range []struct {
		name  string
		names []string
		ev    *trampoline.Event // nil: the boot decision
		want  string
	}{
		{"commit renames the layer right after the commit point",
			[]string{"root.sqsh", "root.trying-0.sqsh", "layer.trial"},
			&trampoline.Event{Kind: trampoline.EvCommit, Booted: "root.trying-0.sqsh"},
			"rename root.trying-0.sqsh -> root.next.sqsh; rename layer.trial -> layer.fold; rename root.sqsh -> root.prev.sqsh; rename root.next.sqsh -> root.sqsh"},
		{"an interrupted commit is rolled forward with its layer",
			[]string{"root.sqsh", "root.next.sqsh", "layer.trial"}, nil,
			"rename layer.trial -> layer.fold; rename root.sqsh -> root.prev.sqsh; rename root.next.sqsh -> root.sqsh"},
		{"rollback fails the layer with the trial, replacing the old failed one",
			[]string{"root.sqsh", "root.trying-0.sqsh", "layer.trial", "layer.failed"},
			&trampoline.Event{Kind: trampoline.EvRollback},
			"rename root.trying-0.sqsh -> root.failed.sqsh; rename layer.failed -> rm-layer.failed; rename layer.trial -> layer.failed; remove rm-layer.failed"},
		{"a trial out of tries fails with its layer at boot",
			[]string{"root.sqsh", "root.trying-0.sqsh", "layer.trial"}, nil,
			"rename root.trying-0.sqsh -> root.failed.sqsh; rename layer.trial -> layer.failed"},
		{"another try keeps the trial's layer",
			[]string{"root.sqsh", "root.trying-1.sqsh", "layer.trial"}, nil,
			"rename root.trying-1.sqsh -> root.trying-0.sqsh"},
		{"a superseded trial's layer fails before the new trial starts",
			[]string{"root.sqsh", "root.trying-1.sqsh", "root.try-1.sqsh", "layer.trial"}, nil,
			"rename root.trying-1.sqsh -> root.failed.sqsh; rename layer.trial -> layer.failed; rename root.try-1.sqsh -> root.trying-0.sqsh"},
		{"an orphaned trial layer fails before a new trial starts",
			[]string{"root.sqsh", "root.try-1.sqsh", "layer.trial"}, nil,
			"rename layer.trial -> layer.failed; rename root.try-1.sqsh -> root.trying-0.sqsh"},
		{"gc removes the failed layer",
			[]string{"root.sqsh", "root.failed.sqsh", "layer.failed"},
			&trampoline.Event{Kind: trampoline.EvGC, Booted: "root.sqsh"},
			"rename root.failed.sqsh -> rm-root.failed.sqsh; rename layer.failed -> rm-layer.failed; remove rm-root.failed.sqsh; remove rm-layer.failed"},
		{"gc keeps the failed layer the running (rolled back) trial writes into",
			[]string{"root.sqsh", "root.failed.sqsh", "layer.failed"},
			&trampoline.Event{Kind: trampoline.EvGC, Booted: "root.failed.sqsh"},
			"rename root.failed.sqsh -> rm-root.failed.sqsh; remove rm-root.failed.sqsh"},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := trampoline.NewState(s, c.names...)
			var got trampoline.Transition
			if c.ev == nil {
				got = trampoline.Decide(st).Transition
			} else {
				var err error
				if got, err = trampoline.Next(st, *c.ev); err != nil {
					t.Fatal(err)
				}
			}
			if got.String() != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
		})
	}
	// A pending fold and a trial layer together (only by hand): commit refuses.
	st := trampoline.NewState(s, "root.sqsh", "root.trying-0.sqsh", "layer.trial", "layer.fold")
	if _, err := trampoline.Next(st, trampoline.Event{Kind: trampoline.EvCommit, Booted: "root.trying-0.sqsh"}); !errors.Is(err, trampoline.ErrFoldPending) {
		t.Errorf("commit with a fold pending: %v, want ErrFoldPending", err)
	}
	if got := trampoline.FoldDone(trampoline.NewState(s, "root.sqsh", "layer.fold")).String(); got != "rename layer.fold -> rm-layer.fold; remove rm-layer.fold" {
		t.Errorf("FoldDone: %s", got)
	}
}
