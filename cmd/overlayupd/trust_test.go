package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"aead.dev/minisign"

	"github.com/overlayupd/overlayupd/internal/testroot"
	"github.com/overlayupd/overlayupd/trampoline"
	"github.com/overlayupd/overlayupd/trust"
)

// signer is a minisign key pair made with the library (the real tool's
// interop has its own test).
type signer struct {
	priv minisign.PrivateKey
	pub  string // the .pub file's text
	id   string
}

func newSigner(t *testing.T) signer {
	t.Helper()
	pub, priv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := pub.MarshalText()
	return signer{priv: priv, pub: string(text) + "\n", id: trust.FormatID(pub.ID())}
}

// sign writes img.minisig, a prehashed signature as 'minisign -S' makes.
func (s signer) sign(t *testing.T, img string) string {
	t.Helper()
	return s.signTo(t, img, img+".minisig")
}

func (s signer) signTo(t *testing.T, img, out string) string {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := minisign.NewReader(f)
	if _, err := io.Copy(io.Discard, r); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, r.Sign(s.priv), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// trustIn makes root trust the signers' keys, as /etc/overlayupd/trusted.d.
func trustIn(t *testing.T, root string, ss ...signer) {
	t.Helper()
	dir := filepath.Join(root, trust.TrustedDir)
	testroot.Must(t, os.MkdirAll(dir, 0o755))
	for _, s := range ss {
		testroot.Must(t, os.WriteFile(filepath.Join(dir, s.id+".pub"), []byte(s.pub), 0o644))
	}
}

// withKeys is tr carrying the signers' public keys for its successor.
func (tr tree) withKeys(ss ...signer) tree {
	out := tree{files: map[string]string{}, modes: tr.modes}
	for k, v := range tr.files {
		out.files[k] = v
	}
	for _, s := range ss {
		out.files[trust.TrustedDir+"/"+s.id+".pub"] = s.pub
	}
	return out
}

// withVersion is tr declaring version v in its os-release.
func (tr tree) withVersion(v string) tree {
	out := tree{files: map[string]string{}, modes: tr.modes}
	for k, val := range tr.files {
		out.files[k] = val
	}
	out.files["etc/os-release"] = "NAME=Test\nVERSION_ID=12\nIMAGE_VERSION=" + v + "\n"
	return out
}

// dirAndImage builds tr as a directory (the root as it runs) and an image.
func (tr tree) dirAndImage(t *testing.T) (dir, img string) {
	t.Helper()
	dir = testroot.NewTree(t, tr.appliers()...)
	return dir, testroot.Squashfs(t, dir, "")
}

// copyFile copies src to a new file in a temp dir, named name.
func copyFile(t *testing.T, src, name string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	testroot.Must(t, err)
	p := filepath.Join(t.TempDir(), name)
	testroot.Must(t, os.WriteFile(p, b, 0o644))
	return p
}

// flipPadding changes one byte of img after the squashfs data (its 4 KiB
// padding): the image stays valid, only its signature can tell.
func flipPadding(t *testing.T, img string) {
	t.Helper()
	b, err := os.ReadFile(img)
	testroot.Must(t, err)
	b[len(b)-1] ^= 0x5a
	testroot.Must(t, os.WriteFile(img, b, 0o644))
	if _, err := checkImage(img); err != nil {
		t.Fatalf("the changed image must stay valid, or the test proves nothing: %v", err)
	}
}

// TestApplySignatureRefusals: once a key is trusted, every bad signature
// (and a downgrade) is refused with a message saying what is wrong and
// what to do, and the store is byte-for-byte unchanged.
func TestApplySignatureRefusals(t *testing.T) {
	t.Parallel()
	k1, k2 := newSigner(t), newSigner(t)
	e := testEnv(t)
	committed := bootable().withVersion("2.0").squashfs(t)
	top := t.TempDir()
	if out, err := run(t, e, "overlayupd", "store", "init", top, "--image", committed); err != nil {
		t.Fatalf("store init: %v\n%s", err, out)
	}
	trustIn(t, e.trustRoot, k1)

	good := bootable().withVersion("2.1").squashfs(t)
	k1.sign(t, good)
	unsigned := bootable().withVersion("2.1").squashfs(t)
	byK2 := bootable().withVersion("2.1").squashfs(t)
	k2.sign(t, byK2)
	otherBytes := copyFile(t, unsigned, "other.sqsh")
	testroot.Must(t, os.Rename(k1.signTo(t, good, filepath.Join(t.TempDir(), "x.minisig")), otherBytes+".minisig"))
	changed := copyFile(t, good, "changed.sqsh")
	k1.sign(t, changed)
	flipPadding(t, changed)
	older := bootable().withVersion("1.9").squashfs(t)
	k1.sign(t, older)
	unversioned := bootable().squashfs(t)
	k1.sign(t, unversioned)
	legacy := copyFile(t, unsigned, "legacy.sqsh")
	b, _ := os.ReadFile(legacy)
	testroot.Must(t, os.WriteFile(legacy+".minisig", minisign.Sign(k1.priv, b), 0o644))
	garbled := copyFile(t, unsigned, "garbled.sqsh")
	testroot.Must(t, os.WriteFile(garbled+".minisig", []byte("this is not a signature\n"), 0o644))
	goodData, _ := os.ReadFile(good)
	wrongSig := k1.signTo(t, unsigned, filepath.Join(t.TempDir(), "wrong.minisig"))

	before := treeDigest(t, top)
	for _, c := range []struct {
		name  string
		args  []string
		stdin []byte
		want  []string
	}{
		{"no signature", []string{unsigned}, nil, []string{"not signed", "minisign -S", "--insecure", k1.id}},
		{"stdin without --sig", []string{"-"}, goodData, []string{"stdin", "--sig FILE"}},
		{"untrusted key", []string{byK2}, nil, []string{"not trusted", k2.id, k1.id}},
		{"signature of other bytes", []string{otherBytes}, nil, []string{"does not match", "changed after it was signed"}},
		{"stdin, signature of other bytes", []string{"--sig", wrongSig, "-"}, goodData, []string{"does not match"}},
		{"one byte changed after signing", []string{changed}, nil, []string{"does not match"}},
		{"legacy signature", []string{legacy}, nil, []string{"legacy", "without -l"}},
		{"not a signature", []string{garbled}, nil, []string{"not a minisign signature"}},
		{"signed but older", []string{older}, nil, []string{"version 12+1.9", "older than the committed root", "12+2.0", "--allow-downgrade", "rollback"}},
		{"signed but unversioned", []string{unversioned}, nil, []string{"declares no version", "--allow-downgrade"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			// Not parallel: every case checks that the shared store is unchanged.
			out, err := runIn(t, e, bytes.NewReader(c.stdin), append([]string{"apply", "--store", top}, c.args...)...)
			if err == nil {
				t.Fatalf("apply %v succeeded, want a refusal\n%s", c.args, out)
			}
			for _, w := range append(c.want, "overlayupd apply:", "nothing was changed") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v\nwant it to say %q", err, w)
				}
			}
			if after := treeDigest(t, top); after != before {
				t.Errorf("the store changed:\n%s\nwas\n%s", after, before)
			}
		})
	}
	t.Run("a trusted key file that is not a key", func(t *testing.T) {
		e := testEnv(t)
		trustIn(t, e.trustRoot, k1)
		testroot.Must(t, os.WriteFile(filepath.Join(e.trustRoot, trust.TrustedDir, "typo.pub"), []byte("RWQ-not-base64!\n"), 0o644))
		_, err := run(t, e, "overlayupd", "apply", "--store", top, good)
		if err == nil || !strings.Contains(err.Error(), "typo.pub") || !strings.Contains(err.Error(), "not a minisign public key") {
			t.Errorf("err = %v, want a refusal naming typo.pub", err)
		}
		if after := treeDigest(t, top); after != before {
			t.Errorf("the store changed")
		}
	})
	// And the good image, signed, passes, by file and by stdin with --sig.
	out, err := run(t, e, "overlayupd", "apply", "--store", top, good)
	if err != nil || !strings.Contains(out, "signature by key "+k1.id+" verified") || !strings.Contains(out, "version 12+2.1") {
		t.Fatalf("apply of the signed image: %v\n%s", err, out)
	}
	out, err = runIn(t, e, bytes.NewReader(goodData), "apply", "--store", top, "--sig", good+".minisig", "-")
	if err != nil {
		t.Fatalf("apply - --sig: %v\n%s", err, out)
	}
	if got := fileSum(t, slotPath(top, "root.try-1.sqsh")); got != fileSum(t, good) {
		t.Errorf("staged %s, want the signed image's %s", got, fileSum(t, good))
	}
	// --allow-downgrade stages the older image on purpose.
	if out, err := run(t, e, "overlayupd", "apply", "--store", top, "--allow-downgrade", older); err != nil {
		t.Errorf("apply --allow-downgrade: %v\n%s", err, out)
	}
}

