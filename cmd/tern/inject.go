package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ternlog/tern/client"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/codec"
	"github.com/ternlog/tern/pipeline/framing"
)

// tlsFlags are the TLS options of the verbs that talk to a running tern.
type tlsFlags struct {
	on, insecureSkipVerify bool
	ca, cert, key, name    string
}

func (f *tlsFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.on, "tls", false, "connect with TLS (verified against the system roots unless -ca)")
	fs.StringVar(&f.ca, "ca", "", "PEM `FILE` of the CAs to verify the router with (implies -tls)")
	fs.StringVar(&f.cert, "cert", "", "PEM client certificate `FILE` for mutual TLS (implies -tls)")
	fs.StringVar(&f.key, "key", "", "PEM key `FILE` of -cert")
	fs.StringVar(&f.name, "server-name", "", "`NAME` to verify in the router's certificate (default: the address's host)")
	fs.BoolVar(&f.insecureSkipVerify, "insecure", false, "accept any router certificate (tests only)")
}

// config returns the TLS config, nil without TLS.
func (f *tlsFlags) config() (*tls.Config, error) {
	if !f.on && f.ca == "" && f.cert == "" && !f.insecureSkipVerify {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.name, InsecureSkipVerify: f.insecureSkipVerify}
	if f.ca != "" {
		pem, err := os.ReadFile(f.ca)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", f.ca)
		}
		cfg.RootCAs = pool
	}
	if f.cert != "" || f.key != "" {
		pair, err := tls.LoadX509KeyPair(f.cert, f.key)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// fieldFlags collects repeated -f name=value flags.
type fieldFlags []string

func (f *fieldFlags) String() string { return strings.Join(*f, ",") }
func (f *fieldFlags) Set(v string) error {
	if !strings.Contains(v, "=") {
		return errors.New("want name=value")
	}
	*f = append(*f, v)
	return nil
}

// cmdInject sends one message to a running tern over the native protocol
// and waits for its acknowledgement.
func cmdInject(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("inject")
	addr := fs.String("addr", "127.0.0.1:5150", "send to the native tcp input at `HOST:PORT`")
	typ := fs.String("type", "", "message `TYPE`")
	payload := fs.String("payload", "", "message `PAYLOAD`")
	logger := fs.String("logger", "tern-inject", "message `LOGGER`")
	hostname := fs.String("hostname", "", "message `HOSTNAME` (default: this host)")
	severity := fs.Int("severity", int(pipeline.DefaultSeverity), "message `SEVERITY` (0..7)")
	jsonMsg := fs.String("json", "", "the message in canonical `JSON`; - reads it from stdin")
	timeout := fs.Duration("timeout", 10*time.Second, "wait at most `DURATION` for the connection and the acknowledgement")
	var fields fieldFlags
	fs.Var(&fields, "f", "add a string field `name=value` (repeatable)")
	var tf tlsFlags
	tf.register(fs)
	if code, done := parseFlags(fs, "inject", args, stdout, stderr); done {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "inject", fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	m := pipeline.NewMessage()
	if *jsonMsg != "" {
		src := []byte(*jsonMsg)
		if *jsonMsg == "-" {
			var err error
			if src, err = io.ReadAll(io.LimitReader(stdin, framing.DefaultMaxFrame+1)); err != nil {
				fmt.Fprintf(stderr, "tern inject: %v\n", err)
				return 1
			}
		}
		if err := codec.DecodeJSON([]byte(strings.TrimSpace(string(src))), m, nil); err != nil {
			fmt.Fprintf(stderr, "tern inject: -json: %v\n", err)
			return 2
		}
	} else {
		if *severity < 0 || *severity > 7 {
			fmt.Fprintln(stderr, "tern inject: -severity must be 0..7")
			return 2
		}
		m.Type, m.Payload, m.Logger, m.Hostname, m.Severity = *typ, *payload, *logger, *hostname, int32(*severity)
		for _, f := range fields {
			name, value, _ := strings.Cut(f, "=")
			m.AddString(name, value)
		}
	}
	if m.UUID == ([16]byte{}) {
		m.UUID = pipeline.NewUUID()
	}
	tlsCfg, err := tf.config()
	if err != nil {
		fmt.Fprintf(stderr, "tern inject: %v\n", err)
		return 2
	}
	opts := []client.Option{client.WithDialTimeout(*timeout), client.WithName("tern-inject"), client.WithBatch(1<<20, 1, time.Millisecond)}
	if tlsCfg != nil {
		opts = append(opts, client.WithTLS(tlsCfg))
	}
	c, err := client.Dial(*addr, opts...)
	if err != nil {
		fmt.Fprintf(stderr, "tern inject: %v\n", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := c.Send(ctx, m); err != nil {
		_ = c.Close(ctx)
		fmt.Fprintf(stderr, "tern inject: %v\n", err)
		return 1
	}
	if err := c.Close(ctx); err != nil {
		fmt.Fprintf(stderr, "tern inject: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "acknowledged %s\n", m.UUIDString())
	return 0
}
