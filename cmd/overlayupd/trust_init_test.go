package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/overlayupd/overlayupd/internal/testroot"
	"github.com/overlayupd/overlayupd/trampoline"
	"github.com/overlayupd/overlayupd/trust"
)

// TestStoreInitTrust: --trust requires the first image signed by that key
// and carrying keys of its own; the store gets a device key (0600).
func TestStoreInitTrust(t *testing.T) {
	t.Parallel()
	k1, k2 := newSigner(t), newSigner(t)
	k1pub := writeText(t, "k1.pub", k1.pub)
	carrying := bootable().withKeys(k2).squashfs(t)
	k1.sign(t, carrying)
	bare := bootable().squashfs(t)
	k1.sign(t, bare)
	unsigned := bootable().withKeys(k1).squashfs(t)
	byK2 := bootable().withKeys(k1).squashfs(t)
	k2.sign(t, byK2)
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"unsigned", []string{"--image", unsigned, "--trust", k1pub}, "not signed"},
		{"signed by another key", []string{"--image", byK2, "--trust", k1pub}, "not trusted"},
		{"image trusts no key", []string{"--image", bare, "--trust", k1pub}, "trusts no key"},
		{"trust file not a key", []string{"--image", carrying, "--trust", writeText(t, "bad.pub", "hello\n")}, "not a minisign public key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := testEnv(t)
			top := t.TempDir()
			_, err := run(t, e, "overlayupd", append([]string{"store", "init", top}, c.args...)...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want one saying %q", err, c.want)
			}
			if ents, _ := os.ReadDir(top); len(ents) != 0 {
				t.Errorf("a refused init wrote into %s: %d entries", top, len(ents))
			}
		})
	}
	t.Run("the running system's keys apply without --trust", func(t *testing.T) {
		t.Parallel()
		e := testEnv(t)
		trustIn(t, e.trustRoot, k1)
		top := t.TempDir()
		if _, err := run(t, e, "overlayupd", "store", "init", top, "--image", unsigned); err == nil || !strings.Contains(err.Error(), "not signed") {
			t.Errorf("store init of an unsigned image on a system trusting %s: %v, want a refusal", k1.id, err)
		}
		if trampoline.IsStore(top) {
			t.Error("a refused init made a store")
		}
		top = t.TempDir()
		if out, err := run(t, e, "overlayupd", "store", "init", top, "--image", unsigned, "--insecure"); err != nil || !strings.Contains(out, "NOT checked") {
			t.Fatalf("store init --insecure: %v\n%s", err, out)
		}
		out, _ := run(t, e, "overlayupd", "status", "--store", top)
		if !strings.Contains(out, "INSECURE: store init --insecure") {
			t.Errorf("status after store init --insecure:\n%s", out)
		}
	})
	e := testEnv(t)
	top := t.TempDir()
	out, err := run(t, e, "overlayupd", "store", "init", top, "--image", carrying, "--trust", k1pub)
	if err != nil || !strings.Contains(out, "signature by key "+k1.id+" verified") {
		t.Fatalf("store init --trust: %v\n%s", err, out)
	}
	fi, err := os.Stat(filepath.Join(top, KeysDir, trust.DeviceKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("device key: %v, %v; want mode 0600", fi, err)
	}
	if _, err := os.Stat(filepath.Join(top, KeysDir, "trusted.d")); !os.IsNotExist(err) {
		t.Error("the --trust key was kept on the store: trust must come from the images, so that it rotates")
	}
}

