package bootcfg

import (
	"fmt"
	"strings"
)

// The kernel copies the command line it is given into a buffer of
// COMMAND_LINE_SIZE bytes (the terminating NUL included) and cuts a longer
// one without a word. What is cut is the end of the line, which is where
// install puts init=/sbin/init-overlay and where root= often is: a board
// whose line grew past the limit boots the wrong root, or none.
//
// COMMAND_LINE_SIZE per architecture, from the kernel sources:
//
//	arm    1024  arch/arm/include/uapi/asm/setup.h
//	arm64  2048  arch/arm64/include/uapi/asm/setup.h (v6.12; one older revision had 4096: the smaller is taken)
//	x86    2048  arch/x86/include/asm/setup.h (32- and 64-bit)
//	riscv  1024  arch/riscv/include/uapi/asm/setup.h ("riscv: Bump COMMAND_LINE_SIZE value to 1024", 2021;
//	             older riscv kernels have include/uapi/asm-generic/setup.h's 512)
var commandLineSize = map[string]int{
	"arm":   1024,
	"arm64": 2048,
	"x86":   2048,
	"riscv": 1024,
}

// unknownArchSize is assumed when the kernel's architecture is not known
// (a boot partition edited on a build host): the smallest of the table, so
// that a line that fits it fits every kernel overlayupd is built for
// (32-bit ARM is the Raspberry Pi OS armhf/armv6 and BeagleBone case).
const unknownArchSize = 1024

// rpiFirmwareSize is the Raspberry Pi firmware's own limit on the command
// line it hands the kernel, whatever the kernel's architecture: 1024 since
// 2012 (500 before; raspberrypi/linux#140).
const rpiFirmwareSize = 1024

// bootloaderAdds is, per kind, the room a line of the file must leave for
// what the boot loader puts on the kernel's command line besides it.
var bootloaderAdds = map[Kind]struct {
	n    int
	what string
}{
	// The firmware puts its own parameters before cmdline.txt's:
	// coherent_pool=, 8250.nr_uarts=, snd_bcm2835.*, smsc95xx.macaddr=,
	// vc_mem.mem_base=/mem_size=, bcm2708_fb.* on older boards; about
	// 200 bytes on a Pi 4 or 5, 300 on older firmware.
	RPiCmdline: {320, "what the Raspberry Pi firmware puts before cmdline.txt"},
	// Boot scripts build bootargs from console=, root=, rootfstype=...
	// and then ${cmdline}.
	UEnv: {256, "what the U-Boot boot script puts around cmdline="},
	// U-Boot passes APPEND on as it is, but may add ip= and BOOTIF=
	// (IPAPPEND); syslinux adds BOOT_IMAGE= and initrd=.
	Extlinux: {128, "what the boot loader adds to APPEND (BOOT_IMAGE=, initrd=, ip=)"},
	// grub-mkconfig writes `linux /vmlinuz-VERSION root=UUID=... ro`
	// before GRUB_CMDLINE_LINUX, and GRUB adds BOOT_IMAGE=PATH; the
	// value of GRUB_CMDLINE_LINUX_DEFAULT follows (counted on top).
	Grub: {128, "what grub-mkconfig and GRUB add (BOOT_IMAGE=, root=UUID=, ro); the line counts GRUB_CMDLINE_LINUX_DEFAULT too"},
}

// KernelArch maps a machine name (uname -m), a Debian or Go architecture
// name to the key of the command-line size table: "arm", "arm64", "x86" or
// "riscv"; "" when it is none of these.
func KernelArch(name string) string {
	switch n := strings.ToLower(name); {
	case n == "arm64" || n == "aarch64":
		return "arm64"
	case n == "arm" || n == "armhf" || n == "armel" || strings.HasPrefix(n, "armv"):
		return "arm"
	case n == "x86" || n == "x86_64" || n == "amd64" || n == "i386" || n == "i486" || n == "i586" || n == "i686":
		return "x86"
	case n == "riscv" || n == "riscv64" || n == "riscv32":
		return "riscv"
	}
	return ""
}

// Limit is how long a kernel command line in a file may be, and why.
type Limit struct {
	Max    int    // bytes the file's line may have
	Size   int    // the command line's buffer, NUL included
	Source string // where Size comes from
	Adds   int    // bytes left for what the boot loader adds
	What   string // what the boot loader adds
	Known  bool   // the kernel's architecture was known
}

// CmdlineLimit returns the limit for a command line in a file of kind k
// booting a kernel of architecture arch (a KernelArch key; "" when not
// known, which takes the smallest size of the table).
func CmdlineLimit(k Kind, arch string) Limit {
	l := Limit{Known: true}
	switch size, ok := commandLineSize[arch]; {
	case !ok:
		l.Known, l.Size = false, unknownArchSize
		l.Source = fmt.Sprintf("COMMAND_LINE_SIZE %d of a 32-bit ARM kernel, the smallest of the kernels overlayupd is built for: the board's kernel is not known here", l.Size)
	case arch == "arm":
		l.Size, l.Source = size, fmt.Sprintf("COMMAND_LINE_SIZE %d of a 32-bit ARM kernel", size)
	default:
		l.Size, l.Source = size, fmt.Sprintf("COMMAND_LINE_SIZE %d of an %s kernel", size, arch)
	}
	if k == RPiCmdline && l.Size > rpiFirmwareSize {
		l.Size, l.Source = rpiFirmwareSize, fmt.Sprintf("the Raspberry Pi firmware's limit of %d", rpiFirmwareSize)
	}
	add := bootloaderAdds[k]
	l.Adds, l.What = add.n, add.what
	l.Max = l.Size - 1 - l.Adds
	return l
}

// checkLength refuses a command line of n bytes that would not fit l.
func checkLength(n int, l Limit) error {
	if n <= l.Max {
		return nil
	}
	hint := ""
	if !l.Known {
		hint = "; if the board's kernel is arm64 or x86, say so with --kernel-arch"
	}
	return fmt.Errorf("%w: the kernel command line would be %d bytes, but only %d fit: the kernel keeps %d (%s, less the NUL), and %d are left for %s. "+
		"The kernel cuts a longer line without a word and loses what comes last (init=/sbin/init-overlay, root=), which can leave the board unbootable. "+
		"Remove parameters the board does not need, to make the line at least %d bytes shorter, and retry%s",
		ErrRefused, n, l.Max, l.Size-1, l.Source, l.Adds, l.What, n-l.Max, hint)
}

// checkLengths refuses content, a file of kind k as install would write
// it, when one of its kernel command lines would not fit a kernel of
// architecture arch. GRUB's line also carries GRUB_CMDLINE_LINUX_DEFAULT.
func checkLengths(k Kind, content []byte, arch string) error {
	l, extra := CmdlineLimit(k, arch), 0
	if k == Grub {
		extra = grubDefaultLen(content)
	}
	var tooLong error
	_, err := apply(k, content, false, func(s string) (string, error) {
		if tooLong == nil {
			tooLong = checkLength(len(strings.Trim(s, " \t\r\n"))+extra, l)
		}
		return s, nil
	})
	if err != nil {
		return err
	}
	return tooLong
}
