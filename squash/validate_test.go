package squash

import (
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/overlayupd/overlayupd/internal/testroot"
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
			"lib": "->usr/lib", "usr/lib/systemd/systemd": "ELF"}, wantInit: "/usr/lib/systemd/systemd"},
		{name: "no init", comp: "gzip", tree: good.with("sbin/init", "<delete>", "sbin/other", "x"), wantErr: []error{ErrNoInit}},
		{name: "no sbin", comp: "gzip", tree: good.with("sbin/init", "<delete>"), wantErr: []error{ErrNoInit}},
		{name: "init not executable", comp: "gzip", tree: good.with("sbin/init", "#!/bin/sh\n"), chmod: []string{"sbin/init"}, wantErr: []error{ErrInitNotExecutable}},
		{name: "init target not executable", comp: "xz", tree: good, chmod: []string{"bin/busybox"}, wantErr: []error{ErrInitNotExecutable}},
		{name: "init is a directory", comp: "gzip", tree: good.with("sbin/init", "<delete>", "sbin/init/", ""), wantErr: []error{ErrInitNotExecutable}},
		{name: "dangling symlink", comp: "gzip", tree: good.with("sbin/init", "->/bin/nothere"), wantErr: []error{ErrNoInit, ErrDanglingSymlink}},
		{name: "dangling relative", comp: "zstd", tree: good.with("sbin/init", "->busybox"), wantErr: []error{ErrNoInit, ErrDanglingSymlink}},
		{name: "symlink loop", comp: "gzip", tree: good.with("sbin/init", "->init2", "sbin/init2", "->init"), wantErr: []error{ErrNoInit, ErrSymlinkLoop}},
		{name: "lzma refused", comp: "lzma", tree: good, wantErr: []error{ErrUnsupportedCompression}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			img := buildImage(t, tc.comp, tc.tree, tc.chmod...)
			got, err := Validate(img)
			checkValidate(t, got, err, tc.wantErr, tc.wantInit)
			if err == nil && (got.Compression != tc.comp || got.CheckedBy != "reader" || got.Size != fileSize(t, img)) {
				t.Errorf("info = %+v, want compression %s checked by reader", got, tc.comp)
			}
		})
	}
}

func checkValidate(t *testing.T, got Info, err error, wantErr []error, wantInit string) {
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
		{"empty file", write("empty.sqsh", nil), ErrNotSquashfs},
		{"tiny file", write("tiny.sqsh", []byte("hsqs")), ErrNotSquashfs},
		{"random bytes", write("random.sqsh", random), ErrNotSquashfs},
		{"truncated at half", truncated(t, img, size/2), ErrTruncated},
		{"truncated 4 KiB before end", truncated(t, img, size-4096), ErrTruncated},
		{"ext4 image", ext4Image(t), ErrNotSquashfs},
		{"bad block size", write("bs.sqsh", corruptSuperblock(t, img, func(s *Superblock) { s.BlockSize = 3000 })), ErrBadSuperblock},
		{"block log mismatch", write("bl.sqsh", corruptSuperblock(t, img, func(s *Superblock) { s.BlockLog = 12 })), ErrBadSuperblock},
		{"version 3", write("v3.sqsh", corruptSuperblock(t, img, func(s *Superblock) { s.Major = 3 })), ErrBadSuperblock},
		{"unknown compression", write("c9.sqsh", corruptSuperblock(t, img, func(s *Superblock) { s.Compression = 9 })), ErrUnsupportedCompression},
		{"bytes_used beyond file", write("bu.sqsh", corruptSuperblock(t, img, func(s *Superblock) { s.BytesUsed += 1 << 30 })), ErrTruncated},
		{"garbage directory table", write("dt.sqsh", corruptTables(t, img)), ErrCorrupt},
		{"directory", dir, ErrNotFile},
		{"does not exist", filepath.Join(dir, "nope.sqsh"), fs.ErrNotExist},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Validate(tc.path)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Validate(%s) = %v, want %v", tc.name, err, tc.want)
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

func corruptSuperblock(t *testing.T, img string, edit func(*Superblock)) []byte {
	t.Helper()
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := ParseSuperblock(data)
	if err != nil {
		t.Fatal(err)
	}
	edit(&sb)
	copy(data, sb.marshal())
	return data
}

// corruptTables overwrites the inode and directory tables with a pattern.
func corruptTables(t *testing.T, img string) []byte {
	t.Helper()
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := ParseSuperblock(data)
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
		{"lz4 no init", "lz4", goodTree().with("sbin/init", "<delete>", "sbin/x", "x"), []error{ErrNoInit}},
		{"lz4 dangling", "lz4", goodTree().with("sbin/init", "->/nothere"), []error{ErrNoInit, ErrDanglingSymlink}},
		{"lzo loop", "lzo", goodTree().with("sbin/init", "->/sbin/init"), []error{ErrNoInit, ErrSymlinkLoop}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			img := buildImage(t, tc.comp, tc.tree)
			if !isRoot() {
				_, err := Validate(img)
				checkValidate(t, Info{}, err, []error{ErrUnsupportedCompression}, "")
				return
			}
			got, err := Validate(img)
			checkValidate(t, got, err, tc.wantErr, "/bin/busybox")
			if err == nil && got.CheckedBy != "mount" {
				t.Errorf("CheckedBy = %q, want mount", got.CheckedBy)
			}
		})
	}
	t.Run("not root is refused", func(t *testing.T) {
		img := buildImage(t, "lz4", goodTree())
		defer func(f func() int) { geteuid = f }(geteuid)
		geteuid = func() int { return 1000 }
		_, err := Validate(img)
		checkValidate(t, Info{}, err, []error{ErrUnsupportedCompression}, "")
	})
	t.Run("truncated lz4 is caught before mounting", func(t *testing.T) {
		img := buildImage(t, "lz4", goodTree().with("bin/big", randomText(t, 200<<10)))
		_, err := Validate(truncated(t, img, fileSize(t, img)-4096))
		checkValidate(t, Info{}, err, []error{ErrTruncated}, "")
	})
}
