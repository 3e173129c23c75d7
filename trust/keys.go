package trust

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"aead.dev/minisign"
)

// TrustedDir is where a root keeps the public keys it trusts, relative to
// the root.
const TrustedDir = "etc/overlayupd/trusted.d"

// maxKeyFile bounds a key file: a minisign public key is about 100 bytes.
const maxKeyFile = 4 << 10

// ErrNotKey is returned for a key file that is not a minisign public key.
var ErrNotKey = errors.New("not a minisign public key")

// Key is a minisign public key and where it came from.
type Key struct {
	ID   uint64
	Path string
	pub  minisign.PublicKey
}

// IDString is the key ID as minisign prints it.
func (k Key) IDString() string { return FormatID(k.ID) }

// FormatID formats a key ID as minisign prints it: 16 upper-case hex digits.
func FormatID(id uint64) string { return fmt.Sprintf("%016X", id) }

// Keys is a set of trusted keys; empty means nothing is checked.
type Keys []Key

// IDs lists the key IDs, sorted.
func (ks Keys) IDs() []string {
	out := make([]string, 0, len(ks))
	for _, k := range ks {
		out = append(out, k.IDString())
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// LoadTrusted reads the keys the root at root trusts: every *.pub file in
// root/TrustedDir. No directory (or no .pub in it) is no key. A .pub file
// that is not a minisign public key is an error, never skipped: a typo in
// the trust configuration must not silently change what is trusted.
func LoadTrusted(root string) (Keys, error) {
	dir := filepath.Join(root, TrustedDir)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read trusted keys: %w", err)
	}
	var ks Keys
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".pub") {
			continue
		}
		k, err := ReadKeyFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		ks = append(ks, k)
	}
	return ks, nil
}

// ReadKeyFile reads one minisign public key file.
func ReadKeyFile(path string) (Key, error) {
	f, fi, err := OpenUntrusted(path)
	if err != nil {
		return Key{}, fmt.Errorf("read key: %w", err)
	}
	defer f.Close()
	if !fi.Mode().IsRegular() {
		return Key{}, fmt.Errorf("%s: %w: it is not a regular file", path, ErrNotKey)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return Key{}, fmt.Errorf("read key %s: %w", path, err)
	}
	return ParseKey(b, path)
}

// ParseKey parses a minisign public key file's contents (the comment line
// and the base64 line 'minisign -G' writes, or the base64 line alone); path
// names it in errors.
func ParseKey(b []byte, path string) (Key, error) {
	const hint = "a trusted key is the .pub file 'minisign -G' writes (an 'untrusted comment:' line, then the key): remove this file or replace it with one"
	if len(b) > maxKeyFile {
		return Key{}, fmt.Errorf("%s: %w: it is over %d bytes; %s", path, ErrNotKey, maxKeyFile, hint)
	}
	text := strings.TrimSpace(string(b))
	if strings.Contains(text, "secret key") {
		return Key{}, fmt.Errorf("%s: %w: it is a minisign SECRET key; trust the public half (the .pub file) and keep the secret key off the device", path, ErrNotKey)
	}
	var pub minisign.PublicKey
	if err := pub.UnmarshalText([]byte(text)); err != nil {
		return Key{}, fmt.Errorf("%s: %w (%v); %s", path, ErrNotKey, err, hint)
	}
	return Key{ID: pub.ID(), Path: path, pub: pub}, nil
}
