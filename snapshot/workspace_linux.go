package snapshot

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/trampoline"
)

// Workspace is a writable subvolume under a .stage-* name in a slot
// directory: a root being made (by store init, apply, update or persist). It
// becomes an entry when Seal has made it read-only and durable and the
// caller stages it (trampoline.Store.Stage or Init). gc removes a workspace
// left by a crash, as any .stage-* entry.
type Workspace struct {
	Path string
}

func stagePath(slotDir string) (string, error) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], rand.Uint64())
	return filepath.Join(slotDir, trampoline.StagePrefix+hex.EncodeToString(b[:])), nil
}

// NewWorkspace makes an empty workspace in slotDir.
func NewWorkspace(slotDir string) (*Workspace, error) {
	p, err := stagePath(slotDir)
	if err != nil {
		return nil, err
	}
	if err := Create(p); err != nil {
		return nil, err
	}
	return &Workspace{Path: p}, nil
}

// SnapshotWorkspace makes a workspace in slotDir that is a writable snapshot
// of the subvolume src (the running root, for update).
func SnapshotWorkspace(slotDir, src string) (*Workspace, error) {
	p, err := stagePath(slotDir)
	if err != nil {
		return nil, err
	}
	if err := Snapshot(src, p, false); err != nil {
		return nil, err
	}
	return &Workspace{Path: p}, nil
}

// Seal makes the workspace durable and read-only. Why syncfs first: the
// read-only flag stops new writes but not the data in flight, and the flag
// change commits a transaction that must find the data written. Every
// process that wrote into it must be gone before (a read-only flip does not
// stop a writer that holds a file open).
func (w *Workspace) Seal() error {
	// A subvolume made inside the root (systemd's /var/lib/machines, a
	// container engine) is not part of any snapshot of it: its data would
	// be gone at the next update, and it would stay writable in a
	// read-only root. Refuse, and say where.
	if children, err := ChildSubvolumes(w.Path); err != nil {
		return err
	} else if len(children) > 0 {
		return fmt.Errorf("%w: subvolumes %v were created inside the new root; snapshots do not contain them, so their data would be lost at the next update: remove them (btrfs subvolume list -o %s shows where), or keep that data outside the root", ErrNested, children, w.Path)
	}
	f, err := openDir(w.Path)
	if err != nil {
		return err
	}
	err = unix.Syncfs(int(f.Fd()))
	f.Close()
	if err != nil {
		return fmt.Errorf("syncfs %s: %w", w.Path, err)
	}
	return SetReadOnly(w.Path, true)
}

// Abort deletes the workspace and waits (up to a minute) until btrfs has
// freed its space: an update that filled the store must leave it as it
// found it, and the cleaner works only while the store is writable, which
// it is only during a command. A failure is returned with the path, which
// gc would remove later.
func (w *Workspace) Abort() error {
	if err := Delete(w.Path); err != nil {
		return errors.Join(err, fmt.Errorf("%s is left over: 'overlayupd gc' removes it", w.Path))
	}
	_, err := WaitCleaned(filepath.Dir(w.Path), time.Minute)
	return err
}
