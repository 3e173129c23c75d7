package overlay

import (
	"errors"

	"github.com/overlayupd/overlayupd/internal/dm"
	"github.com/overlayupd/overlayupd/internal/loop"
	"github.com/overlayupd/overlayupd/verity"
)

// verityOffered reports nil when the kernel offers dm-verity, loading the
// module (LoadModule) when it is missing; else why not. A variable so
// tests can fake a kernel.
var verityOffered = func() error {
	err := dm.HasVerity()
	if err == nil {
		return nil
	}
	if LoadModule("dm-verity") == nil {
		if err = dm.HasVerity(); err == nil {
			return nil
		}
	}
	return err
}

// mountVerity carries out a mount step whose spec asks for verity (o.Verity):
// the image through dm-verity (internal/dm), or, where decideVerity and
// decideNoTree allow it, a plain loop mount with one line in the log. A
// damaged image (a bad trailer, a block that fails its hash) is never
// mounted unverified.
func mountVerity(o Op, logf func(string, ...any)) error {
	verify, note, err := decideVerity(o.Verity, verityOffered(), o.Source)
	if err != nil {
		return err
	}
	if verify {
		_, err := dm.MountVerity(o.Source, o.Target, o.FSType, o.Flags, o.Data)
		switch {
		case errors.Is(err, verity.ErrNoTrailer):
			if note, err = decideNoTree(o.Verity, o.Source); err != nil {
				return err
			}
		case errors.Is(err, dm.ErrSetup):
			// The kernel has the target but refuses this device: as if
			// it offered none.
			if _, note, err = decideVerity(o.Verity, err, o.Source); err != nil {
				return err
			}
		default:
			return err
		}
	}
	if note != "" {
		logf("%s", note)
	}
	_, err = loop.Mount(o.Source, o.Target, o.FSType, o.Flags, o.Data)
	return err
}
