package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"aead.dev/minisign"

	"github.com/overlayupd/overlayupd/internal/testroot"
	"github.com/overlayupd/overlayupd/squash"
	"github.com/overlayupd/overlayupd/trust"
)

// TestDigest: overlayupd digest states the image's size, its sha256 (what
// sha256sum says) and the root hash of the tree apply stages with it.
func TestDigest(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	img := bootable().withVersion("1.0").squashfs(t)
	out, err := run(t, e, "overlayupd", "digest", "--json", img)
	if err != nil {
		t.Fatalf("digest: %v\n%s", err, out)
	}
	var r digestResult
	if err := json.Unmarshal([]byte(withoutProgress(out)), &r); err != nil {
		t.Fatalf("digest --json: %v\n%s", err, out)
	}
	fi, _ := os.Stat(img)
	if r.Size != fi.Size() || r.SHA256 != fileSum(t, img) {
		t.Errorf("digest says %d bytes, sha256 %s; the file is %d bytes, %s", r.Size, r.SHA256, fi.Size(), fileSum(t, img))
	}
	// The root hash is the one of the tree staged with the image.
	top := t.TempDir()
	if out, err := run(t, e, "overlayupd", "store", "init", top, "--image", img); err != nil {
		t.Fatalf("store init: %v\n%s", err, out)
	}
	tr, err := squash.Verity(slotPath(top, "root.sqsh"))
	if err != nil {
		t.Fatal(err)
	}
	if got := tr.RootHex(); got != r.Verity {
		t.Errorf("digest's verity root %s, the staged tree's %s", r.Verity, got)
	}
	d, ok, err := trust.ParseDigest(r.Comment)
	if !ok || err != nil || d.Size != r.Size {
		t.Errorf("the comment %q does not read back: %v", r.Comment, err)
	}
	for _, bad := range []string{filepath.Dir(img), filepath.Join(t.TempDir(), "none.sqsh")} {
		if out, err := run(t, e, "overlayupd", "digest", bad); err == nil {
			t.Errorf("digest %s succeeded: %s", bad, out)
		}
	}
	notImage := filepath.Join(t.TempDir(), "x.sqsh")
	testroot.Must(t, os.WriteFile(notImage, bytes.Repeat([]byte("x"), 8192), 0o644))
	if _, err := run(t, e, "overlayupd", "digest", notImage); err == nil || !strings.Contains(err.Error(), "mksquashfs") {
		t.Errorf("digest of a file that is no image: %v, want a refusal saying to build it with mksquashfs", err)
	}
}

