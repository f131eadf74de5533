package sandbox

import (
	"errors"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
)

// Limits are the config keys of the Lua decoder and the Lua filter that
// set up their sandbox and say what a failing script costs. Each plugin's
// Config embeds it, so its keys sit in the plugin's table
// ([decoders.<name>], [filters.<name>]) like the plugin's own.
type Limits struct {
	// ModuleDirectory is where require() finds <name>.lua modules (Lua
	// source only); empty disables require.
	ModuleDirectory string `toml:"module_directory"`
	// InstructionLimit is the VM instruction budget of one call into the
	// script (process_message; timer_event too in a filter); 0 means
	// unlimited.
	InstructionLimit int `toml:"instruction_limit"`
	// Deadline is the wall-clock budget of one call.
	Deadline config.Duration `toml:"deadline"`
	// StringLimit caps any one string a script builds.
	StringLimit config.Size `toml:"string_limit"`
	// MemoryLimit caps the memory the script holds, across calls (its Lua
	// State and the Go-backed values it keeps; Config.MemoryLimit).
	MemoryLimit config.Size `toml:"memory_limit"`
	// MaxInject caps the messages (a filter's alerts included) one call may
	// inject.
	MaxInject int `toml:"max_inject"`
	// FailurePolicy is what happens to a record or message the script
	// failed on: PolicyCount, PolicyDeadLetter or PolicyPass (each plugin's
	// README says what they mean there).
	FailurePolicy string `toml:"failure_policy"`
	// MaxFailures disables the script after that many consecutive failed
	// calls (messages then take the failure policy); 0 never disables it.
	MaxFailures int `toml:"max_failures"`
}

// DefaultLimits returns the defaults (Heka's limits) with the plugin's
// failure policy.
func DefaultLimits(policy string) Limits {
	return Limits{
		InstructionLimit: DefaultInstructionLimit,
		Deadline:         config.Duration(DefaultDeadline),
		StringLimit:      DefaultStringLimit,
		MemoryLimit:      DefaultMemoryLimit,
		MaxInject:        100,
		FailurePolicy:    policy,
		MaxFailures:      10,
	}
}

// Check returns a "key: message" error for each bad key. policies is how
// the failure_policy error lists the policies ("count, deadletter or
// pass"), the plugin's default first.
func (l Limits) Check(policies string) []error {
	var errs []error
	if l.InstructionLimit < 0 {
		errs = append(errs, errors.New("instruction_limit: must be >= 0"))
	}
	if l.Deadline.D() <= 0 {
		errs = append(errs, errors.New("deadline: must be positive"))
	}
	if l.StringLimit < 1<<10 {
		errs = append(errs, errors.New("string_limit: must be at least 1KiB"))
	}
	if l.MemoryLimit < 1<<20 {
		errs = append(errs, errors.New("memory_limit: must be at least 1MiB"))
	}
	if l.MaxInject < 1 {
		errs = append(errs, errors.New("max_inject: must be at least 1"))
	}
	if !ValidPolicy(l.FailurePolicy) {
		errs = append(errs, errors.New("failure_policy: must be "+policies))
	}
	if l.MaxFailures < 0 {
		errs = append(errs, errors.New("max_failures: must be >= 0"))
	}
	return errs
}

// SandboxConfig returns the sandbox config of the plugin instance set
// describes: its name, logger and clock, the module directory resolved
// against the config file's directory, and instruction_limit = 0 as
// unlimited.
func (l Limits) SandboxConfig(set pipeline.Settings) Config {
	limit := l.InstructionLimit
	if limit == 0 {
		limit = -1
	}
	return Config{
		Name: set.Name, InstructionLimit: limit, Deadline: l.Deadline.D(),
		StringLimit: l.StringLimit.N(), MemoryLimit: int64(l.MemoryLimit), ModuleDir: set.Resolve(l.ModuleDirectory),
		Logger: set.Logger, Now: set.Now,
	}
}
