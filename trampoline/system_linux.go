package trampoline

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/overlayupd/overlayupd/internal/mounts"
	"github.com/overlayupd/overlayupd/overlay"
)

// The layout of a store filesystem (the small partition the kernel mounts as
// "/" in store mode):
//
//	/overlayupd-store      marker: this filesystem is a store (written by store init)
//	/roots/                the slot directory: root.sqsh, root.try-1.sqsh, ...
//	/sbin/init-overlay     this binary, the trampoline the kernel runs
//	/dev /proc /sys /overlay  mount points
//
// After boot the store stays visible at StoreMount.
const (
	MarkerFile = "overlayupd-store"
	SlotDir    = "roots"
	StoreMount = overlay.OverlayDir + "/store"
)

// IsStore reports whether top is the top directory of a store: the marker
// file is there. The PID-1 path uses it on "/" to choose store mode.
func IsStore(top string) bool {
	st, err := os.Stat(filepath.Join(top, MarkerFile))
	return err == nil && st.Mode().IsRegular()
}

// Open returns the squashfs store whose top directory is top.
func Open(top string) *Store {
	slots := filepath.Join(top, SlotDir)
	return &Store{Dir: slots, Backend: NewFileBackend(slots, ImageSuffix)}
}

// DefaultStore returns the top of the store the running system booted from.
func DefaultStore() (string, error) {
	for _, top := range []string{StoreMount, "/"} {
		if IsStore(top) {
			return top, nil
		}
	}
	return "", fmt.Errorf("this system did not boot from a store (no %s/%s): pass --store DIR", StoreMount, MarkerFile)
}

// sysBlock is where loop devices publish their backing files; tests move it.
var sysBlock = "/sys/block"

// Booted returns the name of the store entry the running system booted:
// the file behind the loop device mounted at /overlay/robase. The kernel
// tracks renames, so after a commit it is the entry's new name. It returns
// "" when the root is not a loop-mounted image.
func Booted() (string, error) {
	ms, err := mounts.Read()
	if err != nil {
		return "", err
	}
	m, ok := mounts.Find(ms, overlay.RobaseDir)
	if !ok || !strings.HasPrefix(m.Source, "/dev/loop") {
		return "", nil
	}
	dev := filepath.Base(m.Source)
	b, err := os.ReadFile(filepath.Join(sysBlock, dev, "loop", "backing_file"))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("backing file of %s: %w", m.Source, err)
	}
	return filepath.Base(strings.TrimSpace(string(b))), nil
}
