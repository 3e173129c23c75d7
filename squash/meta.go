package squash

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
)

// Where a root says what it is and whom it trusts, relative to the root:
// the paths package trust reads (trust.OSRelease, trust.VersionFile,
// trust.TrustedDir). They are named here too so that the PID-1 path, which
// links this package, does not link the signature code's packages twice.
const (
	osReleasePath = "etc/os-release"
	versionPath   = "etc/overlayupd/version"
	trustedDir    = "etc/overlayupd/trusted.d"
)

// Bounds on what is read of a root's metadata: a hostile image must not
// make apply read much.
const (
	MaxMetaFile = 64 << 10
	maxKeys     = 64
)

// Meta is what a root says about itself in small files: its version
// (os-release, /etc/overlayupd/version) and the public keys it trusts for
// its successor (/etc/overlayupd/trusted.d/*.pub, by file name). A file
// that is missing is nil.
type Meta struct {
	OSRelease   []byte
	VersionFile []byte
	TrustedKeys map[string][]byte
}

// MetaSource reads a root's files, following symlinks inside the root.
type MetaSource struct {
	ReadFile func(p string) ([]byte, error)   // fs.ErrNotExist when missing
	ReadDir  func(p string) ([]string, error) // names; fs.ErrNotExist when missing
}

// ReadMetaFrom reads m from src: missing files are no error, unreadable ones are.
func ReadMetaFrom(src MetaSource) (m Meta, err error) {
	if m.OSRelease, err = optional(src.ReadFile(osReleasePath)); err != nil {
		return m, err
	}
	if m.VersionFile, err = optional(src.ReadFile(versionPath)); err != nil {
		return m, err
	}
	names, err := src.ReadDir(trustedDir)
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return m, err
	}
	for _, n := range names {
		if !strings.HasSuffix(n, ".pub") {
			continue
		}
		if len(m.TrustedKeys) >= maxKeys {
			return m, fmt.Errorf("/%s has over %d keys", trustedDir, maxKeys)
		}
		b, err := src.ReadFile(path.Join(trustedDir, n))
		if err != nil {
			return m, err
		}
		if m.TrustedKeys == nil {
			m.TrustedKeys = map[string][]byte{}
		}
		m.TrustedKeys[n] = b
	}
	return m, nil
}

func optional(b []byte, err error) ([]byte, error) {
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// NotExist keeps a missing path (or a dangling link to one) as
// fs.ErrNotExist: the image simply has no such file.
func NotExist(err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrDanglingSymlink) {
		return fs.ErrNotExist
	}
	return err
}

// ReadLimited reads r whole, refusing more than a metadata file may hold.
func ReadLimited(r io.Reader, p string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxMetaFile+1))
	if err != nil {
		return nil, fmt.Errorf("read /%s: %w", p, err)
	}
	if len(b) > MaxMetaFile {
		return nil, fmt.Errorf("/%s is over %d bytes", p, MaxMetaFile)
	}
	return b, nil
}
