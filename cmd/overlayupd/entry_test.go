package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/overlayupd/overlayupd/internal/testroot"
	"github.com/overlayupd/overlayupd/verity"
)

// TestApplyStoreEntry: a store's entry copied out (root.sqsh: the image,
// its dm-verity tree and trailer) applies and digests as the image it
// holds: the same sha256, and a staged entry byte for byte the committed
// one, not the image with its old tree counted as image bytes.
func TestApplyStoreEntry(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	top, img := newStore(t, e)
	entry := filepath.Join(t.TempDir(), "root.sqsh")
	b, err := os.ReadFile(slotPath(top, "root.sqsh"))
	testroot.Must(t, err)
	testroot.Must(t, os.WriteFile(entry, b, 0o644))

	digest := func(path string) digestResult {
		t.Helper()
		out, err := run(t, e, "overlayupd", "digest", "--json", path)
		if err != nil {
			t.Fatalf("digest %s: %v\n%s", path, err, out)
		}
		var r digestResult
		testroot.Must(t, json.Unmarshal([]byte(withoutProgress(out)), &r))
		return r
	}
	if got, want := digest(entry), digest(img); got != want {
		t.Errorf("digest of the entry %+v, of its image %+v", got, want)
	}

	// Unsigned (the kernel's copy), then signed: the image's signature
	// must hold for the entry, whose bytes go through memory and are hashed
	// there; the old tree is neither.
	s := newSigner(t)
	sig := s.sign(t, img)
	for _, signed := range []bool{false, true} {
		args := []string{"apply", "--json", "--store", top, entry}
		if signed {
			trustIn(t, e.trustRoot, s)
			args = append(args, "--sig", sig)
		}
		out, err := run(t, e, "overlayupd", args...)
		if err != nil {
			t.Fatalf("apply %v: %v\n%s", args, err, out)
		}
		var r struct {
			Entry, SHA256 string
			Size          int64
		}
		mustJSON(t, out, &r)
		fi, err := os.Stat(img)
		testroot.Must(t, err)
		if r.SHA256 != fileSum(t, img) || r.Size != fi.Size() {
			t.Errorf("signed %v: staged %d bytes, sha256 %s; the image is %d bytes, %s", signed, r.Size, r.SHA256, fi.Size(), fileSum(t, img))
		}
		// The progress counts to the image's size, not the file's.
		var last progressLine
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, `{"progress"`) {
				testroot.Must(t, json.Unmarshal([]byte(l), &last))
			}
		}
		if last.Progress.Total != fi.Size() || last.Progress.Bytes != fi.Size() {
			t.Errorf("signed %v: the last progress line %+v, want total and bytes %d", signed, last.Progress, fi.Size())
		}
		if got, want := fileSum(t, slotPath(top, r.Entry)), fileSum(t, slotPath(top, "root.sqsh")); got != want {
			t.Errorf("signed %v: the staged entry differs from the committed one it was copied from", signed)
		}
		testroot.Must(t, os.Remove(slotPath(top, r.Entry)))
	}
	// A signature over the whole entry is not the image's: refused, saying so.
	entrySig := s.signTo(t, entry, entry+".whole.minisig")
	before := treeDigest(t, top)
	if out, err := run(t, e, "overlayupd", "apply", "--store", top, entry, "--sig", entrySig); err == nil || !strings.Contains(err.Error(), "sign the image, not the entry") {
		t.Errorf("apply with a signature of the whole entry: %v, want a refusal that says what to sign\n%s", err, out)
	}
	if treeDigest(t, top) != before {
		t.Errorf("a refused apply changed the store")
	}
}

// TestApplyDamagedEntry: an entry whose trailer is damaged, or is sound but
// says the image ends before the image's own bytes_used (made so by hand),
// is refused by apply and digest, not staged or digested with the wrong
// bytes.
func TestApplyDamagedEntry(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	top, img := newStore(t, e)
	data, err := os.ReadFile(img)
	testroot.Must(t, err)
	entry, err := os.ReadFile(slotPath(top, "root.sqsh"))
	testroot.Must(t, err)

	damaged := filepath.Join(t.TempDir(), "damaged.sqsh")
	b := append([]byte(nil), entry...)
	b[len(b)-verity.TrailerSize+50] ^= 1
	testroot.Must(t, os.WriteFile(damaged, b, 0o644))

	short := filepath.Join(t.TempDir(), "short.sqsh")
	cut := int64(len(data) - verity.BlockSize)
	tree, err := verity.Compute(bytes.NewReader(data[:cut]), nil)
	testroot.Must(t, err)
	f, err := os.Create(short)
	testroot.Must(t, err)
	_, err = f.Write(data[:cut])
	testroot.Must(t, err)
	_, err = verity.Append(f, tree, cut)
	testroot.Must(t, err)
	testroot.Must(t, f.Close())

	before := treeDigest(t, top)
	// (digest's check of the whole file may find the cut first: damaged.)
	for _, c := range []struct{ path, want string }{
		{damaged, "damaged dm-verity trailer"},
		{short, "incomplete|damaged"},
	} {
		for _, cmd := range [][]string{{"apply", "--store", top, c.path}, {"digest", c.path}} {
			out, err := run(t, e, "overlayupd", cmd...)
			if err == nil || !regexp.MustCompile(c.want).MatchString(err.Error()) {
				t.Errorf("%v: %v, want a refusal saying %q\n%s", cmd, err, c.want, out)
			}
		}
	}
	if treeDigest(t, top) != before {
		t.Errorf("a refused apply changed the store")
	}
}
