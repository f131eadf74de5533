package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/ternlog/tern/internal/testutil/testpki"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/engine"
)

// The README's plugin table lists every registered plugin with its
// factory's Summary (what `tern plugins` prints), and every link in it
// leads to a file that exists.
func TestREADMEListsEveryPlugin(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, p := range pluginTypes(registry()) {
		row := "| " + strings.TrimSuffix(p.kind, "s") + " | [" + p.typ + "](" + p.kind + "/" + p.typ + "/README.md) | " + p.summary + " |"
		if !strings.Contains(readme, row) {
			t.Errorf("README.md: no plugin table row %q", row)
		}
	}
	for _, m := range regexp.MustCompile(`\]\(([^)#]+)\)`).FindAllStringSubmatch(readme, -1) {
		if strings.Contains(m[1], "://") {
			continue
		}
		if _, err := os.Stat(filepath.Join("../..", m[1])); err != nil {
			t.Errorf("README.md links to %s, which does not exist", m[1])
		}
	}
}

// Every TOML example in the READMEs is valid, as tern check sees it.
// Paths in them are relative to the repository root; the files under
// /etc/tern/tls/ that examples name (certificates, keys, token files) are
// made for the test in a temporary directory, so those examples are checked
// whole too. Examples without an input get a stub one; fragments of a table
// (no section header) are skipped.
func TestREADMEConfigExamplesCheck(t *testing.T) {
	const tlsDir = "/etc/tern/tls/"
	tmpTLS := t.TempDir() + "/tls/"
	if err := os.Mkdir(tmpTLS, 0o700); err != nil {
		t.Fatal(err)
	}
	leaf := testpki.NewCA(t, "readme").Issue(t, testpki.Opts{})
	tlsFile := regexp.MustCompile(regexp.QuoteMeta(tlsDir) + `([A-Za-z0-9._-]+)`)
	withTLS := 0
	files := []string{"../../README.md"}
	for _, pattern := range []string{"../../*/*/README.md", "../../*/*/*/README.md"} {
		more, _ := filepath.Glob(pattern)
		files = append(files, more...)
	}
	block := regexp.MustCompile("(?s)```toml\n(.*?)```")
	header, input := regexp.MustCompile(`(?m)^\[`), regexp.MustCompile(`(?m)^\[inputs\.`)
	testsFile := regexp.MustCompile(`(?m)^\[\[test\]\]`)
	reg := registry()
	checked := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, blk := range block.FindAllSubmatch(b, -1) {
			src := blk[1]
			if !header.Match(src) || testsFile.Match(src) {
				continue // a fragment, or a tests file (TestREADMETestsExamples)
			}
			if !input.Match(src) {
				src = append(append([]byte{}, src...), "\n[inputs.readme_stub]\ntype = \"stdin\"\ndecoder = \"payload\"\n"...)
			}
			if names := tlsFile.FindAllSubmatch(src, -1); names != nil {
				for _, n := range names {
					name := string(n[1])
					body := []byte("readme-example-token\n")
					switch filepath.Ext(name) {
					case ".crt", ".pem":
						body = leaf.CertPEM
					case ".key":
						body = leaf.KeyPEM
					}
					testpki.WriteFile(t, tmpTLS+name, body)
				}
				src = bytes.ReplaceAll(src, []byte(tlsDir), []byte(tmpTLS))
				withTLS++
			}
			checked++
			plan, err := config.Parse("../../README.md", src, reg, config.Options{})
			if err == nil {
				var e *engine.Engine
				if e, err = engine.New(plan, reg, engine.Options{NewBuffer: checkBuffer}); err == nil {
					err = e.Check()
				}
			}
			if err != nil {
				t.Errorf("%s, TOML example %d (line numbers count from the block):\n%v", f, i+1, err)
			}
		}
	}
	t.Logf("%d TOML examples in %d READMEs, %d with TLS files", checked, len(files), withTLS)
	// A broken glob or pattern would check nothing and pass.
	if checked < 30 || withTLS < 2 {
		t.Fatalf("only %d TOML examples checked (%d with TLS files): is the scan broken?", checked, withTLS)
	}
}

// The top README's examples of tests files (TOML blocks with [[test]]) are
// valid and pass against plugins.toml.
func TestREADMETestsExamples(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	n := 0
	for _, blk := range regexp.MustCompile("(?s)```toml\n(.*?)```").FindAllSubmatch(b, -1) {
		if !regexp.MustCompile(`(?m)^\[\[test\]\]`).Match(blk[1]) {
			continue
		}
		n++
		tests := filepath.Join(t.TempDir(), "readme_test.toml")
		require.NoError(t, os.WriteFile(tests, blk[1], 0o644))
		var out, errb bytes.Buffer
		code := run([]string{"test", "-config", "../../plugins.toml", tests}, nil, &out, &errb)
		assert.Equal(t, 0, code, "README tests example %d:\n%s%s", n, out.String(), errb.String())
	}
	require.NotZero(t, n, "no tests-file example found in README.md")
}
