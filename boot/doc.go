// Package boot owns the PID-1 path: it finds a store on the kernel's root,
// reads its format from the marker, carries out the slot protocol's boot
// decision (trampoline), mounts the chosen entry as the overlay's lower layer
// (overlay), and walks the fallbacks (trial, committed root, previous root,
// the image read-only, classic mode) until something boots. It also tells the
// commands which store and which entry the running system booted from.
//
// Why a package of its own: the formats (squash, and btrfs next) import the
// protocol (trampoline) to implement its Backend and Format; the boot path
// imports the formats. With the boot code inside trampoline that was an import
// cycle. Dependencies now point one way: cmd → boot → {trampoline, overlay,
// formats}; formats → trampoline; trampoline → internal only.
package boot
