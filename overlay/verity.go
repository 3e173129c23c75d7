package overlay

import (
	"errors"
	"fmt"

	"github.com/overlayupd/overlayupd/internal/kcmdline"
	"github.com/overlayupd/overlayupd/internal/mounts"
)

// VerityMode says whether a root image is mounted through dm-verity.
type VerityMode string

// The values of overlayupd.verity= on the kernel command line.
const (
	// VerityOff mounts images without verification.
	VerityOff VerityMode = "off"
	// VerityOn (the default) verifies every image that carries a hash tree
	// where the kernel offers dm-verity; otherwise it logs one line and
	// mounts the image unverified.
	VerityOn VerityMode = "on"
	// VerityRequire refuses to mount an image unverified: without a tree,
	// or on a kernel without dm-verity. The boot falls back to the next root.
	VerityRequire VerityMode = "require"
)

// VerityKey is the kernel command line key. Why only there, and not in the
// get-mode script: the script lives on the store, which is what verity
// distrusts; the command line comes from the boot configuration.
const VerityKey = "overlayupd.verity"

// ErrUnverified is the error of a lower mount that verity=require refused.
var ErrUnverified = errors.New("refused to mount unverified (overlayupd.verity=require)")

// VerityFromCmdline reads overlayupd.verity= from a kernel command line: the
// last one wins; absent is VerityOn; an unknown value is VerityOn with a
// warning.
func VerityFromCmdline(cmdline string) (VerityMode, string) {
	v, ok := kcmdline.Lookup(kcmdline.Kernel(cmdline), VerityKey)
	if !ok {
		return VerityOn, ""
	}
	switch m := VerityMode(v); m {
	case VerityOff, VerityOn, VerityRequire:
		return m, ""
	}
	return VerityOn, fmt.Sprintf("%s=%q is not off, on or require; using on", VerityKey, v)
}

// WithVerity applies the mode to a lower layer's spec that asks for verity
// (the squashfs format's): off drops the option, require makes it
// "verity=require". A spec that does not ask is returned as it is.
func WithVerity(spec mounts.Spec, mode VerityMode) mounts.Spec {
	if spec.Verity() == "" {
		return spec
	}
	out := spec
	out.Options = nil
	for _, o := range spec.Options {
		if o == spec.Verity() {
			switch mode {
			case VerityOff:
				continue
			case VerityRequire:
				o = "verity=" + string(VerityRequire)
			default:
				o = "verity"
			}
		}
		out.Options = append(out.Options, o)
	}
	return out
}

// opVerity is the mode a mount step carries, from its spec's option.
func opVerity(spec mounts.Spec) VerityMode {
	switch spec.Verity() {
	case "verity":
		return VerityOn
	case "verity=" + string(VerityRequire):
		return VerityRequire
	}
	return ""
}

// decideVerity is what a mount step of mode does, given whether the kernel
// offers dm-verity (kernelErr nil) or why not: verify, or mount unverified
// with a note for the log, or refuse.
func decideVerity(mode VerityMode, kernelErr error, image string) (verify bool, note string, err error) {
	switch {
	case mode == "" || mode == VerityOff:
		return false, "", nil
	case kernelErr == nil:
		return true, "", nil
	case mode == VerityRequire:
		return false, "", fmt.Errorf("%w: %s: %v: load the dm-verity module, or boot with %s=on", ErrUnverified, image, kernelErr, VerityKey)
	}
	return false, fmt.Sprintf("%s is mounted without dm-verity: %v", image, kernelErr), nil
}

// decideNoTree is what a mount step of mode does with an image that carries
// no hash tree (one staged before verity, or made by other tools).
func decideNoTree(mode VerityMode, image string) (note string, err error) {
	if mode == VerityRequire {
		return "", fmt.Errorf("%w: %s has no dm-verity hash tree: apply it again with this version of overlayupd", ErrUnverified, image)
	}
	return fmt.Sprintf("%s has no dm-verity hash tree (staged by an older overlayupd?): mounted unverified", image), nil
}
