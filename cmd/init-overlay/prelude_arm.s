#include "textflag.h"

// func prelude(): the ELF entry point (see prelude.go). The runtime's entry
// reads argc and argv from the stack (R13), which this leaves as it is; it
// uses R0-R2, R7 (the system call) and R4-R5 (the loop).
TEXT ·prelude(SB),NOSPLIT|NOFRAME|TOPFRAME,$0
	MOVW	$runtime·text(SB), R4
	MOVW	R4>>16, R4 // madvise wants a page-aligned start: 64 KiB
	MOVW	R4<<16, R4
	MOVW	$runtime·edata(SB), R5
next:
	MOVW	R4, R0
	SUB	R4, R5, R1 // what is left; one call per 128 KiB: see prelude.go
	CMP	$0x20000, R1
	MOVW.HI	$0x20000, R1
	MOVW	$3, R2 // MADV_WILLNEED
	MOVW	$220, R7 // SYS_madvise (EABI)
	SWI	$0
	ADD	$0x20000, R4, R4
	CMP	R5, R4
	BLO	next
	B	_rt0_arm_linux(SB)
