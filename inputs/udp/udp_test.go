package udp_test

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ternlog/tern/inputs/udp"
	"github.com/ternlog/tern/internal/testutil/nettest"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func start(t *testing.T, mod func(*udp.Config)) (string, *pipelinetest.Emitter, *pipelinetest.Telemetry) {
	t.Helper()
	cfg := udp.DefaultConfig()
	cfg.Address = "127.0.0.1:0"
	if mod != nil {
		mod(&cfg)
	}
	require.NoError(t, cfg.Validate())
	set := pipelinetest.Settings(t, "inputs.udp")
	in, err := udp.New(set, cfg)
	require.NoError(t, err)
	em := &pipelinetest.Emitter{}
	return nettest.RunInput(t, in, em, in.Addr), em, set.Telemetry.(*pipelinetest.Telemetry)
}

// One datagram is one record, bytes untouched (R23), the sender recorded in
// Source; a datagram over the cap is dropped whole and counted.
func TestDatagrams(t *testing.T) {
	addr, em, tel := start(t, func(c *udp.Config) { c.MaxDatagramBytes = 100; c.ReceiveBufferBytes = 1 << 20 })
	c, err := net.Dial("udp", addr)
	require.NoError(t, err)
	defer c.Close()
	msgs := []string{"plain", "two\nlines in one datagram", "\xff\xfe invalid \x00 nul \xc0\xaf", strings.Repeat("x", 101), strings.Repeat("y", 100)}
	for _, m := range msgs {
		_, err := c.Write([]byte(m))
		require.NoError(t, err)
	}
	require.True(t, em.WaitFor(4, 10*time.Second), "got %q", em.Lines())
	assert.Equal(t, []string{msgs[0], msgs[1], msgs[2], msgs[4]}, em.Lines())
	assert.Equal(t, "udp://"+c.LocalAddr().String(), em.Records[0].Source)
	require.Eventually(t, func() bool { return tel.Dropped("oversize") == 1 }, 5*time.Second, 10*time.Millisecond)
}

func TestManySenders(t *testing.T) {
	addr, em, _ := start(t, nil)
	const senders, bursts, burst = 4, 10, 20
	var conns []net.Conn
	for range senders {
		c, err := net.Dial("udp", addr)
		require.NoError(t, err)
		defer c.Close()
		conns = append(conns, c)
	}
	// Bursts small enough for the default socket buffer of a loaded box:
	// UDP loss under overload is the kernel's, not what this test checks.
	total := 0
	for b := range bursts {
		for i, c := range conns {
			for j := range burst {
				_, err := c.Write([]byte(strings.Repeat("m", 10+i+j+b)))
				require.NoError(t, err)
			}
			total += burst
		}
		require.True(t, em.WaitFor(total, 10*time.Second), "got %d of %d", len(em.Lines()), total)
	}
	sources := map[string]bool{}
	for _, r := range em.Records {
		sources[r.Source] = true
	}
	assert.Len(t, sources, senders)
	assert.Less(t, em.Batches, total, "datagrams that wait together go on together")
}

func TestValidate(t *testing.T) {
	cfg := udp.DefaultConfig()
	cfg.MaxDatagramBytes = 70000
	cfg.BatchMaxCount = 0
	err := cfg.Validate()
	require.Error(t, err)
	for _, want := range []string{"address: required", "max_datagram_bytes:", "batch_max_count:"} {
		assert.Contains(t, err.Error(), want)
	}
}

// TestGolden sends each line of testdata/<case>/send.txt as one datagram;
// expected.txt lists the records.
func TestGolden(t *testing.T) {
	for _, c := range pipelinetest.Cases(t, "") {
		t.Run(c.Name, func(t *testing.T) {
			cfg := pipelinetest.ConfigFor(t, udp.Factory(), c).(*udp.Config)
			addr, em, _ := start(t, func(x *udp.Config) { *x = *cfg; x.Address = "127.0.0.1:0" })
			data, err := os.ReadFile(filepath.Join(c.Dir, "send.txt"))
			require.NoError(t, err)
			conn, err := net.Dial("udp", addr)
			require.NoError(t, err)
			defer conn.Close()
			for _, d := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
				_, err := conn.Write([]byte(d))
				require.NoError(t, err)
			}
			nettest.Quiet(func() int { return len(em.Lines()) }, 300*time.Millisecond, 10*time.Second)
			pipelinetest.Golden(t, filepath.Join(c.Dir, "expected.txt"), nettest.FormatRecords(em.Records))
		})
	}
}
