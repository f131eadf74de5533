// Command failedlogins is a small web application that reports failed
// logins to a local tern as CEF events, through tern's Go client library:
// every wrong password is an AuthFail event carrying the request's source
// address, URL, method and user agent, and the fifth failure in a row for
// one user locks the account (an AccountLockout event at priority ALERT).
// The syslog envelope (facility AUTHPRIV, ident "failedlogins") travels
// with each event, so the tern that writes them as CEF over syslog uses it.
//
//	go run ./cmd/tern run -config examples/failedlogins/tern.toml &
//	go run ./examples/failedlogins -listen 127.0.0.1:8080
//	curl -d user=alice -d password=guess http://127.0.0.1:8080/login
package main

import (
	"context"
	"crypto/subtle"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/ternlog/tern/client"
)

// lockAfter is how many failures in a row lock an account.
const lockAfter = 5

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the exit and the signals, for the test.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("failedlogins", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "address of the web application")
	tern := fs.String("tern", "127.0.0.1:5150", "the local tern's native tcp input")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	c, err := client.Dial(*tern,
		client.WithLazyConnect(), // the app serves even while tern restarts; events wait in the buffer
		client.WithCEF("tern-example", "failedlogins", "1.0"),
		client.WithSyslog(client.AUTHPRIV, "failedlogins", client.WARNING),
		client.WithErrorHandler(func(err error) { fmt.Fprintf(stderr, "failedlogins: tern: %v\n", err) }))
	if err != nil {
		fmt.Fprintf(stderr, "failedlogins: %v\n", err)
		return 1
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		_ = c.Close(context.Background())
		fmt.Fprintf(stderr, "failedlogins: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "listening on http://%s/login\n", ln.Addr())
	srv := &http.Server{Handler: newApp(c, map[string]string{"alice": "wonderland", "bob": "builder"}), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	<-served
	// Close waits until tern acknowledged every event reported.
	if err := c.Close(sctx); err != nil {
		fmt.Fprintf(stderr, "failedlogins: %v\n", err)
		return 1
	}
	return 0
}

// app is the login handler.
type app struct {
	c     *client.Client
	users map[string]string

	mu       sync.Mutex
	failures map[string]int
}

func newApp(c *client.Client, users map[string]string) http.Handler {
	a := &app{c: c, users: users, failures: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", a.login)
	return mux
}

func (a *app) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	user, password := r.PostFormValue("user"), r.PostFormValue("password")
	want, known := a.users[user]
	ok := known && subtle.ConstantTimeCompare([]byte(password), []byte(want)) == 1
	a.mu.Lock()
	if ok && a.failures[user] < lockAfter {
		a.failures[user] = 0
		a.mu.Unlock()
		fmt.Fprintf(w, "welcome, %s\n", user)
		return
	}
	a.failures[user]++
	n := a.failures[user]
	a.mu.Unlock()

	ev := client.NewEvent(client.AuthFailure, "Login failed", 5).FromRequest(r).Set("suser", user).
		Set("cnt", fmt.Sprint(n))
	err := a.c.SendCEF(r.Context(), ev)
	if err == nil && n == lockAfter {
		lock := client.NewEvent(client.AccountLocked, "Account locked after repeated failures", 8).FromRequest(r).Set("suser", user)
		lock.Priority = client.ALERT
		err = a.c.SendCEF(r.Context(), lock)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		// The event could not be taken (the buffer stayed full): say so,
		// in the log and to the client, rather than lose it quietly.
		fmt.Fprintf(os.Stderr, "failedlogins: reporting the failure of %q: %v\n", user, err)
		http.Error(w, "try again later", http.StatusServiceUnavailable)
		return
	}
	if n >= lockAfter {
		http.Error(w, "account locked", http.StatusForbidden)
		return
	}
	http.Error(w, "wrong user or password", http.StatusUnauthorized)
}
