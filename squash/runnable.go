package squash

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/overlayupd/overlayupd/internal/shebang"
)

// HeadSize is how much of a file CheckRunnable looks at: the ELF header,
// its program headers and the PT_INTERP string sit in the first page of any
// ordinary binary, and the kernel reads at most 256 bytes of a "#!" line.
const HeadSize = 4096

// ELF machine numbers (e_machine) of the architectures a board runs.
const (
	EM386       = 3
	EMMIPS      = 8
	EMPPC64     = 21
	EMS390      = 22
	EMARM       = 40
	EMX8664     = 62
	EMAArch64   = 183
	EMRISCV     = 243
	EMLoongArch = 258
)

// MachineName names an ELF machine for messages.
func MachineName(m uint16) string {
	switch m {
	case EM386:
		return "i386"
	case EMMIPS:
		return "mips"
	case EMPPC64:
		return "ppc64"
	case EMS390:
		return "s390x"
	case EMARM:
		return "32-bit ARM"
	case EMX8664:
		return "x86-64"
	case EMAArch64:
		return "arm64"
	case EMRISCV:
		return "riscv"
	case EMLoongArch:
		return "loongarch"
	}
	return fmt.Sprintf("ELF machine %d", m)
}

// KernelMachines is what a kernel of `uname -m` arch runs: its own machine
// and the 32-bit one it has a compat layer for (a Raspberry Pi OS image is
// 32-bit ARM userland on an arm64 kernel). Unknown: nil, no check.
func KernelMachines(uname string) []uint16 {
	switch {
	case uname == "x86_64":
		return []uint16{EMX8664, EM386}
	case uname == "aarch64" || uname == "arm64":
		return []uint16{EMAArch64, EMARM}
	case strings.HasPrefix(uname, "arm"):
		return []uint16{EMARM}
	case len(uname) == 4 && strings.HasPrefix(uname, "i") && strings.HasSuffix(uname, "86"):
		return []uint16{EM386}
	case strings.HasPrefix(uname, "riscv"):
		return []uint16{EMRISCV}
	case strings.HasPrefix(uname, "ppc64"):
		return []uint16{EMPPC64}
	case uname == "s390x":
		return []uint16{EMS390}
	case strings.HasPrefix(uname, "mips"):
		return []uint16{EMMIPS}
	case strings.HasPrefix(uname, "loongarch"):
		return []uint16{EMLoongArch}
	}
	return nil
}

// ArchMachines is KernelMachines for an architecture name as Debian and Go
// spell it (apply --arch): the machine that userland must be.
func ArchMachines(arch string) ([]uint16, error) {
	switch arch {
	case "amd64", "x86_64":
		return []uint16{EMX8664}, nil
	case "i386", "386":
		return []uint16{EM386}, nil
	case "arm64", "aarch64":
		return []uint16{EMAArch64}, nil
	case "armhf", "armel", "arm":
		return []uint16{EMARM}, nil
	case "riscv64":
		return []uint16{EMRISCV}, nil
	case "ppc64el", "ppc64le":
		return []uint16{EMPPC64}, nil
	case "s390x":
		return []uint16{EMS390}, nil
	}
	return nil, fmt.Errorf("unknown architecture %q (amd64, arm64, armhf, i386, riscv64, ppc64el, s390x)", arch)
}

