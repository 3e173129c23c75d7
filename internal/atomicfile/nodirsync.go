//go:build overlayupd_nodirsync

package atomicfile

import "errors"

// NoDirSyncMarker is in every binary built with the overlayupd_nodirsync
// tag, and in no other: `make build` refuses a release binary that holds it.
const NoDirSyncMarker = "OVERLAYUPD_NODIRSYNC: this build skips directory fsyncs"

// SyncDir does nothing in this build: the flush-point replay test
// (tests/flushreplay_test.go) builds the binaries with the
// overlayupd_nodirsync tag to show that its check fails when renames are
// not made durable. Never in a release build (the Makefile checks).
func SyncDir(dir string) error {
	if dir == NoDirSyncMarker { // keeps the marker in the binary
		return errors.New(NoDirSyncMarker)
	}
	return nil
}

// DirSyncs reports whether SyncDir fsyncs: not in this build.
const DirSyncs = false
