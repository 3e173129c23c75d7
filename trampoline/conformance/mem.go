package conformance

import (
	"fmt"
	"os"
	"sort"
	"sync"

	"github.com/overlayupd/overlayupd/trampoline"
)

// Mem is an in-memory Backend: the reference the suite's model is checked
// against, and a fast fake for other packages' tests.
type Mem struct {
	Ext     string
	mu      sync.Mutex
	entries map[string]string
}

var _ Backend = (*Mem)(nil)

// NewMem returns an empty in-memory slot directory with entry suffix ext.
func NewMem(ext string) *Mem { return &Mem{Ext: ext, entries: map[string]string{}} }

// Suffix implements trampoline.Backend.
func (m *Mem) Suffix() string { return m.Ext }

// List implements trampoline.Backend.
func (m *Mem) List() ([]trampoline.DirEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []trampoline.DirEntry
	for n, l := range m.entries {
		out = append(out, trampoline.DirEntry{Name: n, Size: int64(len(l))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Rename implements trampoline.Backend with the kernel's errors.
func (m *Mem) Rename(from, to string, mode trampoline.RenameMode) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, aok := m.entries[from]
	b, bok := m.entries[to]
	switch {
	case !aok:
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: os.ErrNotExist}
	case mode == trampoline.RenameExchange && !bok:
		return &os.LinkError{Op: "exchange", Old: from, New: to, Err: os.ErrNotExist}
	case mode == trampoline.RenameExchange:
		m.entries[from], m.entries[to] = b, a
	case bok:
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: os.ErrExist}
	default:
		m.entries[to] = a
		delete(m.entries, from)
	}
	return nil
}

// Remove implements trampoline.Backend.
func (m *Mem) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.entries, name)
	return nil
}

// SyncDir implements trampoline.Backend.
func (m *Mem) SyncDir() error { return nil }

// Make implements Backend.
func (m *Mem) Make(name, label string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.entries[name]; ok {
		return fmt.Errorf("make %s: %w", name, os.ErrExist)
	}
	m.entries[name] = label
	return nil
}

// Label implements Backend.
func (m *Mem) Label(name string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.entries[name]
	if !ok {
		return "", fmt.Errorf("label %s: %w", name, os.ErrNotExist)
	}
	return l, nil
}
