package overlay

import (
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/overlayupd/overlayupd/internal/kcmdline"
	"github.com/overlayupd/overlayupd/internal/layer"
	"github.com/overlayupd/overlayupd/internal/mounts"
)

// ShadowPolicy is overlayupd.shadow=: who wins where a file of the
// persistent layer hides what a new image changed.
type ShadowPolicy string

// The shadow policies.
const (
	ShadowKeep  ShadowPolicy = "keep"  // the layer's file (the user's) wins; the boot log and status say which
	ShadowImage ShadowPolicy = "image" // the image's wins; the user's is kept aside, never lost
)

// ShadowFromCmdline reads overlayupd.shadow= (default keep); an unknown
// value gives a warning and the default.
func ShadowFromCmdline(cmdline string) (ShadowPolicy, string) {
	v, ok := kcmdline.Lookup(kcmdline.Kernel(cmdline), "overlayupd.shadow")
	switch p := ShadowPolicy(v); {
	case !ok || p == ShadowKeep:
		return ShadowKeep, ""
	case p == ShadowImage:
		return ShadowImage, ""
	}
	return ShadowKeep, fmt.Sprintf("overlayupd.shadow=%q: want keep or image; using keep", v)
}

// AsideDir is where overlayupd.shadow=image sets the user's files aside in
// a committed boot: beside the layer's data/ and work/, so on the same
// filesystem (one rename each), and visible in the running system under
// /overlay/rwdata/shadowed. Each check gets a directory of its own, N.
const AsideDir = "shadowed"

// ShadowStep is the shadow check of one boot, as data for the plan: the
// persistent layer Layer (its data directory), the root it was used with
// (Prev, mounted at ShadowbaseDir for the check) and the new one (mounted
// at RobaseDir by then). With the image policy, a trial boot fills Top (a
// tmpfs stacked above the persistent layer: layer.Reveal), a committed
// boot sets the user's entries aside in Aside (layer.SetAside).
type ShadowStep struct {
	Prev   mounts.Spec
	Layer  string
	Policy ShadowPolicy
	Top    string // trial with the image policy: ShadowtopDir
	Aside  string // committed boot with the image policy
	// Skip leaves out what this boot's fold just brought in (the trial's
	// own writes over the new image are no shadows).
	Skip map[string]bool
	// Done gets the result, before the pivot (the boot path records it).
	Done func(ShadowResult)
}

// ShadowResult is what a shadow check found and did.
type ShadowResult struct {
	Shadows []layer.Shadow
	Aside   map[string]string // path -> where the user's entry is now
	Err     error             // the check did not finish (nothing was changed after it)
}

func (s *ShadowStep) String() string {
	w := fmt.Sprintf("shadow-check %s against %s (%s)", s.Layer, s.Prev.Source, s.Policy)
	switch {
	case s.Top != "":
		w += ", reveal in " + s.Top
	case s.Aside != "":
		w += ", set aside in " + s.Aside
	}
	return w
}

// NextAside is the aside directory for a new check under the layer
// directory dir: AsideDir/N, N one more than the highest there (names
// lists what AsideDir holds).
func NextAside(dir string, names []string) string {
	n := 0
	for _, name := range names {
		if k, err := strconv.Atoi(name); err == nil && k > n && strconv.Itoa(k) == name {
			n = k
		}
	}
	return filepath.Join(dir, AsideDir, strconv.Itoa(n+1))
}

// ShadowLines is what the boot log says of a result, one line per file
// (at most max; a last line says how many more).
func ShadowLines(r ShadowResult, policy ShadowPolicy, trial bool, max int) []string {
	if r.Err != nil {
		return []string{"shadow check: " + r.Err.Error()}
	}
	var out []string
	for i, s := range r.Shadows {
		if i == max {
			out = append(out, "shadow: and "+strconv.Itoa(len(r.Shadows)-max)+" more (overlayupd status lists them)")
			break
		}
		what := "the persistent layer's " + s.Layer.String() + " wins (overlayupd.shadow=keep)"
		switch {
		case policy == ShadowImage && trial:
			what = "the image's shows in this trial, the persistent layer's is untouched"
		case policy == ShadowImage && r.Aside[s.Path] != "":
			what = "the image's shows, the persistent layer's is now " + r.Aside[s.Path]
		}
		out = append(out, "shadow: /"+s.Path+" "+s.Change+" by the new image: "+what)
	}
	return out
}
