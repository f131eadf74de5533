package sandbox

import (
	"errors"
	"testing"

	"github.com/ternlog/tern/pipeline"
)

func TestLimits(t *testing.T) {
	l := DefaultLimits(PolicyPass)
	if errs := l.Check("pass, count or deadletter"); len(errs) != 0 {
		t.Fatalf("defaults: %v", errs)
	}
	c := l.SandboxConfig(pipeline.Settings{Name: "filters.f", ConfigDir: "/etc/tern"})
	if c.Name != "filters.f" || c.InstructionLimit != DefaultInstructionLimit || c.Deadline != DefaultDeadline ||
		c.StringLimit != DefaultStringLimit || c.MemoryLimit != DefaultMemoryLimit || c.ModuleDir != "" {
		t.Errorf("SandboxConfig of the defaults: %+v", c)
	}
	l.InstructionLimit = 0
	l.ModuleDirectory = "mods"
	c = l.SandboxConfig(pipeline.Settings{ConfigDir: "/etc/tern"})
	if c.InstructionLimit != -1 || c.ModuleDir != "/etc/tern/mods" {
		t.Errorf("instruction_limit = 0 is unlimited, module_directory is resolved: %+v", c)
	}

	bad := Limits{InstructionLimit: -1, StringLimit: 1, MemoryLimit: 1, FailurePolicy: "drop", MaxFailures: -1}
	want := "instruction_limit: must be >= 0\ndeadline: must be positive\nstring_limit: must be at least 1KiB\n" +
		"memory_limit: must be at least 1MiB\nmax_inject: must be at least 1\n" +
		"failure_policy: must be pass, count or deadletter\nmax_failures: must be >= 0"
	if got := errors.Join(bad.Check("pass, count or deadletter")...); got == nil || got.Error() != want {
		t.Errorf("Check:\n%v\nwant:\n%s", got, want)
	}
	bad = DefaultLimits(PolicyCount)
	bad.Deadline = 0
	if errs := bad.Check(""); len(errs) != 1 || errs[0].Error() != "deadline: must be positive" {
		t.Errorf("deadline 0: %v", errs)
	}
}
