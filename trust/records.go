package trust

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/overlayupd/overlayupd/internal/atomicfile"
)

// RecordsFile holds the store's records, in its keys directory.
const RecordsFile = "records.json"

// maxRecords bounds the records file read.
const maxRecords = 4 << 20

// Record says where a root in the store came from and what was checked. It
// is keyed by the entry's identity, which renames keep (an image file's
// inode, size and modification time; a subvolume's UUID), so the slot
// protocol's renames need not know about it.
type Record struct {
	Identity string `json:"identity"`
	// CTransID is a subvolume's btrfs change transaction when it was sealed:
	// any change to its files since moves it on.
	CTransID       uint64    `json:"ctransid,omitempty"`
	Made           string    `json:"made"` // store init, apply, update, persist
	SHA256         string    `json:"sha256,omitempty"`
	SignedBy       string    `json:"signed_by,omitempty"` // the image signature's key ID
	TrustedComment string    `json:"trusted_comment,omitempty"`
	Insecure       bool      `json:"insecure,omitempty"` // --insecure: no signature was checked
	Version        string    `json:"version,omitempty"`
	From           string    `json:"from,omitempty"` // update, persist: the root it was made from
	Time           time.Time `json:"time"`
}

// Signed is a record with the device key's signature over its JSON. The
// JSON is kept as a string: the signed bytes must survive the file's
// formatting.
type Signed struct {
	Record    string `json:"record"`
	Signature string `json:"signature"`
}

// SignRecord signs r with the device key.
func (d DeviceKey) SignRecord(r Record) (Signed, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return Signed{}, err
	}
	return Signed{Record: string(b), Signature: string(d.Sign(b, "overlayupd record "+r.Identity))}, nil
}

// Open checks s with the device's public key and returns its record.
func (s Signed) Open(device Key) (Record, error) {
	if err := device.VerifyData([]byte(s.Record), []byte(s.Signature)); err != nil {
		return Record{}, fmt.Errorf("record: %w", err)
	}
	var r Record
	if err := json.Unmarshal([]byte(s.Record), &r); err != nil {
		return Record{}, fmt.Errorf("record: %w", err)
	}
	return r, nil
}

// Unverified returns s's record without checking its signature, for
// showing what it claims.
func (s Signed) Unverified() (Record, error) {
	var r Record
	err := json.Unmarshal([]byte(s.Record), &r)
	return r, err
}

// OpenUntrusted opens path for reading, and says what it is, without
// waiting on it: keys, signatures and the store's records may sit on
// untrusted media, and opening a FIFO for reading blocks until a writer
// comes, which may be never. Callers refuse what is not a regular file.
func OpenUntrusted(path string) (*os.File, fs.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// LoadRecords reads the records in dir (none if there is no file).
func LoadRecords(dir string) ([]Signed, error) {
	b, err := readSmall(filepath.Join(dir, RecordsFile), maxRecords)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Signed
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, RecordsFile), err)
	}
	return out, nil
}

// SaveRecords replaces the records in dir with recs plus add, keeping
// only those whose identity keep accepts (the entries that still exist),
// and add replacing any record of its identity. Durable: temp file, fsync,
// rename, fsync of dir.
func SaveRecords(dir string, recs []Signed, add Signed, keep func(identity string) bool) error {
	addRec, err := add.Unverified()
	if err != nil {
		return err
	}
	out := []Signed{}
	for _, s := range recs {
		r, err := s.Unverified()
		if err != nil || r.Identity == addRec.Identity || !keep(r.Identity) {
			continue
		}
		out = append(out, s)
	}
	out = append(out, add)
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, RecordsFile), append(b, '\n'), 0o644)
}

// Find returns the record of identity in recs, checked with the device's
// public key: ok is false when there is none; err says a record exists
// but does not verify.
func Find(recs []Signed, identity string, device Key) (r Record, ok bool, err error) {
	for _, s := range recs {
		u, uerr := s.Unverified()
		if uerr != nil || u.Identity != identity {
			continue
		}
		r, err := s.Open(device)
		return r, true, err
	}
	return Record{}, false, nil
}

func readSmall(path string, limit int64) ([]byte, error) {
	f, fi, err := OpenUntrusted(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (mode %v): not a records file", path, fi.Mode())
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is over %d bytes: not a records file", path, limit)
	}
	return b, nil
}
