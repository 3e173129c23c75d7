package trust

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// DigestPrefix starts a signed digest: a minisign trusted comment that
// states an image's size, sha256 and dm-verity root hash, made by
// 'overlayupd digest IMAGE' and signed with
//
//	minisign -S -s KEY -m IMAGE -t "$(overlayupd digest IMAGE)"
//
// The trusted comment is signed by the key too (minisign's global
// signature, over the signature and the comment), so checking that
// signature and then the staged bytes against the digest it states is as
// strong as checking the signature of the bytes, without hashing them with
// BLAKE2b: apply computes the tree anyway (see squash.Options.Expect).
const DigestPrefix = "overlayupd-digest"

// ErrBadDigest is a trusted comment that starts with DigestPrefix but is
// not a digest this version reads.
var ErrBadDigest = errors.New("malformed overlayupd digest in the signature's trusted comment")

// Digest is what a signed digest states of an image.
type Digest struct {
	Size   int64    // the image's size in bytes
	SHA256 [32]byte // its sha256, what sha256sum prints
	Verity [32]byte // the root hash of its dm-verity tree (package verity's format)
}

// String is the trusted comment for d.
func (d Digest) String() string {
	return fmt.Sprintf("%s size=%d sha256=%x verity=%x", DigestPrefix, d.Size, d.SHA256, d.Verity)
}

// ParseDigest reads a trusted comment: ok is false for a comment that is
// not a digest (minisign's default "timestamp:…"), and the error is
// ErrBadDigest for one that starts as a digest but is not one, which is
// refused rather than ignored: its signer meant it to be checked. Every
// field must be there once, and no other: a field this version does not
// know could be a condition it would not check.
func ParseDigest(comment string) (d Digest, ok bool, err error) {
	fields := strings.Fields(comment)
	if len(fields) == 0 || fields[0] != DigestPrefix {
		return Digest{}, false, nil
	}
	seen := map[string]bool{}
	for _, f := range fields[1:] {
		k, v, found := strings.Cut(f, "=")
		if !found || seen[k] {
			return Digest{}, true, fmt.Errorf("%w: %q", ErrBadDigest, f)
		}
		seen[k] = true
		switch k {
		case "size":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				return Digest{}, true, fmt.Errorf("%w: size %q", ErrBadDigest, v)
			}
			d.Size = n
		case "sha256":
			err = hex32(v, &d.SHA256)
		case "verity":
			err = hex32(v, &d.Verity)
		default:
			return Digest{}, true, fmt.Errorf("%w: unknown field %q (made by a newer overlayupd?)", ErrBadDigest, k)
		}
		if err != nil {
			return Digest{}, true, fmt.Errorf("%w: %s: %w", ErrBadDigest, k, err)
		}
	}
	for _, k := range []string{"size", "sha256", "verity"} {
		if !seen[k] {
			return Digest{}, true, fmt.Errorf("%w: no %s", ErrBadDigest, k)
		}
	}
	return d, true, nil
}

func hex32(s string, out *[32]byte) error {
	if len(s) != 64 {
		return fmt.Errorf("%d hex digits, want 64", len(s))
	}
	_, err := hex.Decode(out[:], []byte(s))
	return err
}

// VerifyComment checks the signature of s's trusted comment (minisign's
// global signature) with the trusted key it names, not the signature of
// the signed file: for a signed digest, whose comment states what the
// file must be.
func (ks Keys) VerifyComment(s Signature) (Key, error) {
	if _, err := ks.Check(s); err != nil {
		return Key{}, err
	}
	msg := append(s.sig.Signature[:len(s.sig.Signature):len(s.sig.Signature)], s.sig.TrustedComment...)
	for _, k := range ks {
		if k.ID != s.KeyID() {
			continue
		}
		if pub, err := rawPublicKey(k); err == nil && ed25519.Verify(pub, msg, s.sig.CommentSignature[:]) {
			return k, nil
		}
	}
	return Key{}, fmt.Errorf("%w: key %s did not sign this trusted comment (it was edited after signing)", ErrBadSignature, FormatID(s.KeyID()))
}

// rawPublicKey is k's Ed25519 key: minisign's encoding (String) is the
// algorithm (2 bytes), the key ID (8) and the key (32).
func rawPublicKey(k Key) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(k.pub.String())
	if err != nil || len(b) != 10+ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: key %s", ErrMalformed, k.IDString())
	}
	return ed25519.PublicKey(b[10:]), nil
}
