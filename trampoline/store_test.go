package trampoline_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/overlayupd/overlayupd/trampoline"
	"github.com/overlayupd/overlayupd/trampoline/conformance"
	"golang.org/x/sys/unix"
)

func newFileStore(t *testing.T, files map[string]string) *trampoline.Store {
	t.Helper()
	dir := t.TempDir()
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return &trampoline.Store{SlotDir: dir, Backend: trampoline.NewDirBackend(dir, sfx, nil),
		Now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }, Logf: t.Logf}
}

func content(t *testing.T, s *trampoline.Store, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.SlotDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func boot(t *testing.T, s *trampoline.Store) (trampoline.BootPlan, string) {
	t.Helper()
	p, err := s.Boot()
	if err != nil {
		t.Fatal(err)
	}
	return p, content(t, s, p.Boot.Name)
}

// TestStoreLifecycle: apply, trial, commit, rollback on image files.
func TestStoreLifecycle(t *testing.T) {
	s := newFileStore(t, map[string]string{"root.sqsh": "A", ".stage-x": "B"})
	if _, err := s.Stage(filepath.Join(s.SlotDir, ".stage-x"), 1); err != nil {
		t.Fatal(err)
	}
	p, got := boot(t, s)
	if got != "B" || !p.Trial || p.Boot.Name != "root.trying-0.sqsh" {
		t.Fatalf("trial boot: got %s (%s), want B as root.trying-0.sqsh", got, p)
	}
	if _, err := s.Commit("root.sqsh", false); !errors.Is(err, trampoline.ErrNotInTrial) {
		t.Fatalf("commit from the wrong entry: got %v, want ErrNotInTrial", err)
	}
	if _, err := s.Commit(p.Boot.Name, false); err != nil {
		t.Fatal(err)
	}
	if p, got = boot(t, s); got != "B" || p.Trial {
		t.Fatalf("after commit: got %s (%s), want committed B", got, p)
	}
	if got := content(t, s, "root.prev.sqsh"); got != "A" {
		t.Fatalf("root.prev: got %s, want A", got)
	}
	if _, err := s.Rollback(); err != nil {
		t.Fatal(err)
	}
	if _, got = boot(t, s); got != "A" {
		t.Fatalf("after rollback: got %s, want A", got)
	}
}

// TestStoreFailedTrial: a trial rebooted without commit falls back and says why.
func TestStoreFailedTrial(t *testing.T) {
	s := newFileStore(t, map[string]string{"root.sqsh": "A", ".stage-x": "B", "rm-junk": "J"})
	if _, err := s.Stage(filepath.Join(s.SlotDir, ".stage-x"), 1); err != nil {
		t.Fatal(err)
	}
	boot(t, s) // the trial, which never commits
	if p, got := boot(t, s); got != "A" || p.Trial {
		t.Fatalf("after an uncommitted trial: got %s (%s), want A", got, p)
	}
	r := s.Reasons()[trampoline.FailedReasonFile]
	if r.Entry != "root.trying-0.sqsh" || !strings.Contains(r.Why, "never committed") || r.Time.Year() != 2026 {
		t.Errorf("failed.reason: got %+v", r)
	}
	st, err := s.Status("root.sqsh")
	if err != nil {
		t.Fatal(err)
	}
	var failed *trampoline.EntryStatus
	for i := range st.Entries {
		if st.Entries[i].Role == trampoline.RoleFailed {
			failed = &st.Entries[i]
		}
	}
	if failed == nil || failed.Reason == nil || failed.Size != 1 {
		t.Fatalf("status: failed entry with reason and size: got %+v", st.Entries)
	}
	if _, err := s.GC(); err != nil {
		t.Fatal(err)
	}
	names, _ := os.ReadDir(s.SlotDir)
	var left []string
	for _, n := range names {
		left = append(left, n.Name())
	}
	if strings.Join(left, " ") != "boot.reason root.sqsh" {
		t.Errorf("after gc: got %v, want root.sqsh and the last boot's reason", left)
	}
}

func TestStoreStageOutsideStore(t *testing.T) {
	s := newFileStore(t, map[string]string{"root.sqsh": "A"})
	if _, err := s.Stage("/elsewhere/.stage-x", 1); !errors.Is(err, trampoline.ErrBadStage) {
		t.Fatalf("got %v, want ErrBadStage", err)
	}
}

// readOnly fails every change, like a store mounted read-only.
type readOnly struct{ *conformance.Mem }

func (readOnly) Rename(string, string, trampoline.RenameMode) error { return os.ErrPermission }

// TestStoreBootReadOnly: a try that cannot be consumed never boots.
func TestStoreBootReadOnly(t *testing.T) {
	m := conformance.NewMem(sfx)
	for _, n := range []string{"root.sqsh", "root.try-1.sqsh"} {
		if err := m.Make(n, n); err != nil {
			t.Fatal(err)
		}
	}
	s := &trampoline.Store{SlotDir: t.TempDir(), Backend: readOnly{m}}
	p, err := s.Boot()
	if err == nil || p.Boot.Name != "root.sqsh" || p.Trial {
		t.Fatalf("got %s, %v; want an error and root.sqsh", p, err)
	}
}

// TestStoreFallbackReadOnly: on a store that cannot be changed (a card
// gone read-only), a fallback still goes down the protocol's order, never
// back to what just failed: committed root -> root.prev -> nothing; a trial
// -> the committed root. ReadOnlyPlan alone booted the failed committed
// root again at every fallback.
func TestStoreFallbackReadOnly(t *testing.T) {
	for _, tc := range []struct {
		names []string
		boots []string // each boot then fails; "" is nothing left
	}{
		{[]string{"root.sqsh", "root.prev.sqsh"}, []string{"root.sqsh", "root.prev.sqsh", ""}},
		{[]string{"root.sqsh"}, []string{"root.sqsh", ""}},
		{[]string{"root.prev.sqsh"}, []string{"root.prev.sqsh", ""}},
		{[]string{"root.sqsh", "root.prev.sqsh", "root.trying-0.sqsh"}, []string{"root.trying-0.sqsh", "root.sqsh", "root.prev.sqsh", ""}},
	} {
		m := conformance.NewMem(sfx)
		for _, n := range tc.names {
			if err := m.Make(n, n); err != nil {
				t.Fatal(err)
			}
		}
		s := &trampoline.Store{SlotDir: t.TempDir(), Backend: readOnly{m},
			BeforeChange: func() error { return unix.EROFS }} // the remount to read-write fails
		// The first boot's plan as a writable store made it (a trial's try
		// counted before the card went read-only).
		plan := trampoline.BootPlan{Boot: trampoline.ParseName(tc.boots[0], sfx)}
		var got []string
		for i := 0; i < 6 && plan.Boot.Name != ""; i++ {
			got = append(got, plan.Boot.Name)
			plan, _ = s.Fallback(plan, "does not mount")
		}
		got = append(got, plan.Boot.Name)
		if strings.Join(got, " ") != strings.Join(tc.boots, " ") {
			t.Errorf("%v read-only: boots %q, want %q", tc.names, got, tc.boots)
		}
	}
}

func TestStatusSummary(t *testing.T) {
	tests := []struct {
		names []string
		want  string
	}{
		{[]string{"root.sqsh", "root.try-1.sqsh"}, "next boot: tries root.try-1.sqsh (new image, 1 try); if it does not commit, boots root.sqsh"},
		{[]string{"root.sqsh", "root.try-3.sqsh"}, "next boot: tries root.try-3.sqsh (new image, 3 tries); if it does not commit, boots root.sqsh"},
		{[]string{"root.sqsh", "root.trying-1.sqsh"}, "next boot: tries root.trying-1.sqsh again (trial not committed yet, 1 try left); if it does not commit, boots root.sqsh"},
		{[]string{"root.sqsh"}, "next boot: boots root.sqsh (committed root)"},
		{[]string{"root.prev.sqsh"}, "next boot: boots root.prev.sqsh (committed root missing: previous root)"},
		{nil, "next boot: no bootable root in the store (no root image in the store); falls back to classic mode"},
	}
	for _, tt := range tests {
		var ents []trampoline.DirEntry
		for _, n := range tt.names {
			ents = append(ents, trampoline.DirEntry{Name: n})
		}
		st := trampoline.NewStatus("/s", state(tt.names...), ents, nil, "")
		if st.NextBoot.Summary != tt.want {
			t.Errorf("%v:\n got %s\nwant %s", tt.names, st.NextBoot.Summary, tt.want)
		}
	}
}

func TestStatusJSON(t *testing.T) {
	names := []string{"root.sqsh", "root.trying-0.sqsh", ".lock"}
	ents := []trampoline.DirEntry{{Name: "root.sqsh", Size: 10}, {Name: "root.trying-0.sqsh", Size: 20}, {Name: ".lock"}}
	st := trampoline.NewStatus("/s", state(names...), ents, nil, "root.trying-0.sqsh")
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"store":"/s"`, `"booted":"root.trying-0.sqsh"`, `"role":"trying"`, `"size":20`,
		`"next_boot":{"entry":"root.sqsh","role":"committed"`,
		`"summary":"running trial root.trying-0.sqsh, not committed: run commit to keep it; next boot: boots root.sqsh`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("status JSON lacks %s:\n%s", want, b)
		}
	}
	if strings.Contains(string(b), ".lock") {
		t.Errorf("status JSON lists the lock file:\n%s", b)
	}
}

// TestHostileEntriesIgnored: under protocol names, a symlink (out of the
// store), a FIFO and a device are no entries: the boot never picks them.
func TestHostileEntriesIgnored(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "root.sqsh"), []byte("committed"), 0o644); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "evil.sqsh")
	if err := os.WriteFile(outside, []byte("evil"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "root.try-1.sqsh")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(dir, "root.prev.sqsh"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &trampoline.Store{SlotDir: dir, Backend: trampoline.NewDirBackend(dir, sfx, nil)}
	p, err := s.Boot()
	if err != nil || p.Trial || p.Boot.Name != "root.sqsh" {
		t.Fatalf("boot: %s, %v; want root.sqsh, no trial through a link", p, err)
	}
	st, _ := s.State()
	if st.Has("root.try-1.sqsh") || st.Has("root.prev.sqsh") {
		t.Errorf("state %v includes a link or a FIFO", st.Names())
	}
}
