package mounts

import (
	"strings"

	"golang.org/x/sys/unix"
)

// Spec is a mount described as data, as mount(8) takes it: what to mount
// (Source, of filesystem Type) with which options. The boot plan carries
// Specs; only the executor turns one into syscalls. The option "loop" asks
// the executor to attach Source (a file) to a loop device first, read-only
// when "ro" is among the options; "bind" with "ro" is a bind mount made
// read-only by a second remount, as mount(8) does both. "verity" (or
// "verity=require") asks it to mount an image file through dm-verity when
// the image carries a hash tree (see the overlay executor).
type Spec struct {
	Type    string
	Source  string
	Options []string
}

// String reads like the mount(8) command that does the same, minus the target.
func (s Spec) String() string {
	out := "mount -t " + s.Type
	if len(s.Options) > 0 {
		out += " -o " + strings.Join(s.Options, ",")
	}
	return out + " " + s.Source
}

// Loop reports whether the spec asks for a loop device.
func (s Spec) Loop() bool { return s.has("loop") }

// Verity returns the spec's verity option ("", "verity" or
// "verity=require").
func (s Spec) Verity() string {
	for _, x := range s.Options {
		if x == "verity" || strings.HasPrefix(x, "verity=") {
			return x
		}
	}
	return ""
}

// ReadOnly reports whether the spec mounts read-only.
func (s Spec) ReadOnly() bool { return s.has("ro") }

func (s Spec) has(o string) bool {
	for _, x := range s.Options {
		if x == o {
			return true
		}
	}
	return false
}

// flagOptions are the options that are mount(2) flags rather than data.
var flagOptions = map[string]uintptr{
	"bind":   unix.MS_BIND,
	"ro":     unix.MS_RDONLY,
	"nosuid": unix.MS_NOSUID,
	"nodev":  unix.MS_NODEV,
	"noexec": unix.MS_NOEXEC,
}

// Args splits the options into mount(2)'s flags and data string; "loop" and
// "verity" are the executor's, not the kernel's, and are left out.
func (s Spec) Args() (flags uintptr, data string) {
	var rest []string
	for _, o := range s.Options {
		if f, ok := flagOptions[o]; ok {
			flags |= f
		} else if o != "loop" && o != "verity" && !strings.HasPrefix(o, "verity=") {
			rest = append(rest, o)
		}
	}
	return flags, strings.Join(rest, ",")
}
