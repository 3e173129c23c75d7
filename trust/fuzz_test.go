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
