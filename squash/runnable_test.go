package squash

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeELF is the first bytes of a 64-bit little-endian ELF file for machine,
// with a PT_INTERP of interp ("" for a static binary).
func fakeELF(machine uint16, interp string) []byte {
	b := make([]byte, 256)
	copy(b, "\x7fELF\x02\x01\x01")
	le := binary.LittleEndian
	le.PutUint16(b[16:], 2) // ET_EXEC
	le.PutUint16(b[18:], machine)
	le.PutUint64(b[32:], 64) // e_phoff
	le.PutUint16(b[54:], 56) // e_phentsize
	if interp == "" {
		return b
	}
	le.PutUint16(b[56:], 1) // e_phnum
	le.PutUint32(b[64:], 3) // PT_INTERP
	le.PutUint64(b[64+8:], 128)
	le.PutUint64(b[64+32:], uint64(len(interp)+1))
	copy(b[128:], interp)
	return b
}

func TestParseELF(t *testing.T) {
	m, interp, ok, err := ParseELF(fakeELF(EMAArch64, "/lib/ld-linux-aarch64.so.1"))
	if !ok || err != nil || m != EMAArch64 || interp != "/lib/ld-linux-aarch64.so.1" {
		t.Errorf("ParseELF = %d %q %v %v", m, interp, ok, err)
	}
	// The test binary itself: this machine's, and ParseELF agrees with uname.
	self, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	m, _, ok, err = ParseELF(self[:HeadSize])
	if !ok || err != nil || !containsMachine(KernelMachines(uname(t)), m) {
		t.Errorf("ParseELF(this binary) = machine %d (%v, %v), not one of %v", m, ok, err, KernelMachines(uname(t)))
	}
	if _, _, ok, _ := ParseELF([]byte("#!/bin/sh\n")); ok {
		t.Error("a script parsed as ELF")
	}
}

// uname is the machine as apply reads it (uname(2)): under qemu-user, the
// emulated one, which this test binary is built for.
func uname(t *testing.T) string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	return unix.ByteSliceToString(u.Machine[:])
}

func TestCheckRunnable(t *testing.T) {
	x86, arm64 := []uint16{EMX8664, EM386}, []uint16{EMAArch64, EMARM}
	files := map[string][]byte{
		"/bin/busybox":                  fakeELF(EMX8664, ""),
		"/lib/ld-linux-aarch64.so.1":    fakeELF(EMAArch64, ""),
		"/lib64/ld-linux-x86-64.so.2":   fakeELF(EMX8664, ""),
		"/usr/lib/systemd/systemd":      fakeELF(EMX8664, "/lib64/ld-linux-x86-64.so.2"),
		"/usr/lib/systemd/systemd-arm":  fakeELF(EMAArch64, "/lib/ld-linux-aarch64.so.1"),
		"/usr/bin/needs-missing-loader": fakeELF(EMX8664, "/lib/ld-musl-x86_64.so.1"),
		"/init.sh":                      []byte("#!/bin/busybox sh\nexec foo\n"),
		"/init-nosh.sh":                 []byte("#!/bin/sh\nexec foo\n"),
		"/init-chain.sh":                []byte("#!/init.sh\n"),
		"/garbage":                      []byte("MZ\x90\x00"),
		"/init-crlf.sh":                 []byte("#!/bin/busybox\r\nexec foo\r\n"), // the kernel looks for "/bin/busybox\r"
		"/init-relative.sh":             []byte("#!bin/busybox sh\n"),             // from init's working directory, /
		"/armhf":                        fakeELF(EMARM, ""),
	}
	head := func(p string) ([]byte, error) {
		if b, ok := files[p]; ok {
			return b, nil
		}
		return nil, fs.ErrNotExist
	}
	for _, c := range []struct {
		init     string
		machines []uint16
		want     error
	}{
		{"/bin/busybox", x86, nil},
		{"/usr/lib/systemd/systemd", x86, nil},
		{"/usr/lib/systemd/systemd", nil, nil},
		{"/usr/lib/systemd/systemd-arm", arm64, nil},
		{"/usr/lib/systemd/systemd-arm", x86, ErrInitWrongArch},
		{"/armhf", arm64, nil}, // 32-bit ARM userland on an arm64 kernel
		{"/armhf", x86, ErrInitWrongArch},
		{"/usr/bin/needs-missing-loader", x86, ErrInitNotRunnable},
		{"/init.sh", x86, nil},
		{"/init.sh", arm64, ErrInitWrongArch}, // the shell it runs is x86
		{"/init-nosh.sh", x86, ErrInitNotRunnable},
		{"/init-chain.sh", x86, ErrInitNotRunnable},
		{"/garbage", x86, ErrInitNotRunnable},
		{"/init-crlf.sh", x86, ErrInitNotRunnable},
		{"/init-relative.sh", x86, nil},
	} {
		err := CheckRunnable(head, c.init, c.machines)
		if (c.want == nil) != (err == nil) || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("CheckRunnable(%s, %v) = %v, want %v", c.init, c.machines, err, c.want)
		}
	}
}

func TestMachines(t *testing.T) {
	for uname, want := range map[string]uint16{"x86_64": EMX8664, "aarch64": EMAArch64, "armv7l": EMARM, "armv6l": EMARM, "riscv64": EMRISCV, "i686": EM386} {
		if ms := KernelMachines(uname); len(ms) == 0 || ms[0] != want {
			t.Errorf("KernelMachines(%s) = %v, want %d first", uname, ms, want)
		}
	}
	if KernelMachines("vax") != nil {
		t.Error("an unknown kernel must mean no check")
	}
	if _, err := ArchMachines("sparc"); err == nil {
		t.Error("ArchMachines accepted an unknown name")
	}
	if ms, err := ArchMachines("armhf"); err != nil || ms[0] != EMARM {
		t.Errorf("ArchMachines(armhf) = %v, %v", ms, err)
	}
}

// TestParseELFHostileOffsets: an image's /sbin/init is read before its
// signature is verified, so its ELF header is hostile input. Offsets near
// 2^64 that wrap past the bounds check must give "no interpreter found",
// never a panic (which crashed apply, update and store init).
func TestParseELFHostileOffsets(t *testing.T) {
	le := binary.LittleEndian
	for _, c := range []struct {
		name string
		edit func(b []byte)
	}{
		{"e_phoff wraps", func(b []byte) { le.PutUint64(b[32:], ^uint64(0)-0x10) }},
		{"e_phoff is 2^64-1", func(b []byte) { le.PutUint64(b[32:], ^uint64(0)) }},
		{"p_offset of PT_INTERP wraps", func(b []byte) { le.PutUint64(b[64+8:], ^uint64(0)-2) }},
		{"p_offset of PT_INTERP is 2^64-1", func(b []byte) { le.PutUint64(b[64+8:], ^uint64(0)) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := fakeELF(EMX8664, "/lib/ld.so")
			c.edit(b)
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("ParseELF panicked: %v", r)
				}
			}()
			m, interp, ok, _ := ParseELF(b)
			if !ok || m != EMX8664 || interp != "" {
				t.Errorf("ParseELF = %d %q %v, want machine %d, no interpreter, ok", m, interp, ok, EMX8664)
			}
		})
	}
}
