package main

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ternlog/tern/client"
	"github.com/ternlog/tern/internal/ternproto"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/framing"
)

// floodStats are counted while flooding.
type floodStats struct {
	sent, bytes         atomic.Int64 // good messages handed to the client, payload bytes
	corrupt, corruptAck atomic.Int64 // corrupt messages sent, and acknowledged (dead-lettered there)
	oversize, refused   atomic.Int64 // oversized frames sent, and refused by the router
	errors              atomic.Int64 // failures of the raw connection
	lastErr             atomic.Value
}

// cmdFlood is a load generator in the spirit of heka-flood: it sends
// messages with the client library at a rate, with a size distribution,
// and mixes in corrupt and oversized frames to exercise the router.
func cmdFlood(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("flood")
	addr := fs.String("addr", "127.0.0.1:5150", "send to the native tcp input at `HOST:PORT`")
	rate := fs.Int("rate", 0, "send `N` messages per second; 0 sends as fast as the router acknowledges")
	duration := fs.Duration("duration", 10*time.Second, "send for `DURATION`")
	count := fs.Int64("count", 0, "stop after `N` messages (0: no limit)")
	size := fs.Int("size", 300, "payload `BYTES` (the mean with -size-dist exponential)")
	sizeMax := fs.Int("size-max", 0, "largest payload in `BYTES` with -size-dist uniform or exponential (default 4 x -size)")
	sizeDist := fs.String("size-dist", "fixed", "draw payload sizes from `DIST`: fixed, uniform (between -size and -size-max) or exponential")
	corrupt := fs.Float64("corrupt", 0, "`PERCENT` of messages sent as corrupt frames")
	oversize := fs.Float64("oversize", 0, "`PERCENT` of messages sent as frames over the router's limit")
	typ := fs.String("type", "flood", "message `TYPE`")
	seed := fs.Uint64("seed", 1, "random `SEED` (sizes, corruption)")
	quiet := fs.Bool("q", false, "no progress line")
	var tf tlsFlags
	tf.register(fs)
	if code, done := parseFlags(fs, "flood", args, stdout, stderr); done {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "flood", fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	if *sizeMax == 0 {
		*sizeMax = 4 * *size
	}
	switch {
	case *size < 0 || *sizeMax < *size:
		fmt.Fprintln(stderr, "tern flood: need 0 <= -size <= -size-max")
		return 2
	case *sizeDist != "fixed" && *sizeDist != "uniform" && *sizeDist != "exponential":
		fmt.Fprintln(stderr, "tern flood: -size-dist must be fixed, uniform or exponential")
		return 2
	case *corrupt < 0 || *oversize < 0 || *corrupt+*oversize > 100:
		fmt.Fprintln(stderr, "tern flood: -corrupt and -oversize are percentages adding up to at most 100")
		return 2
	}
	tlsCfg, err := tf.config()
	if err != nil {
		fmt.Fprintf(stderr, "tern flood: %v\n", err)
		return 2
	}
	opts := []client.Option{client.WithName("tern-flood"), client.WithMaxMessage(*sizeMax + 64<<10)}
	if tlsCfg != nil {
		opts = append(opts, client.WithTLS(tlsCfg))
	}
	c, err := client.Dial(*addr, opts...)
	if err != nil {
		fmt.Fprintf(stderr, "tern flood: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var st floodStats
	bad := newBadSender(*addr, tlsCfg, &st)
	defer bad.close()

	r := rand.New(rand.NewPCG(*seed, *seed^0x9e3779b97f4a7c15))
	payload := make([]byte, *sizeMax)
	for i := range payload {
		payload[i] = 'a' + byte(i%26)
	}
	nextSize := func() int {
		switch *sizeDist {
		case "uniform":
			return *size + r.IntN(*sizeMax-*size+1)
		case "exponential":
			return min(int(r.ExpFloat64()*float64(*size)), *sizeMax)
		}
		return *size
	}
	m := pipeline.NewMessage()
	m.Type, m.Logger, m.Severity = *typ, "tern-flood", pipeline.SeverityInfo
	m.AddInt("seq", 0)

	start := time.Now()
	progressDone := make(chan struct{})
	var progress sync.WaitGroup
	if !*quiet {
		progress.Go(func() { floodProgress(stderr, c, &st, start, progressDone) })
	}
	var sendErr error
	for n := int64(0); ; n++ {
		if (*count > 0 && n >= *count) || time.Since(start) >= *duration || ctx.Err() != nil {
			break
		}
		if *rate > 0 {
			due := start.Add(time.Duration(float64(n) / float64(*rate) * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
		}
		p := r.Float64() * 100
		switch {
		case p < *corrupt:
			bad.corrupt(r)
			continue
		case p < *corrupt+*oversize:
			bad.oversize()
			continue
		}
		sz := nextSize()
		m.Payload = string(payload[:sz])
		m.Fields[0].SetValue(0, pipeline.IntValue(st.sent.Load()))
		if err := c.Send(ctx, m); err != nil {
			sendErr = err
			break
		}
		st.sent.Add(1)
		st.bytes.Add(int64(sz))
	}
	sendTime := time.Since(start)
	fctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	flushErr := c.Close(fctx)
	total := time.Since(start)
	close(progressDone)
	progress.Wait()
	bad.close()

	cs := c.Stats()
	fmt.Fprintf(stdout, "sent %d messages (%.1f MiB of payload) in %.2fs: %.0f msg/s, %.2f MiB/s\n",
		st.sent.Load(), float64(st.bytes.Load())/(1<<20), sendTime.Seconds(),
		float64(st.sent.Load())/sendTime.Seconds(), float64(st.bytes.Load())/(1<<20)/sendTime.Seconds())
	fmt.Fprintf(stdout, "acknowledged %d of %d after %.2fs (%.0f msg/s end to end), resent batches %d, connection errors %d\n",
		cs.Acked, st.sent.Load(), total.Seconds(), float64(cs.Acked)/total.Seconds(), cs.Resent, cs.Errors)
	if st.corrupt.Load()+st.oversize.Load() > 0 {
		fmt.Fprintf(stdout, "corrupt frames %d (acknowledged %d), oversized frames %d (refused %d), raw connection errors %d\n",
			st.corrupt.Load(), st.corruptAck.Load(), st.oversize.Load(), st.refused.Load(), st.errors.Load())
	}
	code := 0
	for _, err := range []error{sendErr, flushErr} {
		if err != nil {
			fmt.Fprintf(stderr, "tern flood: %v\n", err)
			code = 1
		}
	}
	if e, ok := st.lastErr.Load().(error); ok && e != nil {
		fmt.Fprintf(stderr, "tern flood: last raw connection error: %v\n", e)
	}
	return code
}

// floodProgress writes one line a second until done.
func floodProgress(w io.Writer, c *client.Client, st *floodStats, start time.Time, done chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var lastSent, lastBytes int64
	last := start
	for {
		select {
		case <-done:
			fmt.Fprintln(w)
			return
		case now := <-t.C:
			sent, bytes := st.sent.Load(), st.bytes.Load()
			dt := now.Sub(last).Seconds()
			cs := c.Stats()
			fmt.Fprintf(w, "\r%6.1fs  sent %d  acked %d  %.0f msg/s  %.2f MiB/s  buffered %d  errors %d   ",
				now.Sub(start).Seconds(), sent, cs.Acked, float64(sent-lastSent)/dt,
				float64(bytes-lastBytes)/(1<<20)/dt, cs.Buffered, cs.Errors+st.errors.Load())
			lastSent, lastBytes, last = sent, bytes, now
		}
	}
}

// badSender sends corrupt and oversized frames on a connection of its own
// (the router closes a connection after an oversized frame).
type badSender struct {
	addr string
	tls  *tls.Config
	st   *floodStats
	conn *ternproto.Conn
	seq  uint64
}

func newBadSender(addr string, tlsCfg *tls.Config, st *floodStats) *badSender {
	return &badSender{addr: addr, tls: tlsCfg, st: st}
}

func (b *badSender) dial() bool {
	if b.conn != nil {
		return true
	}
	c, err := ternproto.Dial(context.Background(), b.addr, ternproto.DialOptions{TLS: b.tls, Timeout: 5 * time.Second, Name: "tern-flood/bad"})
	if err != nil {
		b.fail(err)
		return false
	}
	b.conn = c
	return true
}

func (b *badSender) fail(err error) {
	b.st.errors.Add(1)
	b.st.lastErr.Store(err)
	if b.conn != nil {
		_ = b.conn.Close()
		b.conn = nil
	}
}

// corrupt sends a batch whose message is random bytes, and waits for its
// acknowledgement: the router must turn it into a dead letter.
func (b *badSender) corrupt(r *rand.Rand) {
	if !b.dial() {
		return
	}
	junk := make([]byte, 16+r.IntN(256))
	for i := range junk {
		junk[i] = byte(r.Uint32())
	}
	junk[0] = 0xc1 // never used by msgpack: never a valid message
	b.seq++
	var w ternproto.BatchWriter
	w.Begin(nil, b.seq)
	w.AddFrame(framing.AppendFrame(nil, framing.FrameMessage, junk))
	b.st.corrupt.Add(1)
	_ = b.conn.SetDeadline(time.Now().Add(10 * time.Second))
	if err := b.conn.Write(w.Finish()); err != nil {
		b.fail(err)
		return
	}
	if err := b.conn.Flush(); err != nil {
		b.fail(err)
		return
	}
	a, err := b.conn.ReadAck()
	if err != nil {
		b.fail(err)
		return
	}
	if a.Seq == b.seq && a.Status == ternproto.StatusOK {
		b.st.corruptAck.Add(1)
	}
}

// oversize declares a batch one byte over the router's limit; the router
// must refuse it (an error frame) and close the connection.
func (b *badSender) oversize() {
	if !b.dial() {
		return
	}
	hdr := []byte{framing.FrameMagic, ternproto.KindBatch, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(hdr[2:], uint32(min(b.conn.MaxBatch()+1, math.MaxUint32)))
	b.st.oversize.Add(1)
	_ = b.conn.SetDeadline(time.Now().Add(10 * time.Second))
	err := b.conn.Write(hdr)
	if err == nil {
		err = b.conn.Flush()
	}
	if err != nil {
		b.fail(err)
		return
	}
	_, err = b.conn.ReadAck()
	if ternproto.IsPeerError(err) {
		b.st.refused.Add(1)
		_ = b.conn.Close()
		b.conn = nil
		return
	}
	if err == nil {
		err = fmt.Errorf("the router took an oversized frame")
	}
	b.fail(err)
}

func (b *badSender) close() {
	if b.conn != nil {
		_ = b.conn.Close()
		b.conn = nil
	}
}
