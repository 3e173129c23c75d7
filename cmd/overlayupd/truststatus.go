package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/overlayupd/overlayupd/trampoline"
	"github.com/overlayupd/overlayupd/trust"
)

// trustStatus is the "trust" object of status --json's store.
type trustStatus struct {
	// TrustedKeys are the key IDs the running system trusts for the next
	// image; empty: images are not checked.
	TrustedKeys []string `json:"trusted_keys"`
	KeysError   string   `json:"keys_error,omitempty"`
	DeviceKey   string   `json:"device_key,omitempty"` // its key ID
	// Insecure is true when a root in the store was staged with --insecure.
	Insecure bool         `json:"insecure"`
	Entries  []entryTrust `json:"entries"`
}

// entryTrust is what the store's record says of one root.
type entryTrust struct {
	Entry          string `json:"entry"`
	Made           string `json:"made,omitempty"` // store init, apply, update, persist; "" when there is no record
	SignedBy       string `json:"signed_by,omitempty"`
	TrustedComment string `json:"trusted_comment,omitempty"`
	Insecure       bool   `json:"insecure,omitempty"`
	Version        string `json:"version,omitempty"`
	// Problem says why the record does not hold: missing, a bad
	// signature, a subvolume changed after it was signed.
	Problem string `json:"problem,omitempty"`
}

// loadTrustStatus reads the trust side of the store: the running root's
// keys and each root's record, checked with the device's public key.
func loadTrustStatus(e *env, st *trampoline.Store, entries []trampoline.EntryStatus) *trustStatus {
	ts := &trustStatus{TrustedKeys: []string{}, Entries: []entryTrust{}}
	if keys, err := trust.LoadTrusted(e.trustRoot); err != nil {
		ts.KeysError = err.Error()
	} else {
		ts.TrustedKeys = keys.IDs()
	}
	if pub, err := trust.LoadDevicePub(keysDir(st)); err == nil {
		ts.DeviceKey = pub.IDString()
	}
	for _, en := range entries {
		if en.Kind != "image" && en.Kind != "subvolume" {
			continue
		}
		r, ok, err := rootRecord(st, filepath.Join(st.SlotDir, en.Name))
		t := entryTrust{Entry: en.Name}
		switch {
		case err != nil:
			t.Problem = err.Error()
		case !ok:
			t.Problem = "no record"
		default:
			t.Made, t.SignedBy, t.TrustedComment, t.Insecure, t.Version = r.Made, r.SignedBy, r.TrustedComment, r.Insecure, r.Version
			ts.Insecure = ts.Insecure || r.Insecure
		}
		ts.Entries = append(ts.Entries, t)
	}
	return ts
}

// printTrustStatus shows the trust side in words: the keys, and one line
// per root that has something to say.
func printTrustStatus(w io.Writer, ts *trustStatus) {
	if ts.KeysError == "" && len(ts.TrustedKeys) == 0 && ts.DeviceKey == "" {
		return // a store from before signatures, on a system that trusts no key
	}
	switch {
	case ts.KeysError != "":
		fmt.Fprintf(w, "trusted keys: unreadable: %s\n", printable(ts.KeysError))
	case len(ts.TrustedKeys) == 0:
		fmt.Fprintf(w, "trusted keys: none (no /%s/*.pub): images are not checked\n", trust.TrustedDir)
	default:
		fmt.Fprintf(w, "trusted keys: %s (/%s)\n", strings.Join(ts.TrustedKeys, ", "), trust.TrustedDir)
	}
	for _, t := range ts.Entries {
		fmt.Fprintf(w, "  %-22s %s\n", printable(t.Entry), printable(t.describe()))
	}
	if ts.Insecure {
		fmt.Fprintln(w, "warning: a root in this store was staged with --insecure: its signature was never checked")
	}
}

func (t entryTrust) describe() string {
	var what string
	switch {
	case t.Problem == "no record":
		return "no signature record (staged before the store had a device key, or the store was copied file by file: a record follows its image file, by inode)"
	case t.Problem != "":
		return "record does NOT hold: " + t.Problem
	case t.Insecure:
		what = "INSECURE: " + t.Made + " --insecure, signature not checked"
	case t.SignedBy != "":
		what = fmt.Sprintf("%s, signed by key %s", t.Made, t.SignedBy)
	case t.Made == "update" || t.Made == "persist":
		what = fmt.Sprintf("made on this device by %s, signed by the device key", t.Made)
	default:
		what = t.Made + ", unsigned (no key was trusted then, or not an image)"
	}
	if t.Version != "" {
		what += ", version " + t.Version
	}
	return what
}
