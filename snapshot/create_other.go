//go:build !(linux && cgo) || overlayupd_omit_btrfs

package snapshot

// Built reports whether this binary can create subvolumes.
const Built = false

// Create is not available in this build.
func Create(string) error { return ErrNotBuilt }

// Snapshot is not available in this build.
func Snapshot(string, string, bool) error { return ErrNotBuilt }
