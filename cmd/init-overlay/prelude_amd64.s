#include "textflag.h"

// func prelude(): the ELF entry point (see prelude.go). The kernel starts a
// static binary with the stack pointer at argc and nothing else the runtime
// reads in registers; the syscall clobbers AX, CX, R11, DI, SI and DX only.
TEXT ·prelude(SB),NOSPLIT|NOFRAME|TOPFRAME,$0
	MOVQ	$runtime·text(SB), DI
	ANDQ	$~0xffff, DI // madvise wants a page-aligned start
	MOVQ	$runtime·edata(SB), SI
	SUBQ	DI, SI
	MOVQ	$3, DX // MADV_WILLNEED
	MOVQ	$28, AX // SYS_madvise
	SYSCALL
	JMP	_rt0_amd64_linux(SB)
