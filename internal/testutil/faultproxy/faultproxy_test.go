package faultproxy

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echo serves lines back.
func echo(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(t *testing.T, c net.Conn, r *bufio.Reader, msg string, within time.Duration) (string, error) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(within))
	if _, err := c.Write([]byte(msg + "\n")); err != nil {
		return "", err
	}
	return r.ReadString('\n')
}

func TestModes(t *testing.T) {
	p, err := New(echo(t))
	require.NoError(t, err)
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer c.Close()
	r := bufio.NewReader(c)
	got, err := roundTrip(t, c, r, "hello", 2*time.Second)
	require.NoError(t, err)
	assert.Equal(t, "hello\n", got)

	p.SetMode(Pause)
	_, err = roundTrip(t, c, r, "paused", 100*time.Millisecond)
	assert.Error(t, err, "nothing comes back while paused")
	p.SetMode(Pass)
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	got, err = r.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "paused\n", got, "held, not lost")

	p.SetLatency(50 * time.Millisecond)
	t0 := time.Now()
	_, err = roundTrip(t, c, r, "slow", 2*time.Second)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(t0), 100*time.Millisecond)
	p.SetLatency(0)

	p.SetMode(Reset)
	_, err = roundTrip(t, c, r, "x", 2*time.Second)
	assert.Error(t, err, "reset")

	p.SetMode(Blackhole)
	b, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err, "a blackhole accepts")
	defer b.Close()
	br := bufio.NewReader(b)
	_, err = roundTrip(t, b, br, "void", 100*time.Millisecond)
	assert.Error(t, err)
	p.SetMode(Pass)
	_ = b.SetDeadline(time.Now().Add(2 * time.Second))
	got, err = br.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "void\n", got)
}
