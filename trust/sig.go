package trust

import (
	"errors"
	"fmt"
	"strings"

	"aead.dev/minisign"
)

// Signature errors; Verify and Check wrap one of them.
var (
	ErrNoSignature     = errors.New("no signature")
	ErrMalformed       = errors.New("not a minisign signature")
	ErrLegacySignature = errors.New("legacy (not prehashed) minisign signature")
	ErrUntrustedKey    = errors.New("signed by a key that is not trusted")
	ErrBadSignature    = errors.New("signature does not match")
)

// MaxSignatureFile bounds a signature file: minisign's are under 1 KiB
// unless the trusted comment is long.
const MaxSignatureFile = 64 << 10

// Hasher is the BLAKE2b-512 hash that a prehashed minisign signature (the
// default of minisign -S, algorithm "ED") signs. Write the staged bytes to
// it, in order, as they are written; it is not safe for concurrent use.
type Hasher struct{ r *minisign.Reader }

// NewHasher returns an empty Hasher.
func NewHasher() *Hasher { return &Hasher{minisign.NewReader(filled{})} }

// Write hashes p. Why through minisign.Reader: it is the library's own
// BLAKE2b-512 state, and its Verify and Sign take it as it is; a Reader
// hashes what it reads into p, and filled "reads" p as it already is, so
// nothing is copied.
func (h *Hasher) Write(p []byte) (int, error) { return h.r.Read(p) }

// filled is a reader whose Read leaves p as it is: the bytes are there.
type filled struct{}

func (filled) Read(p []byte) (int, error) { return len(p), nil }

// Signature is a parsed minisign signature file.
type Signature struct {
	raw []byte
	sig minisign.Signature
}

// KeyID is the ID of the key that made the signature.
func (s Signature) KeyID() uint64 { return s.sig.KeyID }

// TrustedComment is the signed comment (minisign -t), e.g. a timestamp.
func (s Signature) TrustedComment() string { return s.sig.TrustedComment }

// Raw is the signature file as it was read.
func (s Signature) Raw() []byte { return s.raw }

// ParseSignature parses a .minisig file's contents. A legacy signature
// (minisign -l, algorithm "Ed", the message itself signed rather than its
// hash) parses too (Legacy), but only its trusted comment can be used
// (VerifyComment, for a signed digest): Verify refuses it, since checking
// it over the image needs the whole image in memory.
func ParseSignature(b []byte) (Signature, error) {
	if len(b) > MaxSignatureFile {
		return Signature{}, fmt.Errorf("%w: over %d bytes", ErrMalformed, MaxSignatureFile)
	}
	// minisign writes "\n"-terminated lines; the library wants exactly four
	// segments, so a file without its final newline gets one.
	text := string(b)
	if !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	var sig minisign.Signature
	if err := sig.UnmarshalText([]byte(text)); err != nil {
		return Signature{}, fmt.Errorf("%w (%v): a signature is the .minisig file 'minisign -S' writes", ErrMalformed, err)
	}
	if sig.Algorithm != minisign.HashEdDSA && sig.Algorithm != minisign.EdDSA {
		return Signature{}, fmt.Errorf("%w: unknown algorithm %d", ErrMalformed, sig.Algorithm)
	}
	return Signature{raw: []byte(text), sig: sig}, nil
}

// Legacy says whether s is a legacy signature (minisign -l): of the
// message itself, not of its BLAKE2b-512 hash.
func (s Signature) Legacy() bool { return s.sig.Algorithm != minisign.HashEdDSA }

// CheckBytes says whether s can be verified over an image's bytes
// (Verify): a legacy signature cannot. Its error says what to do instead.
func (s Signature) CheckBytes() error {
	if s.Legacy() {
		return errLegacyBytes
	}
	return nil
}

// errLegacyBytes is CheckBytes's error, with what to do.
var errLegacyBytes = fmt.Errorf("%w: sign the image again with 'minisign -S' without -l (prehashed signatures are minisign's default), or sign its digest instead (-t \"$(overlayupd digest IMAGE)\"), which a -l signature may carry", ErrLegacySignature)

// Check tells, before any image byte is read, whether s can be accepted at
// all: it is by one of the trusted keys. It returns that key.
func (ks Keys) Check(s Signature) (Key, error) {
	for _, k := range ks {
		if k.ID == s.KeyID() {
			return k, nil
		}
	}
	trusted := "none"
	if len(ks) > 0 {
		trusted = strings.Join(ks.IDs(), ", ")
	}
	return Key{}, fmt.Errorf("%w: key ID %s (trusted: %s)", ErrUntrustedKey, FormatID(s.KeyID()), trusted)
}

// Verify checks s against h, the hash of the staged bytes, with the trusted
// key it names; both the signature and its trusted comment must verify.
func (ks Keys) Verify(s Signature, h *Hasher) (Key, error) {
	if err := s.CheckBytes(); err != nil {
		return Key{}, err
	}
	if _, err := ks.Check(s); err != nil {
		return Key{}, err
	}
	// Two keys may share an ID (made by hand): any of them will do.
	for _, k := range ks {
		if k.ID == s.KeyID() && h.r.Verify(k.pub, s.raw) {
			return k, nil
		}
	}
	return Key{}, fmt.Errorf("%w: key %s did not sign these bytes (the image was changed after it was signed, or the signature is another file's)", ErrBadSignature, FormatID(s.KeyID()))
}

// Describe says in words who signed, for messages: the key ID and the file.
func (k Key) Describe() string {
	if k.Path == "" {
		return "key " + k.IDString()
	}
	return fmt.Sprintf("key %s (%s)", k.IDString(), k.Path)
}
