package sandbox

import (
	"context"
	"log/slog"
	"strings"

	lua "github.com/Shopify/go-lua"
)

// The log module is Haka's logging API on tern's structured log:
//
//	log.fatal(module, fmt, ...)   log.error(…)   log.warning(…)   log.info(…)   log.debug(…)
//	log(module, fmt, ...)         same as log.info
//	log.setlevel([module,] level) level is fatal, error, warning, info or debug
//
// fmt is formatted like string.format (with the same size limit). A message
// below the level set for its module (or globally; default info) is
// dropped. Records carry module= and lua_level= attributes; fatal and error
// map to slog's error level, warning to warn. The same table is reachable
// as haka.log.

// Haka's levels, most severe first.
var logLevels = []string{"fatal", "error", "warning", "info", "debug"}

func levelIndex(name string) int {
	for i, n := range logLevels {
		if n == name {
			return i
		}
	}
	return -1
}

var slogLevels = []slog.Level{slog.LevelError, slog.LevelError, slog.LevelWarn, slog.LevelInfo, slog.LevelDebug}

func (s *Sandbox) openLog(l *lua.State) {
	s.logLevel = levelIndex("info")
	s.moduleLevels = map[string]int{}
	funcs := []lua.RegistryFunction{{Name: "setlevel", Function: s.logSetLevel}}
	for i, name := range logLevels {
		funcs = append(funcs, lua.RegistryFunction{Name: name, Function: s.logAt(i)})
	}
	lua.NewLibrary(l, funcs)
	// log(module, fmt, ...) is log.info.
	l.NewTable()
	l.PushGoFunction(func(l *lua.State) int {
		l.Remove(1) // the log table itself
		return s.logAt(levelIndex("info"))(l)
	})
	l.SetField(-2, "__call")
	l.SetMetaTable(-2)
	l.PushValue(-1)
	l.SetGlobal("log")
	l.NewTable()
	l.Insert(-2)
	l.SetField(-2, "log")
	l.SetGlobal("haka")
}

func (s *Sandbox) logAt(level int) lua.Function {
	return func(l *lua.State) int {
		module := lua.CheckString(l, 1)
		lua.CheckString(l, 2)
		limit := s.logLevel
		if lv, ok := s.moduleLevels[module]; ok {
			limit = lv
		}
		if level > limit {
			return 0
		}
		l.Remove(1)
		msg := s.formatArgs(l)
		s.cfg.Logger.Log(context.Background(), slogLevels[level], msg, "module", module, "lua_level", logLevels[level])
		return 0
	}
}

// formatArgs formats the whole stack (fmt first) with the sandbox's
// string.format, reached through the registry copy made at startup, so a
// script that replaces string.format cannot lift the size limit.
func (s *Sandbox) formatArgs(l *lua.State) string {
	l.Field(lua.RegistryIndex, "tern.format")
	l.Insert(1)
	l.Call(l.Top()-1, 1)
	msg, _ := l.ToString(-1)
	if len(msg) > 16<<10 {
		msg = msg[:16<<10] + "…"
	}
	return strings.TrimRight(msg, "\n")
}

func (s *Sandbox) logSetLevel(l *lua.State) int {
	if l.Top() >= 2 {
		module := lua.CheckString(l, 1)
		lv := levelIndex(lua.CheckString(l, 2))
		if lv < 0 {
			lua.ArgumentError(l, 2, "fatal, error, warning, info or debug expected")
		}
		s.moduleLevels[module] = lv
		return 0
	}
	lv := levelIndex(lua.CheckString(l, 1))
	if lv < 0 {
		lua.ArgumentError(l, 1, "fatal, error, warning, info or debug expected")
	}
	s.logLevel = lv
	return 0
}