// TestApplySignedDigest: a signature whose trusted comment is the image's
// digest is checked by the comment's signature and the staged copy's size
// and dm-verity root: the right image passes, by file and by stdin, with
// its true sha256 reported; every wrong one is refused and the store is
// byte-for-byte unchanged.
func TestApplySignedDigest(t *testing.T) {
	t.Parallel()
	k1, k2 := newSigner(t), newSigner(t)
	e := testEnv(t)
	top := t.TempDir()
	if out, err := run(t, e, "overlayupd", "store", "init", top, "--image", bootable().withVersion("2.0").squashfs(t)); err != nil {
		t.Fatalf("store init: %v\n%s", err, out)
	}
	trustIn(t, e.trustRoot, k1)

	good := bootable().withVersion("2.1").squashfs(t)
	k1.signDigest(t, e, good, good)
	goodData, _ := os.ReadFile(good)
	other := bootable().withVersion("2.2").withKeys(k1).squashfs(t)

	changed := copyFile(t, good, "changed.sqsh")
	k1.signDigest(t, e, changed, changed)
	flipPadding(t, changed) // same size, another root hash
	othersDigest := copyFile(t, good, "others.sqsh")
	k1.signDigest(t, e, othersDigest, other)
	byK2 := copyFile(t, good, "byk2.sqsh")
	k2.signDigest(t, e, byK2, byK2)
	edited := copyFile(t, good, "edited.sqsh")
	sig := k1.signDigest(t, e, edited, edited)
	b, _ := os.ReadFile(sig)
	testroot.Must(t, os.WriteFile(sig, bytes.Replace(b, []byte(" size="), []byte(" size=1"), 1), 0o644))
	malformed := copyFile(t, good, "malformed.sqsh")
	k1.signComment(t, malformed, trust.DigestPrefix+" size=12")
	longer := append(append([]byte{}, goodData...), make([]byte, 4096)...)

	before := treeDigest(t, top)
	for _, c := range []struct {
		name  string
		args  []string
		stdin []byte
		want  []string
	}{
		{"one byte changed after signing", []string{changed}, nil, []string{"does not match its signature", "dm-verity root hash"}},
		{"the digest of another image", []string{othersDigest}, nil, []string{"does not match its signature", "another image's"}},
		{"untrusted key", []string{byK2}, nil, []string{"not trusted", k2.id}},
		{"comment edited after signing", []string{edited}, nil, []string{"did not sign this trusted comment"}},
		{"malformed digest", []string{malformed}, nil, []string{"malformed overlayupd digest", "overlayupd digest IMAGE"}},
		{"stdin, longer", []string{"--sig", good + ".minisig", "-"}, longer, []string{"does not match its signature"}},
		{"stdin, shorter", []string{"--sig", good + ".minisig", "-"}, goodData[:len(goodData)-4096], []string{"ended"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := runIn(t, e, bytes.NewReader(c.stdin), append([]string{"apply", "--store", top}, c.args...)...)
			if err == nil {
				t.Fatalf("apply %v succeeded, want a refusal\n%s", c.args, out)
			}
			for _, w := range append(c.want, "nothing was changed") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v\nwant it to say %q", err, w)
				}
			}
			if after := treeDigest(t, top); after != before {
				t.Errorf("the store changed:\n%s\nwas\n%s", after, before)
			}
		})
	}

	out, err := run(t, e, "overlayupd", "apply", "--store", top, "--json", good)
	if err != nil {
		t.Fatalf("apply of the image with a signed digest: %v\n%s", err, out)
	}
	var r applyResult
	if err := json.Unmarshal([]byte(withoutProgress(out)), &r); err != nil {
		t.Fatalf("apply --json: %v\n%s", err, out)
	}
	if r.SHA256 != fileSum(t, good) || r.SignedBy != k1.id {
		t.Errorf("apply reports sha256 %s signed by %s, want %s by %s", r.SHA256, r.SignedBy, fileSum(t, good), k1.id)
	}
	if got := entrySum(t, slotPath(top, "root.try-1.sqsh")); got != fileSum(t, good) {
		t.Errorf("staged %s, want the signed image's %s", got, fileSum(t, good))
	}
	if out, err := run(t, e, "overlayupd", "rollback", "--store", top); err != nil {
		t.Fatalf("rollback: %v\n%s", err, out)
	}
	out, err = runIn(t, e, bytes.NewReader(goodData), "apply", "--store", top, "--sig", good+".minisig", "-")
	if err != nil || !strings.Contains(out, "signed digest") {
		t.Fatalf("apply - --sig with a signed digest: %v\n%s", err, out)
	}
	// A legacy signature (minisign -l) carrying the digest: only its
	// comment's signature is checked, which -l does not change.
	if out, err := run(t, e, "overlayupd", "rollback", "--store", top); err != nil {
		t.Fatalf("rollback: %v\n%s", err, out)
	}
	legacy := copyFile(t, good, "legacy.sqsh")
	digest, err := run(t, e, "overlayupd", "digest", legacy)
	if err != nil {
		t.Fatalf("digest: %v\n%s", err, digest)
	}
	testroot.Must(t, os.WriteFile(legacy+".minisig", minisign.SignWithComments(k1.priv, goodData, strings.TrimSpace(digest), "legacy"), 0o644))
	if out, err := run(t, e, "overlayupd", "apply", "--store", top, legacy); err != nil || !strings.Contains(out, "signed digest") {
		t.Fatalf("apply with a legacy signature carrying the digest: %v\n%s", err, out)
	}
}
