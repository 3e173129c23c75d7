#include "textflag.h"

// func prelude(): the ELF entry point (see prelude.go). The runtime's entry
// reads argc and argv from the stack, which this leaves as it is; it uses
// R0-R3, R8 (the system call) and R9-R10 (the loop).
TEXT ·prelude(SB),NOSPLIT|NOFRAME|TOPFRAME,$0
	MOVD	$runtime·text(SB), R9
	LSR	$16, R9, R9 // madvise wants a page-aligned start: 64 KiB
	LSL	$16, R9, R9
	MOVD	$runtime·edata(SB), R10
next:
	MOVD	R9, R0
	SUB	R9, R10, R1 // what is left; one call per 128 KiB: see prelude.go
	MOVD	$0x20000, R3
	CMP	R3, R1
	CSEL	HI, R3, R1, R1
	MOVD	$3, R2 // MADV_WILLNEED
	MOVD	$233, R8 // SYS_madvise
	SVC
	ADD	$0x20000, R9, R9
	CMP	R10, R9
	BLO	next
	JMP	_rt0_arm64_linux(SB)
