package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/overlayupd/overlayupd/internal/fsmode"
	"github.com/overlayupd/overlayupd/snapshot"
	"github.com/overlayupd/overlayupd/squash"
	"github.com/overlayupd/overlayupd/squash/inspect"
	"github.com/overlayupd/overlayupd/trampoline"
	"github.com/overlayupd/overlayupd/trust"
)

// KeysDir is the store's directory for the device key and the records of
// its roots, beside roots/: on the store, outside every root.
const KeysDir = "keys"

func keysDir(st *trampoline.Store) string { return filepath.Join(st.Top, KeysDir) }

// trustedKeys reads the keys the running root trusts (e.trustRoot, "/").
func (e *env) trustedKeys() (trust.Keys, error) {
	ks, err := trust.LoadTrusted(e.trustRoot)
	if err != nil {
		return nil, fmt.Errorf("%w\nthe running system's trusted keys (/%s) must all be readable minisign public keys before anything can be checked; nothing was changed", err, trust.TrustedDir)
	}
	return ks, nil
}

// sigCheck is how one image's signature is checked, decided before a byte
// of it is copied: with no trusted key, or --insecure, nothing is checked.
type sigCheck struct {
	keys     trust.Keys
	sig      trust.Signature
	sigFrom  string
	hasher   *trust.Hasher // the bytes' signature to check, or nil
	digest   *trust.Digest // a signed digest to check the bytes against, or nil
	insecure bool          // --insecure while keys are trusted
	signer   trust.Key     // after verify
}

// planSigCheck finds and parses the signature of image ("-" is stdin):
// sigFlag, else image.minisig beside it. A missing, malformed, legacy or
// untrusted signature is refused here, before anything is copied.
func planSigCheck(keys trust.Keys, image, sigFlag string, insecure bool) (*sigCheck, error) {
	c := &sigCheck{keys: keys}
	if len(keys) == 0 {
		return c, nil
	}
	if insecure {
		c.insecure = true
		return c, nil
	}
	trusted := fmt.Sprintf("this system trusts key %s (/%s)", strings.Join(keys.IDs(), ", "), trust.TrustedDir)
	path := sigFlag
	if path == "" {
		if image == "-" {
			return nil, fmt.Errorf("%w: the image comes from stdin, and %s: give its signature with --sig FILE (download IMAGE.minisig first), or --insecure to stage it unchecked (recorded, shown by status); nothing was changed", trust.ErrNoSignature, trusted)
		}
		path = image + ".minisig"
	}
	b, err := readSignature(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s is not signed (no %s), and %s: sign it with 'minisign -S -s KEY.key -m %s', give its signature with --sig FILE, or apply --insecure to stage it unchecked (recorded, shown by status); nothing was changed",
			trust.ErrNoSignature, image, path, trusted, image)
	}
	if err != nil {
		return nil, fmt.Errorf("read signature: %w; nothing was changed", err)
	}
	s, err := trust.ParseSignature(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w; nothing was changed", path, err)
	}
	if _, err := keys.Check(s); err != nil {
		return nil, fmt.Errorf("%s: %w: sign the image with a key this system trusts, or put its public key into the running root's /%s (images carry the keys for their successors); nothing was changed", path, err, trust.TrustedDir)
	}
	d, isDigest, err := trust.ParseDigest(s.TrustedComment())
	if err != nil {
		return nil, fmt.Errorf("%s: %w: sign with -t \"$(overlayupd digest IMAGE)\" as it prints it, or without -t; nothing was changed", path, err)
	}
	if isDigest {
		// A signed digest: its comment's signature is checked now, before
		// anything is copied; the copy is then checked against what it
		// states (squash.Options.Expect), with no BLAKE2b of the bytes.
		k, err := keys.VerifyComment(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w; nothing was changed", path, err)
		}
		c.sig, c.sigFrom, c.digest, c.signer = s, path, &d, k
		return c, nil
	}
	if err := s.CheckBytes(); err != nil {
		// Refused before the copy: checking it needs the image in memory.
		return nil, fmt.Errorf("%s: %w; nothing was changed", path, err)
	}
	c.sig, c.sigFrom, c.hasher = s, path, trust.NewHasher()
	return c, nil
}

func readSignature(path string) ([]byte, error) {
	f, fi, err := trust.OpenUntrusted(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is a %s, not a signature file", path, fsmode.Kind(fi.Mode()))
	}
	return io.ReadAll(io.LimitReader(f, trust.MaxSignatureFile+1))
}

// hash is what the copy feeds the staged bytes to: nil when nothing is checked.
func (c *sigCheck) hash() io.Writer {
	if c == nil || c.hasher == nil {
		return nil
	}
	return c.hasher
}

