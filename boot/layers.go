package boot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/internal/layer"
	"github.com/overlayupd/overlayupd/overlay"
	"github.com/overlayupd/overlayupd/trampoline"
)

// layers is the boot path's part of the persistent layer's protocol
// (trampoline/layer.go): before anything mounts, the fold of a committed
// trial's layer; for each plan, which directory is the writable layer (a
// trial's own, with the committed one read-only below it) and whether the
// shadow check runs.
type layers struct {
	log *overlay.Log
	s   *trampoline.Store
	w   *writableStore
	cfg *overlay.Config
	// cleared: the layer was set aside before the fold (persist's
	// clear-layer), so the plan must not move it again.
	cleared bool
	// folded are the paths this boot's fold moved into the layer: the
	// trial's writes over the new root, no shadows.
	folded map[string]bool
	// foldStep is the fold's step hook: nil but in the crash tests'
	// build (foldhook.go).
	foldStep func(string) error
}

// persistent reports whether this boot has a persistent layer at all.
func (l *layers) persistent() bool { return l.cfg.RWLayer != overlay.Tmpfs && !l.cfg.Disabled }

// data is the persistent layer's upper directory: the committed one.
func (l *layers) data() string { return filepath.Join(l.cfg.RWLayerDir, "data") }

// prepare folds layer.fold, if the state after the boot's ops has one,
// into the persistent layer. Why before the mount, and not at commit: at
// commit the persistent layer is a lower layer of the running overlay
// (changing a lower layer under a mounted overlay is undefined), and the
// committed system goes on writing into the trial's layer until it
// reboots: only a boot sees the layer whole and unused. A fold that
// cannot be done stays pending (nothing is lost) and this boot gets a
// tmpfs layer: a boot that wrote into the persistent layer now would be
// overwritten by the fold later.
func (l *layers) prepare(after trampoline.State) {
	if !after.Has(trampoline.LayerFold) {
		return
	}
	if !l.persistent() {
		l.log.Warnf("store: %s/%s holds a committed trial's writes, folded into the persistent layer at a boot that has one (%s is %s now)",
			trampoline.SlotDir, trampoline.LayerFold, overlay.VarRWLayer, l.cfg.RWLayer)
		return
	}
	if err := l.fold(after); err != nil {
		l.log.Warnf("store: fold %s into the persistent layer %s: %v; kept for the next boot, this boot has a tmpfs writable layer", trampoline.LayerFold, l.cfg.RWLayerDir, err)
		l.cfg.RWLayer = overlay.Tmpfs
	}
}

func (l *layers) fold(after trampoline.State) error {
	if err := l.w.make(); err != nil {
		return err
	}
	src := filepath.Join(l.s.SlotDir, trampoline.LayerFold)
	if fi, err := os.Lstat(src); err != nil || !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", src)
	}
	// persist folded the layer into the committed root, which is to start
	// with an empty layer (clear-layer): set the old one aside first, so
	// that the trial's writes land in the new one, not in the backup.
	if root, ok := after.Find(trampoline.RoleCommitted); ok && clearLayer(l.log, l.s, l.w, root.Name) {
		if err := overlay.MoveLayerAside(l.cfg.RWLayerDir); err != nil {
			return err
		}
		l.cleared = true
	}
	if err := os.MkdirAll(l.data(), 0o755); err != nil {
		return err
	}
	upper := filepath.Join(src, "data")
	if _, err := os.Lstat(upper); errors.Is(err, fs.ErrNotExist) {
		// A trial layer that never got its directories: nothing to fold.
		return l.s.FoldDone()
	}
	l.folded = map[string]bool{}
	start := time.Now()
	l.log.Infof("store: folding the committed trial's writes (%s) into the persistent layer %s", src, l.cfg.RWLayerDir)
	st, err := layer.Fold(upper, l.data(), filepath.Join(src, "trash"), layer.FoldOptions{Step: l.foldStep, Moved: func(rel string) { l.folded[rel] = true }})
	if err != nil {
		return err
	}
	if err := l.s.FoldDone(); err != nil {
		return err
	}
	l.log.Infof("store: folded the committed trial's writes into the persistent layer %s (%d moved, %d replaced, in %s)",
		l.cfg.RWLayerDir, st.Moved, st.Aside, time.Since(start).Round(time.Millisecond))
	return nil
}

