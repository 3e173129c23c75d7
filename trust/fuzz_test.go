package trust

import (
	"strings"
	"testing"
)

// The parsers take bytes from images and files anyone may hand to apply:
// they must never panic, and what they accept must be consistent.

func FuzzParseSignature(f *testing.F) {
	f.Add([]byte("untrusted comment: x\nRUQAAAAAAAAAAA==\ntrusted comment: t\nAA==\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSignature(b)
		if err == nil && len(s.Raw()) == 0 {
			t.Error("accepted a signature with no text")
		}
	})
}

func FuzzParseKey(f *testing.F) {
	f.Add([]byte("untrusted comment: minisign public key: 0\nRWQAAAAAAAAAAA==\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseKey(b, "fuzz.pub")
	})
}

func FuzzVersions(f *testing.F) {
	f.Add("1.0~rc1", "1.0", []byte("VERSION_ID=\"12\"\nIMAGE_VERSION=3\n"))
	f.Fuzz(func(t *testing.T, a, b string, osRelease []byte) {
		if CompareVersions(a, b) != -CompareVersions(b, a) {
			t.Errorf("CompareVersions(%q, %q) is not antisymmetric", a, b)
		}
		if CompareVersions(a, a) != 0 {
			t.Errorf("CompareVersions(%q, itself) != 0", a)
		}
		if v := ImageVersion(osRelease, nil); strings.Contains(v, "\n") {
			t.Errorf("ImageVersion = %q, with a newline", v)
		}
	})
}

func FuzzParseDigest(f *testing.F) {
	f.Add("overlayupd-digest size=4096 sha256=" + strings.Repeat("ab", 32) + " verity=" + strings.Repeat("0c", 32))
	f.Add("timestamp:1700000000\tfile:root.sqsh\thashed")
	f.Add("overlayupd-digest size=1 size=2")
	f.Fuzz(func(t *testing.T, comment string) {
		d, ok, err := ParseDigest(comment)
		if !ok && err != nil {
			t.Errorf("ParseDigest(%q): not a digest, yet an error %v", comment, err)
		}
		if ok != (len(strings.Fields(comment)) > 0 && strings.Fields(comment)[0] == DigestPrefix) {
			t.Errorf("ParseDigest(%q): ok %v for a comment whose first word is %q", comment, ok, strings.Fields(comment))
		}
		if !ok || err != nil {
			if d != (Digest{}) {
				t.Errorf("ParseDigest(%q) refused it (ok %v, %v) but returned %+v", comment, ok, err, d)
			}
			return
		}
		if d.Size <= 0 {
			t.Errorf("ParseDigest(%q): accepted size %d", comment, d.Size)
		}
		if again, ok, err := ParseDigest(d.String()); !ok || err != nil || again != d {
			t.Errorf("ParseDigest(%q) = %+v, whose String %q reads back as %+v, %v, %v", comment, d, d.String(), again, ok, err)
		}
	})
}
