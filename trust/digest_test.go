package trust

import (
	"errors"
	"io"
	"strings"
	"testing"

	"aead.dev/minisign"
)

func TestParseDigest(t *testing.T) {
	sha, root := strings.Repeat("ab", 32), strings.Repeat("0c", 32)
	good := Digest{Size: 4096}
	for i := range 32 {
		good.SHA256[i], good.Verity[i] = 0xab, 0x0c
	}
	cases := []struct {
		name, comment string
		ok            bool
		err           error
	}{
		{"minisign's default", "timestamp:1700000000\tfile:root.sqsh\thashed", false, nil},
		{"empty", "", false, nil},
		{"prefix inside a word", "overlayupd-digestx size=1", false, nil},
		{"good", "overlayupd-digest size=4096 sha256=" + sha + " verity=" + root, true, nil},
		{"good, other order, tabs", "overlayupd-digest\tverity=" + root + "\tsha256=" + sha + "  size=4096", true, nil},
		{"no verity", "overlayupd-digest size=4096 sha256=" + sha, true, ErrBadDigest},
		{"no size", "overlayupd-digest sha256=" + sha + " verity=" + root, true, ErrBadDigest},
		{"zero size", "overlayupd-digest size=0 sha256=" + sha + " verity=" + root, true, ErrBadDigest},
		{"negative size", "overlayupd-digest size=-1 sha256=" + sha + " verity=" + root, true, ErrBadDigest},
		{"huge size", "overlayupd-digest size=99999999999999999999 sha256=" + sha + " verity=" + root, true, ErrBadDigest},
		{"short sha256", "overlayupd-digest size=4096 sha256=" + sha[2:] + " verity=" + root, true, ErrBadDigest},
		{"not hex", "overlayupd-digest size=4096 sha256=" + strings.Repeat("zz", 32) + " verity=" + root, true, ErrBadDigest},
		{"twice", "overlayupd-digest size=4096 size=4096 sha256=" + sha + " verity=" + root, true, ErrBadDigest},
		{"unknown field", "overlayupd-digest size=4096 sha256=" + sha + " verity=" + root + " salt=00", true, ErrBadDigest},
		{"no =", "overlayupd-digest size=4096 sha256=" + sha + " verity=" + root + " hashed", true, ErrBadDigest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, ok, err := ParseDigest(c.comment)
			if ok != c.ok || !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
				t.Fatalf("ParseDigest: ok %v, err %v; want ok %v, err %v", ok, err, c.ok, c.err)
			}
			if ok && err == nil && d != good {
				t.Errorf("got %+v, want %+v", d, good)
			}
		})
	}
	if d, _, err := ParseDigest(good.String()); err != nil || d != good {
		t.Errorf("String does not read back: %q: %+v, %v", good.String(), d, err)
	}
}

// signComment signs msg as 'minisign -S -t comment' does.
func signComment(priv minisign.PrivateKey, msg []byte, comment string) []byte {
	r := minisign.NewReader(strings.NewReader(string(msg)))
	if _, err := io.Copy(io.Discard, r); err != nil {
		panic(err)
	}
	return r.SignWithComments(priv, comment, "signature from minisign secret key")
}

// TestVerifyCommentLegacy: a legacy signature (minisign -l) carries a
// trusted comment signed as a prehashed one's is: VerifyComment takes it,
// Verify (the bytes) refuses it.
func TestVerifyCommentLegacy(t *testing.T) {
	priv, k := newKey(t)
	comment := Digest{Size: 10}.String()
	msg := []byte("image bytes")
	s, err := ParseSignature(minisign.SignWithComments(priv, msg, comment, "legacy"))
	if err != nil {
		t.Fatal(err)
	}
	if !s.Legacy() {
		t.Fatal("minisign.SignWithComments made no legacy signature")
	}
	if got, err := (Keys{k}).VerifyComment(s); err != nil || got.ID != k.ID {
		t.Errorf("the trusted comment of a legacy signature: %v", err)
	}
	h := NewHasher()
	_, _ = h.Write(msg)
	if _, err := (Keys{k}).Verify(s, h); !errors.Is(err, ErrLegacySignature) {
		t.Errorf("Verify of a legacy signature: %v, want ErrLegacySignature", err)
	}
}

func TestVerifyComment(t *testing.T) {
	priv, k := newKey(t)
	priv2, k2 := newKey(t)
	comment := Digest{Size: 10}.String()
	parse := func(b []byte) Signature {
		s, err := ParseSignature(b)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := signComment(priv, []byte("image bytes"), comment)
	if got, err := (Keys{k}).VerifyComment(parse(good)); err != nil || got.ID != k.ID {
		t.Fatalf("a signed comment: %v", err)
	}
	// The comment holds whatever file was signed with it: only the
	// comment's own signature is checked here.
	if _, err := (Keys{k}).VerifyComment(parse(signComment(priv, []byte("other bytes"), comment))); err != nil {
		t.Errorf("a signed comment over other bytes: %v", err)
	}
	if _, err := (Keys{k2}).VerifyComment(parse(good)); !errors.Is(err, ErrUntrustedKey) {
		t.Errorf("an untrusted key: %v, want ErrUntrustedKey", err)
	}
	// The comment edited after signing (size=10 to size=11): refused.
	edited := strings.Replace(string(good), "size=10", "size=11", 1)
	if edited == string(good) {
		t.Fatal("the comment is not in the signature file")
	}
	if _, err := (Keys{k}).VerifyComment(parse([]byte(edited))); !errors.Is(err, ErrBadSignature) {
		t.Errorf("an edited comment: %v, want ErrBadSignature", err)
	}
	// Another key with the same ID (made by hand) cannot vouch for it.
	other := signComment(priv2, []byte("image bytes"), comment)
	k2.ID = k.ID
	forged := parse(other)
	forged.sig.KeyID = k.ID
	if _, err := (Keys{k}).VerifyComment(forged); !errors.Is(err, ErrBadSignature) {
		t.Errorf("a comment signed by another key under this ID: %v, want ErrBadSignature", err)
	}
	if got, err := (Keys{k2, k}).VerifyComment(parse(good)); err != nil || got.pub.String() != k.pub.String() {
		t.Errorf("two keys with one ID: %v (got key %s)", err, got.pub.String())
	}
}
