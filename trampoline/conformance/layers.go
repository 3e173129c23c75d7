package conformance

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/overlayupd/overlayupd/trampoline"
)

// The trial layers (trampoline/layer.go) through the protocol, on a real
// backend: every state with the layer names, every event, a crash after
// every step of it, then boots (each trial crashing without a commit), the
// boot path's part modelled as it does it: fold layer.fold into the
// persistent layer (a set of layer labels here), FoldDone, and make
// layer.trial for a trial boot. The invariants:
//
//	L1  a trial never starts on another trial's layer (its writes, or a
//	    failed trial's, would become its own);
//	L2  a layer reaches the persistent layer only when its trial was
//	    committed: a failed, rolled-back, superseded or orphaned trial's
//	    writes never do;
//	L3  a committed trial's layer always reaches it, and so does a fold
//	    pending from before (never dropped), however the commit or the
//	    boot was cut;
//	L4  a committed boot has no trial layer left.

// LayerSetup is a Setup with the trial layer names.
type LayerSetup struct {
	Setup
	Trial  string // "": none; "owned": the trying (or committing) root's; "orphan": no trial's
	Fold   bool   // layer.fold: a committed trial's layer, not folded yet
	Failed bool   // layer.failed
}

func (s LayerSetup) String() string {
	p := []string{s.Setup.String()}
	if s.Trial != "" {
		p = append(p, "layer."+s.Trial)
	}
	if s.Fold {
		p = append(p, "layer.fold")
	}
	if s.Failed {
		p = append(p, "layer.failed")
	}
	return strings.Join(p, "+")
}

// Labels is the setup's model: a trial layer is labelled "T:" and the
// label of its trial, the pending fold "F:old", the failed layer "X:old".
func (s LayerSetup) Labels(sfx string) Labels {
	l := s.Setup.Labels(sfx)
	switch s.Trial {
	case "owned":
		owner := l.Role(sfx, trampoline.RoleTrying)
		if owner == "" {
			owner = l.Role(sfx, trampoline.RoleCommitting)
		}
		l[trampoline.LayerTrial] = "T:" + owner
	case "orphan":
		l[trampoline.LayerTrial] = "T:orphan"
	}
	if s.Fold {
		l[trampoline.LayerFold] = "F:old"
	}
	if s.Failed {
		l[trampoline.LayerFailed] = "X:old"
	}
	return l
}

// LayerSetups is every reachable state with a committed root and trial
// layers: a trial layer is owned only where a trial is (trying, or a
// commit in flight), an orphan only where none is; layer.trial and
// layer.fold are not both there (a boot with a fold pending makes no trial
// layer, and commit refuses that state). root.failed is always there: a
// trial layer fails with its trial whether or not one failed before (the
// entries' own suite covers both), and the real backends pay for every
// setup.
func LayerSetups() []LayerSetup {
	var out []LayerSetup
	for _, next := range []bool{false, true} {
		for _, prev := range []bool{false, true} {
			for _, failed := range []bool{true} {
				for trying := -1; trying <= 1; trying++ {
					if next && trying >= 0 {
						continue
					}
					for staged := 0; staged <= 1; staged++ {
						base := Setup{Root: true, Next: next, Prev: prev, Failed: failed, Trying: trying, Staged: staged}
						trials := []string{""}
						if trying >= 0 || next {
							trials = append(trials, "owned")
						} else {
							trials = append(trials, "orphan")
						}
						for _, tl := range trials {
							for _, fold := range []bool{false, true} {
								if fold && tl != "" {
									continue
								}
								for _, lf := range []bool{false, true} {
									out = append(out, LayerSetup{Setup: base, Trial: tl, Fold: fold, Failed: lf})
								}
							}
						}
					}
				}
			}
		}
	}
	return out
}

// layerWorld is a backend and the persistent layer's model: which layers
// were folded into it.
type layerWorld struct {
	b      Backend
	folded map[string]bool
}

// layerBoot is one boot with the boot path's layer work; cut, if >= 0,
// stops it after that many steps (ops, the fold, FoldDone's ops) as a
// power cut would. It returns the plan, the booted label and whether it
// ran to the end.
func layerBoot(t *testing.T, w *layerWorld, cut int, where string) (trampoline.BootPlan, string, bool) {
	t.Helper()
	st, _, err := trampoline.LoadState(w.b)
	must(t, err)
	if !st.HasCommitted() {
		t.Fatalf("%s: no committed root (invariant 1): %v", where, st.Names())
	}
	plan := trampoline.Decide(st)
	steps := 0
	run := func(ops []trampoline.Op) bool {
		for _, op := range ops {
			if cut >= 0 && steps == cut {
				return false
			}
			if err := trampoline.Do(w.b, op); err != nil {
				t.Fatalf("%s: %s: %v", where, plan, err)
			}
			steps++
		}
		return true
	}
	if !run(plan.Ops) {
		return plan, "", false
	}
	if plan.After.Has(trampoline.LayerFold) {
		if cut >= 0 && steps == cut {
			return plan, "", false
		}
		l, err := w.b.Label(trampoline.LayerFold)
		must(t, err)
		w.folded[l] = true
		steps++
		if !run(trampoline.FoldDone(plan.After).Ops) {
			return plan, "", false
		}
	}
	if plan.Boot.Name == "" {
		t.Fatalf("%s: boots nothing: %s", where, plan)
	}
	label, err := w.b.Label(plan.Boot.Name)
	must(t, err)
	now := labels(t, w.b)
	tl, has := now[trampoline.LayerTrial]
	switch {
	case plan.Trial && has && tl != "T:"+label:
		t.Fatalf("%s: trial %q boots on layer %q, another trial's (L1)", where, label, tl)
	case plan.Trial && !has:
		must(t, w.b.Make(trampoline.LayerTrial, "T:"+label))
	case !plan.Trial && has:
		t.Fatalf("%s: committed boot of %q with a trial layer %q left (L4)", where, label, tl)
	}
	return plan, label, true
}

