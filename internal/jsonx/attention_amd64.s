//go:build !purego

#include "textflag.h"

// func attention32(p *byte, n int) int
//
// Returns the index of the first byte of p[:n] that is below 0x20, '"',
// '\\' or 0x80 and above, or n. n is a positive multiple of 32.
TEXT ·attention32(SB), NOSPLIT, $0-24
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	XORQ AX, AX
	MOVQ $0x20, DX
	MOVQ DX, X1
	VPBROADCASTB X1, Y1 // 0x20 in every byte
	MOVQ $0x22, DX
	MOVQ DX, X2
	VPBROADCASTB X2, Y2 // '"'
	MOVQ $0x5c, DX
	MOVQ DX, X3
	VPBROADCASTB X3, Y3 // '\\'

loop:
	VMOVDQU (SI)(AX*1), Y0
	// Signed: 0x20 > c holds for the control bytes and, as they are
	// negative, for the bytes from 0x80 up.
	VPCMPGTB Y0, Y1, Y4
	VPCMPEQB Y0, Y2, Y5
	VPCMPEQB Y0, Y3, Y6
	VPOR     Y4, Y5, Y5
	VPOR     Y5, Y6, Y6
	VPMOVMSKB Y6, DX
	TESTL    DX, DX
	JNZ      found
	ADDQ     $32, AX
	CMPQ     AX, CX
	JB       loop
	VZEROUPPER
	MOVQ     CX, ret+16(FP)
	RET

found:
	VZEROUPPER
	BSFL DX, DX
	ADDQ DX, AX
	MOVQ AX, ret+16(FP)
	RET

// func special32(p *byte, n int) int
//
// As attention32, but bytes from 0x80 up are not marked: the index of the
// first byte of p[:n] that is below 0x20, '"' or '\\', or n.
TEXT ·special32(SB), NOSPLIT, $0-24
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	XORQ AX, AX
	MOVQ $0x1f, DX
	MOVQ DX, X1
	VPBROADCASTB X1, Y1 // 0x1f in every byte
	MOVQ $0x22, DX
	MOVQ DX, X2
	VPBROADCASTB X2, Y2 // '"'
	MOVQ $0x5c, DX
	MOVQ DX, X3
	VPBROADCASTB X3, Y3 // '\\'

sloop:
	VMOVDQU (SI)(AX*1), Y0
	// Unsigned: c <= 0x1f exactly when min(c, 0x1f) == c.
	VPMINUB  Y0, Y1, Y4
	VPCMPEQB Y0, Y4, Y4
	VPCMPEQB Y0, Y2, Y5
	VPCMPEQB Y0, Y3, Y6
	VPOR     Y4, Y5, Y5
	VPOR     Y5, Y6, Y6
	VPMOVMSKB Y6, DX
	TESTL    DX, DX
	JNZ      sfound
	ADDQ     $32, AX
	CMPQ     AX, CX
	JB       sloop
	VZEROUPPER
	MOVQ     CX, ret+16(FP)
	RET

sfound:
	VZEROUPPER
	BSFL DX, DX
	ADDQ DX, AX
	MOVQ AX, ret+16(FP)
	RET
