// Package luamem runs the Lua sandbox's memory bound against the real tern
// binary: a router with a memory-bomb filter beside a normal path keeps its
// RSS under memory_limit plus 64 MiB, disables and counts the bomb, and
// delivers all its traffic. It has no code outside its tests; -short skips
// it (it builds and runs the binary).
package luamem
