package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
)

// The plain-Go reference: what a competent Go programmer writes for W1–W3
// without heroics. Lines are read with bufio from the connection,
// transformed, gathered in a buffer and written to the file once per
// socket read (or 64 KiB), never once per line. The transforms decode and
// encode values as tern does (strings unescaped and escaped again, numbers
// parsed), so the work matches; they reuse their buffers, and their parsers
// are the plain recursive kind.

// transform appends the output for one line (without its newline) to out.
type transform func(out, line []byte) ([]byte, error)

var sinkModes = map[string]func() transform{
	"raw": func() transform {
		return func(out, line []byte) ([]byte, error) { return append(append(out, line...), '\n'), nil }
	},
	"json":        func() transform { var j jsonRef; return j.transform },
	"syslog2json": func() transform { var s syslogRef; return s.transform },
}

// workload pairs a tern config with the reference that does the same work.
type workload struct {
	name, gen, sink, config string
}

var workloads = []workload{
	{"w1", "syslog", "raw", "w1.toml"},         // TCP lines -> file
	{"w2", "json", "json", "w2.toml"},          // TCP JSON -> parse -> JSON -> file
	{"w3", "syslog", "syslog2json", "w3.toml"}, // RFC 5424 -> parse -> JSON -> file
}

const sinkBuf = 64 << 10

// sink writes what its connections send to one file.
type sink struct {
	mode   func() transform
	mu     sync.Mutex // serialises writes to f
	f      *os.File
	bad    atomic.Int64 // lines the transform refused
	wg     sync.WaitGroup
	connMu sync.Mutex
	conns  map[net.Conn]bool
}

func cmdSink(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("sink", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: ternbench sink -mode raw|json|syslog2json -addr HOST:PORT -out FILE

The plain-Go reference for W1–W3: TCP lines in, one line out per line in,
appended to -out. raw writes lines as received (W1); json parses each JSON
object and writes it back with the same keys and values (W2); syslog2json
parses RFC 5424 and writes the object bench/w3.toml writes (W3). Stops on
SIGTERM or SIGINT once what it has read is written.

`)
		fs.PrintDefaults()
	}
	mode := fs.String("mode", "raw", "raw, json or syslog2json")
	addr := fs.String("addr", "127.0.0.1:5140", "listen address (loopback)")
	out := fs.String("out", "", "output file (appended)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	newTransform, ok := sinkModes[*mode]
	if !ok || *out == "" {
		fmt.Fprintln(stderr, "ternbench sink: need -out and -mode raw, json or syslog2json")
		return 2
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	f, err := os.OpenFile(*out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		fmt.Fprintln(stderr, "ternbench sink:", err)
		return 1
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(stderr, "ternbench sink:", err)
		return 1
	}
	s := &sink{mode: newTransform, f: f, conns: map[net.Conn]bool{}}
	go s.accept(ln)
	<-sigs
	ln.Close()
	s.closeConns()
	s.wg.Wait()
	if n := s.bad.Load(); n > 0 {
		fmt.Fprintf(stderr, "ternbench sink: %d lines could not be parsed\n", n)
	}
	if err := f.Close(); err != nil {
		fmt.Fprintln(stderr, "ternbench sink:", err)
		return 1
	}
	return 0
}

func (s *sink) accept(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		s.connMu.Lock()
		s.conns[c] = true
		s.wg.Add(1)
		s.connMu.Unlock()
		go s.serve(c)
	}
}

func (s *sink) closeConns() {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}

// serve reads lines until the connection ends, writing its output after
// each socket read.
func (s *sink) serve(c net.Conn) {
	defer func() {
		s.connMu.Lock()
		delete(s.conns, c)
		s.connMu.Unlock()
		c.Close()
		s.wg.Done()
	}()
	tr := s.mode()
	r := bufio.NewReaderSize(c, sinkBuf)
	out := make([]byte, 0, 2*sinkBuf)
	var long []byte // a line longer than the reader's buffer
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long, line...)
			continue
		}
		if long != nil {
			line, long = append(long, line...), nil
		}
		if n := len(line); n > 0 && line[n-1] == '\n' {
			line = line[:n-1]
			if n > 1 && line[n-2] == '\r' {
				line = line[:n-2]
			}
		}
		if len(line) > 0 {
			var terr error
			if out, terr = tr(out, line); terr != nil {
				s.bad.Add(1)
			}
		}
		if len(out) > 0 && (err != nil || len(out) >= sinkBuf || r.Buffered() == 0) {
			s.write(out)
			out = out[:0]
		}
		if err != nil {
			return
		}
	}
}

func (s *sink) write(p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.f.Write(p); err != nil {
		fmt.Fprintln(os.Stderr, "ternbench sink:", err)
		os.Exit(1)
	}
}
