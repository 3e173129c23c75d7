// Package testroot owns the fixtures of the tests: trees built from a list
// of Appliers (files, directories, symlinks, busybox, the overlayupd binary
// under test), ext4, btrfs and squashfs images made from them without
// mounting anything, the binary itself (built as make build builds it), the
// "skip, or fail under CI=true" checks for tools, and "boots" of an image as
// PID 1 of its own PID and mount namespace. Only tests import it.
package testroot

import "testing"

// Must fails the test on err.
func Must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
