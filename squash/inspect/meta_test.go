package inspect

import (
	"bytes"
	"strings"
	"testing"

	"github.com/overlayupd/overlayupd/internal/testroot"
	"github.com/overlayupd/overlayupd/squash"
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

func checkMeta(t *testing.T, m squash.Meta) {
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
	info, err := Validate(img, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkMeta(t, info.Meta)
	m, err := ReadMeta(img)
	if err != nil {
		t.Fatal(err)
	}
	checkMeta(t, m)
	bare, err := Validate(buildImage(t, "gzip", goodTree()), nil)
	if err != nil || bare.Meta.OSRelease != nil || bare.Meta.TrustedKeys != nil {
		t.Errorf("an image without metadata: %+v, %v; want an empty Meta", bare.Meta, err)
	}
	if isRoot() {
		testroot.NeedOpenat2(t)
		info, err := squash.ValidateByMount(img, nil)
		if err != nil {
			t.Fatal(err)
		}
		checkMeta(t, info.Meta)
	}
}

func TestReadMetaRefusesHugeFile(t *testing.T) {
	img := buildImage(t, "gzip", goodTree().with("etc/overlayupd/version", strings.Repeat("9", squash.MaxMetaFile+1)))
	if _, err := ReadMeta(img); err == nil || !strings.Contains(err.Error(), "over") {
		t.Errorf("ReadMeta of an image with a %d-byte version file: %v, want a refusal", squash.MaxMetaFile+1, err)
	}
}
