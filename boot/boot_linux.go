package boot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/overlayupd/overlayupd/internal/mounts"
	"github.com/overlayupd/overlayupd/internal/remount"
	"github.com/overlayupd/overlayupd/keeper"
	"github.com/overlayupd/overlayupd/overlay"
	"github.com/overlayupd/overlayupd/trampoline"
)

// StoreTop is the kernel's root as the PID-1 path sees it; tests move it.
var StoreTop = "/"

// Main is the PID-1 path. On a store (a marker on "/") it picks the root by
// the slot protocol, makes the choice durable, and boots it under the
// overlay; otherwise, or when no root boots, it runs the classic
// init-overlay path on the kernel's root. It never returns.
func Main(argv, env []string) {
	log := overlay.NewLog()
	defer func() {
		// PID 1 must never die: a panic here would be a kernel panic.
		if r := recover(); r != nil {
			log.Warnf("internal error: %v; booting the plain root without overlay", r)
			overlay.ExecInit(log, argv, env)
		}
	}()
	overlay.Prepare(log)
	if trampoline.IsStore(StoreTop) {
		trial, next, err := bootStore(log)
		if err == nil && trial {
			overlay.ExecTrialInit(log, argv, env)
		}
		if err == nil {
			overlay.ExecInitOrReboot(log, argv, env, next)
		}
		log.Warnf("store: %v; classic mode on the kernel's root", err)
	}
	overlay.Classic(log, argv, env)
}

// maxPlans bounds the fallback loop. The protocol's fallbacks only go down,
// trial → committed root (root.next or root) → previous root → nothing: at
// most three plans can boot. The bound guards against a protocol bug that
// would loop, which PID 1 must survive.
const maxPlans = 4

// bootStore boots a root of the store at StoreTop: it returns only when none
// could be booted (the caller falls back to classic mode), with everything it
// mounted undone and the store read-only again. next, when set, says why a
// boot after this one runs something else, so that PID 1 reboots rather
// than halts if the root's init cannot be run after the pivot: a committed
// root whose boot counted against its budget, with a root.prev to take over.
func bootStore(log *overlay.Log) (trial bool, next string, err error) {
	s, err := OpenStore(StoreTop)
	if err != nil {
		return false, "", err
	}
	s.Logf = log.Warnf
	s.LastBoot = lastBoot
	w := &writableStore{top: StoreTop}
	s.BeforeChange = w.make
	moveHostile(log, s)
	// The kernel command line, read once for the store's boot-time keys.
	b, err := mounts.ReadProc(overlay.CmdlinePath)
	if err != nil {
		log.Warnf("store: read the kernel command line: %v", err)
	}
	cmdline := string(b)
	s.BootBudget = bootBudget(log, s, cmdline)
	defer func() {
		if err != nil {
			w.restore(log)
		}
	}()
	plan, err := s.Boot()
	// A store that could not be changed (read-only media, I/O errors) has
	// not counted this boot: no good mark to leave either.
	counted := err == nil
	if err != nil {
		log.Warnf("store: %v", err)
	} else {
		armTrial(log, s, plan, cmdline)
	}
	// The configuration, read once for every plan: the layers are decided
	// from it. When it cannot be read, each overlay.Boot says so.
	cfg, cfgErr := overlay.LoadConfig(log)
	ls := &layers{log: log, s: s, w: w, cfg: &cfg, foldStep: foldHook(log, cmdline)}
	if cfgErr == nil {
		ls.prepare(plan.After)
	}
	for range maxPlans {
		if plan.Boot.Name == "" {
			return false, "", fmt.Errorf("no root in the store boots (%s)", plan.Why)
		}
		log.Infof("store: %s", plan.Why)
		lower := s.Format.Lower(s.SlotDir, plan.Boot.Name)
		layout := overlay.Layout{Lower: &lower, Keep: StoreTop, KeepAt: trampoline.StoreMount}
		if !plan.Trial {
			layout.ClearLayer = clearLayer(log, s, w, plan.Boot.Name)
		}
		var err error
		if cfgErr == nil {
			ls.layout(&layout, plan)
			err = overlay.BootWith(log, cfg, layout)
		} else {
			err = overlay.Boot(log, layout)
		}
		committed := counted && s.BootBudget > 0 && plan.Boot.Role == trampoline.RoleCommitted
		if err == nil {
			// The committed root booted (not root.prev in its stead): under a
			// budget, leave the keeper that marks the boot good.
			next := ""
			if count, _, ok := plan.After.BootCount(); ok && committed && !startGoodMark(log, count, cmdline) {
				if prev, ok := plan.After.Find(trampoline.RolePrevious); ok {
					next = fmt.Sprintf("this boot of %s counted against its boot budget of %d, and %s takes over once it is spent", plan.Boot.Name, s.BootBudget, prev.Name)
				}
			}
			return plan.Trial, next, nil
		}
		what := "does not mount"
		if errors.Is(err, overlay.ErrBadInit) {
			what = "cannot boot"
		}
		if !errors.Is(err, overlay.ErrLowerMount) {
			// The root mounted but no overlay could be laid over it: boot
			// it read-only rather than not at all. The store is detached
			// then, so it goes read-only first.
			log.Warnf("store: %v; booting %s read-only without overlay", err, plan.Boot.Name)
			if committed {
				// Why mark now: without an overlay the store is out of
				// reach of the running system (no keeper, no mark-good),
				// so a layer fault would swap root and root.prev every
				// few boots, blaming a root that mounted.
				count, _, _ := plan.After.BootCount() // committed implies a count (bootBudget)
				if _, merr := keeper.StartGoodMark(s.SlotDir, count, 0); merr != nil {
					log.Warnf("boot budget: could not mark this boot good: %v", merr)
				} else {
					log.Infof("boot budget: this boot is marked good: the root mounted, and without an overlay the store is out of the running system's reach")
				}
			}
			w.restore(log)
			lerr := overlay.BootLowerOnly(log, lower)
			if lerr == nil {
				return plan.Trial, "", nil
			}
			err, what = lerr, "does not boot read-only either"
		}
		log.Warnf("store: %s %s: %v", plan.Boot.Name, what, err)
		if plan, err = s.Fallback(plan, err.Error()); err != nil {
			log.Warnf("store: %v", err)
		}
	}
	return false, "", errors.New("no root in the store boots after every fallback")
}

