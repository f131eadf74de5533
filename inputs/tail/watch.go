package tail

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// waker tells the Run loop when to look at the files again: on file-system
// events when notifications work (inotify), else on an adaptive poll.
type waker struct {
	t    *Input
	fw   *fsnotify.Watcher // nil: polling
	wake chan struct{}
	wg   sync.WaitGroup

	mu     sync.Mutex
	rescan bool
	dirs   map[string]bool
}

func (t *Input) newWaker() *waker {
	w := &waker{t: t, wake: make(chan struct{}, 1), dirs: map[string]bool{}}
	if t.cfg.Poll {
		return w
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		t.log.Warn("file notifications unavailable; polling instead", "err", err)
		return w
	}
	w.fw = fw
	w.wg.Go(w.loop)
	return w
}

func (w *waker) polling() bool { return w.fw == nil }

func (w *waker) close() {
	if w.fw != nil {
		w.fw.Close()
		w.wg.Wait()
	}
}

func (w *waker) loop() {
	for {
		select {
		case ev, ok := <-w.fw.Events:
			if !ok {
				return
			}
			w.event(ev)
		case err, ok := <-w.fw.Errors:
			if !ok {
				return
			}
			if !errors.Is(err, fsnotify.ErrEventOverflow) {
				w.t.warnLimited("fsnotify", "file notification error; rescanning", "err", err)
			}
			w.flag(true)
		}
	}
}

// event filters what matters: writes to open files wake the loop; any
// change to a name the globs select, or to a directory on their way,
// makes it rescan.
func (w *waker) event(ev fsnotify.Event) {
	t := w.t
	held := false
	if m := t.held.Load(); m != nil {
		held = (*m)[ev.Name]
	}
	if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
		w.mu.Lock()
		if w.dirs[ev.Name] {
			delete(w.dirs, ev.Name) // the kernel dropped its watch
		}
		w.mu.Unlock()
	}
	switch {
	case ev.Op == fsnotify.Write || ev.Op == fsnotify.Chmod:
		if held {
			w.flag(false)
		} else if t.matches(ev.Name) {
			w.flag(true) // data in a file not open yet (it was empty)
		}
	case held || t.matches(ev.Name) || t.onTheWay(ev.Name):
		w.flag(true)
	}
}

func (w *waker) flag(rescan bool) {
	if rescan {
		w.mu.Lock()
		w.rescan = true
		w.mu.Unlock()
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *waker) takeRescan() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.rescan
	w.rescan = false
	return r
}

func (w *waker) wait(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
	case <-w.wake:
	case <-tm.C:
	}
}

// watch adds the directories not watched yet. A failure (the inotify watch
// limit) switches to polling rather than missing events.
func (w *waker) watch(dirs []string) {
	if w.fw == nil {
		return
	}
	for _, d := range dirs {
		w.mu.Lock()
		have := w.dirs[d]
		w.mu.Unlock()
		if have {
			continue
		}
		if err := w.fw.Add(d); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			w.t.log.Warn("cannot watch a directory; polling instead", "dir", d, "err", err)
			w.fw.Close()
			w.wg.Wait()
			w.fw = nil
			return
		}
		w.mu.Lock()
		w.dirs[d] = true
		w.mu.Unlock()
	}
}

// watchDirs lists the directories the globs can match files in, plus the
// nearest existing literal ancestor of each, so new directories are seen.
func (t *Input) watchDirs() []string {
	seen := map[string]bool{}
	var out []string
	add := func(d string) {
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	for _, p := range t.patterns {
		d := filepath.Dir(p)
		if ms, _ := filepath.Glob(d); len(ms) > 0 {
			for _, m := range ms {
				if fi, err := os.Stat(m); err == nil && fi.IsDir() {
					add(m)
				}
			}
		}
		for a := d; ; {
			if !hasMeta(a) {
				if fi, err := os.Stat(a); err == nil && fi.IsDir() {
					add(a)
					break
				}
			}
			up := filepath.Dir(a)
			if up == a {
				break
			}
			a = up
		}
	}
	return out
}

// onTheWay reports whether path could be a directory some glob descends
// through.
func (t *Input) onTheWay(path string) bool {
	for _, p := range t.patterns {
		for d := filepath.Dir(p); ; {
			if ok, _ := filepath.Match(d, path); ok {
				return true
			}
			up := filepath.Dir(d)
			if up == d {
				break
			}
			d = up
		}
	}
	return false
}

func hasMeta(p string) bool { return strings.ContainsAny(p, `*?[\`) }

// publishPaths tells the waker which names are open: the names the last
// scan found the open files under. Not the name a file was opened under
// (h.src), nor the last name of one no glob matches any more: after a
// rotation those name a new file, whose first write must make the loop
// rescan and open it, not merely pump the old one.
func (t *Input) publishPaths() {
	m := make(map[string]bool, len(t.hs))
	for _, h := range t.hs {
		if h.e != nil && h.inGlob {
			t.mu.Lock()
			m[h.e.path] = true
			t.mu.Unlock()
		}
	}
	t.held.Store(&m)
}