// TestApplySourceChangedMidCopy: a source written to while apply copies it
// is refused (the signature is checked on the bytes staged), and one
// renamed over while it is copied stages exactly the signed bytes (apply
// copies the file it opened). Either way what is staged is what was signed.
func TestApplySourceChangedMidCopy(t *testing.T) {
	t.Parallel()
	k1 := newSigner(t)
	big := bootable()
	big.files["data/big"] = "x" + string(randomBytes(t, 20<<20)) // past one copy chunk (8 MiB)
	signed := big.withVersion("1").squashfs(t)
	k1.sign(t, signed)
	signedSum := fileSum(t, signed)
	for _, c := range []struct {
		name   string
		change func(t *testing.T, img string)
		staged bool
	}{
		{"written in place", func(t *testing.T, img string) {
			f, err := os.OpenFile(img, os.O_WRONLY, 0)
			testroot.Must(t, err)
			defer f.Close()
			fi, _ := f.Stat()
			// Past the first chunk, in the image's data: copied after this.
			_, err = f.WriteAt(bytes.Repeat([]byte{0xee}, 4096), fi.Size()-8192)
			testroot.Must(t, err)
		}, false},
		{"another file renamed over it", func(t *testing.T, img string) {
			other := copyFile(t, bootable().withVersion("1").squashfs(t), "evil.sqsh")
			testroot.Must(t, os.Rename(other, img))
		}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := testEnv(t)
			top, _ := newStore(t, e)
			trustIn(t, e.trustRoot, k1)
			img := copyFile(t, signed, "root.sqsh")
			testroot.Must(t, os.Rename(k1.sign(t, img), img+".minisig"))
			before := treeDigest(t, top)
			changed := false
			e.copied = func(n int64) {
				if !changed && n > 0 && n < int64(len(big.files["data/big"])) {
					changed = true
					c.change(t, img)
				}
			}
			out, err := run(t, e, "overlayupd", "apply", "--store", top, img)
			if !changed {
				t.Fatalf("the source was never changed mid-copy: the test proves nothing\n%s", out)
			}
			if !c.staged {
				if err == nil || !strings.Contains(err.Error(), "does not match") {
					t.Errorf("apply of a source changed mid-copy: %v, want a signature refusal\n%s", err, out)
				}
				if treeDigest(t, top) != before {
					t.Error("a refused apply changed the store")
				}
				return
			}
			if err != nil {
				t.Fatalf("apply: %v\n%s", err, out)
			}
			if got := fileSum(t, slotPath(top, "root.try-1.sqsh")); got != signedSum {
				t.Errorf("staged %s, want the signed bytes %s", got, signedSum)
			}
		})
	}
}

