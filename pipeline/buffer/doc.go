// Package buffer is the disk queue of an output with use_buffering = true:
// a queue.Queue whose entries survive a crash of tern and, with sync =
// "always", of the machine.
//
// # Layout
//
// A buffer directory (<data_dir>/buffer/<output>) holds append-only
// segment files (%016x.seg, sealed at max_file_size), a ledger with the
// reader's cursor, a lock file, and quarantine/ for corrupt state. Records
// are length-prefixed and CRC32C-checked and carry a sequence number; the
// payload is the message in tern's native msgpack form (see format.go).
//
// # Delivery
//
// Push encodes an entry and hands it to one writer goroutine. With sync =
// "always" the writer writes everything pushed since its last round,
// fsyncs the segment (and the directory after creating one) and only then
// calls each entry's Owner.Done: pushes that arrive during an fsync share
// the next one (group commit). With sync = "interval" Done follows the
// write(2), and fsync runs every sync_interval: a crash of tern loses
// nothing acknowledged (the data is in the kernel's page cache), a crash of
// the machine may lose the last sync_interval.
//
// The output runner reads leases of records back from disk; Commit, called
// once the output delivered them, advances the cursor and writes it to the
// ledger. A segment is deleted once the cursor has passed it, and only
// after the ledger naming a later position is durable ("ledger first, then
// unlink"). A crash therefore loses no acknowledged record; it may deliver
// the last uncommitted lease again (duplicates, bounded by a batch), and
// after a power loss the records committed since the last ledger fsync.
//
// # Full buffer and failing disk
//
// max_buffer_size bounds the segment files plus what waits to be written.
// At the cap full_action decides: "block" waits (backpressure reaches the
// inputs), "drop_newest" refuses the entry (the engine counts it in
// tern_dropped_total{reason="queue_full"} and acknowledges it), "shutdown"
// refuses it and stops tern. When a write or fsync fails (ENOSPC, EIO) the
// writer acknowledges nothing, cuts the segment back to what is known
// durable, and retries into a new segment with backoff (at most a second
// apart); pushes wait once 16 MiB are pending, so inputs stop being
// acknowledged instead of data being dropped. Waiting pushes get in oldest
// first, so no input starves behind the others.
//
// # Corruption
//
// Nothing on disk can make Open fail or loop. A torn tail is truncated; a
// corrupt record is skipped (its bytes copied to quarantine/) and the
// reader resynchronises on the next valid record; a segment with a bad
// header is moved to quarantine/; a missing segment is skipped; a garbage
// ledger is quarantined and reading restarts at the oldest segment. Records
// lost this way are counted in tern_dropped_total{reason="corrupt_record"},
// exactly when the sequence numbers around them are known.
package buffer