// writableStore makes the store writable on its first change and puts it
// back read-only on the way out to a fallback that does not keep it mounted
// as the overlay's plan does. Why lazily: the trial's try must be made
// durable (a rename) before it is mounted, but a plain boot of the committed
// root changes nothing and leaves the store read-only. The remount is
// repeated before every change: a failed overlay's undo may have made the
// store read-only again in between.
type writableStore struct {
	top   string
	undos []func() error // newest last; each puts back what it found
}

func (w *writableStore) make() error {
	restore, err := remount.Writable(w.top)
	if err != nil {
		return err
	}
	w.undos = append(w.undos, restore)
	return nil
}

func (w *writableStore) restore(log *overlay.Log) {
	for i := len(w.undos) - 1; i >= 0; i-- {
		if err := w.undos[i](); err != nil {
			log.Warnf("store: %v", err)
		}
	}
	w.undos = nil
}

// entryUUIDer is a format whose entries have UUIDs (btrfs subvolumes).
type entryUUIDer interface {
	EntryUUID(slotDir, entry string) (string, error)
}

// clearLayer reports whether this boot of the committed root entry empties
// the persistent layer: persist folded it into this root, and it was
// committed (trampoline.TakeClearLayer). Any doubt keeps the layer.
func clearLayer(log *overlay.Log, s *trampoline.Store, w *writableStore, entry string) bool {
	f, ok := s.Format.(entryUUIDer)
	if !ok {
		return false
	}
	if _, err := os.Lstat(filepath.Join(s.SlotDir, trampoline.ClearLayerFile)); err != nil {
		return false
	}
	id, err := f.EntryUUID(s.SlotDir, entry)
	if err != nil {
		log.Warnf("store: %v; the persistent layer is kept", err)
		return false
	}
	if err := w.make(); err != nil {
		log.Warnf("store: %v; the persistent layer is kept", err)
		return false
	}
	clear, err := s.TakeClearLayer(id)
	if err != nil {
		log.Warnf("store: %v; the persistent layer is kept", err)
		return false
	}
	if clear {
		log.Infof("store: %s holds what persist folded from the persistent layer and is committed: the layer starts empty (the old one is kept as its -bak)", entry)
	}
	return clear
}

// moveHostile moves aside the names of the slot directory that look like
// entries but are links, FIFOs, devices or sockets (trampoline.MoveHostile):
// the protocol ignores them (a store on untrusted media must not make the
// boot follow a link out of it or hang on a FIFO), but they hold names its
// renames need. When the store cannot be changed they stay, ignored; the
// console says which either way.
func moveHostile(log *overlay.Log, s *trampoline.Store) {
	moved, err := s.MoveHostile()
	for _, m := range moved {
		log.Warnf("store: moved %s aside to %s: not an image file or a subvolume", m[0], m[1])
	}
	if err == nil {
		return
	}
	ents, lerr := s.Backend.List()
	if lerr != nil {
		return
	}
	for _, n := range trampoline.HostileNames(ents, s.Backend.Suffix()) {
		log.Warnf("store: skipping %s: not an image file or a subvolume (not moved aside: %v)", n, err)
	}
}
