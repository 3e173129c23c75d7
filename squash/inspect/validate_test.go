package inspect

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/internal/testroot"
	"github.com/overlayupd/overlayupd/squash"
)

func TestValidate(t *testing.T) {
	good := goodTree()
	cases := []struct {
		name     string
		comp     string
		tree     tree
		chmod    []string
		wantErr  []error // every one must match with errors.Is; nil means valid
		wantInit string
	}{
		{name: "gzip relative symlink", comp: "gzip", tree: good, wantInit: "/bin/busybox"},
		{name: "xz", comp: "xz", tree: good, wantInit: "/bin/busybox"},
		{name: "zstd", comp: "zstd", tree: good, wantInit: "/bin/busybox"},
		{name: "absolute symlink", comp: "gzip", tree: good.with("sbin/init", "->/bin/busybox"), wantInit: "/bin/busybox"},
		{name: "symlink climbing above root stays inside", comp: "gzip", tree: good.with("sbin/init", "->../../../../bin/busybox"), wantInit: "/bin/busybox"},
		{name: "regular init", comp: "gzip", tree: good.with("sbin/init", "#!/bin/sh\n"), wantInit: "/sbin/init"},
		{name: "merged usr", comp: "zstd", tree: tree{"sbin": "->usr/sbin", "usr/sbin/init": "->/lib/systemd/systemd",
			"lib": "->usr/lib", "usr/lib/systemd/systemd": testroot.ELFStub()}, wantInit: "/usr/lib/systemd/systemd"},
		{name: "no init", comp: "gzip", tree: good.with("sbin/init", "<delete>", "sbin/other", "x"), wantErr: []error{squash.ErrNoInit}},
		{name: "no sbin", comp: "gzip", tree: good.with("sbin/init", "<delete>"), wantErr: []error{squash.ErrNoInit}},
		{name: "init not executable", comp: "gzip", tree: good.with("sbin/init", "#!/bin/sh\n"), chmod: []string{"sbin/init"}, wantErr: []error{squash.ErrInitNotExecutable}},
		{name: "init target not executable", comp: "xz", tree: good, chmod: []string{"bin/busybox"}, wantErr: []error{squash.ErrInitNotExecutable}},
		{name: "init is a directory", comp: "gzip", tree: good.with("sbin/init", "<delete>", "sbin/init/", ""), wantErr: []error{squash.ErrInitNotExecutable}},
		{name: "dangling symlink", comp: "gzip", tree: good.with("sbin/init", "->/bin/nothere"), wantErr: []error{squash.ErrNoInit, squash.ErrDanglingSymlink}},
		{name: "dangling relative", comp: "zstd", tree: good.with("sbin/init", "->busybox"), wantErr: []error{squash.ErrNoInit, squash.ErrDanglingSymlink}},
		{name: "symlink loop", comp: "gzip", tree: good.with("sbin/init", "->init2", "sbin/init2", "->init"), wantErr: []error{squash.ErrNoInit, squash.ErrSymlinkLoop}},
		{name: "lzma refused", comp: "lzma", tree: good, wantErr: []error{squash.ErrUnsupportedCompression}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			img := buildImage(t, tc.comp, tc.tree, tc.chmod...)
			got, err := Validate(img, nil)
			checkValidate(t, got, err, tc.wantErr, tc.wantInit)
			if err == nil && (got.Compression != tc.comp || got.CheckedBy != "reader" || got.Size != fileSize(t, img)) {
				t.Errorf("info = %+v, want compression %s checked by reader", got, tc.comp)
			}
		})
	}
}

func checkValidate(t *testing.T, got squash.Info, err error, wantErr []error, wantInit string) {
	t.Helper()
	if wantErr == nil {
		if err != nil {
			t.Fatalf("Validate: %v, want success", err)
		}
		if got.InitTarget != wantInit {
			t.Errorf("InitTarget = %q, want %q", got.InitTarget, wantInit)
		}
		return
	}
	if err == nil {
		t.Fatalf("Validate succeeded (%+v), want %v", got, wantErr)
	}
	for _, w := range wantErr {
		if !errors.Is(err, w) {
			t.Errorf("Validate error %q is not %v", err, w)
		}
	}
	t.Logf("error: %v", err)
}

