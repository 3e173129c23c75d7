package trampoline

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/internal/atomicfile"
	"github.com/overlayupd/overlayupd/internal/record"
)

// The persistent layer belongs to the committed root. A trial boots with
// it as a read-only middle layer (lowerdir = persistent layer : image) and
// writes into a layer of its own in the slot directory; three names carry
// that layer through the protocol, each change one rename with the entries'
// own (builder.go):
//
//	layer.trial   the writable layer of the trial in progress (data/, work/).
//	              The boot path makes it, empty, for a trial boot; a missing
//	              one is an empty one. Tries of the same trial share it.
//	layer.fold    a committed trial's layer: commit renames layer.trial to
//	              it right after the commit point (and an interrupted commit
//	              rolled forward does), and the next boot folds it into the
//	              persistent layer before anything mounts (internal/layer.Fold:
//	              renames only, resumed after a crash), then FoldDone.
//	layer.failed  the last failed trial's layer, kept for diagnosis like
//	              root.failed: every way a trial ends without a commit (no
//	              tries left, superseded, did not mount, rollback, fail)
//	              renames layer.trial to it; gc removes it.
//
// So a trial never writes into the committed root's persistent data (it is
// mounted read-only below the trial), a failed trial's writes go with it,
// and a committed trial's writes join the persistent layer exactly when the
// trial becomes the committed root.
const (
	LayerTrial  = "layer.trial"
	LayerFold   = "layer.fold"
	LayerFailed = "layer.failed"
)

// FoldDone is the transition after the boot folded layer.fold into the
// persistent layer: layer.fold goes (rename to rm-*, then delete: what the
// fold set aside is in it). Before its first op a crash leaves layer.fold,
// and the next boot resumes the fold, which finds nothing left to move.
func FoldDone(st State) Transition {
	b := newBuilder(st)
	if st.Has(LayerFold) {
		b.discard(LayerFold)
	}
	t, _ := b.transition()
	return t
}

// FoldDone runs the transition of that name.
func (s *Store) FoldDone() error {
	st, err := s.State()
	if err != nil {
		return err
	}
	return s.Run(FoldDone(st))
}

// LayerStatus is what status shows of the trial layers and of the last
// shadow check (shadow.go).
type LayerStatus struct {
	Trial       bool          `json:"trial_layer,omitempty"`  // layer.trial: a trial's writes, apart
	FoldPending bool          `json:"fold_pending,omitempty"` // layer.fold: folded at the next boot
	Failed      bool          `json:"failed_layer,omitempty"` // layer.failed: the last failed trial's writes
	Shadows     *ShadowReport `json:"shadows,omitempty"`
}

// The persistent layer after persist. persist folds the layer into a new
// root; the layer may be emptied only once that root is committed, and only
// at a boot (it is the live overlay's upper while the system runs). Two
// records in the slot directory carry that, by subvolume UUID (names change
// on commit; IDs are reused once a subvolume is deleted; UUIDs never are):
//
//	persist.pending  persist staged the entry with this UUID from the layer
//	clear-layer      that entry is now the committed root: its next boot
//	                 empties the layer
//
// Each step is one rename or unlink with a directory fsync. A crash before
// commit leaves persist.pending, which acts on nothing else. The boot takes
// clear-layer away, then moves the layer aside (to DIR-bak, as
// persistent-move does) rather than deleting it: what was written there
// after persist read it is kept, in the backup.
const (
	PersistPendingFile = "persist.pending"
	ClearLayerFile     = "clear-layer"
)

// layerNote is the record of NotePersist: {"subvolume_uuid":"…"}.
type layerNote struct {
	UUID string
}

// NotePersist records that persist staged the entry with subvolume UUID uuid.
func (s *Store) NotePersist(uuid string) error {
	b := record.NewObject().String("subvolume_uuid", uuid).Bytes()
	return atomicfile.WriteFile(filepath.Join(s.SlotDir, PersistPendingFile), append(b, '\n'), 0o644)
}

// AfterCommit is run by commit with the committed root's subvolume UUID:
// when persist staged that very root, its next boot empties the layer.
func (s *Store) AfterCommit(rootUUID string) (clear bool, err error) {
	pending := filepath.Join(s.SlotDir, PersistPendingFile)
	n, err := readNote(pending)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil || n.UUID == "" || n.UUID != rootUUID {
		// Another root was committed (or the record is unreadable): the
		// layer must stay.
		if rerr := os.Remove(pending); rerr != nil {
			return false, rerr
		}
		return false, atomicfile.SyncDir(s.SlotDir)
	}
	if err := os.Rename(pending, filepath.Join(s.SlotDir, ClearLayerFile)); err != nil {
		return false, err
	}
	return true, atomicfile.SyncDir(s.SlotDir)
}

// TakeClearLayer is run at boot with the subvolume UUID of the committed
// root about to boot: it reports whether to empty the persistent layer, and
// takes the record away first (durably). A record for another root is
// dropped.
func (s *Store) TakeClearLayer(rootUUID string) (bool, error) {
	p := filepath.Join(s.SlotDir, ClearLayerFile)
	n, err := readNote(p)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if rerr := os.Remove(p); rerr != nil {
		return false, rerr
	}
	if serr := atomicfile.SyncDir(s.SlotDir); serr != nil {
		return false, serr
	}
	return err == nil && n.UUID != "" && n.UUID == rootUUID, nil
}

// readNote reads a small JSON record (see readSmall).
func readNote(p string) (layerNote, error) {
	b, err := readSmall(p, 4096)
	if err != nil {
		return layerNote{}, err
	}
	uuid, _, err := record.String(b, "subvolume_uuid")
	if err != nil {
		return layerNote{}, fmt.Errorf("%s: %w", p, err)
	}
	return layerNote{UUID: uuid}, nil
}

// readSmall reads at most max bytes of the regular file p, never through a
// link and never blocking on a FIFO: the store may be on untrusted media,
// and a record planted as a link to /dev/zero or as a FIFO must not make a
// command (or the boot) run out of memory or hang.
func readSmall(p string, max int64) ([]byte, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", p)
	}
	return io.ReadAll(io.LimitReader(f, max))
}
