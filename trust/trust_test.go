package trust

import (
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"aead.dev/minisign"
)

// newKey makes a key pair and returns the signer and the trusted key.
func newKey(t *testing.T) (minisign.PrivateKey, Key) {
	t.Helper()
	pub, priv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := pub.MarshalText()
	k, err := ParseKey(text, "test.pub")
	if err != nil {
		t.Fatal(err)
	}
	return priv, k
}

// signPrehashed signs msg as 'minisign -S' does.
func signPrehashed(priv minisign.PrivateKey, msg []byte) []byte {
	r := minisign.NewReader(strings.NewReader(string(msg)))
	if _, err := io.Copy(io.Discard, r); err != nil {
		panic(err)
	}
	return r.Sign(priv)
}

func hashOf(msg []byte) *Hasher {
	h := NewHasher()
	// In pieces, as a copy loop writes them.
	for len(msg) > 0 {
		n := min(len(msg), 7)
		_, _ = h.Write(msg[:n])
		msg = msg[n:]
	}
	return h
}

func TestVerify(t *testing.T) {
	t.Parallel()
	priv, k := newKey(t)
	other, otherKey := newKey(t)
	msg := []byte("the staged image bytes")
	good := signPrehashed(priv, msg)
	changed := append([]byte{}, msg...)
	changed[3] ^= 1
	for _, c := range []struct {
		name string
		keys Keys
		sig  []byte
		msg  []byte
		want error
	}{
		{"good", Keys{k}, good, msg, nil},
		{"good among several", Keys{otherKey, k}, good, msg, nil},
		{"untrusted key", Keys{otherKey}, good, msg, ErrUntrustedKey},
		{"no keys", nil, good, msg, ErrUntrustedKey},
		{"one byte changed", Keys{k}, good, changed, ErrBadSignature},
		{"signature of other bytes", Keys{k}, signPrehashed(priv, []byte("other")), msg, ErrBadSignature},
		{"legacy signature", Keys{k}, minisign.Sign(priv, msg), msg, ErrLegacySignature},
		{"not a signature", Keys{k}, []byte("hello\n"), msg, ErrMalformed},
		{"other key's signature, same message", Keys{k}, signPrehashed(other, msg), msg, ErrUntrustedKey},
	} {
		s, err := ParseSignature(c.sig)
		if err == nil {
			_, err = c.keys.Verify(s, hashOf(c.msg))
		}
		if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
	}
}

func TestVerifyTamperedTrustedComment(t *testing.T) {
	t.Parallel()
	priv, k := newKey(t)
	msg := []byte("image")
	sig := string(signPrehashed(priv, msg))
	lines := strings.Split(sig, "\n")
	lines[2] = "trusted comment: version 99"
	s, err := ParseSignature([]byte(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (Keys{k}).Verify(s, hashOf(msg)); !errors.Is(err, ErrBadSignature) {
		t.Errorf("a changed trusted comment: err = %v, want ErrBadSignature", err)
	}
}

func TestLoadTrusted(t *testing.T) {
	t.Parallel()
	_, k1 := newKey(t)
	_, k2 := newKey(t)
	pubText := func(k Key) string { b, _ := k.pub.MarshalText(); return string(b) + "\n" }
	write := func(t *testing.T, files map[string]string) string {
		root := t.TempDir()
		dir := filepath.Join(root, TrustedDir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for n, c := range files {
			if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return root
	}
	t.Run("no directory", func(t *testing.T) {
		ks, err := LoadTrusted(t.TempDir())
		if err != nil || len(ks) != 0 {
			t.Errorf("got %v, %v; want no keys", ks, err)
		}
	})
	t.Run("two keys, other files ignored", func(t *testing.T) {
		ks, err := LoadTrusted(write(t, map[string]string{"a.pub": pubText(k1), "b.pub": pubText(k2), "README": "notes"}))
		if err != nil || len(ks) != 2 {
			t.Fatalf("got %v, %v; want two keys", ks, err)
		}
		want := Keys{k1, k2}.IDs()
		if got := ks.IDs(); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("IDs %v, want %v", got, want)
		}
	})
	for _, c := range []struct{ name, content, want string }{
		{"garbage", "hello world\n", "not a minisign public key"},
		{"empty", "", "not a minisign public key"},
		{"secret key", "untrusted comment: minisign encrypted secret key\nRWQAAEIy\n", "SECRET key"},
		{"signature file", "untrusted comment: signature\nRUQ=\ntrusted comment: x\nAA==\n", "not a minisign public key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := LoadTrusted(write(t, map[string]string{"a.pub": pubText(k1), "bad.pub": c.content}))
			if !errors.Is(err, ErrNotKey) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "bad.pub") {
				t.Errorf("err = %v, want ErrNotKey naming bad.pub and saying %q", err, c.want)
			}
		})
	}
}

func TestDeviceKeyAndRecords(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "keys")
	d, err := GenerateDeviceKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, DeviceKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("device.key: %v, %v; want mode 0600", fi.Mode(), err)
	}
	if _, err := GenerateDeviceKey(dir); err == nil {
		t.Error("a second GenerateDeviceKey replaced the key")
	}
	loaded, err := LoadDeviceKey(dir)
	if err != nil || loaded.Pub.ID != d.Pub.ID {
		t.Fatalf("LoadDeviceKey: %v, %v", loaded.Pub.ID, err)
	}
	pub, err := LoadDevicePub(dir)
	if err != nil || pub.ID != d.Pub.ID {
		t.Fatalf("LoadDevicePub: %v, %v", pub.ID, err)
	}

	a, _ := loaded.SignRecord(Record{Identity: "a", Made: "update", CTransID: 7})
	b, _ := loaded.SignRecord(Record{Identity: "b", Made: "apply", Insecure: true})
	if err := SaveRecords(dir, nil, a, func(string) bool { return true }); err != nil {
		t.Fatal(err)
	}
	recs, _ := LoadRecords(dir)
	if err := SaveRecords(dir, recs, b, func(id string) bool { return id != "gone" }); err != nil {
		t.Fatal(err)
	}
	recs, err = LoadRecords(dir)
	if err != nil || len(recs) != 2 {
		t.Fatalf("records %v, %v; want two", recs, err)
	}
	if r, ok, err := Find(recs, "a", pub); !ok || err != nil || r.CTransID != 7 {
		t.Errorf("Find a: %+v, %v, %v", r, ok, err)
	}
	if _, ok, _ := Find(recs, "nope", pub); ok {
		t.Error("Find found a record that does not exist")
	}
	// A record edited by hand no longer verifies.
	recs[1].Record = strings.Replace(recs[1].Record, `"insecure":true`, `"insecure":false`, 1)
	if _, ok, err := Find(recs, "b", pub); !ok || !errors.Is(err, ErrBadSignature) {
		t.Errorf("Find of an edited record: ok %v, err %v; want ErrBadSignature", ok, err)
	}
	// Pruning: keep drops records of entries that are gone.
	if err := SaveRecords(dir, recs[:1], b, func(id string) bool { return id != "a" }); err != nil {
		t.Fatal(err)
	}
	if recs, _ := LoadRecords(dir); len(recs) != 1 {
		t.Errorf("after pruning a: %d records, want 1", len(recs))
	}
	// A key others may read is refused.
	if err := os.Chmod(filepath.Join(dir, DeviceKeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadDeviceKey(dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("LoadDeviceKey of a 0644 key: %v, want a refusal", err)
	}
}
