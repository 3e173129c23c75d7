#include "textflag.h"

// func prelude(): the ELF entry point (see prelude.go). The runtime's entry
// reads argc and argv from the stack, which this leaves as it is.
TEXT ·prelude(SB),NOSPLIT|NOFRAME|TOPFRAME,$0
	MOVD	$runtime·text(SB), R0
	LSR	$16, R0, R0 // madvise wants a page-aligned start: 64 KiB
	LSL	$16, R0, R0
	MOVD	$runtime·edata(SB), R1
	SUB	R0, R1, R1
	MOVD	$3, R2 // MADV_WILLNEED
	MOVD	$233, R8 // SYS_madvise
	SVC
	JMP	_rt0_arm64_linux(SB)