// checks says whether the staged bytes are checked against a signature.
func (c *sigCheck) checks() bool { return c != nil && (c.hasher != nil || c.digest != nil) }

// expect is the signed digest the copy must match, or nil.
func (c *sigCheck) expect() *squash.Expected {
	if c == nil || c.digest == nil {
		return nil
	}
	return &squash.Expected{Size: c.digest.Size, SHA256: c.digest.SHA256, Root: c.digest.Verity}
}

// mismatch is the error for a copy that does not match the signed digest.
func (c *sigCheck) mismatch(err error) error {
	return fmt.Errorf("the image as copied does not match its signature %s: %w: %w; nothing was changed", c.sigFrom, trust.ErrBadSignature, err)
}

// verify checks the signature against the hash of the staged bytes.
func (c *sigCheck) verify() error {
	if c == nil || c.hasher == nil {
		return nil
	}
	k, err := c.keys.Verify(c.sig, c.hasher)
	if err != nil {
		return fmt.Errorf("the image as copied does not match its signature %s: %w; nothing was changed", c.sigFrom, err)
	}
	c.signer = k
	return nil
}

// record fills what the check found into r.
func (c *sigCheck) record(r *trust.Record) {
	if c == nil {
		return
	}
	r.Insecure = c.insecure
	if c.checks() {
		r.SignedBy, r.TrustedComment = c.signer.IDString(), c.sig.TrustedComment()
	}
}

// describe says in words what was checked, for the command's report.
func (c *sigCheck) describe() string {
	switch {
	case c == nil || len(c.keys) == 0:
		return "signature not checked: this system trusts no key"
	case c.insecure:
		return "signature NOT checked (--insecure; recorded in the store)"
	}
	if c.digest != nil {
		return fmt.Sprintf("signature by key %s verified (signed digest: size, sha256 and dm-verity root)", c.signer.IDString())
	}
	return fmt.Sprintf("signature by key %s verified", c.signer.IDString())
}

// rootVersion is the version the root at entry (in st's slot directory)
// declares, read from the entry itself.
func rootVersion(st *trampoline.Store, entry string) (string, error) {
	p := filepath.Join(st.SlotDir, entry)
	var m squash.Meta
	var err error
	if isBtrfs(st) {
		m, err = squash.TreeMeta(p)
	} else {
		m, err = inspect.ReadMeta(p)
	}
	if err != nil {
		return "", fmt.Errorf("read the version of %s: %w", entry, err)
	}
	return trust.ImageVersion(m.OSRelease, m.VersionFile), nil
}

// committedVersion is the committed root's version and name ("" and "" in
// a store without one).
func committedVersion(st *trampoline.Store) (version, entry string, err error) {
	state, err := st.State()
	if err != nil {
		return "", "", err
	}
	for _, r := range []trampoline.Role{trampoline.RoleCommitting, trampoline.RoleCommitted} {
		if e, ok := state.Find(r); ok {
			v, err := rootVersion(st, e.Name)
			return v, e.Name, err
		}
	}
	return "", "", nil
}

// checkDowngrade is the no-downgrade rule: an image older than the
// committed root is refused unless allowed. Versions are ordered by
// trust.CompareVersions; an unversioned image ("") is older than any
// versioned one, so once the committed root declares a version every
// image must; with an unversioned committed root, anything goes.
func checkDowngrade(newV, committedV, committed string, allow bool) error {
	if allow || committedV == "" || trust.CompareVersions(newV, committedV) >= 0 {
		return nil
	}
	what := fmt.Sprintf("the image is version %s", newV)
	if newV == "" {
		what = "the image declares no version (no VERSION_ID or IMAGE_VERSION in its /etc/os-release, no /etc/overlayupd/version)"
	}
	return fmt.Errorf("%s, older than the committed root %s (version %s): refusing a downgrade, which could bring back holes that were fixed; 'overlayupd rollback' goes back to the previous root, and --allow-downgrade stages an older image on purpose; nothing was changed",
		what, committed, committedV)
}

// entryIdentity names the root at path so that renames keep the name: a
// subvolume's UUID (and its change transaction), an image file's inode,
// size and modification time.
func entryIdentity(st *trampoline.Store, path string) (id string, ctransid uint64, err error) {
	if isBtrfs(st) {
		info, err := snapshot.GetInfo(path)
		if err != nil {
			return "", 0, err
		}
		return "subvolume:" + info.UUID, info.CTransID, nil
	}
	var s unix.Stat_t
	if err := unix.Lstat(path, &s); err != nil {
		return "", 0, fmt.Errorf("stat %s: %w", path, err)
	}
	return fmt.Sprintf("image:%d:%d:%d", s.Ino, s.Size, s.Mtim.Nano()), 0, nil
}