// layerBootLoop boots until a committed root boots, every trial crashing.
func layerBootLoop(t *testing.T, w *layerWorld, where string) {
	t.Helper()
	for n := 0; n < 20; n++ {
		plan, _, _ := layerBoot(t, w, -1, fmt.Sprintf("%s: boot %d", where, n))
		if !plan.Trial {
			return
		}
	}
	t.Fatalf("%s: no committed boot after 20 boots", where)
}

// checkFolded checks L2 and L3 once the boots are done: folded holds the
// pending fold and the layers of committed trials, all of them when must.
func checkFolded(t *testing.T, w *layerWorld, allowed, required []string, where string) {
	t.Helper()
	ok := map[string]bool{}
	for _, a := range allowed {
		ok[a] = true
	}
	for l := range w.folded {
		if !ok[l] {
			t.Errorf("%s: layer %q reached the persistent layer, its trial was never committed (L2); folded %v", where, l, keys(w.folded))
		}
	}
	for _, r := range required {
		if !w.folded[r] {
			t.Errorf("%s: layer %q never reached the persistent layer (L3); folded %v", where, r, keys(w.folded))
		}
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// expectations: what may and must be folded, for a setup whose trial
// committed is the one committed by the event (or "").
func expectations(s LayerSetup, l Labels, committed string) (allowed, required []string) {
	if s.Fold {
		allowed, required = append(allowed, "F:old"), append(required, "F:old")
	}
	owner := l[trampoline.LayerTrial]
	for _, c := range []string{committed, nextLabel(l)} {
		if c == "" {
			continue
		}
		allowed = append(allowed, "T:"+c)
		if owner == "T:"+c {
			required = append(required, owner)
		}
	}
	return allowed, required
}

// nextLabel is the label of root.next in l, whatever the suffix.
func nextLabel(l Labels) string {
	for n, v := range l {
		if strings.HasPrefix(n, "root.next") {
			return v
		}
	}
	return ""
}

func testLayerEvents(t *testing.T, newBackend func(t *testing.T) Backend) {
	sfx := newBackend(t).Suffix()
	for _, s := range LayerSetups() {
		for _, ev := range events(s.Labels(sfx), sfx) {
			name := fmt.Sprintf("%s/%s", s, ev.Kind)
			if ev.Kind == trampoline.EvStage {
				name += fmt.Sprintf("-%d", ev.Tries)
			}
			if ev.Force {
				name += "-force"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				testLayerEvent(t, newBackend, s, ev)
			})
		}
	}
}

func testLayerEvent(t *testing.T, newBackend func(t *testing.T) Backend, s LayerSetup, ev trampoline.Event) {
	sfx := newBackend(t).Suffix()
	before := s.Labels(sfx)
	if ev.Kind == trampoline.EvStage || ev.Kind == trampoline.EvKeep {
		before[".stage-new"] = "new"
	}
	tr, err := trampoline.Next(before.State(sfx), ev)
	if err != nil {
		return
	}
	full, err := before.Run(tr.Ops)
	if err != nil {
		t.Fatalf("transition %s is invalid on %v: %v", tr, before, err)
	}
	committed := ""
	if ev.Kind == trampoline.EvCommit {
		committed = full.Role(sfx, trampoline.RoleCommitted)
	}
	for i := 0; i <= len(tr.Ops); i++ {
		w := &layerWorld{b: newBackend(t), folded: map[string]bool{}}
		populate(t, w.b, before)
		must(t, trampoline.Execute(w.b, tr.Ops[:i]))
		where := fmt.Sprintf("crash after step %d of [%s]", i, tr)
		got := labels(t, w.b)
		if got[trampoline.LayerTrial] != "" && got[trampoline.LayerFold] != "" {
			t.Fatalf("%s: both a trial layer and a pending fold: %v", where, got)
		}
		layerBootLoop(t, w, where)
		c := ""
		if i >= 1 {
			c = committed // past the commit point, the first op
		}
		allowed, required := expectations(s, before, c)
		checkFolded(t, w, allowed, required, where)
	}
}

// testLayerBootCrashes cuts every boot-time step: the plan's ops, the fold,
// and FoldDone's ops; then boots until a committed root boots.
func testLayerBootCrashes(t *testing.T, newBackend func(t *testing.T) Backend) {
	sfx := newBackend(t).Suffix()
	for _, s := range LayerSetups() {
		t.Run(s.String(), func(t *testing.T) {
			t.Parallel()
			before := s.Labels(sfx)
			for cut := 0; ; cut++ {
				w := &layerWorld{b: newBackend(t), folded: map[string]bool{}}
				populate(t, w.b, before)
				where := fmt.Sprintf("boot cut after step %d", cut)
				_, _, done := layerBoot(t, w, cut, where)
				layerBootLoop(t, w, where)
				allowed, required := expectations(s, before, "")
				checkFolded(t, w, allowed, required, where)
				if done {
					return
				}
			}
		})
	}
}
