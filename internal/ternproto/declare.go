package ternproto

import "github.com/ternlog/tern/pipeline"

// DeclareServe declares, for the plugin of set, what Serve counts, so the
// series exist at zero from the start: frames over the size limit (a drop
// and an error, as the connection closes) and batches that do not decode.
// Call it from the plugin's constructor.
func DeclareServe(set pipeline.Settings) {
	set.DeclareDrops("oversize")
	set.DeclareErrors("frame_too_large", "bad_batch")
}