// liveIdentities are the identities of the entries in st's slot directory.
func liveIdentities(st *trampoline.Store) map[string]bool {
	out := map[string]bool{}
	ents, err := st.Backend.List()
	if err != nil {
		return out
	}
	for _, e := range ents {
		if e.Kind != "image" && e.Kind != "subvolume" {
			continue
		}
		if id, _, err := entryIdentity(st, filepath.Join(st.SlotDir, e.Name)); err == nil {
			out[id] = true
		}
	}
	return out
}

// recordRoot signs a record of the root at path (about to be staged) with
// the store's device key and saves it. A store without a device key (made
// before there was one) gets one when keys are trusted (need), and is left
// as it was otherwise.
func (e *env) recordRoot(st *trampoline.Store, path string, r trust.Record, need bool) error {
	dir := keysDir(st)
	dk, err := trust.LoadDeviceKey(dir)
	if errors.Is(err, trust.ErrNoDeviceKey) {
		if !need {
			return nil
		}
		dk, err = trust.GenerateDeviceKey(dir)
	}
	if err != nil {
		return fmt.Errorf("device key: %w", err)
	}
	if r.Identity, r.CTransID, err = entryIdentity(st, path); err != nil {
		return err
	}
	r.Time = e.now().UTC()
	signed, err := dk.SignRecord(r)
	if err != nil {
		return err
	}
	recs, err := trust.LoadRecords(dir)
	if err != nil {
		p := filepath.Join(dir, trust.RecordsFile)
		if need {
			// Keys are trusted: the records are what says which roots
			// were signed. Not dropped without a word from the owner.
			return fmt.Errorf("%w\nthe store's records cannot be read: move the file away (mv %s %s.bad) to start them afresh; the roots in the store then have no record until they are applied again", err, p, p)
		}
		// No key is trusted: the records are diagnostics. The unreadable
		// file is moved aside (the entry itself: a link is not
		// followed), and the records start again from this root's.
		if rerr := os.Rename(p, p+".damaged"); rerr != nil {
			return fmt.Errorf("%w (and moving it aside: %w)", err, rerr)
		}
		fmt.Fprintf(os.Stderr, "overlayupd: warning: %v: moved aside to %s.damaged; the records start again with this root's\n", err, p)
		recs = nil
	}
	live := liveIdentities(st)
	live[r.Identity] = true
	return trust.SaveRecords(dir, recs, signed, func(id string) bool { return live[id] })
}

// rootRecord finds and checks the record of the root at path: ok is false
// when it has none; err says why a record does not hold (bad signature, or
// a subvolume changed since it was signed).
func rootRecord(st *trampoline.Store, path string) (r trust.Record, ok bool, err error) {
	id, ctransid, err := entryIdentity(st, path)
	if err != nil {
		return r, false, err
	}
	recs, err := trust.LoadRecords(keysDir(st))
	if err != nil {
		return r, false, err
	}
	pub, perr := trust.LoadDevicePub(keysDir(st))
	if perr != nil {
		return r, false, nil
	}
	r, ok, err = trust.Find(recs, id, pub)
	if err == nil && ok && isBtrfs(st) && r.CTransID != ctransid {
		err = fmt.Errorf("its files changed after it was signed (btrfs change transaction %d, signed at %d)", ctransid, r.CTransID)
	}
	return r, ok, err
}

// checkSource is the rule for update and persist when keys are trusted:
// the root they start from must be one whose record verifies (applied with
// a valid signature, or made on this device and unchanged since) and was
// not staged with --insecure, or they refuse unless --insecure. used says
// that --insecure let through a root that would have been refused.
func checkSource(st *trampoline.Store, src string, keys trust.Keys, insecure bool) (used bool, err error) {
	if len(keys) == 0 {
		return false, nil
	}
	if err := sourceRecordError(st, src); err != nil {
		if insecure {
			return true, nil
		}
		return false, fmt.Errorf("%w\nthis system trusts keys, so new roots are only made from checked ones: apply a signed image, or give --insecure to go on (recorded, shown by status); nothing was changed", err)
	}
	return false, nil
}

// sourceRecordError says why the root at src has no record that holds.
func sourceRecordError(st *trampoline.Store, src string) error {
	r, ok, err := rootRecord(st, src)
	name := filepath.Base(src)
	switch {
	case err != nil:
		err = fmt.Errorf("%s does not hold its signed record: %w", name, err)
	case !ok:
		err = fmt.Errorf("%s has no signed record in %s/ (it was made before keys were trusted)", name, KeysDir)
	case r.Insecure:
		err = fmt.Errorf("%s was staged with --insecure: its signature was never checked", name)
	}
	return err
}
