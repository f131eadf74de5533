package main

import (
	"bytes"
	"errors"
	"strconv"
	"time"
)

// syslogRef is the W3 reference: it parses an RFC 5424 record and writes
// the object bench/w3.toml writes: timestamp (UTC), host, severity,
// message, facility, appname, procid, msgid and the structured data nested
// as "sd": {SD-ID: {PARAM: value}}. NILVALUEs are left out.
type syslogRef struct {
	sd   []sdParam // reused
	text []byte    // unescaped param values; reused
}

type sdParam struct {
	id, name []byte
	val      [2]int // text[val[0]:val[1]]; val[0] < 0: an element without params
}

var errSyslog = errors.New("malformed RFC 5424 record")

func (s *syslogRef) transform(out, line []byte) ([]byte, error) {
	s.sd, s.text = s.sd[:0], s.text[:0]
	start := len(out)
	// <PRI>VERSION
	end := bytes.IndexByte(line, '>')
	if len(line) < 3 || line[0] != '<' || end < 2 || end > 4 {
		return out, errSyslog
	}
	pri, err := strconv.Atoi(string(line[1:end]))
	if err != nil || pri > 191 {
		return out, errSyslog
	}
	rest := line[end+1:]
	var version, ts, host, app, procid, msgid []byte
	for _, f := range []*[]byte{&version, &ts, &host, &app, &procid, &msgid} {
		sp := bytes.IndexByte(rest, ' ')
		if sp < 1 {
			return out, errSyslog
		}
		*f, rest = rest[:sp], rest[sp+1:]
	}
	if len(version) > 2 || version[0] < '1' || version[0] > '9' {
		return out, errSyslog
	}
	if rest, err = s.structuredData(rest); err != nil {
		return out, err
	}
	var msg []byte
	if len(rest) > 0 {
		if rest[0] != ' ' {
			return out, errSyslog
		}
		msg = bytes.TrimPrefix(rest[1:], []byte("\xef\xbb\xbf"))
	}

	out = append(out, '{')
	if !nil5424(ts) {
		t, err := time.Parse(time.RFC3339Nano, string(ts))
		if err != nil {
			return out[:start], errSyslog
		}
		out = append(out, `"timestamp":"`...)
		out = t.UTC().AppendFormat(out, time.RFC3339Nano)
		out = append(out, `",`...)
	}
	if !nil5424(host) {
		out = append(out, `"host":`...)
		out = append(appendJSONString(out, host), ',')
	}
	out = append(out, `"severity":`...)
	out = strconv.AppendInt(out, int64(pri%8), 10)
	if len(msg) > 0 {
		out = append(out, `,"message":`...)
		out = appendJSONString(out, msg)
	}
	out = append(out, `,"facility":`...)
	out = strconv.AppendInt(out, int64(pri/8), 10)
	for _, f := range [...]struct {
		key string
		v   []byte
	}{{`,"appname":`, app}, {`,"procid":`, procid}, {`,"msgid":`, msgid}} {
		if !nil5424(f.v) {
			out = append(out, f.key...)
			out = appendJSONString(out, f.v)
		}
	}
	if len(s.sd) > 0 {
		out = append(out, `,"sd":{`...)
		for k, p := range s.sd {
			if k == 0 || !bytes.Equal(p.id, s.sd[k-1].id) {
				if k > 0 {
					out = append(out, "},"...)
				}
				out = appendJSONString(out, p.id)
				out = append(out, ":{"...)
			} else {
				out = append(out, ',')
			}
			if p.val[0] >= 0 {
				out = appendJSONString(out, p.name)
				out = append(out, ':')
				out = appendJSONString(out, s.text[p.val[0]:p.val[1]])
			}
		}
		out = append(out, "}}"...)
	}
	return append(out, "}\n"...), nil
}

func nil5424(f []byte) bool { return len(f) == 1 && f[0] == '-' }

// structuredData parses "-" or the SD elements at the start of b and
// returns the rest.
func (s *syslogRef) structuredData(b []byte) ([]byte, error) {
	if len(b) > 0 && b[0] == '-' {
		return b[1:], nil
	}
	if len(b) == 0 || b[0] != '[' {
		return nil, errSyslog
	}
	for len(b) > 0 && b[0] == '[' {
		idEnd := bytes.IndexAny(b, " ]")
		if idEnd < 2 {
			return nil, errSyslog
		}
		id := b[1:idEnd]
		b = b[idEnd:]
		if b[0] == ']' {
			s.sd = append(s.sd, sdParam{id: id, val: [2]int{-1, -1}})
		}
		for len(b) > 0 && b[0] == ' ' {
			eq := bytes.Index(b, []byte(`="`))
			if eq < 2 {
				return nil, errSyslog
			}
			p := sdParam{id: id, name: b[1:eq]}
			b = b[eq+2:]
			p.val[0] = len(s.text)
			for {
				k := bytes.IndexAny(b, `"\`)
				if k < 0 {
					return nil, errSyslog
				}
				s.text = append(s.text, b[:k]...)
				if b[k] == '"' {
					b = b[k+1:]
					break
				}
				// RFC 5424 §6.3.3: only \" \\ \] are escapes
				if k+1 < len(b) && (b[k+1] == '"' || b[k+1] == '\\' || b[k+1] == ']') {
					s.text = append(s.text, b[k+1])
					b = b[k+2:]
				} else {
					s.text = append(s.text, '\\')
					b = b[k+1:]
				}
			}
			p.val[1] = len(s.text)
			s.sd = append(s.sd, p)
		}
		if len(b) == 0 || b[0] != ']' {
			return nil, errSyslog
		}
		b = b[1:]
	}
	return b, nil
}
