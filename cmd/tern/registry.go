package main

import (
	"github.com/ternlog/tern/decoders"
	"github.com/ternlog/tern/encoders"
	"github.com/ternlog/tern/filters"
	"github.com/ternlog/tern/inputs"
	"github.com/ternlog/tern/outputs"
	"github.com/ternlog/tern/pipeline"
)

// registry is every plugin this binary knows.
func registry() *pipeline.Registry {
	return &pipeline.Registry{
		Inputs:   inputs.Factories(),
		Decoders: decoders.Factories(),
		Filters:  filters.Factories(),
		Encoders: encoders.Factories(),
		Outputs:  outputs.Factories(),
	}
}
