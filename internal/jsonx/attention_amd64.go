//go:build !purego

package jsonx

import "golang.org/x/sys/cpu"

// hasAVX2 selects attention32 for the long stretches of strings.
var hasAVX2 = cpu.X86.HasAVX2

// attention32 returns the index of the first byte of p[:n] that
// nextAttention stops at, or n; n is a positive multiple of 32. It tests
// 32 bytes at a time with AVX2 (attention_amd64.s).
//
//go:noescape
func attention32(p *byte, n int) int

// special32 is attention32 for nextSpecial: bytes from 0x80 up pass.
//
//go:noescape
func special32(p *byte, n int) int
