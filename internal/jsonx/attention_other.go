//go:build !amd64 || purego

package jsonx

const hasAVX2 = false

func attention32(p *byte, n int) int { panic("jsonx: attention32 without AVX2") }

func special32(p *byte, n int) int { panic("jsonx: special32 without AVX2") }
