package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hostileTitle is what an attacker puts in a log line that a detection
// copies into an alert: markup that would run if the page inserted it as
// HTML.
const hostileTitle = `<img src=x onerror="document.body.dataset.pwned='img'"><script>document.body.dataset.pwned='script'</script> & "quotes"`

// The dashboard test's detections: the shipped auth_failure_burst (a real
// definition, title from the catalog), a script that copies the payload
// into the alert, and one that always fails so Lua health has something to
// show.
const dashboardRouter = `
[tern]
data_dir = "data"
metrics_address = "127.0.0.1:0"
shutdown_timeout = "5s"
progress_interval = "0s"

[inputs.lines]
type = "tcp"
address = "@LINES@"
decoder = "json"

[filters.auth_failure_burst]
type = "lua"
message_matcher = "Fields[deviceEventClassId] == 'AuthFail'"
filename = "%s"
alert_definitions = "%s"
[filters.auth_failure_burst.config]
threshold = 5

[filters.copycat]
type = "lua"
message_matcher = "Type == 'hostile'"
filename = "copycat.lua"

[filters.flaky]
type = "lua"
message_matcher = "Type == 'flaky'"
filename = "flaky.lua"
max_failures = 3

[outputs.alerts]
type = "file"
message_matcher = "Type == 'tern.alert'"
encoder = "json"
path = "alerts.jsonl"

[outputs.events]
type = "file"
message_matcher = "Type != 'tern.alert' && Type != 'noise'"
encoder = "json"
path = "events.jsonl"
`

const copycatLua = `
function process_message()
  alert{description = read_message("Payload"), severity = "high",
        sources = {alert.address(read_message("Fields[src]"))}}
  return 0
end
`

const flakyLua = `
function process_message()
  error("flaky script failed")
end
`

// sendQuiet is send for a background goroutine, which must not fail the
// test itself: a line that does not arrive shows as a missing rate.
func sendQuiet(addr string, lines ...string) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return
	}
	defer c.Close()
	_, _ = c.Write([]byte(strings.Join(lines, "\n") + "\n"))
}

// chromium finds Debian's browser; .ci/run installs it, so CI never skips.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed, and CI must run the browser test (.ci/run installs it)")
	}
	t.Skip("chromium is not installed (apt-get install chromium; .ci/run does)")
	return ""
}

// TestDashboardInChromium loads the dashboard in a real headless Chromium
// while a router runs detections, and checks what an operator would see:
// rates, drops, dead letters, Lua health and live alerts, a hostile alert
// shown as text. It leaves a screenshot in out/dashboard.png.
func TestDashboardInChromium(t *testing.T) {
	browser := chromium(t)
	script, err := filepath.Abs("../../filters/lua/scripts/auth_failure_burst.lua")
	require.NoError(t, err)
	defs, err := filepath.Abs("../../filters/lua/alerts")
	require.NoError(t, err)
	e, lines, _ := liveRouter(t, fmt.Sprintf(dashboardRouter, script, defs),
		map[string]string{"copycat.lua": copycatLua, "flaky.lua": flakyLua})
	base := "http://" + e.AdminAddr().String() + "/"

	// A trickle of traffic for the whole test, so the rates are live.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	trickle, stopTrickle := context.WithCancel(ctx)
	defer stopTrickle()
	wg.Go(func() {
		for i := 0; trickle.Err() == nil && i < 600; i++ {
			sendQuiet(lines, fmt.Sprintf(`{"type":"app","payload":"request %d"}`, i), `{"type":"noise"}`)
			select {
			case <-trickle.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
	send(t, lines, "not json at all")

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(browser),
		chromedp.Headless,
		chromedp.NoSandbox, // root in CI
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1100),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	within := chromedp.WithPollingTimeout(15 * time.Second)
	js := func(expr string) func(*testing.T) any {
		return func(t *testing.T) any {
			v, err := chromedp.Run(bctx, chromedp.Evaluate[any](expr))
			require.NoError(t, err, expr)
			return v
		}
	}

	// The page is up and its alert feed subscribed before any alert fires:
	// it shows the alerts raised while it is open.
	require.NoError(t, chromedp.Do(bctx,
		chromedp.Navigate(base),
		chromedp.Poll[chromedp.Void](`document.body.dataset.stats === "ok"`, within),
		chromedp.Poll[chromedp.Void](`document.getElementById("alert-status").textContent === "live"`, within),
	))
	waitTaps(t, e, 1)

	for i := range 6 {
		send(t, lines, fmt.Sprintf(`{"type":"cef","hostname":"web-1","deviceEventClassId":"AuthFail","src":"203.0.113.7","suser":"user%d"}`, i))
	}
	hostile, _ := json.Marshal(map[string]any{"type": "hostile", "payload": hostileTitle, "src": `"><svg onload=alert(1)>`})
	send(t, lines, string(hostile))
	send(t, lines, `{"type":"flaky"}`, `{"type":"flaky"}`, `{"type":"flaky"}`, `{"type":"flaky"}`)

	require.NoError(t, chromedp.Do(bctx,
		chromedp.Poll[chromedp.Void](`document.querySelectorAll("#alerts li").length >= 2`, within),
		chromedp.Poll[chromedp.Void](`[...document.querySelectorAll("#lua tr")].some(r => r.textContent.includes("filters.flaky") && r.textContent.includes("disabled"))`, within),
		chromedp.Poll[chromedp.Void](`(() => { const r = document.querySelector('#plugins tr[data-id="inputs.lines"] .rate'); return r && parseFloat(r.textContent) > 0; })()`, within),
		chromedp.Poll[chromedp.Void](`document.querySelector("#dead").textContent.includes("decode_error")`, within),
		chromedp.Poll[chromedp.Void](`document.querySelector("#drops").textContent.includes("no_match")`, within),
	))
	var titles []string
	for _, v := range js(`[...document.querySelectorAll("#alerts .title")].map(e => e.textContent)`)(t).([]any) {
		titles = append(titles, v.(string))
	}
	// The hostile payload is the alert's title, shown as the text it is.
	assert.Contains(t, titles, hostileTitle)
	assert.Equal(t, 0.0, js(`document.querySelectorAll("#alerts img, #alerts svg, #alerts script").length`)(t), "markup from an alert became elements")
	assert.Equal(t, 1.0, js(`document.querySelectorAll("script").length`)(t), "only dashboard.js")
	assert.Equal(t, "", js(`document.body.dataset.pwned || ""`)(t), "attacker markup ran")
	// The shipped detection's alert, with its title from the catalog.
	assert.Contains(t, titles, "Burst of authentication failures")

	text := func(sel string) string {
		return js(`document.querySelector(` + strconv.Quote(sel) + `).textContent`)(t).(string)
	}
	assert.Contains(t, text("#alerts"), "sources: 203.0.113.7")
	assert.Contains(t, text("#alerts"), `sources: "><svg onload=alert(1)>`)
	assert.Contains(t, text("#drops"), "inputs.lines")
	assert.Contains(t, text("#dead"), "decoders.json")
	outRate := text(`#plugins tr[data-id="outputs.events"] .rate`)
	rate, err := strconv.ParseFloat(strings.TrimSpace(outRate), 64)
	require.NoError(t, err, "rate %q", outRate)
	assert.Greater(t, rate, 0.0)

	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100)) // 100: PNG
	require.NoError(t, err)
	stopTrickle()
	require.NoError(t, os.MkdirAll("../../out", 0o755))
	require.NoError(t, os.WriteFile("../../out/dashboard.png", png, 0o644))
	t.Logf("screenshot: out/dashboard.png (%d bytes)", len(png))
}
