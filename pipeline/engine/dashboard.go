package engine

import (
	"embed"
	"net/http"
)

// The dashboard is three static files, embedded so the binary serves it
// with nothing else installed: no CDN, no build step. It reads
// /api/stats and an alert tap, and puts what messages hold into the page
// as text only; the Content-Security-Policy below forbids inline scripts
// and every origin but this one, so even a slip there runs nothing.
//
//go:embed dashboard/index.html dashboard/dashboard.js dashboard/dashboard.css
var dashboardFS embed.FS

const dashboardCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func (e *Engine) dashboardRoutes(mux *http.ServeMux) {
	file := func(name, ctype string) http.HandlerFunc {
		body, err := dashboardFS.ReadFile("dashboard/" + name)
		if err != nil {
			panic(err) // embedded at build time
		}
		return func(w http.ResponseWriter, _ *http.Request) {
			h := w.Header()
			h.Set("Content-Type", ctype)
			h.Set("Content-Security-Policy", dashboardCSP)
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("Referrer-Policy", "no-referrer")
			h.Set("Cache-Control", "no-cache")
			_, _ = w.Write(body)
		}
	}
	mux.HandleFunc("GET /{$}", file("index.html", "text/html; charset=utf-8"))
	mux.HandleFunc("GET /dashboard.js", file("dashboard.js", "text/javascript; charset=utf-8"))
	mux.HandleFunc("GET /dashboard.css", file("dashboard.css", "text/css; charset=utf-8"))
}
