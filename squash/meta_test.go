package squash

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
)

// metaTree is a bootable root that declares a version through a symlinked
// os-release (as Debian does) and trusts two keys.
func metaTree() tree {
	return goodTree().with(
		"usr/lib/os-release", "NAME=Test\nVERSION_ID=\"12\"\nIMAGE_VERSION=2024.06.1\n",
		"etc/os-release", "->../usr/lib/os-release",
		"etc/overlayupd/trusted.d/a.pub", "key a\n",
		"etc/overlayupd/trusted.d/b.pub", "->/usr/share/keys/b.pub",
		"usr/share/keys/b.pub", "key b\n",
		"etc/overlayupd/trusted.d/README", "not a key\n",
	)
}

func checkMeta(t *testing.T, m Meta) {
	t.Helper()
	if !bytes.Contains(m.OSRelease, []byte("IMAGE_VERSION=2024.06.1")) {
		t.Errorf("OSRelease %q, want the linked file's contents", m.OSRelease)
	}
	if m.VersionFile != nil {
		t.Errorf("VersionFile %q, want nil (no such file)", m.VersionFile)
	}
	if len(m.TrustedKeys) != 2 || string(m.TrustedKeys["a.pub"]) != "key a\n" || string(m.TrustedKeys["b.pub"]) != "key b\n" {
		t.Errorf("TrustedKeys %q, want a.pub and b.pub (through its absolute link, inside the image)", m.TrustedKeys)
	}
}

// TestValidateReadsMeta: validation reads the version and the keys on its
// way, from the image it validates, by every path that reads images.
func TestValidateReadsMeta(t *testing.T) {
	img := buildImage(t, "gzip", metaTree())
	info, err := Validate(img)
	if err != nil {
		t.Fatal(err)
	}
	checkMeta(t, info.Meta)
	m, err := ReadMeta(img)
	if err != nil {
		t.Fatal(err)
	}
	checkMeta(t, m)
	bare, err := Validate(buildImage(t, "gzip", goodTree()))
	if err != nil || bare.Meta.OSRelease != nil || bare.Meta.TrustedKeys != nil {
		t.Errorf("an image without metadata: %+v, %v; want an empty Meta", bare.Meta, err)
	}
	if isRoot() {
		info, err := ValidateByMount(img)
		if err != nil {
			t.Fatal(err)
		}
		checkMeta(t, info.Meta)
	}
}

func TestReadMetaRefusesHugeFile(t *testing.T) {
	img := buildImage(t, "gzip", goodTree().with("etc/overlayupd/version", strings.Repeat("9", maxMetaFile+1)))
	if _, err := ReadMeta(img); err == nil || !strings.Contains(err.Error(), "over") {
		t.Errorf("ReadMeta of an image with a %d-byte version file: %v, want a refusal", maxMetaFile+1, err)
	}
}

// TestStageWithHash: the extra hash sees exactly the bytes staged, for a
// file (which otherwise goes through copy_file_range) and for a stream.
func TestStageWithHash(t *testing.T) {
	data := randomBytes(5<<20 + 123)
	src := buildFile(t, data)
	for _, c := range []struct {
		name string
		open func() (*os.File, error)
		size int64
	}{
		{"file", func() (*os.File, error) { return os.Open(src) }, int64(len(data))},
		{"stream", func() (*os.File, error) { return os.Open(src) }, -1},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, err := c.open()
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var r = any(f)
			if c.size < 0 {
				r = struct{ *os.File }{f} // not an *os.File: the stream path
			}
			var got bytes.Buffer
			tmp, _, n, err := StageWith(context.Background(), r.(interface{ Read([]byte) (int, error) }), c.size, storeDir(t), Options{Hash: &got})
			if err != nil {
				t.Fatal(err)
			}
			staged, err := os.ReadFile(tmp)
			if err != nil {
				t.Fatal(err)
			}
			if n != int64(len(data)) || !bytes.Equal(got.Bytes(), staged) || !bytes.Equal(staged, data) {
				t.Errorf("hashed %d bytes, staged %d, want both the %d source bytes", got.Len(), len(staged), len(data))
			}
		})
	}
}

func buildFile(t *testing.T, data []byte) string {
	t.Helper()
	p := t.TempDir() + "/src"
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