func TestValidateBadInput(t *testing.T) {
	img := buildImage(t, "gzip", goodTree().with("bin/big", randomText(t, 300<<10)))
	size := fileSize(t, img)
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	random := make([]byte, 1<<20)
	rand.Read(random)
	cases := []struct {
		name string
		path string
		want error
	}{
		{"empty file", write("empty.sqsh", nil), squash.ErrNotSquashfs},
		{"tiny file", write("tiny.sqsh", []byte("hsqs")), squash.ErrNotSquashfs},
		{"random bytes", write("random.sqsh", random), squash.ErrNotSquashfs},
		{"truncated at half", truncated(t, img, size/2), squash.ErrTruncated},
		{"truncated 4 KiB before end", truncated(t, img, size-4096), squash.ErrTruncated},
		{"ext4 image", ext4Image(t), squash.ErrNotSquashfs},
		{"bad block size", write("bs.sqsh", corruptSuperblock(t, img, func(s *squash.Superblock) { s.BlockSize = 3000 })), squash.ErrBadSuperblock},
		{"block log mismatch", write("bl.sqsh", corruptSuperblock(t, img, func(s *squash.Superblock) { s.BlockLog = 12 })), squash.ErrBadSuperblock},
		{"version 3", write("v3.sqsh", corruptSuperblock(t, img, func(s *squash.Superblock) { s.Major = 3 })), squash.ErrBadSuperblock},
		{"unknown compression", write("c9.sqsh", corruptSuperblock(t, img, func(s *squash.Superblock) { s.Compression = 9 })), squash.ErrUnsupportedCompression},
		{"bytes_used beyond file", write("bu.sqsh", corruptSuperblock(t, img, func(s *squash.Superblock) { s.BytesUsed += 1 << 30 })), squash.ErrTruncated},
		{"garbage directory table", write("dt.sqsh", corruptTables(t, img)), squash.ErrCorrupt},
		{"directory", dir, squash.ErrNotFile},
		{"does not exist", filepath.Join(dir, "nope.sqsh"), fs.ErrNotExist},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Validate(tc.path, nil)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Validate(%s, nil) = %v, want %v", tc.name, err, tc.want)
			}
			t.Logf("error: %v", err)
		})
	}
}

// randomText is incompressible-ish content so images have real data blocks.
func randomText(t testing.TB, n int) string {
	b := make([]byte, n)
	rand.Read(b)
	if n > 0 {
		b[0] = 'x' // the tree shorthand reads a body starting with "->" as a symlink
	}
	return string(b)
}

func corruptSuperblock(t *testing.T, img string, edit func(*squash.Superblock)) []byte {
	t.Helper()
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := squash.ParseSuperblock(data)
	if err != nil {
		t.Fatal(err)
	}
	edit(&sb)
	copy(data, sb.Marshal())
	return data
}

// corruptTables overwrites the inode and directory tables with a pattern.
func corruptTables(t *testing.T, img string) []byte {
	t.Helper()
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := squash.ParseSuperblock(data)
	if err != nil {
		t.Fatal(err)
	}
	for i := sb.InodeTable; i < sb.IDTable && i < uint64(len(data)); i++ {
		data[i] = byte(i*7 + 3)
	}
	return data
}