// layout fills in the writable layer of plan's boot.
func (l *layers) layout(lay *overlay.Layout, plan trampoline.BootPlan) {
	if !l.persistent() {
		return
	}
	if plan.Trial {
		dir := filepath.Join(l.s.SlotDir, trampoline.LayerTrial)
		if fi, err := os.Lstat(dir); err == nil && !fi.IsDir() {
			// A link would bind the layer anywhere: never follow one.
			l.log.Warnf("store: skipping %s: not a directory; the trial boots with a tmpfs writable layer", dir)
			l.cfg.RWLayer = overlay.Tmpfs
			return
		}
		lay.TrialLayer = dir
		if l.cfg.RWLayer == overlay.Persistent && isDir(l.data()) {
			lay.Middle = l.data()
		}
	}
	if l.cleared {
		lay.ClearLayer = false
	}
	lay.Shadow = l.shadowStep(plan)
}

// shadowStep is the shadow check of this boot, or nil: it runs at the
// first boot of a root over a persistent layer that was used with another
// root (layer.base), against that root.
func (l *layers) shadowStep(plan trampoline.BootPlan) *overlay.ShadowStep {
	if l.cfg.RWLayer != overlay.Persistent {
		return nil
	}
	id, err := l.s.EntryID(plan.Boot.Name)
	if err != nil || id == "" {
		return nil
	}
	base, err := l.s.LayerBase()
	if err != nil {
		l.log.Warnf("store: %v", err)
	}
	if base == id {
		return nil
	}
	prev := l.s.EntryWithID(plan.After, base)
	if prev == "" || !hasEntries(l.data()) {
		// Nothing to compare with (the first boot with a layer, or its
		// root is gone), or nothing in the layer: this root is its base.
		if !plan.Trial && l.w.make() == nil {
			if err := l.s.SetLayerBase(id); err != nil {
				l.log.Warnf("store: %v", err)
			}
		}
		return nil
	}
	step := &overlay.ShadowStep{Prev: l.s.Format.Lower(l.s.SlotDir, prev), Layer: l.data(), Policy: l.cfg.Shadow, Skip: l.folded}
	if l.cfg.Shadow == overlay.ShadowImage {
		if plan.Trial {
			step.Top = overlay.ShadowtopDir
		} else {
			names, _ := readNames(filepath.Join(l.cfg.RWLayerDir, overlay.AsideDir))
			step.Aside = overlay.NextAside(l.cfg.RWLayerDir, names)
		}
	}
	step.Done = func(r overlay.ShadowResult) { l.record(plan, prev, id, r) }
	return step
}

// record logs a shadow check and writes its report; a committed boot's
// check makes its root the layer's base. It runs in the plan, before the
// pivot: the slot directory is where it was, and writable (the persistent
// layer made the store's filesystem writable).
func (l *layers) record(plan trampoline.BootPlan, prev, id string, r overlay.ShadowResult) {
	for _, line := range overlay.ShadowLines(r, l.cfg.Shadow, plan.Trial, 50) {
		l.log.Warnf("store: %s", line)
	}
	rep := trampoline.ShadowReport{Time: time.Now().UTC(), Root: plan.Boot.Name, Against: prev, Policy: string(l.cfg.Shadow), Trial: plan.Trial}
	if r.Err != nil {
		rep.Error = r.Err.Error()
	}
	for i, s := range r.Shadows {
		if i == maxReported {
			rep.More = len(r.Shadows) - i
			break
		}
		f := trampoline.ShadowFile{Path: "/" + s.Path, Change: s.Change, Layer: s.Layer.String(), Action: "kept"}
		switch {
		case l.cfg.Shadow == overlay.ShadowImage && plan.Trial:
			f.Action = "image"
		case r.Aside[s.Path] != "":
			// Where the user finds it in the running system: the layer
			// directory is bound at /overlay/rwdata.
			f.Action, f.Aside = "moved", overlay.RwdataDir+strings.TrimPrefix(r.Aside[s.Path], l.cfg.RWLayerDir)
		}
		rep.Files = append(rep.Files, f)
	}
	if err := l.s.WriteShadowReport(rep); err != nil {
		l.log.Warnf("store: record the shadow check: %v", err)
	}
	if !plan.Trial && r.Err == nil {
		if err := l.s.SetLayerBase(id); err != nil {
			l.log.Warnf("store: %v", err)
		}
	}
}

// maxReported caps the files a report lists (status reads it whole).
const maxReported = 1000

func isDir(p string) bool {
	fi, err := os.Lstat(p)
	return err == nil && fi.IsDir()
}

func hasEntries(dir string) bool {
	f, err := openDir(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	names, _ := f.Readdirnames(1)
	return len(names) > 0
}

func readNames(dir string) ([]string, error) {
	f, err := openDir(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// openDir opens a directory of the persistent layer for reading its names.
// Why O_DIRECTORY: the layer lives on the store, and a FIFO where a
// directory should be must fail the open, not block PID 1 in it for a
// writer that never comes (a committed boot has no watchdog).
func openDir(dir string) (*os.File, error) {
	return os.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
}
