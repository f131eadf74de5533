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

// window is a reader's buffer: the bytes read are buf[:end], those not yet
// returned buf[start:end].
type window struct {
	buf        []byte
	rb         *pipeline.ReadBuffer // buf, once it has grown to a ReadBuffer
	start, end int
}

// Lend hands the reader's buffer over with a batch of records of size
// bytes that it holds, when they fill at least half of it, and goes on with
// a fresh buffer holding what is read but not yet returned. It returns nil,
// keeping the buffer, when the batch is smaller or the buffer is not a
// ReadBuffer. The records must be all those returned since the last read.
func (w *window) Lend(size int) *pipeline.ReadBuffer {
	if w.rb == nil || 2*size < len(w.buf) {
		return nil
	}
	rb := w.rb
	w.rb = pipeline.NewReadBuffer()
	w.end = copy(w.rb.B, w.buf[w.start:w.end])
	w.buf, w.start = w.rb.B, 0
	return rb
}
