#include "textflag.h"

// func prelude(): the ELF entry point (see prelude.go). The kernel starts a
// static binary with the stack pointer at argc and nothing else the runtime
// reads in registers; the system calls clobber AX, CX, R11, DI, SI, DX, R8
// and R9 only.
TEXT ·prelude(SB),NOSPLIT|NOFRAME|TOPFRAME,$0
	MOVQ	$runtime·text(SB), R8
	ANDQ	$~0xffff, R8 // madvise wants a page-aligned start
	MOVQ	$runtime·edata(SB), R9
next:
	MOVQ	R9, SI
	SUBQ	R8, SI // what is left; one call per 128 KiB: see prelude.go
	CMPQ	SI, $0x20000
	JLS	last
	MOVQ	$0x20000, SI
last:
	MOVQ	R8, DI
	MOVQ	$3, DX // MADV_WILLNEED
	MOVQ	$28, AX // SYS_madvise
	SYSCALL
	ADDQ	$0x20000, R8
	CMPQ	R8, R9
	JCS	next
	JMP	_rt0_amd64_linux(SB)
