package inspect

import (
	"fmt"
	"os"
	"path"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/squashfs"

	"github.com/overlayupd/overlayupd/internal/fsmode"
	"github.com/overlayupd/overlayupd/squash"
)

// diskfsMeta reads a root's metadata from an image open in go-diskfs.
func diskfsMeta(sfs *squashfs.FileSystem) (squash.Meta, error) {
	lookup := diskfsLookup(sfs)
	m, err := squash.ReadMetaFrom(squash.MetaSource{
		ReadFile: func(p string) ([]byte, error) {
			target, n, err := squash.Resolve(lookup, p)
			if err != nil {
				return nil, squash.NotExist(err)
			}
			if !n.Mode.IsRegular() {
				return nil, fmt.Errorf("/%s is a %s, not a file", p, fsmode.Kind(n.Mode))
			}
			f, err := sfs.Open(target)
			if err != nil {
				return nil, fmt.Errorf("open /%s: %w", p, err)
			}
			defer f.Close()
			return squash.ReadLimited(f, p)
		},
		ReadDir: func(p string) ([]string, error) {
			target, n, err := squash.Resolve(lookup, p)
			if err != nil {
				return nil, squash.NotExist(err)
			}
			if !n.Mode.IsDir() {
				return nil, fmt.Errorf("/%s is a %s, not a directory", p, fsmode.Kind(n.Mode))
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
		return squash.Meta{}, fmt.Errorf("%w: %w", squash.ErrCorrupt, err)
	}
	return m, nil
}

// ReadMeta reads the metadata of the image at path without validating the
// whole image (the committed root's, say: it was validated when staged).
// lz4 and lzo images are loop-mounted (root only), as Validate does.
func ReadMeta(path string) (squash.Meta, error) {
	f, sb, info, err := squash.OpenImage(path)
	if err != nil {
		return squash.Meta{}, err
	}
	defer f.Close()
	if !sb.GoReadable() {
		var m squash.Meta
		err := squash.WithMounted(path, func(dir string) (err error) {
			m, err = squash.TreeMeta(dir)
			return err
		})
		return m, err
	}
	return readMetaDiskfs(f, info.Size, path)
}

func readMetaDiskfs(f *os.File, size int64, path string) (m squash.Meta, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: %w: the squashfs reader failed: %v", path, squash.ErrCorrupt, r)
		}
	}()
	sfs, err := squashfs.Read(file.New(f, true), size, 0, 0)
	if err != nil {
		return squash.Meta{}, fmt.Errorf("%s: %w: %w", path, squash.ErrCorrupt, err)
	}
	m, err = diskfsMeta(sfs)
	if err != nil {
		return squash.Meta{}, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}
