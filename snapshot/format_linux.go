package snapshot

import (
	"os"
	"path/filepath"

	"github.com/overlayupd/overlayupd/internal/mounts"
	"github.com/overlayupd/overlayupd/trampoline"
)

// Format is the btrfs store's trampoline.Format: entries are read-only
// subvolumes in the slot directory, without a suffix.
type Format struct{}

var _ trampoline.Format = Format{}

// Name implements trampoline.Format.
func (Format) Name() string { return "btrfs" }

// Suffix implements trampoline.Format: subvolumes have none.
func (Format) Suffix() string { return "" }

// Backend implements trampoline.Format: renames as for any directory entry,
// deletion by subvolume ID (Delete), and a refusal to delete a mounted one.
func (Format) Backend(slotDir string) trampoline.Backend {
	return backend{trampoline.NewDirBackend(slotDir, "", Delete)}
}

type backend struct{ *trampoline.DirBackend }

var _ trampoline.InUse = backend{}

func (b backend) List() ([]trampoline.DirEntry, error) {
	ents, err := b.DirBackend.List()
	for i := range ents {
		if ents[i].Kind != "directory" {
			continue
		}
		if info, err := GetInfo(filepath.Join(b.Dir, ents[i].Name)); err == nil {
			ents[i].Kind, ents[i].ID = "subvolume", info.ID
		}
	}
	return ents, err
}

// InUse implements trampoline.InUse: where the entry's subvolume is mounted.
// A plain directory (a trial's layer, layer.fold) is no subvolume: its ID
// would be the top level's, which is mounted, and it would never go.
func (b backend) InUse(name string) (string, error) {
	if ok, err := IsSubvolume(filepath.Join(b.Dir, name)); err != nil || !ok {
		return "", nil
	}
	id, err := ID(filepath.Join(b.Dir, name))
	if err != nil {
		return "", nil // not a subvolume (or gone): nothing mounted
	}
	return InUse(id)
}

// Lower implements trampoline.Format: a read-only bind of the subvolume. Why
// a bind and not mount(dev, "subvolid=N"): the kernel's root device is often
// named /dev/root in the mount table, a node that does not exist; the bind
// needs no device name, and the subvolume is found by ID afterwards (Booted).
func (Format) Lower(slotDir, entry string) mounts.Spec {
	return mounts.Spec{Type: "none", Source: filepath.Join(slotDir, entry), Options: []string{"bind", "ro"}}
}

// Booted implements trampoline.Format: the entry whose subvolume ID is the
// one mounted at robase. IDs are stable; names change on commit.
func (Format) Booted(slotDir string, robase mounts.Mount) (string, error) {
	if robase.FSType != "btrfs" {
		return "", nil
	}
	id, err := ID(robase.MountPoint)
	if err != nil {
		return "", err
	}
	// IDs restart at 256 in every btrfs: an entry of another store (one
	// given with --store) must not pass for the running root.
	booted, err := FSID(robase.MountPoint)
	if err != nil {
		return "", err
	}
	if store, err := FSID(slotDir); err != nil || store != booted {
		return "", err
	}
	des, err := os.ReadDir(slotDir)
	if err != nil {
		return "", err
	}
	for _, de := range des {
		if !de.IsDir() {
			continue
		}
		if eid, err := ID(filepath.Join(slotDir, de.Name())); err == nil && eid == id {
			if ok, _ := IsSubvolume(filepath.Join(slotDir, de.Name())); ok {
				return de.Name(), nil
			}
		}
	}
	return "", nil
}

// EntryUUID is the subvolume UUID of entry: what names it for ever (IDs
// are reused after a delete).
func (Format) EntryUUID(slotDir, entry string) (string, error) {
	info, err := GetInfo(filepath.Join(slotDir, entry))
	return info.UUID, err
}

var _ trampoline.EntryIdentifier = Format{}

// EntryID implements trampoline.EntryIdentifier: the subvolume UUID.
func (f Format) EntryID(slotDir, entry string) (string, error) {
	id, err := f.EntryUUID(slotDir, entry)
	if err != nil {
		return "", err
	}
	return "uuid:" + id, nil
}

// Digest implements trampoline.Format: a subvolume has no digest cheaper
// than reading the whole tree.
func (Format) Digest(string, string) (string, error) { return "", nil }
