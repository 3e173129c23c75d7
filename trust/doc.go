// Package trust owns what overlayupd trusts and why:
//
//   - the minisign public keys a running root trusts, the files
//     ROOT/etc/overlayupd/trusted.d/*.pub (keys.go): each image carries the
//     keys its successor must be signed with, so keys rotate with updates;
//   - the check of an image's minisign signature (sig.go) against the
//     BLAKE2b-512 hash of the bytes that were staged (Hasher): callers hash
//     what they write, in the same pass, so a source that changes while it
//     is read cannot pass with bytes other than the ones that boot;
//   - the device key (device.go): an unencrypted minisign key on the store,
//     outside every root image, that signs the records of the roots in the
//     store (records.go), among them the roots the device makes itself
//     (update, persist); it is trusted for this store's records only, never
//     for an image given to apply;
//   - image versions and their order (version.go), for the no-downgrade rule.
//
// It reads and writes small files only; images are read by the squash
// package, subvolumes by the snapshot package.
package trust
