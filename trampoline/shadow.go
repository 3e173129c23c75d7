package trampoline

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/overlayupd/overlayupd/internal/atomicfile"
	"github.com/overlayupd/overlayupd/internal/record"
)

// Shadows. A file the user changed under one root (copied up into the
// persistent layer) hides that file of every later image. At the first boot
// of a new root over the persistent layer, the boot path compares the
// layer's files with the image the layer was last used with and the new
// one (internal/layer.Shadows), says which hide a change by name, and, with
// overlayupd.shadow=image, lets the image win without losing the user's
// file. Two records in the slot directory carry it; both are diagnostics
// and a memo, never protocol state (no name of them is an entry):
//
//	layer.base     the identity (EntryIdentifier) of the root the persistent
//	               layer was last used with as the committed root's layer. A
//	               committed boot of another root writes it, after its check;
//	               a trial does not (if it fails, the layer still belongs to
//	               the old root).
//	shadow.report  the last check: which root, against which, the policy,
//	               and the files (status shows it).
const (
	LayerBaseFile    = "layer.base"
	ShadowReportFile = "shadow.report"
)

// EntryIdentifier is a Format whose entries have an identity that survives
// the protocol's renames: a squashfs image's inode, size and time, a
// subvolume's UUID.
type EntryIdentifier interface {
	EntryID(slotDir, entry string) (string, error)
}

// ShadowFile is one file of the persistent layer that hides what the new
// image changed.
type ShadowFile struct {
	Path   string `json:"path"`            // in the root: "/etc/foo.conf"
	Change string `json:"change"`          // what the image did: changed, added, removed
	Layer  string `json:"layer"`           // what the layer holds there: file, whiteout, directory, opaque directory
	Action string `json:"action"`          // kept (the user's wins), image (the image's shows), moved
	Aside  string `json:"aside,omitempty"` // moved: where the user's file is now, on the store
}

// ShadowReport is the last shadow check.
type ShadowReport struct {
	Time    time.Time    `json:"time"`
	Root    string       `json:"root"`    // the entry that booted, by its name at that boot
	Against string       `json:"against"` // the root the layer was used with before
	Policy  string       `json:"policy"`  // overlayupd.shadow: keep or image
	Trial   bool         `json:"trial"`   // checked at a trial boot: the persistent layer was not changed
	Files   []ShadowFile `json:"files"`
	More    int          `json:"more,omitempty"`  // files beyond the list's cap
	Error   string       `json:"error,omitempty"` // the check did not finish
}

// record is r as encoding/json writes it (package record: the PID-1 path
// writes the report without encoding/json).
func (r ShadowReport) record() []byte {
	var files record.Array
	for _, f := range r.Files {
		o := record.NewObject().String("path", f.Path).String("change", f.Change).String("layer", f.Layer).String("action", f.Action)
		if f.Aside != "" {
			o.String("aside", f.Aside)
		}
		files.Add(o.Bytes())
	}
	o := record.NewObject().Time("time", r.Time).String("root", r.Root).String("against", r.Against).
		String("policy", r.Policy).Bool("trial", r.Trial).Raw("files", files.Bytes(r.Files != nil))
	if r.More != 0 {
		o.Int("more", r.More)
	}
	if r.Error != "" {
		o.String("error", r.Error)
	}
	return o.Bytes()
}

// Summary is the report in one line.
func (r ShadowReport) Summary() string {
	if r.Error != "" {
		return fmt.Sprintf("shadow check of %s against %s did not finish: %s", r.Root, r.Against, r.Error)
	}
	n := len(r.Files) + r.More
	if n == 0 {
		return fmt.Sprintf("no file of the persistent layer hides what %s changed (compared with %s)", r.Root, r.Against)
	}
	paths := make([]string, 0, len(r.Files))
	for _, f := range r.Files {
		paths = append(paths, f.Path)
	}
	if r.More > 0 {
		paths = append(paths, fmt.Sprintf("and %d more", r.More))
	}
	how := "the layer's files win (overlayupd.shadow=keep; =image lets the image win, keeping yours aside)"
	if r.Policy == "image" && r.Trial {
		how = "the image's files show in this trial (overlayupd.shadow=image); yours are untouched in the persistent layer and set aside when the trial is committed"
	} else if r.Policy == "image" {
		how = "the image's files show (overlayupd.shadow=image); yours were moved aside"
	}
	return fmt.Sprintf("%d %s of the persistent layer %s what %s changed (compared with %s): %s; %s",
		n, plural2(n, "file", "files"), plural2(n, "hides", "hide"), r.Root, r.Against, strings.Join(paths, ", "), how)
}

func plural2(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// WriteShadowReport records r (atomicfile: a crash keeps the old or the new).
func (s *Store) WriteShadowReport(r ShadowReport) error {
	b := r.record()
	return atomicfile.WriteFile(filepath.Join(s.SlotDir, ShadowReportFile), append(b, '\n'), 0o644)
}

// ShadowReport reads the last shadow check (nil when there is none).
func (s *Store) ShadowReport() (*ShadowReport, error) {
	b, err := readSmall(filepath.Join(s.SlotDir, ShadowReportFile), 1<<20)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r ShadowReport
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", ShadowReportFile, err)
	}
	return &r, nil
}

// LayerBase reads the identity of the root the persistent layer was last
// used with ("" when none is recorded).
func (s *Store) LayerBase() (string, error) {
	b, err := readSmall(filepath.Join(s.SlotDir, LayerBaseFile), 4096)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	return strings.TrimSpace(string(b)), err
}

// SetLayerBase records id as the root the persistent layer is used with.
func (s *Store) SetLayerBase(id string) error {
	return atomicfile.WriteFile(filepath.Join(s.SlotDir, LayerBaseFile), []byte(id+"\n"), 0o644)
}

// EntryID is the identity of entry ("" when the format has none).
func (s *Store) EntryID(entry string) (string, error) {
	f, ok := s.Format.(EntryIdentifier)
	if !ok {
		return "", nil
	}
	return f.EntryID(s.SlotDir, entry)
}

// EntryWithID names the root entry of st whose identity is id ("" when
// none has it: the root the layer was used with is gone).
func (s *Store) EntryWithID(st State, id string) string {
	if id == "" {
		return ""
	}
	for _, e := range st.Entries() {
		switch e.Role {
		case RoleCommitted, RoleCommitting, RolePrevious, RoleTrying, RoleStaged, RoleFailed:
			if got, err := s.EntryID(e.Name); err == nil && got == id {
				return e.Name
			}
		}
	}
	return ""
}

// Layer is what status shows of the layers: names in st, and the last
// shadow check.
func (s *Store) Layer(st State) *LayerStatus {
	l := &LayerStatus{Trial: st.Has(LayerTrial), FoldPending: st.Has(LayerFold), Failed: st.Has(LayerFailed)}
	if r, err := s.ShadowReport(); err == nil {
		l.Shadows = r
	}
	if !l.Trial && !l.FoldPending && !l.Failed && l.Shadows == nil {
		return nil
	}
	return l
}
