// Package bootcfg owns the boot-loader configuration edits behind
// `overlayupd install` and `overlayupd uninstall`: finding the files that hold
// the kernel command line (Raspberry Pi cmdline.txt, U-Boot uEnv.txt, extlinux.conf,
// /etc/default/grub), adding or removing `ro init=/sbin/init-overlay` in them as
// pure functions over bytes, and writing the result back with a backup.
//
// Rules shared by every kind of file (see Install and Uninstall):
//
//   - Install replaces the first `init=X` of each edited command line with
//     `init=/sbin/init-overlay`, drops any later `init=` (the kernel honours the
//     last one), and turns every `rw` into `ro`. It then appends `ro` if the
//     line has none, and `init=/sbin/init-overlay` if it had no `init=`.
//     Parameters after `--` belong to init, not the kernel, and are never touched;
//     appended parameters go before `--`.
//   - Uninstall removes `init=/sbin/init-overlay` and nothing else. It does not
//     bring back a replaced `init=` or `rw`: the backup written by Edit
//     (PATH.overlayupd.bak) holds the file as it was before the install,
//     for Restore, which refuses when the file changed since in more than
//     overlayupd's own edits (see backup.go). Leaving `ro` is safe on the
//     usual distributions, which remount the root read-write from /etc/fstab.
//   - Both are idempotent, keep CRLF line endings, a missing final newline, and
//     every other byte of the file, including spacing between parameters.
package bootcfg
