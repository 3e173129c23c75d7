package trust

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"aead.dev/minisign"

	"github.com/overlayupd/overlayupd/internal/atomicfile"
)

// The device key's files, in the store's keys directory.
const (
	DeviceKeyFile = "device.key"
	DevicePubFile = "device.pub"
)

// ErrNoDeviceKey is returned when the store has no device key.
var ErrNoDeviceKey = errors.New("no device key")

// DeviceKey is the store's own signing key. It is not encrypted: the device
// signs without anyone to type a password, so it is as safe as the store's
// files (mode 0600, root only).
type DeviceKey struct {
	priv minisign.PrivateKey
	Pub  Key
}

// GenerateDeviceKey makes a new device key in dir: device.key (mode 0600:
// root only) and device.pub. The directory stays readable (0755), so that
// status, run by anyone, can check the records with device.pub. It refuses
// to replace a key: records signed by the old one would no longer verify.
func GenerateDeviceKey(dir string) (DeviceKey, error) {
	if _, err := os.Lstat(filepath.Join(dir, DeviceKeyFile)); err == nil {
		return DeviceKey{}, fmt.Errorf("%s already exists: not replaced", filepath.Join(dir, DeviceKeyFile))
	}
	pub, priv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		return DeviceKey{}, fmt.Errorf("generate device key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return DeviceKey{}, err
	}
	privText, err := priv.MarshalText()
	if err != nil {
		return DeviceKey{}, err
	}
	pubText, err := pub.MarshalText()
	if err != nil {
		return DeviceKey{}, err
	}
	// Why the public half first: a crash between the two files leaves a
	// .pub without its key, which the next generation replaces, never a
	// key whose public half is missing.
	if err := atomicfile.WriteFile(filepath.Join(dir, DevicePubFile), append(pubText, '\n'), 0o644); err != nil {
		return DeviceKey{}, err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, DeviceKeyFile), append(privText, '\n'), 0o600); err != nil {
		return DeviceKey{}, err
	}
	return DeviceKey{priv: priv, Pub: Key{ID: pub.ID(), Path: filepath.Join(dir, DevicePubFile), pub: pub}}, nil
}

// LoadDeviceKey reads the device key from dir: ErrNoDeviceKey when there
// is none. A key that others than root may read is refused: it signs the
// store's records.
func LoadDeviceKey(dir string) (DeviceKey, error) {
	path := filepath.Join(dir, DeviceKeyFile)
	f, fi, err := OpenUntrusted(path)
	if errors.Is(err, os.ErrNotExist) {
		return DeviceKey{}, fmt.Errorf("%w in %s", ErrNoDeviceKey, dir)
	}
	if err != nil {
		return DeviceKey{}, err
	}
	defer f.Close()
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o077 != 0 {
		return DeviceKey{}, fmt.Errorf("%s has mode %v: the device key must be a file only root reads (chmod 600 %s)", path, fi.Mode(), path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile))
	if err != nil {
		return DeviceKey{}, err
	}
	var priv minisign.PrivateKey
	if err := priv.UnmarshalText([]byte(strings.TrimSpace(string(b)))); err != nil {
		return DeviceKey{}, fmt.Errorf("%s: not a usable device key (%v): move it away; 'overlayupd store init' made it, and a new one needs every root signed again", path, err)
	}
	pub, ok := priv.Public().(minisign.PublicKey)
	if !ok {
		return DeviceKey{}, fmt.Errorf("%s: no public key", path)
	}
	return DeviceKey{priv: priv, Pub: Key{ID: pub.ID(), Path: filepath.Join(dir, DevicePubFile), pub: pub}}, nil
}

// LoadDevicePub reads the device's public key from dir, for checking
// records without the secret key (status does, as any user).
func LoadDevicePub(dir string) (Key, error) {
	k, err := ReadKeyFile(filepath.Join(dir, DevicePubFile))
	if errors.Is(err, os.ErrNotExist) {
		return Key{}, fmt.Errorf("%w in %s", ErrNoDeviceKey, dir)
	}
	return k, err
}

// Sign signs data (prehashed, as minisign -S does) with trusted as the
// signed comment.
func (d DeviceKey) Sign(data []byte, trusted string) []byte {
	h := NewHasher()
	_, _ = h.Write(data)
	return h.r.SignWithComments(d.priv, trusted, "signature from overlayupd device key "+d.Pub.IDString())
}

// VerifyData checks sig (a minisign signature file) over data with key k.
func (k Key) VerifyData(data, sig []byte) error {
	s, err := ParseSignature(sig)
	if err != nil {
		return err
	}
	h := NewHasher()
	_, _ = h.Write(data)
	_, err = Keys{k}.Verify(s, h)
	return err
}
