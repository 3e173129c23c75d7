package testroot

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The image makers build a filesystem image from a tree with the mkfs
// tool's own directory option, so nothing is mounted on the host. Each
// skips without its tool, or fails under CI=true (NeedTools).

// Ext4 makes an ext4 image of size (mkfs.ext4's syntax, e.g. "64M") from
// tree with mkfs.ext4 -d. mkfsArgs go to mkfs.ext4 too, e.g. "-L", "root".
func Ext4(t testing.TB, tree, size string, mkfsArgs ...string) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "root.ext4")
	args := append(append([]string{"-q", "-F"}, mkfsArgs...), "-d", tree, img, size)
	runTool(t, "mkfs.ext4", args...)
	return img
}

// Btrfs makes a btrfs image of size ("256M": a sparse file) from tree with
// mkfs.btrfs --rootdir. mkfsArgs go to mkfs.btrfs too, e.g. "-L", "root".
func Btrfs(t testing.TB, tree, size string, mkfsArgs ...string) string {
	t.Helper()
	NeedTools(t, "mkfs.btrfs", "truncate")
	img := filepath.Join(t.TempDir(), "root.btrfs")
	runTool(t, "truncate", "-s", size, img)
	args := append(append([]string{"-q", "-f"}, mkfsArgs...), "--rootdir", tree, img)
	runTool(t, "mkfs.btrfs", args...)
	return img
}

// SquashfsOpt changes how Squashfs runs mksquashfs.
type SquashfsOpt func(*squashfsCfg)

type squashfsCfg struct {
	comp       string
	keepOwners bool
	args       []string
}

// Compression sets -comp (gzip, xz, zstd, lz4, lzo, lzma); gzip by default.
func Compression(comp string) SquashfsOpt { return func(c *squashfsCfg) { c.comp = comp } }

// KeepOwners leaves out -all-root: files keep the owners they have in tree.
func KeepOwners() SquashfsOpt { return func(c *squashfsCfg) { c.keepOwners = true } }

// MksquashfsArgs adds arguments to the end of the mksquashfs command.
func MksquashfsArgs(args ...string) SquashfsOpt {
	return func(c *squashfsCfg) { c.args = append(c.args, args...) }
}

// Squashfs makes a squashfs image of tree at out (a temp file when out is
// ""), owned by root (-all-root) and gzip-compressed unless opts say
// otherwise.
func Squashfs(t testing.TB, tree, out string, opts ...SquashfsOpt) string {
	t.Helper()
	cfg := squashfsCfg{comp: "gzip"}
	for _, o := range opts {
		o(&cfg)
	}
	if out == "" {
		out = filepath.Join(t.TempDir(), "root.sqsh")
	}
	args := []string{tree, out, "-noappend", "-quiet", "-no-progress", "-comp", cfg.comp}
	if !cfg.keepOwners {
		args = append(args, "-all-root")
	}
	runTool(t, "mksquashfs", append(args, cfg.args...)...)
	return out
}

// runTool runs a tool found by LookTool (after NeedTools), failing t with
// its output on error.
func runTool(t testing.TB, name string, args ...string) {
	t.Helper()
	NeedTools(t, name)
	p, _ := LookTool(name)
	if out, err := exec.Command(p, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}
