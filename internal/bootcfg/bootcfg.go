package bootcfg

import (
	"errors"
	"fmt"
)

// TrampolinePath is the init that install puts on the kernel command line:
// this binary as the trampoline (trampoline.TrampolinePath, which this
// package may not import).
const TrampolinePath = "/sbin/init-overlay"

const initParam = "init=" + TrampolinePath

// ErrRefused marks a file that Install or Uninstall will not edit because it does
// not look like what its kind should be; the message says why and what to do.
var ErrRefused = errors.New("refusing to edit")

// Kind is the kind of boot configuration file.
type Kind int

// The kinds of boot configuration file bootcfg can edit.
const (
	RPiCmdline Kind = iota // Raspberry Pi cmdline.txt: the whole command line on one line
	UEnv                   // U-Boot uEnv.txt: the cmdline= variable
	Extlinux               // extlinux.conf: every APPEND line
	Grub                   // /etc/default/grub: GRUB_CMDLINE_LINUX
)

func (k Kind) String() string {
	switch k {
	case RPiCmdline:
		return "cmdline.txt"
	case UEnv:
		return "uEnv.txt"
	case Extlinux:
		return "extlinux.conf"
	case Grub:
		return "grub"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Target is one boot configuration file to edit.
type Target struct {
	Kind Kind
	Path string
	// BtrfsStore says the root is a btrfs store: install then adds
	// rootflags=subvolid=5 to a line with rootfstype=btrfs and no rootflags,
	// so that a default subvolume set by someone else cannot hide the
	// store's trampoline. Not on a classic btrfs root, whose default
	// subvolume may be the root itself (set-default).
	BtrfsStore bool
	// Root and RootFSType, when set, become the command line's root= and
	// rootfstype=: the store's own partition (install --store-device).
	Root       string
	RootFSType string
	// Arch is the architecture of the kernel that boots with this file
	// (a KernelArch key), for the length of its command line; "" when
	// not known, which takes the smallest limit (see CmdlineLimit).
	Arch string
	// Within, when set, is the directory the file must resolve into (the
	// --boot-dir of another machine's boot partition): a link out of it
	// would edit a file of the machine the command runs on.
	Within string
}

// Options are the choices of an install beyond `ro init=/sbin/init-overlay`.
type Options struct {
	BtrfsStore bool   // see Target.BtrfsStore
	Root       string // root= value, e.g. PARTUUID=6c586e13-03; "" keeps the line's
	RootFSType string // rootfstype= value; "" keeps the line's
}

// Options returns t's install options.
func (t Target) Options() Options {
	return Options{BtrfsStore: t.BtrfsStore, Root: t.Root, RootFSType: t.RootFSType}
}

// Install returns content with `ro init=/sbin/init-overlay` on the kernel
// command line(s) of a file of kind k; see the package doc for the rules and
// the per-kind functions for where the command line is. It never writes files.
func Install(k Kind, content []byte) ([]byte, error) {
	return apply(k, content, true, installParams)
}

// InstallBtrfsStore is Install for the kernel command line of a btrfs
// store (see Target.BtrfsStore).
func InstallBtrfsStore(k Kind, content []byte) ([]byte, error) {
	return InstallWith(k, content, Options{BtrfsStore: true})
}

// InstallWith is Install with options: a btrfs store's rootflags, and the
// store partition as root= (with its rootfstype= and rootwait).
func InstallWith(k Kind, content []byte, o Options) ([]byte, error) {
	return apply(k, content, true, installer(o))
}

// Uninstall returns content with `init=/sbin/init-overlay` removed from the
// kernel command line(s) of a file of kind k. An untouched file comes back
// unchanged. It never writes files.
func Uninstall(k Kind, content []byte) ([]byte, error) {
	return apply(k, content, false, uninstallParams)
}

func apply(k Kind, content []byte, install bool, edit editFunc) ([]byte, error) {
	switch k {
	case RPiCmdline:
		return editRPi(content, edit)
	case UEnv:
		return editUEnv(content, edit, install)
	case Extlinux:
		return editExtlinux(content, edit, install)
	case Grub:
		return editGrub(content, edit, install)
	}
	return nil, fmt.Errorf("unknown boot config kind %d", int(k))
}
