package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"aead.dev/minisign"
	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/internal/testroot"
	"github.com/overlayupd/overlayupd/trust"
)

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
	if got := entrySum(t, slotPath(top, "root.try-1.sqsh")); got != fileSum(t, good) {
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
// copies the file it opened). Either way what is staged is what was signed,
// whether the signature is of the bytes or of a digest (the staged copy's
// size and dm-verity root).
func TestApplySourceChangedMidCopy(t *testing.T) {
	t.Parallel()
	k1 := newSigner(t)
	big := bootable()
	big.files["data/big"] = "x" + string(randomBytes(t, 20<<20)) // past one copy chunk (8 MiB)
	signed := big.withVersion("1").squashfs(t)
	k1.sign(t, signed)
	signedSum := fileSum(t, signed)
	writeInPlace := func(t *testing.T, img string) {
		f, err := os.OpenFile(img, os.O_WRONLY, 0)
		testroot.Must(t, err)
		defer f.Close()
		fi, _ := f.Stat()
		// Past the first chunk, in the image's data: copied after this.
		_, err = f.WriteAt(bytes.Repeat([]byte{0xee}, 4096), fi.Size()-8192)
		testroot.Must(t, err)
	}
	for _, c := range []struct {
		name   string
		change func(t *testing.T, img string)
		staged bool
		digest bool // signed digest: the staged copy's tree is checked
	}{
		{"written in place", writeInPlace, false, false},
		{"another file renamed over it", func(t *testing.T, img string) {
			other := copyFile(t, bootable().withVersion("1").squashfs(t), "evil.sqsh")
			testroot.Must(t, os.Rename(other, img))
		}, true, false},
		{"written in place, signed digest", func(t *testing.T, img string) {
			// Time for a hash of the source, if one ran beside the
			// copy, to read all of it before the change.
			time.Sleep(500 * time.Millisecond)
			writeInPlace(t, img)
		}, false, true},
		{"another file renamed over it, signed digest", func(t *testing.T, img string) {
			other := copyFile(t, bootable().withVersion("1").squashfs(t), "evil.sqsh")
			testroot.Must(t, os.Rename(other, img))
		}, true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := testEnv(t)
			top, _ := newStore(t, e)
			trustIn(t, e.trustRoot, k1)
			img := copyFile(t, signed, "root.sqsh")
			if c.digest {
				k1.signDigest(t, e, img, img)
			} else {
				testroot.Must(t, os.Rename(k1.sign(t, img), img+".minisig"))
			}
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
			if got := entrySum(t, slotPath(top, "root.try-1.sqsh")); got != signedSum {
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

// TestApplySignatureFIFO: a signature or a trusted key that is a FIFO is
// refused as "not a regular file" at once. Opening one for reading waited
// for a writer that never comes: apply (and store init --trust) hung before
// saying anything, an update agent with it.
func TestApplySignatureFIFO(t *testing.T) {
	t.Parallel()
	k1 := newSigner(t)
	e := testEnv(t)
	top, _ := newStore(t, e)
	trustIn(t, e.trustRoot, k1)
	img := bootable().squashfs(t)
	testroot.Must(t, unix.Mkfifo(img+".minisig", 0o644))
	carrying := bootable().withKeys(k1).squashfs(t)
	keyFIFO := filepath.Join(t.TempDir(), "key.pub")
	testroot.Must(t, unix.Mkfifo(keyFIFO, 0o644))
	for _, c := range []struct {
		name string
		fifo string
		args []string
		want string
	}{
		{"IMAGE.minisig", img + ".minisig", []string{"apply", "--store", top, img}, "FIFO"},
		{"--sig", img + ".minisig", []string{"apply", "--store", top, "--sig", img + ".minisig", img}, "FIFO"},
		{"store init --trust", keyFIFO, []string{"store", "init", t.TempDir(), "--image", carrying, "--trust", keyFIFO}, "not a regular file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			type result struct {
				out string
				err error
			}
			done := make(chan result, 1)
			go func() {
				out, err := run(t, e, "overlayupd", c.args...)
				done <- result{out, err}
			}()
			var r result
			select {
			case r = <-done:
			case <-time.After(10 * time.Second):
				// Let the blocked open return, so the command ends.
				if w, err := os.OpenFile(c.fifo, os.O_WRONLY|unix.O_NONBLOCK, 0); err == nil {
					w.Close()
				}
				<-done
				t.Fatalf("%v hangs on a FIFO at %s", c.args, c.fifo)
			}
			if r.err == nil || !strings.Contains(r.err.Error(), c.want) {
				t.Errorf("%v: err = %v, want a refusal saying %q\n%s", c.args, r.err, c.want, r.out)
			}
		})
	}
}
