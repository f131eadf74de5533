package framing

import "github.com/ternlog/tern/pipeline"

// streamBuf is the buffer a busy stream grows to: a ReadBuffer, large
// enough that one read syscall carries about a thousand typical lines, and
// lent to the batch of records it holds (Lend) so that decoding copies
// none of their bytes.
const streamBuf = pipeline.ReadBufferSize

// growBuf returns a buffer of size bytes starting with data, and the
// ReadBuffer it is when size is streamBuf. The buffer it replaces is left to
// the GC: records returned from it may still be held until the next read.
func growBuf(data []byte, size int) ([]byte, *pipeline.ReadBuffer) {
	if size == streamBuf {
		rb := pipeline.NewReadBuffer()
		copy(rb.B, data)
		return rb.B, rb
	}
	nb := make([]byte, size)
	copy(nb, data)
	return nb, nil
}

// handOff returns the fresh buffer a reader goes on with once it has lent
// its own, holding rest (read but not yet returned), and rest's length.
func handOff(rest []byte) (*pipeline.ReadBuffer, int) {
	rb := pipeline.NewReadBuffer()
	return rb, copy(rb.B, rest)
}
