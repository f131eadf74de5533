package main

import (
	"github.com/ternlog/tern/decoders"
	"github.com/ternlog/tern/encoders"
	"github.com/ternlog/tern/filters"
	"github.com/ternlog/tern/inputs"
	"github.com/ternlog/tern/outputs"
	"github.com/ternlog/tern/pipeline"
)

// registry is every plugin this binary knows. Two plugins of a kind under
// one type name are a build mistake: every verb refuses to run with one.
func registry() *pipeline.Registry {
	r := &pipeline.Registry{
		Inputs:   inputs.Factories(),
		Decoders: decoders.Factories(),
		Filters:  filters.Factories(),
		Encoders: encoders.Factories(),
		Outputs:  outputs.Factories(),
	}
	if err := r.Validate(); err != nil {
		panic(err)
	}
	return r
}
