package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/overlayupd/overlayupd/internal/testroot"
	"github.com/overlayupd/overlayupd/squash"
	"github.com/overlayupd/overlayupd/trampoline"
	"github.com/overlayupd/overlayupd/verity"
)

// testEnv is the system as the command tests see it: root, booted from no
// store entry, this "binary" a small script, and a reboot that fails the
// test. Each test (and subtest) takes its own, so they run in parallel.
func testEnv(t *testing.T) *env {
	self := filepath.Join(t.TempDir(), "overlayupd")
	if err := os.WriteFile(self, []byte("#!/bin/sh\n# stands in for the binary\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	return &env{
		args:       []string{"overlayupd", "test"},
		geteuid:    func() int { return 0 },
		booted:     func(*trampoline.Store) (string, error) { return "", nil },
		executable: func() (string, error) { return self, nil },
		machines:   hostMachines(),
		reboot:     func() error { t.Error("reboot without a fake"); return nil },
		trustRoot:  t.TempDir(), // trusts no key, unless a test puts some there
		// An empty root: an install that would edit this machine's own
		// boot configuration stops at its check (no init-overlay there).
		kernelRoot: func() string { return "/nonexistent-kernel-root" },
		bootDir:    t.TempDir(), // never this machine's /boot
	}
}

// run runs the command tree called as name with args.
func run(t *testing.T, e *env, name string, args ...string) (string, error) {
	t.Helper()
	return runAs(t, e, name, nil, args...)
}

// runIn runs overlayupd with stdin.
func runIn(t *testing.T, e *env, stdin io.Reader, args ...string) (string, error) {
	t.Helper()
	return runAs(t, e, "overlayupd", stdin, args...)
}

func runAs(t *testing.T, e *env, name string, stdin io.Reader, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd(name, e)
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	if stdin != nil {
		root.SetIn(stdin)
	}
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

// fakeBooted makes the commands believe the system booted entry.
func fakeBooted(e *env, entry string) {
	e.booted = func(*trampoline.Store) (string, error) { return entry, nil }
}

// tree is a root filesystem for an image, as data that tests edit: path ->
// content (testroot's map shorthand: "->target" makes a symlink), and modes
// says which are executable.
type tree struct {
	files map[string]string
	modes map[string]os.FileMode
}

// bootable is a root with an executable /sbin/init and 64 KiB of data that
// does not compress, so truncations cut real data.
func bootable() tree {
	noise := make([]byte, 64<<10)
	_, _ = rand.Read(noise)
	noise[0] = 'x' // the tree shorthand reads a body starting with "->" as a symlink
	return tree{
		files: map[string]string{"sbin/init": "#!/bin/sh\nexec /bin/sh\n", "bin/sh": testroot.ELFStub(), "data/noise": string(noise)},
		modes: map[string]os.FileMode{"sbin/init": 0o755, "bin/sh": 0o755},
	}
}

// appliers is the tree for testroot: the files, then their modes.
func (tr tree) appliers() []testroot.Applier {
	out := []testroot.Applier{testroot.Files(tr.files, 0o644)}
	for p, mode := range tr.modes {
		if c, ok := tr.files[p]; ok && !strings.HasPrefix(c, "->") {
			out = append(out, testroot.Chmod(p, mode))
		}
	}
	return out
}

// squashfs builds an image of tr and returns its path.
func (tr tree) squashfs(t *testing.T) string {
	t.Helper()
	return testroot.Squashfs(t, testroot.NewTree(t, tr.appliers()...), "")
}

// newStore makes a store with store init and returns its top directory and
// the committed image.
func newStore(t *testing.T, e *env) (top, img string) {
	t.Helper()
	img = bootable().squashfs(t)
	top = t.TempDir()
	if out, err := run(t, e, "overlayupd", "store", "init", top, "--image", img); err != nil {
		t.Fatalf("store init: %v\n%s", err, out)
	}
	return top, img
}

// treeDigest describes every file of the store: name, mode, contents (or
// link target). Two equal digests mean a byte-for-byte unchanged store.
func treeDigest(t *testing.T, top string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(top, p)
		what := ""
		switch {
		case fi.Mode().IsRegular():
			what = fileSum(t, p)
		case fi.Mode()&fs.ModeSymlink != 0:
			what, _ = os.Readlink(p)
		}
		lines = append(lines, fmt.Sprintf("%s %v %s", rel, fi.Mode(), what))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func fileSum(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// entrySum is the sha256 of the image in a squashfs store entry: its bytes
// before the dm-verity tree, which it must carry, computed over exactly
// those bytes.
func entrySum(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := verity.ReadTrailer(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("store entry %s: %v", p, err)
	}
	img := b[:tr.ImageSize]
	if tree, err := verity.Compute(bytes.NewReader(img), nil); err != nil || tree.Root != tr.Root {
		t.Fatalf("store entry %s: its trailer's root hash %s is not the tree of its image (%v)", p, tr.RootHex(), err)
	}
	s := sha256.Sum256(img)
	return hex.EncodeToString(s[:])
}

// slots lists the slot directory's names, without the lock file.
func slots(t *testing.T, top string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(top, trampoline.SlotDir))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if e.Name() != trampoline.LockFile {
			out = append(out, e.Name())
		}
	}
	return out
}

func slotPath(top, name string) string { return filepath.Join(top, trampoline.SlotDir, name) }

// bootTrial plays the trampoline at boot: the staged image becomes the trial.
func bootTrial(t *testing.T, e *env, top string) string {
	t.Helper()
	plan, err := trampoline.Open(top, squash.Format{}).Boot()
	if err != nil || !plan.Trial {
		t.Fatalf("boot: %+v, %v; want a trial", plan, err)
	}
	fakeBooted(e, plan.Boot.Name)
	return plan.Boot.Name
}
