package overlay

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/overlayupd/overlayupd/internal/dm"
	"github.com/overlayupd/overlayupd/internal/mounts"
)

func TestVerityFromCmdline(t *testing.T) {
	for _, tc := range []struct {
		cmdline string
		want    VerityMode
		warn    bool
	}{
		{"root=/dev/vda ro", VerityOn, false},
		{"overlayupd.verity=off", VerityOff, false},
		{"overlayupd.verity=require quiet", VerityRequire, false},
		{"overlayupd.verity=off overlayupd.verity=require", VerityRequire, false},
		{"overlayupd.verity=on", VerityOn, false},
		{"overlayupd.verity=maybe", VerityOn, true},
		{"overlayupd.verity", VerityOn, true},
		{`overlayupd.verity="require"`, VerityRequire, false},
	} {
		got, warn := VerityFromCmdline(tc.cmdline)
		if got != tc.want || (warn != "") != tc.warn {
			t.Errorf("VerityFromCmdline(%q) = %q, %q; want %q, warning %v", tc.cmdline, got, warn, tc.want, tc.warn)
		}
	}
}

func TestWithVerity(t *testing.T) {
	img := mounts.Spec{Type: "squashfs", Source: "/roots/root.sqsh", Options: []string{"ro", "loop", "verity"}}
	subvol := mounts.Spec{Type: "btrfs", Source: "/dev/vda", Options: []string{"ro", "subvolid=257"}}
	for _, tc := range []struct {
		spec mounts.Spec
		mode VerityMode
		want []string
		op   VerityMode
	}{
		{img, VerityOn, []string{"ro", "loop", "verity"}, VerityOn},
		{img, VerityOff, []string{"ro", "loop"}, ""},
		{img, VerityRequire, []string{"ro", "loop", "verity=require"}, VerityRequire},
		{WithVerity(img, VerityRequire), VerityOn, []string{"ro", "loop", "verity"}, VerityOn},
		{subvol, VerityRequire, []string{"ro", "subvolid=257"}, ""},
	} {
		got := WithVerity(tc.spec, tc.mode)
		if !slices.Equal(got.Options, tc.want) {
			t.Errorf("WithVerity(%v, %s) = %v, want %v", tc.spec, tc.mode, got.Options, tc.want)
		}
		op := MountOp(got, RobaseDir, PhaseLower)
		if op.Verity != tc.op || op.Data != strings.Join(slices.DeleteFunc(slices.Clone(tc.want), func(o string) bool {
			return o == "ro" || o == "loop" || strings.HasPrefix(o, "verity")
		}), ",") {
			t.Errorf("MountOp(%v): verity %q data %q", got, op.Verity, op.Data)
		}
		if tc.op != "" && !strings.Contains(op.String(), ","+tc.want[2]+" ") {
			t.Errorf("step %q does not show %s", op, tc.want[2])
		}
	}
	if !slices.Equal(img.Options, []string{"ro", "loop", "verity"}) {
		t.Errorf("WithVerity changed its argument: %v", img.Options)
	}
}

func TestDecideVerity(t *testing.T) {
	noDM := fmt.Errorf("%w (no /dev/mapper/control)", dm.ErrNoDeviceMapper)
	for _, tc := range []struct {
		mode         VerityMode
		kernel       error
		verify, note bool
		err          error
	}{
		{VerityOff, nil, false, false, nil},
		{VerityOff, noDM, false, false, nil},
		{"", nil, false, false, nil},
		{VerityOn, nil, true, false, nil},
		{VerityOn, noDM, false, true, nil},
		{VerityRequire, nil, true, false, nil},
		{VerityRequire, noDM, false, false, ErrUnverified},
	} {
		verify, note, err := decideVerity(tc.mode, tc.kernel, "/roots/root.sqsh")
		if verify != tc.verify || (note != "") != tc.note || !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
			t.Errorf("decideVerity(%q, %v) = %v, %q, %v; want %v, note %v, %v", tc.mode, tc.kernel, verify, note, err, tc.verify, tc.note, tc.err)
		}
		if err != nil && !strings.Contains(err.Error(), "/roots/root.sqsh") {
			t.Errorf("the refusal does not name the image: %v", err)
		}
	}
	if note, err := decideNoTree(VerityOn, "/r.sqsh"); err != nil || !strings.Contains(note, "/r.sqsh") {
		t.Errorf("no tree, on: %q, %v", note, err)
	}
	if _, err := decideNoTree(VerityRequire, "/r.sqsh"); !errors.Is(err, ErrUnverified) {
		t.Errorf("no tree, require: %v, want ErrUnverified", err)
	}
}

// TestMountVerityNoKernel: on a kernel without dm-verity, require refuses
// before touching the image, and on logs one line and mounts it plainly.
func TestMountVerityNoKernel(t *testing.T) {
	old := verityOffered
	verityOffered = func() error { return dm.ErrNoVerity }
	defer func() { verityOffered = old }()
	missing := t.TempDir() + "/nope.sqsh"
	var logged []string
	logf := func(f string, a ...any) { logged = append(logged, fmt.Sprintf(f, a...)) }

	op := Op{Kind: OpMount, Source: missing, Target: t.TempDir(), FSType: "squashfs", Loop: true, Verity: VerityRequire}
	if err := op.run(logf); !errors.Is(err, ErrUnverified) || len(logged) != 0 {
		t.Errorf("require: %v, logged %q; want ErrUnverified, nothing logged", err, logged)
	}
	op.Verity = VerityOn
	err := op.run(logf)
	if !errors.Is(err, os.ErrNotExist) || len(logged) != 1 || !strings.Contains(logged[0], "without dm-verity: the kernel has no dm-verity target") {
		t.Errorf("on: %v, logged %q; want the plain mount's ENOENT after one line", err, logged)
	}
}
