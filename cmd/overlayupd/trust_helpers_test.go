package main

import (
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"aead.dev/minisign"

	"github.com/overlayupd/overlayupd/internal/testroot"
	"github.com/overlayupd/overlayupd/trust"
)

// signer is a minisign key pair made with the library (the real tool's
// interop has its own test).
type signer struct {
	priv minisign.PrivateKey
	pub  string // the .pub file's text
	id   string
}

func newSigner(t *testing.T) signer {
	t.Helper()
	pub, priv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := pub.MarshalText()
	return signer{priv: priv, pub: string(text) + "\n", id: trust.FormatID(pub.ID())}
}

// sign writes img.minisig, a prehashed signature as 'minisign -S' makes.
func (s signer) sign(t *testing.T, img string) string {
	t.Helper()
	return s.signTo(t, img, img+".minisig")
}

func (s signer) signTo(t *testing.T, img, out string) string {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := minisign.NewReader(f)
	if _, err := io.Copy(io.Discard, r); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, r.Sign(s.priv), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// trustIn makes root trust the signers' keys, as /etc/overlayupd/trusted.d.
func trustIn(t *testing.T, root string, ss ...signer) {
	t.Helper()
	dir := filepath.Join(root, trust.TrustedDir)
	testroot.Must(t, os.MkdirAll(dir, 0o755))
	for _, s := range ss {
		testroot.Must(t, os.WriteFile(filepath.Join(dir, s.id+".pub"), []byte(s.pub), 0o644))
	}
}

// withKeys is tr carrying the signers' public keys for its successor.
func (tr tree) withKeys(ss ...signer) tree {
	out := tree{files: map[string]string{}, modes: tr.modes}
	for k, v := range tr.files {
		out.files[k] = v
	}
	for _, s := range ss {
		out.files[trust.TrustedDir+"/"+s.id+".pub"] = s.pub
	}
	return out
}

// withVersion is tr declaring version v in its os-release.
func (tr tree) withVersion(v string) tree {
	out := tree{files: map[string]string{}, modes: tr.modes}
	for k, val := range tr.files {
		out.files[k] = val
	}
	out.files["etc/os-release"] = "NAME=Test\nVERSION_ID=12\nIMAGE_VERSION=" + v + "\n"
	return out
}

// dirAndImage builds tr as a directory (the root as it runs) and an image.
func (tr tree) dirAndImage(t *testing.T) (dir, img string) {
	t.Helper()
	dir = testroot.NewTree(t, tr.appliers()...)
	return dir, testroot.Squashfs(t, dir, "")
}

// copyFile copies src to a new file in a temp dir, named name.
func copyFile(t *testing.T, src, name string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	testroot.Must(t, err)
	p := filepath.Join(t.TempDir(), name)
	testroot.Must(t, os.WriteFile(p, b, 0o644))
	return p
}

// flipPadding changes one byte of img after the squashfs data (its 4 KiB
// padding): the image stays valid, only its signature can tell.
func flipPadding(t *testing.T, img string) {
	t.Helper()
	b, err := os.ReadFile(img)
	testroot.Must(t, err)
	b[len(b)-1] ^= 0x5a
	testroot.Must(t, os.WriteFile(img, b, 0o644))
	if _, err := checkImage(img, hostMachines()); err != nil {
		t.Fatalf("the changed image must stay valid, or the test proves nothing: %v", err)
	}
}

// signDigest writes img.minisig as 'minisign -S -t "$(overlayupd digest
// of)"' makes: a signature of img's bytes whose trusted comment is the
// digest of the image of (img itself, or another image, for the tests).
func (s signer) signDigest(t *testing.T, e *env, img, of string) string {
	t.Helper()
	out, err := run(t, e, "overlayupd", "digest", of)
	if err != nil {
		t.Fatalf("overlayupd digest %s: %v\n%s", of, err, out)
	}
	return s.signComment(t, img, strings.TrimSpace(out))
}

// signComment writes img.minisig with the trusted comment comment.
func (s signer) signComment(t *testing.T, img, comment string) string {
	t.Helper()
	f, err := os.Open(img)
	testroot.Must(t, err)
	defer f.Close()
	r := minisign.NewReader(f)
	if _, err := io.Copy(io.Discard, r); err != nil {
		t.Fatal(err)
	}
	out := img + ".minisig"
	testroot.Must(t, os.WriteFile(out, r.SignWithComments(s.priv, comment, "signature from minisign secret key"), 0o644))
	return out
}