// TestKeyRotation: v1 trusts K1; v2, signed by K1, carries K2 (and not
// K1); once v2 runs, v3 signed by K2 applies and v3 signed by K1 does not.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	k1, k2 := newSigner(t), newSigner(t)
	e := testEnv(t)
	v1Dir, v1 := bootable().withVersion("1").withKeys(k1).dirAndImage(t)
	k1.sign(t, v1)
	top := t.TempDir()
	if out, err := run(t, e, "overlayupd", "store", "init", top, "--image", v1, "--trust", writeText(t, "k1.pub", k1.pub)); err != nil {
		t.Fatalf("store init --trust: %v\n%s", err, out)
	}
	e.trustRoot = v1Dir // v1 boots
	v2Dir, v2 := bootable().withVersion("2").withKeys(k2).dirAndImage(t)
	k1.sign(t, v2)
	if out, err := run(t, e, "overlayupd", "apply", "--store", top, v2); err != nil {
		t.Fatalf("apply v2 (signed by K1) under v1: %v\n%s", err, out)
	}
	bootTrial(t, e, top)
	if out, err := run(t, e, "overlayupd", "commit", "--store", top); err != nil {
		t.Fatalf("commit v2: %v\n%s", err, out)
	}
	e.trustRoot = v2Dir // v2 runs: it trusts K2 only

	v3 := bootable().withVersion("3").withKeys(k2).squashfs(t)
	byK1 := copyFile(t, v3, "v3-k1.sqsh")
	k1.sign(t, byK1)
	if _, err := run(t, e, "overlayupd", "apply", "--store", top, byK1); err == nil || !strings.Contains(err.Error(), "not trusted") {
		t.Errorf("v3 signed by the retired K1 under v2: %v, want a refusal", err)
	}
	k2.sign(t, v3)
	out, err := run(t, e, "overlayupd", "apply", "--store", top, v3)
	if err != nil || !strings.Contains(out, k2.id) {
		t.Fatalf("apply v3 (signed by K2) under v2: %v\n%s", err, out)
	}
	var st struct {
		Store struct {
			Trust trustStatus `json:"trust"`
		} `json:"store"`
	}
	out, err = run(t, e, "overlayupd", "status", "--store", top, "--json")
	testroot.Must(t, err)
	mustJSON(t, out, &st)
	var signers []string
	for _, en := range st.Store.Trust.Entries {
		signers = append(signers, en.Entry+"="+en.SignedBy+"/"+en.Version)
	}
	slices.Sort(signers)
	want := []string{"root.prev.sqsh=" + k1.id + "/12+1", "root.sqsh=" + k1.id + "/12+2", "root.try-1.sqsh=" + k2.id + "/12+3"}
	if !slices.Equal(signers, want) {
		t.Errorf("status trust entries %v, want %v", signers, want)
	}
}

