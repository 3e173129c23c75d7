package overlay

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/internal/layer"
)

// runShadow carries out a shadow step. It never fails the boot: a check
// that cannot be made is reported (ShadowResult.Err) and the boot goes on
// with the layer as it is.
func runShadow(s *ShadowStep, logf func(string, ...any)) error {
	r := ShadowResult{Aside: map[string]string{}}
	defer func() {
		if s.Done != nil {
			s.Done(r)
		}
	}()
	if err := mkdirAll(ShadowbaseDir); err != nil {
		r.Err = err
		return nil
	}
	mount := MountOp(s.Prev, ShadowbaseDir, PhaseSetup)
	if err := mount.run(logf); err != nil {
		r.Err = fmt.Errorf("mount the previous root %s: %w", s.Prev.Source, err)
		return nil
	}
	shadows, err := layer.Shadows(s.Layer, ShadowbaseDir, RobaseDir, layer.ShadowOptions{
		Skip: func(rel string) bool { return layer.UnderAny(s.Skip, rel) }})
	// Why detach: the previous root's loop (and dm-verity) device goes with
	// its last user, and nothing of it may stay mounted in the new root.
	if uerr := unix.Unmount(ShadowbaseDir, unix.MNT_DETACH); uerr != nil {
		logf("shadow check: unmount %s: %v", ShadowbaseDir, uerr)
	}
	if err != nil {
		r.Err = err
		return nil
	}
	r.Shadows = shadows
	if s.Policy != ShadowImage {
		return nil
	}
	for _, sh := range shadows {
		switch {
		case s.Top != "":
			if err := layer.Reveal(RobaseDir, s.Top, sh.Path); err != nil {
				r.Err = fmt.Errorf("show the image's /%s: %w", sh.Path, err)
			}
		case s.Aside != "":
			to, err := layer.SetAside(s.Layer, s.Aside, sh.Path)
			if err != nil {
				r.Err = err
				continue
			}
			r.Aside[sh.Path] = to
		}
	}
	if s.Aside != "" && len(r.Aside) > 0 {
		// Why: the renames must be on disk before the records say they
		// were made (and before anything writes over the revealed files).
		if fd, err := unix.Open(s.Aside, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
			if err := unix.Syncfs(fd); err != nil {
				logf("shadow check: syncfs: %v", err)
			}
			unix.Close(fd)
		}
	}
	return nil
}
