// Package matcher implements Heka's message_matcher language, the boolean
// expression that decides which messages a filter or output receives:
//
//	Type == 'auth' && Severity <= 4 && Fields[user] =~ /^adm/
//
// Compile parses an expression once; Match then evaluates it without
// allocating and is safe to call from many goroutines.
//
// # Syntax
//
//	Operators   == != < <= > >=     compare strings (byte-wise) or numbers
//	            =~ !~               match, or do not match, a regex
//	            &&  ||              and, or; && binds tighter; both short-circuit
//	            ( )                 grouping
//	Variables   Uuid Type Logger Payload EnvVersion Hostname        strings
//	            Timestamp Severity Pid                              numbers
//	            Fields[name] Fields[name][fi] Fields[name][fi][ai]  value ai of the
//	                                fi-th field called name; indexes start at 0
//	Literals    'text' "text"       a backslash escapes only the enclosing quote
//	            /regex/             RE2 syntax, \/ for a slash, flags as (?i)
//	            42  -5  6.5  1e3    integer or float
//	            '2026-11-22T00:00:00Z'  an RFC 3339 time, for Timestamp only
//	Constants   TRUE FALSE          an expression on their own, or compared
//	                                with a bool field using == or !=
//	            NIL                 Fields[...] == NIL: the field or value is absent
//
// Each comparison puts the variable on the left and the literal on the right.
// Whitespace is space, tab, CR and LF. A field name is any text up to the
// next ], spaces and dots included.
//
// # Semantics
//
// Header variables have fixed types, so a mismatch such as Type == 6 or
// Pid =~ /6/ is a compile error. A field's type is known only per message,
// so there a mismatch (a string field compared with a number, a regex on an
// integer) is simply false. BYTES fields compare like strings; Uuid compares
// as its lower-case dashed text.
//
// A missing field, an index past the last field or value, or an unset value
// (a hole in a Zeek vector) satisfies only == NIL. Every other test on it is
// false, != 'x' and !~ /x/ included.
//
// An integer literal compares exactly with Timestamp (nanoseconds), Severity,
// Pid and INTEGER fields, as int64, and with UNSIGNED fields (Zeek counts) up
// to 2^64-1 exactly, a negative literal being below every unsigned value; a
// float literal compares as float64.
// Regexes that are only a literal, optionally anchored with ^ and $, run as
// substring, prefix, suffix or equality tests.
//
// # Differences from Heka
//
//   - Juxtaposed expressions (TRUE FALSE) are a syntax error: Heka silently
//     let the last one win.
//   - Newline and CR are whitespace: Heka ignored everything after a newline,
//     so a matcher split over lines in TOML lost its tail.
//   - Negative literals are allowed (Fields[delta] < -5): Heka could not
//     express them.
//   - != works with TRUE and FALSE: Heka parsed only ==.
//   - A bool field compared with a string or number is false: Heka's
//     evaluator said true whenever the field was false.
//   - Integer literals compare as int64: Heka compared every number as
//     float64, which rounds nanosecond timestamps to about 256 ns.
//   - Timestamp also takes an RFC 3339 time, parsed at compile time, because
//     nanosecond counts are unreadable in a config file.
//   - A malformed number (5-3, 1.2.3) is a syntax error: Heka read it as 0.
package matcher
