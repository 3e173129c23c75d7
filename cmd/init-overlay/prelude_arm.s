#include "textflag.h"

// func prelude(): the ELF entry point (see prelude.go). The runtime's entry
// reads argc and argv from the stack (R13), which this leaves as it is.
TEXT ·prelude(SB),NOSPLIT|NOFRAME|TOPFRAME,$0
	MOVW	$runtime·text(SB), R0
	MOVW	R0>>16, R0 // madvise wants a page-aligned start: 64 KiB
	MOVW	R0<<16, R0
	MOVW	$runtime·edata(SB), R1
	SUB	R0, R1, R1
	MOVW	$3, R2 // MADV_WILLNEED
	MOVW	$220, R7 // SYS_madvise (EABI)
	SWI	$0
	B	_rt0_arm_linux(SB)