// ext4Image is an ext4 filesystem, made by mkfs.ext4 when present, else a
// bare ext4 superblock magic in a file named .sqsh.
func ext4Image(t *testing.T) string {
	t.Helper()
	if _, err := testroot.LookTool("mkfs.ext4"); err == nil {
		return testroot.Ext4(t, testroot.NewTree(t, testroot.Files(goodTree(), 0o755)), "8M")
	}
	p := filepath.Join(t.TempDir(), "ext4.sqsh")
	data := make([]byte, 8<<20)
	data[1080], data[1081] = 0x53, 0xEF
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestValidateLz4Lzo: the Go reader cannot read lz4/lzo, so these are checked by
// a kernel mount as root and refused with a clear reason otherwise.
func TestValidateLz4Lzo(t *testing.T) {
	cases := []struct {
		name    string
		comp    string
		tree    tree
		wantErr []error
	}{
		{"lz4 good", "lz4", goodTree(), nil},
		{"lzo good", "lzo", goodTree().with("sbin/init", "->/bin/busybox"), nil},
		{"lz4 no init", "lz4", goodTree().with("sbin/init", "<delete>", "sbin/x", "x"), []error{squash.ErrNoInit}},
		{"lz4 dangling", "lz4", goodTree().with("sbin/init", "->/nothere"), []error{squash.ErrNoInit, squash.ErrDanglingSymlink}},
		{"lzo loop", "lzo", goodTree().with("sbin/init", "->/sbin/init"), []error{squash.ErrNoInit, squash.ErrSymlinkLoop}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			img := buildImage(t, tc.comp, tc.tree)
			if !isRoot() {
				_, err := Validate(img, nil)
				checkValidate(t, squash.Info{}, err, []error{squash.ErrUnsupportedCompression}, "")
				return
			}
			testroot.NeedOpenat2(t)
			got, err := Validate(img, nil)
			checkValidate(t, got, err, tc.wantErr, "/bin/busybox")
			if err == nil && got.CheckedBy != "mount" {
				t.Errorf("CheckedBy = %q, want mount", got.CheckedBy)
			}
		})
	}
	t.Run("truncated lz4 is caught before mounting", func(t *testing.T) {
		img := buildImage(t, "lz4", goodTree().with("bin/big", randomText(t, 200<<10)))
		_, err := Validate(truncated(t, img, fileSize(t, img)-4096), nil)
		checkValidate(t, squash.Info{}, err, []error{squash.ErrTruncated}, "")
	})
}

// otherELF is an ELF header for a machine that is not this one's.
func otherELF(t *testing.T) string {
	b := []byte(testroot.ELFStub())
	m := squash.EMAArch64
	if b[18] == byte(squash.EMAArch64) {
		m = squash.EMX8664
	}
	b[18], b[19] = byte(m), byte(m>>8)
	return string(b)
}

// TestValidateRunnable: apply refuses an image whose init cannot run here,
// by the in-process reader (zstd) and by a kernel mount (lz4, as root).
func TestValidateRunnable(t *testing.T) {
	here := squash.KernelMachines(hostArch(t))
	if here == nil {
		t.Skip("unknown machine")
	}
	good := goodTree()
	cases := []struct {
		name string
		tree tree
		want error
	}{
		{"this machine", good, nil},
		{"another machine", good.with("bin/busybox", otherELF(t)), squash.ErrInitWrongArch},
		{"script without its shell", good.with("sbin/init", "#!/bin/bash\nexec x\n"), squash.ErrInitNotRunnable},
		{"script whose shell is another machine's", good.with("sbin/init", "#!/bin/other\n", "bin/other", otherELF(t)), squash.ErrInitWrongArch},
		{"not ELF, not a script", good.with("bin/busybox", "MZ\x90\x00 a PE file"), squash.ErrInitNotRunnable},
	}
	comps := []string{"zstd"}
	if isRoot() {
		comps = append(comps, "lz4")
	}
	for _, comp := range comps {
		for _, tc := range cases {
			t.Run(comp+" "+tc.name, func(t *testing.T) {
				if comp == "lz4" {
					testroot.NeedOpenat2(t) // the kernel mount's check
				}
				img := buildImage(t, comp, tc.tree)
				_, err := Validate(img, here)
				if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
					t.Fatalf("Validate = %v, want %v", err, tc.want)
				}
				if _, err := Validate(img, nil); tc.want == squash.ErrInitWrongArch && err != nil {
					t.Errorf("without machines, the architecture is not checked, but: %v", err)
				}
			})
		}
	}
}

