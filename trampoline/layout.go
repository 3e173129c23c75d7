package trampoline

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// The layout of a store: the filesystem (the partition's top, "Top") that the
// kernel mounts as "/" in store mode:
//
//	/overlayupd-store   the marker: this is a store, and its format= line
//	/roots/             the slot directory (SlotDir): the entries and reason files
//	/sbin/init-overlay  the trampoline the kernel runs (TrampolinePath)
//	/dev /proc /sys /overlay  mount points
const (
	MarkerFile     = "overlayupd-store"
	SlotDir        = "roots"
	TrampolinePath = "/sbin/init-overlay"
	// StoreMount is where the booted system sees the store's top.
	StoreMount = "/overlay/store"
	// DefaultFormat is the format of a store whose marker has no format=
	// line: every store made before the line existed holds squashfs images.
	DefaultFormat = "squashfs"
	// markerMax caps what is read of a marker: it is a few lines, and a store
	// on untrusted media must not make the boot read a huge file.
	markerMax = 4096
)

// Marker is what the store marker says.
type Marker struct {
	Format string
}

// MarkerText is the marker written last by store init, for a format: a
// sentence for people and a format= line for boot and the commands.
func MarkerText(format string) []byte {
	return fmt.Appendf(nil, "overlayupd store, layout 1\nformat=%s\nroots in %s/, trampoline %s; see 'overlayupd status --store DIR'\n",
		format, SlotDir, TrampolinePath)
}

// ParseMarker reads a marker's format= line; a marker without one is a
// squashfs store (DefaultFormat).
func ParseMarker(b []byte) Marker {
	m := Marker{Format: DefaultFormat}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "format="); ok && v != "" {
			m.Format = v
			break
		}
	}
	return m
}

// ErrNotStore is returned by ReadMarker for a directory that is not a store.
var ErrNotStore = errors.New("not a store")

// ReadMarker reads top's marker. Why O_NOFOLLOW and a regular file of capped
// size: the store may be on untrusted media, and a marker that is a link, a
// FIFO or a device must not make the boot follow it out, hang or run out of
// memory.
func ReadMarker(top string) (Marker, error) {
	p := filepath.Join(top, MarkerFile)
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return Marker{}, fmt.Errorf("%w: %s: %w", ErrNotStore, top, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return Marker{}, fmt.Errorf("%w: %s is not a regular file", ErrNotStore, p)
	}
	b, err := io.ReadAll(io.LimitReader(f, markerMax))
	if err != nil {
		return Marker{}, fmt.Errorf("read %s: %w", p, err)
	}
	return ParseMarker(b), nil
}

// IsStore reports whether top is the top directory of a store: its marker is
// a regular file (not followed if it is a link).
func IsStore(top string) bool {
	fi, err := os.Lstat(filepath.Join(top, MarkerFile))
	return err == nil && fi.Mode().IsRegular()
}

// Open returns the store whose top directory is top, its entries of format f.
func Open(top string, f Format) *Store {
	slots := filepath.Join(top, SlotDir)
	return &Store{Top: top, SlotDir: slots, Format: f, Backend: f.Backend(slots)}
}
