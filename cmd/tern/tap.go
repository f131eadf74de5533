package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cmdTap streams, from a running tern's metrics address, the messages its
// router routes (or that one filter or output receives) as canonical JSON
// lines. The tap itself lives in the engine (pipeline/engine/tap.go): it
// matches, samples and drops there, never slowing the pipeline, and this
// verb prints what arrives and reports the drops on stderr.
func cmdTap(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("tap")
	addr := fs.String("addr", "127.0.0.1:9514", "the metrics `ADDRESS`: host:port, or an http(s):// URL")
	expr := fs.String("match", "", "stream only the messages the matcher `EXPR` accepts (default: every message)")
	plugin := fs.String("plugin", "", "stream what the filter or output `NAME` (id or name) receives instead of what the router routes")
	n := fs.Int("n", 0, "stop after `N` messages (0: no limit)")
	rate := fs.Float64("rate", 1000, "stream at most `R` messages per second (the rest are skipped, and counted)")
	buffer := fs.Int("buffer", 1024, "`N` messages the router keeps for this reader when it falls behind (1-65536)")
	tokenFile := fs.String("token-file", "", "read the bearer token from `FILE` (default: $TERN_METRICS_TOKEN)")
	timeout := fs.Duration("timeout", 10*time.Second, "wait at most `DURATION` for the connection and the answer")
	var tf tlsFlags
	tf.register(fs)
	if code, done := parseFlags(fs, "tap", args, stdout, stderr); done {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "tap", fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	if *n < 0 || !(*rate > 0) || *buffer < 1 {
		return usageError(stderr, "tap", "-n must be 0 or more, -rate above 0, -buffer at least 1")
	}
	token := os.Getenv("TERN_METRICS_TOKEN")
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			fmt.Fprintf(stderr, "tern tap: %v\n", err)
			return 2
		}
		token = strings.TrimSpace(string(b))
	}
	tlsCfg, err := tf.config()
	if err != nil {
		fmt.Fprintf(stderr, "tern tap: %v\n", err)
		return 2
	}
	base := *addr
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		scheme := "http"
		if tlsCfg != nil {
			scheme = "https"
		}
		base = scheme + "://" + base
	}
	q := url.Values{}
	if *expr != "" {
		q.Set("match", *expr)
	}
	if *plugin != "" {
		q.Set("plugin", *plugin)
	}
	q.Set("rate", strconv.FormatFloat(*rate, 'g', -1, 64))
	q.Set("n", strconv.Itoa(*n))
	q.Set("buffer", strconv.Itoa(*buffer))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	req, err := http.NewRequestWithContext(ctx, "GET", strings.TrimRight(base, "/")+"/tap?"+q.Encode(), nil)
	if err != nil {
		fmt.Fprintf(stderr, "tern tap: -addr: %v\n", err)
		return 2
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig:       tlsCfg,
		DialContext:           (&net.Dialer{Timeout: *timeout}).DialContext,
		TLSHandshakeTimeout:   *timeout,
		ResponseHeaderTimeout: *timeout,
	}}
	defer client.CloseIdleConnections()
	res, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "tern tap: %v\n", err)
		return 1
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(res.Body, 4<<10))
		fmt.Fprintf(stderr, "tern tap: %s: %s\n", res.Status, strings.TrimSpace(string(body)))
		if res.StatusCode == http.StatusUnauthorized {
			fmt.Fprintln(stderr, "tern tap: this router wants a token: -token-file or TERN_METRICS_TOKEN")
		}
		return 1
	}
	return readTap(ctx, res.Body, stdout, stderr, req.URL.Host, *n)
}

// tapState is a {"tap":…} line of the stream (pipeline/engine/tapserve.go).
type tapState struct {
	Plugin  *string  `json:"plugin"`
	Match   *string  `json:"match"`
	Rate    float64  `json:"rate"`
	Matched *float64 `json:"matched"`
	Skipped float64  `json:"skipped"`
	Dropped float64  `json:"dropped"`
	Sent    float64  `json:"sent"`
	End     string   `json:"end"`
}

func readTap(ctx context.Context, body io.Reader, stdout, stderr io.Writer, host string, n int) int {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 256<<20)
	got := 0
	var last tapState
	reported := 0.0
	summary := func() {
		line := fmt.Sprintf("tap: %d messages", got)
		if last.Matched != nil {
			line += fmt.Sprintf(" of %.0f matched; %.0f skipped over -rate, %.0f dropped (subscriber too slow)", *last.Matched, last.Skipped, last.Dropped)
		}
		fmt.Fprintln(stderr, line)
	}
	var buf []byte
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte(`{"tap":`)) {
			// One write per message, so a reader sees each as it comes.
			got++
			buf = append(append(buf[:0], line...), '\n')
			if _, err := stdout.Write(buf); err != nil {
				return 0 // stdout closed (| head): done
			}
			continue
		}
		var st struct {
			Tap tapState `json:"tap"`
		}
		if err := json.Unmarshal(line, &st); err != nil {
			fmt.Fprintf(stderr, "tern tap: a line the router sent does not parse: %v\n", err)
			return 1
		}
		s := st.Tap
		if s.Plugin != nil {
			what := "every message the router routes"
			if *s.Plugin != "" {
				what = "what " + *s.Plugin + " receives"
			}
			if s.Match != nil && *s.Match != "" {
				what += " matching " + *s.Match
			}
			fmt.Fprintf(stderr, "tap: connected to %s: %s, at most %g/s\n", host, what, s.Rate)
			continue
		}
		last = s
		if s.Dropped > reported {
			fmt.Fprintf(stderr, "tap: %.0f messages dropped (subscriber too slow)\n", s.Dropped-reported)
			reported = s.Dropped
		}
		switch s.End {
		case "n":
			summary()
			return 0
		case "stopped":
			fmt.Fprintln(stderr, "tap: the router stopped or reloaded")
			summary()
			return 1
		}
	}
	if ctx.Err() != nil { // Ctrl-C
		summary()
		return 0
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(stderr, "tern tap: %v\n", err)
	} else {
		fmt.Fprintln(stderr, "tern tap: the router closed the stream")
	}
	summary()
	return 1
}