func writeText(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	testroot.Must(t, os.WriteFile(p, []byte(text), 0o644))
	return p
}

// TestApplyInsecure: --insecure stages an unsigned image while keys are
// trusted; the store records it and status (text and JSON) shows it.
func TestApplyInsecure(t *testing.T) {
	t.Parallel()
	k1 := newSigner(t)
	e := testEnv(t)
	top, _ := newStore(t, e)
	trustIn(t, e.trustRoot, k1)
	img := bootable().squashfs(t)
	out, err := run(t, e, "overlayupd", "apply", "--store", top, "--insecure", img)
	if err != nil || !strings.Contains(out, "NOT checked") {
		t.Fatalf("apply --insecure: %v\n%s", err, out)
	}
	out, err = run(t, e, "overlayupd", "status", "--store", top)
	testroot.Must(t, err)
	for _, w := range []string{"trusted keys: " + k1.id, "root.try-1.sqsh", "INSECURE: apply --insecure", "warning: a root in this store was staged with --insecure"} {
		if !strings.Contains(out, w) {
			t.Errorf("status lacks %q:\n%s", w, out)
		}
	}
	var st struct {
		Store struct {
			Trust trustStatus `json:"trust"`
		} `json:"store"`
	}
	out, err = run(t, e, "overlayupd", "status", "--store", top, "--json")
	testroot.Must(t, err)
	mustJSON(t, out, &st)
	if !st.Store.Trust.Insecure {
		t.Errorf("status --json: trust.insecure false, want true\n%s", out)
	}
	found := false
	for _, en := range st.Store.Trust.Entries {
		found = found || (en.Entry == "root.try-1.sqsh" && en.Insecure && en.Made == "apply")
	}
	if !found {
		t.Errorf("status --json has no insecure record of root.try-1.sqsh:\n%s", out)
	}
	// The record is signed: editing it by hand shows, it does not hide.
	recs := filepath.Join(top, KeysDir, trust.RecordsFile)
	b, err := os.ReadFile(recs)
	testroot.Must(t, err)
	testroot.Must(t, os.WriteFile(recs, bytes.ReplaceAll(b, []byte(`\"insecure\":true`), []byte(`\"insecure\":false`)), 0o644))
	out, _ = run(t, e, "overlayupd", "status", "--store", top)
	if !strings.Contains(out, "record does NOT hold") {
		t.Errorf("status after the record was edited:\n%s\nwant it to say the record does not hold", out)
	}
}

// TestNoTrustedKeysUnchanged: a system that trusts no key applies what it
// applied before, signature files or not, and a store from before device
// keys stays without one.
func TestNoTrustedKeysUnchanged(t *testing.T) {
	t.Parallel()
	e := testEnv(t)
	top, _ := newStore(t, e)
	testroot.Must(t, os.RemoveAll(filepath.Join(top, KeysDir))) // a store made before device keys
	img := bootable().squashfs(t)
	testroot.Must(t, os.WriteFile(img+".minisig", []byte("garbage\n"), 0o644))
	out, err := run(t, e, "overlayupd", "apply", "--store", top, img)
	if err != nil || !strings.Contains(out, "this system trusts no key") {
		t.Fatalf("apply with no trusted key: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(top, KeysDir)); !os.IsNotExist(err) {
		t.Errorf("apply made %s/ in a store that had none: %v", KeysDir, err)
	}
	out, err = run(t, e, "overlayupd", "status", "--store", top)
	if err != nil || strings.Contains(out, "trusted keys") || strings.Contains(out, "record") {
		t.Errorf("status of an old store on a system without keys shows trust lines (%v):\n%s", err, out)
	}
}

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
			if trampoline.IsStore(top) {
				t.Error("a refused init made a store")
			}
		})
	}
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
// refused with a message saying how to sign instead.
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
