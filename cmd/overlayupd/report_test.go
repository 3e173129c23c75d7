package main

import (
	"bytes"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/overlayupd/overlayupd/trampoline"
)

// runJSON runs overlayupd with args and --json, and decodes its stdout (the
// progress and warnings on stderr are not part of it) into a report.
func runJSON(t *testing.T, e *env, args ...string) report {
	t.Helper()
	root := newRootCmd("overlayupd", e)
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append(args, "--json"))
	if err := root.Execute(); err != nil {
		t.Fatalf("%s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errOut.String())
	}
	var r report
	dec := json.NewDecoder(&out)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("%s --json: not one report: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	if dec.More() {
		t.Errorf("%s --json: more than one object on stdout", strings.Join(args, " "))
	}
	return r
}

// The commands that change a store say with --json what they did, step by
// step, and what the store looks like after it, as status does.
func TestStoreCommandsJSON(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	top, _, _, trial := trialStore(t, e)
	roles := func(r report) map[string]string {
		m := map[string]string{}
		if r.Store != nil {
			for _, en := range r.Store.Entries {
				m[en.Name] = en.Role.String()
			}
		}
		return m
	}

	r := runJSON(t, e, "commit", "--store", top, "--health-dir", t.TempDir())
	if r.Command != "commit" || !r.Changed || r.Committed != "root.sqsh" || r.Trial != trial || r.Previous != "root.prev.sqsh" {
		t.Errorf("commit: %+v", r)
	}
	if !slices.Contains(r.Actions, "rename "+trial+" -> root.next.sqsh") || !strings.Contains(r.Message, "committed root.sqsh") {
		t.Errorf("commit: actions %q, message %q: want the commit point's rename and the words", r.Actions, r.Message)
	}
	if got := roles(r); got["root.sqsh"] != "committed" || got["root.prev.sqsh"] != "previous" || len(got) != 2 {
		t.Errorf("commit: the store after it %v", got)
	}

	fakeBooted(e, "root.sqsh") // the trial's image, under its new name
	if r = runJSON(t, e, "commit", "--if-trial", "--store", top); r.Changed || len(r.Actions) != 0 || r.Committed != "" || !strings.Contains(r.Message, "nothing to commit") {
		t.Errorf("commit --if-trial outside a trial: %+v", r)
	}

	r = runJSON(t, e, "rollback", "--store", top)
	if r.Command != "rollback" || !r.Changed || !slices.Equal(r.Actions, []string{"exchange root.sqsh <-> root.prev.sqsh"}) {
		t.Errorf("rollback: %+v", r)
	}
	if r.Store == nil || r.Store.NextBoot.Entry != "root.sqsh" {
		t.Errorf("rollback: no next boot in %+v", r.Store)
	}

	left := slotPath(top, ".stage-12345")
	testMust(t, os.WriteFile(left, []byte("half an image"), 0o644))
	if r = runJSON(t, e, "gc", "--store", top); !r.Changed || !slices.Equal(r.Removed, []string{".stage-12345"}) || len(r.Actions) == 0 {
		t.Errorf("gc: %+v", r)
	}
	if r = runJSON(t, e, "gc", "--store", top); r.Changed || r.Removed != nil || r.Actions == nil || len(r.Actions) != 0 {
		t.Errorf("gc with nothing to remove: %+v (want changed false, actions [])", r)
	}

	testMust(t, os.WriteFile(slotPath(top, trampoline.BootCountName(2)), nil, 0o644))
	if r = runJSON(t, e, "mark-good", "--store", top); !r.Changed || !slices.Equal(r.Actions, []string{"rename boots-2 -> boots-0"}) {
		t.Errorf("mark-good: %+v", r)
	}
	if r = runJSON(t, e, "mark-good", "--store", top); r.Changed || !strings.Contains(r.Message, "already marked good") {
		t.Errorf("mark-good again: %+v", r)
	}
}

func testMust(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