func hostArch(t *testing.T) string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	return unix.ByteSliceToString(u.Machine[:])
}

// TestValidateDirectoryLoop: an image whose directory entry etc points back
// at the root directory (crafted: a one-field edit of an uncompressed
// directory table) is refused as corrupt, at once. The walk of the tree
// used to follow the loop for ever, and apply hung with the store locked.
func TestValidateDirectoryLoop(t *testing.T) {
	tr := testroot.NewTree(t, testroot.Files(goodTree(), 0o755))
	img := testroot.Squashfs(t, tr, "", testroot.MksquashfsArgs("-noI", "-noD", "-noF", "-noX", "-no-fragments"))
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	rootRef, inodeTable, dirTable := le.Uint64(b[32:]), le.Uint64(b[64:]), le.Uint64(b[72:])
	if rootRef>>16 != 0 {
		t.Fatalf("the root inode is not in the first metadata block (ref %#x): the edit below assumes it", rootRef)
	}
	if le.Uint16(b[inodeTable:])&0x8000 == 0 || le.Uint16(b[dirTable:])&0x8000 == 0 {
		t.Fatal("the metadata is compressed: -noI did not take")
	}
	// A directory entry: offset, inode offset, type, name size - 1, name.
	// The entry for etc points at its inode by offset in its header's
	// metadata block (the first: a tiny image has one): point it at the
	// root's.
	i := bytes.Index(b[dirTable:], []byte("\x02\x00etc"))
	if i < 6 {
		t.Fatal("no directory entry named etc in the directory table")
	}
	le.PutUint16(b[dirTable+uint64(i)-6:], uint16(rootRef&0xffff))
	loop := filepath.Join(t.TempDir(), "loop.sqsh")
	if err := os.WriteFile(loop, b, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := Validate(loop, nil)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, squash.ErrCorrupt) || !strings.Contains(err.Error(), "directory loop") {
			t.Fatalf("Validate = %v, want ErrCorrupt for a directory loop", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Validate still walks the looped tree after 30 s")
	}
}

// TestValidateDamagedInterpreter: a damaged data block past the first 4
// KiB of init's interpreter (a flipped byte in its second block, which
// then fails to decompress) is refused as corrupt: the boot runs all of
// it. Only its head was read before, and such an image was staged.
func TestValidateDamagedInterpreter(t *testing.T) {
	noise := make([]byte, 128<<10-len(testroot.ELFStub()))
	if _, err := rand.Read(noise); err != nil {
		t.Fatal(err)
	}
	// Block 0: the stub and noise, stored as it is (it does not compress);
	// blocks 1 and 2: text, compressed.
	busybox := testroot.ELFStub() + string(noise) + strings.Repeat("the rest of busybox\n", 12000)
	tr := testroot.NewTree(t, testroot.Files(tree{"bin/busybox": busybox, "sbin/init": "#!/bin/busybox sh\nexec x\n", "etc/hostname": "x\n"}, 0o755))
	img := testroot.Squashfs(t, tr, "", testroot.MksquashfsArgs("-no-fragments"))
	if _, err := Validate(img, nil); err != nil {
		t.Fatalf("the undamaged image: %v", err)
	}
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	// The first file's data starts after the 96-byte superblock; its
	// block 0 is 128 KiB as stored, block 1 follows.
	b[96+128<<10+50] ^= 0xff
	bad := filepath.Join(t.TempDir(), "bad.sqsh")
	if err := os.WriteFile(bad, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Validate(bad, nil); !errors.Is(err, squash.ErrCorrupt) {
		t.Fatalf("Validate = %v, want ErrCorrupt for the interpreter's damaged second block", err)
	}
}
