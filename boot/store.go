package boot

import (
	"fmt"
	"sort"
	"strings"

	"github.com/overlayupd/overlayupd/internal/mounts"
	"github.com/overlayupd/overlayupd/overlay"
	"github.com/overlayupd/overlayupd/squash"
	"github.com/overlayupd/overlayupd/trampoline"
)

// formats are the store formats this binary knows, by marker name. A build
// without one (see the README's build tags) refuses its stores by name.
var formats = map[string]trampoline.Format{}

func register(f trampoline.Format) { formats[f.Name()] = f }

func init() { register(squash.Format{}) }

// FormatNamed returns the format of that marker name.
func FormatNamed(name string) (trampoline.Format, error) {
	if f, ok := formats[name]; ok {
		return f, nil
	}
	known := make([]string, 0, len(formats))
	for n := range formats {
		known = append(known, n)
	}
	sort.Strings(known)
	return nil, fmt.Errorf("store format %q is not built into this binary (it knows %s)", name, strings.Join(known, ", "))
}

// OpenStore opens the store whose top directory is top, with the format its
// marker names.
func OpenStore(top string) (*trampoline.Store, error) {
	m, err := trampoline.ReadMarker(top)
	if err != nil {
		return nil, err
	}
	f, err := FormatNamed(m.Format)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", top, err)
	}
	return trampoline.Open(top, f), nil
}

// DefaultStore returns the top of the store the running system booted from.
func DefaultStore() (string, error) {
	for _, top := range []string{trampoline.StoreMount, "/"} {
		if trampoline.IsStore(top) {
			return top, nil
		}
	}
	return "", fmt.Errorf("this system did not boot from a store (no %s/%s): pass --store DIR", trampoline.StoreMount, trampoline.MarkerFile)
}

// Booted names the entry of s that the running system booted ("" when it
// booted none of them), from the mount of its lower layer.
func Booted(s *trampoline.Store) (string, error) {
	ms, err := mounts.Read()
	if err != nil {
		return "", err
	}
	m, ok := mounts.Find(ms, overlay.RobaseDir)
	if !ok {
		return "", nil
	}
	return s.Format.Booted(s.SlotDir, m)
}
