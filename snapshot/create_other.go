//go:build !(linux && cgo) || overlayupd_omit_btrfs

package snapshot

import "errors"

// Built reports whether this binary can create subvolumes.
const Built = false

// errNotBuilt is what the subvolume-making commands get from a pure-Go or
// squashfs-only build.
var errNotBuilt = errors.New("btrfs support is not built into this binary (it was built without cgo or with overlayupd_omit_btrfs): use a build of 'make build'")

// Create is not available in this build.
func Create(string) error { return errNotBuilt }

// Snapshot is not available in this build.
func Snapshot(string, string, bool) error { return errNotBuilt }
