package squash

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/diskfs/go-diskfs/filesystem/squashfs"
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
	maxMetaFile = 64 << 10
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

// metaSource reads a root's files, following symlinks inside the root.
type metaSource struct {
	readFile func(p string) ([]byte, error)   // fs.ErrNotExist when missing
	readDir  func(p string) ([]string, error) // names; fs.ErrNotExist when missing
}

// readMeta reads m from src: missing files are no error, unreadable ones are.
func readMeta(src metaSource) (m Meta, err error) {
	if m.OSRelease, err = optional(src.readFile(osReleasePath)); err != nil {
		return m, err
	}
	if m.VersionFile, err = optional(src.readFile(versionPath)); err != nil {
		return m, err
	}
	names, err := src.readDir(trustedDir)
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
		b, err := src.readFile(path.Join(trustedDir, n))
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

// diskfsMeta reads a root's metadata from an image open in go-diskfs.
func diskfsMeta(sfs *squashfs.FileSystem) (Meta, error) {
	lookup := diskfsLookup(sfs)
	m, err := readMeta(metaSource{
		readFile: func(p string) ([]byte, error) {
			target, n, err := resolve(lookup, p)
			if err != nil {
				return nil, notExist(err)
			}
			if !n.mode.IsRegular() {
				return nil, fmt.Errorf("/%s is a %s, not a file", p, describeMode(n.mode))
			}
			f, err := sfs.Open(target)
			if err != nil {
				return nil, fmt.Errorf("open /%s: %w", p, err)
			}
			defer f.Close()
			return readLimited(f, p)
		},
		readDir: func(p string) ([]string, error) {
			target, n, err := resolve(lookup, p)
			if err != nil {
				return nil, notExist(err)
			}
			if !n.mode.IsDir() {
				return nil, fmt.Errorf("/%s is a %s, not a directory", p, describeMode(n.mode))
			}
			des, err := sfs.ReadDir(path.Clean("./" + target))
			if err != nil {
				return nil, fmt.Errorf("read /%s: %w", p, err)
			}
			var out []string
			for _, d := range des {
				out = append(out, d.Name())
			}
			return out, nil
		},
	})
	if err != nil {
		return Meta{}, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return m, nil
}

// notExist keeps a missing path (or a dangling link to one) as
// fs.ErrNotExist: the image simply has no such file.
func notExist(err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrDanglingSymlink) {
		return fs.ErrNotExist
	}
	return err
}

func readLimited(r io.Reader, p string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxMetaFile+1))
	if err != nil {
		return nil, fmt.Errorf("read /%s: %w", p, err)
	}
	if len(b) > maxMetaFile {
		return nil, fmt.Errorf("/%s is over %d bytes", p, maxMetaFile)
	}
	return b, nil
}
