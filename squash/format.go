package squash

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/overlayupd/overlayupd/internal/mounts"
	"github.com/overlayupd/overlayupd/trampoline"
)

// ImageSuffix is the suffix of the squashfs store's entries: root.sqsh, ...
const ImageSuffix = ".sqsh"

// Format is the squashfs store's trampoline.Format: entries are image files,
// loop-mounted read-only.
type Format struct{}

var _ trampoline.Format = Format{}

// Name implements trampoline.Format.
func (Format) Name() string { return "squashfs" }

// Suffix implements trampoline.Format.
func (Format) Suffix() string { return ImageSuffix }

// Backend implements trampoline.Format: image files, deleted by unlink.
func (Format) Backend(slotDir string) trampoline.Backend {
	return trampoline.NewDirBackend(slotDir, ImageSuffix, nil)
}

// Lower implements trampoline.Format: the image, loop-mounted read-only.
func (Format) Lower(slotDir, entry string) mounts.Spec {
	return mounts.Spec{Type: "squashfs", Source: filepath.Join(slotDir, entry), Options: []string{"ro", "loop"}}
}

// SysBlock is where loop devices publish their backing files; tests move it.
var SysBlock = "/sys/block"

// Booted implements trampoline.Format: the file behind the loop device
// mounted at robase. The kernel tracks renames, so after a commit it is the
// entry's new name.
func (Format) Booted(_ string, robase mounts.Mount) (string, error) {
	if !strings.HasPrefix(robase.Source, "/dev/loop") {
		return "", nil
	}
	dev := filepath.Base(robase.Source)
	b, err := os.ReadFile(filepath.Join(SysBlock, dev, "loop", "backing_file"))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("backing file of %s: %w", robase.Source, err)
	}
	return filepath.Base(strings.TrimSpace(string(b))), nil
}

// Digest implements trampoline.Format: the image file's sha256, in hex.
func (Format) Digest(slotDir, entry string) (string, error) {
	s, err := Sum(filepath.Join(slotDir, entry))
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(s[:]), nil
}
