package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestJSONRef(t *testing.T) {
	var j jsonRef
	for _, in := range []string{
		`{}`,
		` { "a" : 1 , "b":[ ] ,"c":{}} `,
		`{"s":"q\"b\\s\/ \b\f\n\r\t \u00e9 \ud83d\ude00 日本","n":-12,"f":-0.5e-3,"e":1E3,"big":12345678901234567890}`,
		`{"x":[1,2.5,"three",[true,false,null],{"k":"v"}],"nested":{"a":{"b":{"c":1}}}}`,
		`{"lone":"\ud800x","ctl":"\u0001\u001f","dup":1,"dup":2}`,
	} {
		out, err := j.transform(nil, []byte(in))
		require.NoError(t, err, in)
		require.True(t, strings.HasSuffix(string(out), "}\n"), "%s", out)
		assert.Equal(t, jsonTokens(t, []byte(in)), jsonTokens(t, out), "%s -> %s", in, out)
	}
	out, _ := j.transform(nil, []byte(`{"f":2.0,"i":2}`))
	assert.Equal(t, `{"f":2.0,"i":2}`+"\n", string(out), "a double stays a double")
	out, _ = j.transform(nil, []byte("{\"bad\":\"a\xffb\"}"))
	assert.Equal(t, `{"bad":"a\ufffdb"}`+"\n", string(out), "invalid UTF-8 is replaced")

	for _, in := range []string{``, `[1]`, `{"a":}`, `{"a":1,}`, `{"a":tru}`, `{"a":"x\q"}`, `{"a":1} x`,
		`{"a":"\u12"}`, `{"a":1x}`, `{"a":+1}`, `{a:1}`, `{"a":"b`, "{\"a\":\"\x01\"}"} {
		out, err := j.transform([]byte("kept"), []byte(in))
		assert.Error(t, err, in)
		assert.Equal(t, "kept", string(out), "%s: no partial output", in)
	}
}

func TestSyslogRef(t *testing.T) {
	var s syslogRef
	for in, want := range map[string]string{
		`<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application"][examplePriority@32473 class="high"] hello`: `{"timestamp":"2003-10-11T22:14:15.003Z","host":"mymachine.example.com","severity":5,"message":"hello","facility":20,"appname":"evntslog","msgid":"ID47","sd":{"exampleSDID@32473":{"iut":"3","eventSource":"Application"},"examplePriority@32473":{"class":"high"}}}`,
		`<13>1 2025-03-11T10:00:00.000100+01:00 h app 42 - - ` + "\xef\xbb\xbf" + `"quoted" \ msg`:                                                                              `{"timestamp":"2025-03-11T09:00:00.0001Z","host":"h","severity":5,"message":"\"quoted\" \\ msg","facility":1,"appname":"app","procid":"42"}`,
		`<0>1 2025-03-11T09:00:00Z - - - - [a x="q\"b\\s\]e\n"]`:                                                                                                                `{"timestamp":"2025-03-11T09:00:00Z","severity":0,"facility":0,"sd":{"a":{"x":"q\"b\\s]e\\n"}}}`,
		`<191>12 2025-03-11T09:00:00Z h a p m [empty]`:                                                                                                                          `{"timestamp":"2025-03-11T09:00:00Z","host":"h","severity":7,"facility":23,"appname":"a","procid":"p","msgid":"m","sd":{"empty":{}}}`,
	} {
		out, err := s.transform(nil, []byte(in))
		require.NoError(t, err, in)
		assert.Equal(t, want+"\n", string(out), in)
	}
	for _, in := range []string{``, `no pri`, `<192>1 2025-03-11T09:00:00Z h a p m -`, `<1>0 2025-03-11T09:00:00Z h a p m -`,
		`<1>1 yesterday h a p m -`, `<1>1 2025-03-11T09:00:00Z h a p m`, `<1>1 2025-03-11T09:00:00Z h a p m [a x="1"`,
		`<1>1 2025-03-11T09:00:00Z h a p m [a x=1]`, `<1>1 2025-03-11T09:00:00Z h a p m -x`} {
		out, err := s.transform([]byte("kept"), []byte(in))
		assert.Error(t, err, in)
		assert.Equal(t, "kept", string(out), "%s: no partial output", in)
	}
}

// TestSinkServe: lines longer than the read buffer, CRLF and a last line
// without a newline are written whole; lines that do not parse are counted
// and left out.
func TestSinkServe(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out")
	f, err := os.Create(path)
	require.NoError(t, err)
	s := &sink{mode: sinkModes["json"], f: f, conns: map[net.Conn]bool{}}
	client, server := net.Pipe()
	s.wg.Add(1)
	go s.serve(server)
	long := `{"m":"` + strings.Repeat("x", 200_000) + `"}`
	_, err = client.Write([]byte(long + "\n{\"a\":1}\r\nnot json\n{\"b\":2}"))
	require.NoError(t, err)
	client.Close()
	s.wg.Wait()
	require.NoError(t, f.Close())
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, long+"\n"+`{"a":1}`+"\n"+`{"b":2}`+"\n", string(b))
	assert.Equal(t, int64(1), s.bad.Load())
}

// BenchmarkTransforms: the references' per-line cost on generated lines.
func BenchmarkTransforms(b *testing.B) {
	for _, w := range workloads {
		b.Run(w.name, func(b *testing.B) {
			g, err := newGenerator(genConfig{Mode: w.gen, N: 1000, Seed: 1, Rate: 10_000})
			require.NoError(b, err)
			var in [][]byte
			for i := range 1000 {
				in = append(in, g.line(nil, i))
			}
			tr := sinkModes[w.sink]()
			var out []byte
			b.SetBytes(int64(len(in[0])))
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if out, err = tr(out[:0], in[i%len(in)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
