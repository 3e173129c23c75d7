//go:build linux && cgo && !overlayupd_omit_btrfs

package snapshot

import (
	"fmt"
	"path/filepath"

	"github.com/containerd/btrfs/v2"
)

// Built reports whether this binary can create subvolumes.
const Built = true

// Create makes an empty, writable subvolume at path.
func Create(path string) error {
	abs, err := absolute(path)
	if err != nil {
		return err
	}
	if err := btrfs.SubvolCreate(abs); err != nil {
		return fmt.Errorf("create subvolume %s: %w", abs, err)
	}
	return nil
}

// Snapshot makes dst a snapshot of the subvolume src, read-only if ro. The
// kernel flushes src's dirty data and commits a transaction, so dst is
// durable when it returns (slow on SD cards: seconds).
//
// Why the wrapper: containerd/btrfs takes (dst, src, ro), the reverse of cp;
// its mount lookup gets relative paths wrong, so both are made absolute; and
// dst's directory must be on a writable mount (EROFS otherwise).
func Snapshot(src, dst string, ro bool) error {
	s, err := absolute(src)
	if err != nil {
		return err
	}
	d, err := absolute(dst)
	if err != nil {
		return err
	}
	if ok, err := IsSubvolume(s); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("snapshot %s: %w", s, ErrNotSubvol)
	}
	if err := btrfs.SubvolSnapshot(d, s, ro); err != nil {
		return fmt.Errorf("snapshot %s to %s: %w", s, d, err)
	}
	return nil
}

func absolute(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("%s: %w", p, err)
	}
	return abs, nil
}
