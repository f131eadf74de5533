//go:build !purego

package jsonx

import "golang.org/x/sys/cpu"

// hasAVX2 selects scan32 for the long stretches of strings.
var hasAVX2 = cpu.X86.HasAVX2

// attention32 returns the index of the first byte of p[:n] that
// nextAttention stops at, or n; n is a positive multiple of 32.
func attention32(p *byte, n int) int { return scan32(p, n, false) }

// special32 is attention32 for nextSpecial: bytes from 0x80 up pass.
func special32(p *byte, n int) int { return scan32(p, n, true) }

// scan32 tests 32 bytes at a time with AVX2 (attention_amd64.s).
//
//go:noescape
func scan32(p *byte, n int, skipHigh bool) int
