package bootcfg

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestIdempotent checks, over every testdata input that Install accepts, that
// installing twice equals installing once, uninstalling an uninstalled file
// changes nothing, and uninstall∘install gives back an input that had `ro` and
// no `init=`.
func TestIdempotent(t *testing.T) {
	ins, _ := filepath.Glob(filepath.Join("testdata", "*.in"))
	for _, in := range ins {
		name := strings.TrimSuffix(filepath.Base(in), ".in")
		k := kindOf(t, name)
		src, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		once, err := Install(k, src)
		if err != nil {
			continue
		}
		twice, err := Install(k, once)
		if err != nil || !bytes.Equal(twice, once) {
			t.Errorf("%s: Install(Install(x)) = %q, %v; want %q", name, twice, err, once)
		}
		un, err := Uninstall(k, once)
		if err != nil {
			t.Fatalf("%s: Uninstall(Install(x)): %v", name, err)
		}
		if un2, err := Uninstall(k, un); err != nil || !bytes.Equal(un2, un) {
			t.Errorf("%s: Uninstall is not idempotent: %q, %v; want %q", name, un2, err, un)
		}
		if restorable(k, src) && !bytes.Equal(un, src) {
			t.Errorf("%s: Uninstall(Install(x)) = %q, want the original %q", name, un, src)
		}
	}
}

// restorable reports whether every command line of src has `ro`, no `rw` and no
// `init=`, so that Install only appends what Uninstall takes away.
func restorable(k Kind, src []byte) bool {
	cls, ok := cmdlines(k, src)
	if !ok || len(cls) == 0 {
		return false
	}
	for _, cl := range cls {
		c := countParams(cl)
		if c.ro == 0 || c.rw > 0 || c.ours+c.otherInit > 0 {
			return false
		}
	}
	return true
}

func TestIdempotentRestoresRO(t *testing.T) {
	tests := []struct {
		k  Kind
		in string
	}{
		{RPiCmdline, "console=tty1 root=/dev/mmcblk0p2 ro rootwait\n"},
		{RPiCmdline, "root=/dev/mmcblk0p2  ro\r\n"},
		{UEnv, "cmdline=coherent_pool=1M ro quiet"},
		{Extlinux, "LABEL a\n  APPEND root=/dev/sda ro\nlabel b\n  append ro root=/dev/sdb -- x\n"},
		{Grub, "GRUB_CMDLINE_LINUX='ro quiet'\n"},
	}
	for _, tt := range tests {
		inst, err := Install(tt.k, []byte(tt.in))
		if err != nil {
			t.Fatalf("Install(%v, %q): %v", tt.k, tt.in, err)
		}
		if string(inst) == tt.in {
			t.Errorf("Install(%v, %q) changed nothing", tt.k, tt.in)
		}
		got, err := Uninstall(tt.k, inst)
		if err != nil || string(got) != tt.in {
			t.Errorf("Uninstall(Install(%v, %q)) = %q, %v; want the original", tt.k, tt.in, got, err)
		}
	}
}
