package trampoline

import (
	"errors"
	"fmt"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/overlay"
	"github.com/overlayupd/overlayupd/squash"
)

// StoreTop is the kernel's root as the PID-1 path sees it; tests move it.
var StoreTop = "/"

// Main is the PID-1 path. On a store (IsStore("/")) it picks the root image
// by the slot protocol, makes the choice durable, and boots the image under
// the overlay; otherwise, or when no image boots, it runs the classic
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
	if IsStore(StoreTop) {
		err := BootStore(log)
		if err == nil {
			overlay.ExecInit(log, argv, env)
		}
		log.Warnf("store: %v; classic mode on the kernel's root", err)
	}
	overlay.Classic(log, argv, env)
}

// BootStore boots a root image of the store at StoreTop: it returns only
// when none could be booted (the caller falls back to classic mode), with
// everything it mounted undone and the store read-only again.
func BootStore(log *overlay.Log) (err error) {
	s := Open(StoreTop)
	s.Logf = log.Warnf
	// Why: the trial must be made durable (its try consumed) before it is
	// mounted, so the store must be writable for the renames. A plain boot
	// of the committed root changes nothing and leaves the store read-only.
	// The remount is repeated before every change: a failed overlay's undo
	// may have made the store read-only again in between.
	writable := false
	s.BeforeChange = func() {
		if err := unix.Mount("", StoreTop, "", unix.MS_REMOUNT, ""); err != nil {
			log.Warnf("store: remount %s read-write: %v; booting without changing the store", StoreTop, err)
			return
		}
		writable = true
	}
	// On the way out to a fallback that does not keep the store mounted as
	// the overlay's plan does, leave its filesystem read-only, as it came.
	readOnlyAgain := func() {
		if writable {
			writable = false
			if err := unix.Mount("", StoreTop, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
				log.Warnf("store: remount %s read-only: %v", StoreTop, err)
			}
		}
	}
	defer func() {
		if err != nil {
			readOnlyAgain()
		}
	}()
	plan, err := s.Boot()
	if err != nil {
		log.Warnf("store: %v", err)
	}
	// Each failure moves down the protocol's fallbacks (trial, committed
	// root, previous root); the bound only guards against a loop.
	for range 4 {
		if plan.Boot.Name == "" {
			return fmt.Errorf("no root image boots (%s)", plan.Why)
		}
		log.Infof("store: %s", plan.Why)
		image := filepath.Join(s.Dir, plan.Boot.Name)
		err := overlay.Boot(log, overlay.Layout{Lower: storeLower(image), Keep: []string{StoreMount}})
		if err == nil {
			return nil
		}
		what := "does not mount"
		var step *overlay.StepError
		if !errors.As(err, &step) || step.Op.Kind != overlay.OpCustom {
			// The image mounted but no overlay could be laid over it: boot
			// it read-only rather than not at all. The store is detached
			// then, so it goes read-only first.
			log.Warnf("store: %v; booting %s read-only without overlay", err, plan.Boot.Name)
			readOnlyAgain()
			lerr := overlay.BootLowerOnly(log, "loop-mount "+image, func(target string) error { return squash.Mount(image, target) })
			if lerr == nil {
				return nil
			}
			err, what = lerr, "does not boot read-only either"
		}
		log.Warnf("store: %s %s: %v", plan.Boot.Name, what, err)
		if plan, err = s.Fallback(plan, err.Error()); err != nil {
			log.Warnf("store: %v", err)
		}
	}
	return errors.New("no root image boots after several fallbacks")
}

// storeLower returns the steps that mount the image as the lower layer and
// keep the store visible at StoreMount. With a tmpfs writable layer nothing
// writes to the store after boot, so its filesystem goes back to read-only:
// that is what survives power cuts. Commands remount it for their changes.
func storeLower(image string) func(overlay.Config) []overlay.Op {
	return func(cfg overlay.Config) []overlay.Op {
		ops := []overlay.Op{
			{Kind: overlay.OpCustom, Source: "loop-mount " + image, Target: overlay.RobaseDir,
				Do: func() error { return squash.Mount(image, overlay.RobaseDir) }},
			{Kind: overlay.OpMkdir, Target: StoreMount},
			{Kind: overlay.OpMount, Source: StoreTop, Target: StoreMount, Flags: unix.MS_BIND},
		}
		if cfg.RWLayer == overlay.Tmpfs {
			ops = append(ops, overlay.Op{Kind: overlay.OpRemount, Target: StoreMount, Flags: unix.MS_RDONLY})
		} else {
			ops = append(ops, overlay.Op{Kind: overlay.OpRemount, Target: StoreMount, Flags: unix.MS_BIND | unix.MS_RDONLY})
		}
		return ops
	}
}
