package trampoline

import (
	"fmt"
	"time"
)

// RenameMode is the renameat2 flag a backend must honour.
type RenameMode int

// Rename modes.
const (
	RenameNoReplace RenameMode = iota // fail with EEXIST (os.ErrExist) if the target exists
	RenameExchange                    // swap two existing entries atomically
)

// DirEntry is one name in the slot directory, with what status shows of it.
type DirEntry struct {
	Name    string
	Kind    string // "image", "subvolume", "directory", "file", "other"
	Size    int64  // an image's size; 0 for a subvolume, which has none cheaply
	ID      uint64 // a subvolume's ID
	ModTime time.Time
}

// InUse is what a backend may also implement when deleting an entry that the
// running system uses would take its files away (a mounted btrfs subvolume;
// a loop-mounted image file is safe: the kernel keeps its inode). Store.Do
// then refuses a transition that deletes such an entry, before its first op.
type InUse interface {
	InUse(name string) (where string, err error)
}

// Backend is a slot directory: squashfs image files or btrfs subvolumes
// (DirBackend, with their suffix and their way to delete an entry). The protocol needs only these; the conformance package
// checks that a backend behaves.
type Backend interface {
	// Suffix is appended to protocol names: ".sqsh" for images, "" for subvolumes.
	Suffix() string
	// List returns every name in the directory, protocol or not.
	List() ([]DirEntry, error)
	// Rename renames or exchanges two names in the directory.
	Rename(from, to string, mode RenameMode) error
	// Remove deletes an entry (file or subvolume); a missing one is not an error.
	Remove(name string) error
	// SyncDir makes the directory's renames and removals durable.
	SyncDir() error
}

// LoadState lists the backend and returns its protocol state.
func LoadState(b Backend) (State, []DirEntry, error) {
	ents, err := b.List()
	if err != nil {
		return State{}, nil, fmt.Errorf("list slot directory: %w", err)
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		// Why: a symlink, FIFO, device or socket under a protocol name is no
		// entry (a store on untrusted media): boot must never mount through
		// it, so the protocol does not see it.
		if e.Kind != "other" {
			names = append(names, e.Name)
		}
	}
	return NewState(b.Suffix(), names...), ents, nil
}

// Execute runs ops in order, each followed by a directory fsync. Why the fsync
// after every op and not once at the end: the orderings in this package are
// only crash-safe if the disk sees the renames in the same order.
func Execute(b Backend, ops []Op) error { return execute(b, ops, nil) }

// execute is Execute with a hook that runs before each op with its index,
// and once more after the last with len(ops): Store.Run and the conformance
// suite share this loop, so the suite runs the production one.
func execute(b Backend, ops []Op, step func(i int)) error {
	for i, op := range ops {
		if step != nil {
			step(i)
		}
		if err := Do(b, op); err != nil {
			return fmt.Errorf("step %d of %d: %w", i+1, len(ops), err)
		}
	}
	if step != nil {
		step(len(ops))
	}
	return nil
}

// Do runs one op and fsyncs the directory.
func Do(b Backend, op Op) error {
	var err error
	switch op.Kind {
	case OpRename:
		err = b.Rename(op.From, op.To, RenameNoReplace)
	case OpExchange:
		err = b.Rename(op.From, op.To, RenameExchange)
	case OpRemove:
		err = b.Remove(op.From)
	default:
		err = fmt.Errorf("unknown op kind %d", op.Kind)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := b.SyncDir(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}