// ParseELF reads the machine and the program interpreter (PT_INTERP, ""
// for a static binary) from the first bytes of an ELF file. ok is false
// when head is not ELF. An interpreter outside head is reported as "".
func ParseELF(head []byte) (machine uint16, interp string, ok bool, err error) {
	if len(head) < 52 || !bytes.HasPrefix(head, []byte("\x7fELF")) {
		return 0, "", false, nil
	}
	var bo binary.ByteOrder = binary.LittleEndian
	switch head[5] {
	case 1:
	case 2:
		bo = binary.BigEndian
	default:
		return 0, "", true, errors.New("bad ELF data encoding")
	}
	machine = bo.Uint16(head[18:])
	var phoff uint64
	var phentsize, phnum int
	switch head[4] {
	case 1: // 32-bit
		phoff, phentsize, phnum = uint64(bo.Uint32(head[28:])), int(bo.Uint16(head[42:])), int(bo.Uint16(head[44:]))
	case 2: // 64-bit
		if len(head) < 64 {
			return machine, "", true, errors.New("truncated ELF header")
		}
		phoff, phentsize, phnum = bo.Uint64(head[32:]), int(bo.Uint16(head[54:])), int(bo.Uint16(head[56:]))
	default:
		return machine, "", true, errors.New("bad ELF class")
	}
	// Why the subtractions: every offset comes from the file, and a sum
	// near 2^64 would wrap past the bounds check into a slice out of range.
	n := uint64(len(head))
	for i := 0; i < phnum && phentsize >= 16; i++ {
		off := uint64(i) * uint64(phentsize)
		if phoff > n || off > n-phoff || uint64(phentsize) > n-phoff-off {
			break
		}
		off += phoff
		ph := head[off:]
		if bo.Uint32(ph) != 3 { // PT_INTERP
			continue
		}
		var ioff, isz uint64
		if head[4] == 1 {
			ioff, isz = uint64(bo.Uint32(ph[4:])), uint64(bo.Uint32(ph[16:]))
		} else {
			ioff, isz = bo.Uint64(ph[8:]), bo.Uint64(ph[32:])
		}
		if isz == 0 || isz > 4096 || ioff > n || isz > n-ioff {
			return machine, "", true, nil
		}
		return machine, strings.TrimRight(string(head[ioff:ioff+isz]), "\x00"), true, nil
	}
	return machine, "", true, nil
}

// HeadFunc returns the first HeadSize bytes of the file at path inside an
// image (symlinks followed inside it); an error wrapping fs.ErrNotExist when
// there is none.
type HeadFunc func(path string) ([]byte, error)

// CheckRunnable decides whether the kernel could run init as PID 1 here: an
// ELF binary of one of machines (nil: any) whose PT_INTERP exists in the
// image and is of the same machine, or a "#!" script whose interpreter
// passes the same test (one level of script, as the kernel allows in
// practice). A pure function over head: the callers read the image.
func CheckRunnable(head HeadFunc, init string, machines []uint16) error {
	return checkRunnable(head, init, machines, 0, init)
}

func checkRunnable(head HeadFunc, p string, machines []uint16, depth int, init string) error {
	b, err := head(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: %s needs %s, which is not in the image", ErrInitNotRunnable, init, p)
		}
		return fmt.Errorf("%w: read %s: %w", ErrCorrupt, p, err)
	}
	if name, ok, err := shebang.Interpreter(b); ok {
		switch {
		case err != nil:
			return fmt.Errorf("%w: %s: %w", ErrInitNotRunnable, p, err)
		case depth > 0:
			return fmt.Errorf("%w: %s: the interpreter %s is a script too", ErrInitNotRunnable, init, p)
		}
		if !strings.HasPrefix(name, "/") {
			name = "/" + name // the kernel looks it up from init's working directory, /
		}
		return checkRunnable(head, name, machines, depth+1, init)
	}
	m, interp, ok, err := ParseELF(b)
	switch {
	case !ok:
		return fmt.Errorf("%w: %s is neither an ELF binary nor a #! script", ErrInitNotRunnable, p)
	case err != nil:
		return fmt.Errorf("%w: %s: %w", ErrInitNotRunnable, p, err)
	case machines != nil && !containsMachine(machines, m):
		return fmt.Errorf("%w: %s is built for %s; this system runs %s", ErrInitWrongArch, p, MachineName(m), machineList(machines))
	}
	if interp == "" || depth > 1 {
		return nil
	}
	if _, err := head(interp); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: %s is dynamically linked and needs %s, which is not in the image", ErrInitNotRunnable, p, interp)
		}
		return fmt.Errorf("%w: read %s: %w", ErrCorrupt, interp, err)
	}
	return nil
}

func containsMachine(ms []uint16, m uint16) bool {
	for _, x := range ms {
		if x == m {
			return true
		}
	}
	return false
}

func machineList(ms []uint16) string {
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = MachineName(m)
	}
	return strings.Join(names, " or ")
}
