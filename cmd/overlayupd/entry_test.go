package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/overlayupd/overlayupd/internal/testroot"
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
}
