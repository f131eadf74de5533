package netio

import (
	"context"
	"net"
	"net/netip"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/ternlog/tern/pipeline"
)

// DatagramOpts configure ReadDatagrams.
type DatagramOpts struct {
	// MaxSize is the largest datagram kept; larger ones are dropped and
	// counted with reason "oversize" (never truncated).
	MaxSize int
	// Batch is how many datagrams one system call may return (recvmmsg).
	Batch int
	// Scheme prefixes Record.Source ("udp" gives "udp://10.0.0.5:514").
	Scheme string
	// AddrField, when set, adds the sender's IP as a string field of that
	// name to every record (Record.Fields).
	AddrField string
}

// ReadDatagrams reads datagrams from pc, one record each, and emits each
// system call's worth as one batch, until ctx ends (then it closes pc and
// returns nil) or a read fails.
func ReadDatagrams(ctx context.Context, pc net.PacketConn, opts DatagramOpts, out pipeline.Emitter, set pipeline.Settings) error {
	if opts.Batch < 1 {
		opts.Batch = 64
	}
	if opts.Scheme == "" {
		opts.Scheme = "udp"
	}
	stop := context.AfterFunc(ctx, func() { _ = pc.Close() })
	defer stop()

	var read func([]ipv4.Message, int) (int, error)
	if ua, ok := pc.LocalAddr().(*net.UDPAddr); ok && ua.IP.To4() != nil {
		read = ipv4.NewPacketConn(pc).ReadBatch
	} else {
		read = ipv6.NewPacketConn(pc).ReadBatch
	}
	// One buffer per slot, one byte over the cap: a datagram that fills it
	// was larger than the cap (the kernel truncates it silently).
	msgs := make([]ipv4.Message, opts.Batch)
	bufs := make([][]byte, opts.Batch)
	for i := range msgs {
		bufs[i] = make([]byte, opts.MaxSize+1)
		msgs[i].Buffers = [][]byte{bufs[i]}
	}
	recs := make([]pipeline.Record, 0, opts.Batch)
	srcs := newSourceCache(opts)
	for {
		n, err := read(msgs, 0)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		recs = recs[:0]
		oversize := 0
		for i := range n {
			m := &msgs[i]
			if m.N > opts.MaxSize {
				oversize++
				continue
			}
			rec := srcs.record(m.Addr)
			rec.Data = bufs[i][:m.N]
			recs = append(recs, rec)
		}
		set.Drop("oversize", oversize)
		if len(recs) > 0 {
			if err := out.Emit(ctx, recs, nil); err != nil {
				return nil // stopping
			}
		}
	}
}

// sourceCache remembers the Source string and address field of recent
// senders: most traffic comes from a few hosts, and building both for
// every datagram would allocate twice per record.
type sourceCache struct {
	opts DatagramOpts
	m    map[netip.AddrPort]pipeline.Record
}

func newSourceCache(opts DatagramOpts) *sourceCache {
	return &sourceCache{opts: opts, m: map[netip.AddrPort]pipeline.Record{}}
}

func (s *sourceCache) record(a net.Addr) pipeline.Record {
	ua, ok := a.(*net.UDPAddr)
	if !ok {
		return pipeline.Record{Source: s.opts.Scheme + "://unknown"}
	}
	ap := ua.AddrPort()
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	if r, ok := s.m[ap]; ok {
		return r
	}
	if len(s.m) >= 4096 {
		clear(s.m) // bounded: a spoofed-source flood must not grow it
	}
	r := pipeline.Record{Source: s.opts.Scheme + "://" + ap.String()}
	if s.opts.AddrField != "" {
		r.Fields = []pipeline.Field{pipeline.NewField(s.opts.AddrField, pipeline.TypeString, "", pipeline.StringValue(ap.Addr().String()))}
	}
	s.m[ap] = r
	return r
}

// AddrFields returns the sender-address field for a stream connection, or
// nil when name is empty.
func AddrFields(name string, a net.Addr) []pipeline.Field {
	if name == "" || a == nil {
		return nil
	}
	host := a.String()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return []pipeline.Field{pipeline.NewField(name, pipeline.TypeString, "", pipeline.StringValue(host))}
}

// ListenUDP binds address and applies the receive buffer size (0: the
// system default). A buffer the kernel refuses is logged, not fatal.
func ListenUDP(ctx context.Context, address string, rcvbuf int, set pipeline.Settings) (net.PacketConn, error) {
	var lc net.ListenConfig
	pc, err := lc.ListenPacket(ctx, "udp", address)
	if err != nil {
		return nil, err
	}
	if rcvbuf > 0 {
		if err := pc.(*net.UDPConn).SetReadBuffer(rcvbuf); err != nil && set.Logger != nil {
			set.Logger.Warn("could not set the receive buffer", "bytes", rcvbuf, "err", err)
		}
	}
	return pc, nil
}
