package trampoline_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/overlayupd/overlayupd/trampoline"
)

func TestNext(t *testing.T) {
	stage := func(name string, n int) trampoline.Event {
		return trampoline.Event{Kind: trampoline.EvStage, Stage: name, Tries: n}
	}
	commit := func(booted string, force bool) trampoline.Event {
		return trampoline.Event{Kind: trampoline.EvCommit, Booted: booted, Force: force}
	}
	rollback := trampoline.Event{Kind: trampoline.EvRollback}
	fail := trampoline.Event{Kind: trampoline.EvFail}
	gc := trampoline.Event{Kind: trampoline.EvGC}
	tests := []struct {
		name    string
		names   []string
		ev      trampoline.Event
		wantOps string
		wantErr error
	}{
		{"stage", []string{"root.sqsh", ".stage-a"}, stage(".stage-a", 1), "rename .stage-a -> root.try-1.sqsh", nil},
		{"stage three tries", []string{"root.sqsh", ".stage-a"}, stage(".stage-a", 3), "rename .stage-a -> root.try-3.sqsh", nil},
		{"stage zero tries", []string{"root.sqsh", ".stage-a"}, stage(".stage-a", 0), "", trampoline.ErrBadTries},
		{"stage too many tries", []string{"root.sqsh", ".stage-a"}, stage(".stage-a", 100), "", trampoline.ErrBadTries},
		{"stage missing temp", []string{"root.sqsh"}, stage(".stage-a", 1), "", trampoline.ErrBadStage},
		{"stage a protocol entry", []string{"root.sqsh", "root.prev.sqsh"}, stage("root.prev.sqsh", 1), "", trampoline.ErrBadStage},
		{"stage without committed root", []string{".stage-a"}, stage(".stage-a", 1), "", trampoline.ErrNoCommittedRoot},
		{"stage replaces same count", []string{"root.sqsh", ".stage-a", "root.try-1.sqsh"}, stage(".stage-a", 1),
			"exchange .stage-a <-> root.try-1.sqsh; remove .stage-a", nil},
		{"stage replaces, fewer tries", []string{"root.sqsh", ".stage-a", "root.try-3.sqsh"}, stage(".stage-a", 1),
			"rename root.try-3.sqsh -> root.try-1.sqsh; exchange .stage-a <-> root.try-1.sqsh; remove .stage-a", nil},
		{"stage replaces, more tries", []string{"root.sqsh", ".stage-a", "root.try-1.sqsh"}, stage(".stage-a", 3),
			"exchange .stage-a <-> root.try-1.sqsh; rename root.try-1.sqsh -> root.try-3.sqsh; remove .stage-a", nil},
		{"stage during a trial", []string{"root.sqsh", ".stage-a", "root.trying-0.sqsh"}, stage(".stage-a", 1),
			"rename .stage-a -> root.try-1.sqsh", nil},

		{"commit", []string{"root.sqsh", "root.trying-0.sqsh"}, commit("root.trying-0.sqsh", false),
			"rename root.trying-0.sqsh -> root.next.sqsh; rename root.sqsh -> root.prev.sqsh; rename root.next.sqsh -> root.sqsh", nil},
		{"commit drops old prev", []string{"root.sqsh", "root.prev.sqsh", "root.trying-2.sqsh"}, commit("root.trying-2.sqsh", false),
			"rename root.trying-2.sqsh -> root.next.sqsh; rename root.prev.sqsh -> rm-root.prev.sqsh; rename root.sqsh -> root.prev.sqsh; rename root.next.sqsh -> root.sqsh; remove rm-root.prev.sqsh", nil},
		{"commit booted elsewhere", []string{"root.sqsh", "root.trying-0.sqsh"}, commit("root.sqsh", false), "", trampoline.ErrNotInTrial},
		{"commit booted unknown", []string{"root.sqsh", "root.trying-0.sqsh"}, commit("", false), "", trampoline.ErrNotInTrial},
		{"commit forced", []string{"root.sqsh", "root.trying-0.sqsh"}, commit("", true),
			"rename root.trying-0.sqsh -> root.next.sqsh; rename root.sqsh -> root.prev.sqsh; rename root.next.sqsh -> root.sqsh", nil},
		{"commit staged, not booted", []string{"root.sqsh", "root.try-1.sqsh"}, commit("root.sqsh", false), "", trampoline.ErrNotInTrial},
		{"commit staged, forced", []string{"root.sqsh", "root.try-1.sqsh"}, commit("root.sqsh", true),
			"rename root.try-1.sqsh -> root.next.sqsh; rename root.sqsh -> root.prev.sqsh; rename root.next.sqsh -> root.sqsh", nil},
		{"commit nothing", []string{"root.sqsh", "root.prev.sqsh"}, commit("root.sqsh", true), "", trampoline.ErrNothingToDo},
		{"commit finishes interrupted commit", []string{"root.next.sqsh", "root.prev.sqsh"}, commit("root.trying-0.sqsh", false),
			"rename root.next.sqsh -> root.sqsh", nil},

		{"rollback swaps", []string{"root.sqsh", "root.prev.sqsh"}, rollback, "exchange root.sqsh <-> root.prev.sqsh", nil},
		{"rollback, root missing", []string{"root.prev.sqsh"}, rollback, "rename root.prev.sqsh -> root.sqsh", nil},
		{"rollback nothing", []string{"root.sqsh"}, rollback, "", trampoline.ErrNothingToDo},
		{"rollback cancels staged", []string{"root.sqsh", "root.prev.sqsh", "root.try-1.sqsh"}, rollback,
			"rename root.try-1.sqsh -> rm-root.try-1.sqsh; remove rm-root.try-1.sqsh", nil},
		{"rollback cancels trial then staged", []string{"root.sqsh", "root.failed.sqsh", "root.trying-1.sqsh", "root.try-1.sqsh"}, rollback,
			"rename root.failed.sqsh -> rm-root.failed.sqsh; rename root.trying-1.sqsh -> root.failed.sqsh; rename root.try-1.sqsh -> rm-root.try-1.sqsh; remove rm-root.failed.sqsh; remove rm-root.try-1.sqsh", nil},
		{"rollback after interrupted commit", []string{"root.sqsh", "root.next.sqsh"}, rollback,
			"rename root.sqsh -> root.prev.sqsh; rename root.next.sqsh -> root.sqsh; exchange root.sqsh <-> root.prev.sqsh", nil},

		{"fail trial", []string{"root.sqsh", "root.trying-1.sqsh"}, fail, "rename root.trying-1.sqsh -> root.failed.sqsh", nil},
		{"fail without trial", []string{"root.sqsh", "root.try-1.sqsh"}, fail, "", trampoline.ErrNothingToDo},

		{"gc", []string{"root.sqsh", "root.failed.sqsh", "rm-x", ".stage-y", ".lock", "failed.reason"}, gc,
			"rename root.failed.sqsh -> rm-root.failed.sqsh; remove .stage-y; remove rm-x; remove rm-root.failed.sqsh", nil},
		{"gc clean store", []string{"root.sqsh", "root.prev.sqsh"}, gc, "no change", nil},
		{"unknown event", []string{"root.sqsh"}, trampoline.Event{Kind: 99}, "", errors.New("")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := trampoline.Next(state(tt.names...), tt.ev)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("got error %v, want none", err)
			case tt.wantErr != nil && err == nil:
				t.Fatalf("got %s, want error %v", tr, tt.wantErr)
			case tt.wantErr != nil && tt.wantErr.Error() != "" && !errors.Is(err, tt.wantErr):
				t.Fatalf("got error %v, want %v", err, tt.wantErr)
			case tt.wantErr != nil:
				if len(tr.Ops) != 0 {
					t.Errorf("refused, yet ops %s", tr)
				}
				return
			}
			if got := tr.String(); got != tt.wantOps {
				t.Errorf("ops:\n got %s\nwant %s", got, tt.wantOps)
			}
		})
	}
}

func TestTransitionDeletes(t *testing.T) {
	st := trampoline.NewState(".sqsh", "root.sqsh", "root.failed.sqsh", "rm-x", ".stage-y")
	tr, err := trampoline.Next(st, trampoline.Event{Kind: trampoline.EvGC})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(tr.Deletes(), " ")
	if want := ".stage-y rm-x root.failed.sqsh"; got != want {
		t.Errorf("gc deletes %q, want %q (transition %s)", got, want, tr)
	}
}
