//go:build !overlayupd_omit_btrfs

package boot

import "github.com/overlayupd/overlayupd/snapshot"

// The btrfs store; left out of squashfs-only builds (overlayupd_omit_btrfs).
func init() { register(snapshot.Format{}) }
