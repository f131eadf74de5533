//go:build !purego

#include "textflag.h"

// func scan32(p *byte, n int, skipHigh bool) int
//
// Returns the index of the first byte of p[:n] that is below 0x20, '"',
// '\\' or, unless skipHigh, 0x80 and above; or n. n is a positive multiple
// of 32.
TEXT ·scan32(SB), NOSPLIT, $0-32
	MOVQ    p+0(FP), SI
	MOVQ    n+8(FP), CX
	MOVBQZX skipHigh+16(FP), DX
	NEGQ    DX // 0, or all ones
	MOVQ    DX, X7
	VPBROADCASTB X7, Y7 // 0x00, or 0xff to drop the marks of 0x80 and up
	VPXOR   Y8, Y8, Y8
	MOVQ    $0x20, DX
	MOVQ    DX, X1
	VPBROADCASTB X1, Y1
	MOVQ    $0x22, DX
	MOVQ    DX, X2
	VPBROADCASTB X2, Y2 // '"'
	MOVQ    $0x5c, DX
	MOVQ    DX, X3
	VPBROADCASTB X3, Y3 // '\\'
	XORQ    AX, AX

loop:
	VMOVDQU (SI)(AX*1), Y0
	// Signed: 0x20 > c holds for the control bytes and, as they are
	// negative, for the bytes from 0x80 up; 0 > c for the latter only.
	VPCMPGTB  Y0, Y1, Y4
	VPCMPEQB  Y0, Y2, Y5
	VPCMPEQB  Y0, Y3, Y6
	VPOR      Y4, Y5, Y5
	VPOR      Y5, Y6, Y6
	VPCMPGTB  Y0, Y8, Y9
	VPAND     Y7, Y9, Y9
	VPANDN    Y6, Y9, Y6 // marks &^ dropped
	VPMOVMSKB Y6, DX
	TESTL     DX, DX
	JNZ       found
	ADDQ      $32, AX
	CMPQ      AX, CX
	JB        loop
	VZEROUPPER
	MOVQ      CX, ret+24(FP)
	RET

found:
	VZEROUPPER
	BSFL DX, DX
	ADDQ DX, AX
	MOVQ AX, ret+24(FP)
	RET