// TestMinisignToolInterop: keys and signatures made by Debian's minisign
// (prehashed by default) are accepted; its legacy -l signatures are
// refused with a message saying how to sign instead, unless they carry the
// image's digest, whose check needs only the trusted comment's signature.
func TestMinisignToolInterop(t *testing.T) {
	t.Parallel()
	testroot.NeedTools(t, "minisign")
	dir := t.TempDir()
	pub, sec := filepath.Join(dir, "k.pub"), filepath.Join(dir, "k.key")
	mustRun(t, "minisign", "-G", "-W", "-p", pub, "-s", sec)
	e := testEnv(t)
	top, _ := newStore(t, e)
	k, err := trust.ReadKeyFile(pub)
	testroot.Must(t, err)
	trustIn(t, e.trustRoot, signer{pub: mustRead(t, pub), id: k.IDString()})
	img := bootable().squashfs(t)
	mustRun(t, "minisign", "-S", "-s", sec, "-m", img, "-t", "release 2.0")
	out, err := run(t, e, "overlayupd", "apply", "--store", top, "--json", img)
	if err != nil {
		t.Fatalf("apply of a minisign-signed image: %v\n%s", err, out)
	}
	var res struct {
		SignedBy string `json:"signed_by"`
	}
	mustJSON(t, out, &res)
	if res.SignedBy != k.IDString() {
		t.Errorf("signed_by %q, want %q", res.SignedBy, k.IDString())
	}
	// A signed digest, as the README says to make one.
	withDigest := bootable().withVersion("2.1").squashfs(t)
	digest, err := run(t, e, "overlayupd", "digest", withDigest)
	if err != nil {
		t.Fatalf("digest: %v\n%s", err, digest)
	}
	mustRun(t, "minisign", "-S", "-s", sec, "-m", withDigest, "-t", strings.TrimSpace(digest))
	if out, err := run(t, e, "overlayupd", "apply", "--store", top, withDigest); err != nil || !strings.Contains(out, "signed digest") {
		t.Errorf("apply of an image whose minisign signature carries its digest: %v\n%s", err, out)
	}
	legacyDigest := bootable().withVersion("2.2").squashfs(t)
	digest, err = run(t, e, "overlayupd", "digest", legacyDigest)
	if err != nil {
		t.Fatalf("digest: %v\n%s", err, digest)
	}
	mustRun(t, "minisign", "-S", "-l", "-s", sec, "-m", legacyDigest, "-t", strings.TrimSpace(digest))
	if out, err := run(t, e, "overlayupd", "apply", "--store", top, legacyDigest); err != nil || !strings.Contains(out, "signed digest") {
		t.Errorf("apply of an image whose legacy (-l) signature carries its digest: %v\n%s", err, out)
	}
	legacy := bootable().squashfs(t)
	mustRun(t, "minisign", "-S", "-l", "-s", sec, "-m", legacy)
	if _, err := run(t, e, "overlayupd", "apply", "--store", top, legacy); err == nil || !strings.Contains(err.Error(), "without -l") {
		t.Errorf("apply of a legacy signature: %v, want a refusal saying to sign without -l", err)
	}
}

func mustRun(t *testing.T, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader("")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	testroot.Must(t, err)
	return string(b)
}

// TestApplyJSONProgress: apply --json writes progress as JSON lines on
// stderr (bytes, total, speed, time left) and the result on stdout.
func TestApplyJSONProgress(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	e.progressEvery = 1 // every step
	top, _ := newStore(t, e)
	img := bootable().squashfs(t)
	size := fileSize(t, img)
	root := newRootCmd("overlayupd", e)
	var stdout, stderr bytes.Buffer
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	root.SetArgs([]string{"apply", "--store", top, "--json", img})
	if err := root.Execute(); err != nil {
		t.Fatalf("apply --json: %v\n%s", err, stderr.String())
	}
	var lines []progressLine
	for _, l := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		var p progressLine
		if err := json.Unmarshal([]byte(l), &p); err != nil {
			t.Fatalf("stderr line %q is not JSON: %v", l, err)
		}
		lines = append(lines, p)
	}
	last := lines[len(lines)-1].Progress
	if len(lines) < 2 || !last.Done || last.Bytes != size || last.Total != size || last.BytesPerSecond <= 0 || last.ETASeconds != 0 {
		t.Errorf("progress lines %+v, want some, the last done with %d of %d bytes, a speed and no time left", lines, size, size)
	}
	var res applyResult
	mustJSON(t, stdout.String(), &res)
	if res.Size != size {
		t.Errorf("result %+v, want size %d", res, size)
	}
}

func fileSize(t *testing.T, p string) int64 {
	t.Helper()
	fi, err := os.Stat(p)
	testroot.Must(t, err)
	return fi.Size()
}
