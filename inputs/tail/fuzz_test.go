package tail

import (
	"fmt"
	"hash/crc32"
	"strings"
	"testing"
)

// FuzzCheckpoint: the checkpoint reader never panics on any bytes (a file
// damaged by a crash or a disk), and what it accepts re-encodes to the same
// records.
func FuzzCheckpoint(f *testing.F) {
	rec := fileRecord{FP: strings.Repeat("0f", 16), FPLen: 1024, Offset: 77, Anchor: strings.Repeat("a0", 16), Path: "/var/log/x.log", Dev: 1, Ino: 2, Size: 99, Seen: 5}
	good := encodeCheckpoint(3, []fileRecord{rec})
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(encodeCheckpoint(1, nil))
	f.Add([]byte("tern-tail-checkpoint 1 1 2 00000000\n{}"))
	f.Add(make([]byte, 64))
	f.Add([]byte(`{"files":[{"fp":"` + strings.Repeat("0f", 16) + `","fp_len":-1}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		// As found on disk, and as a body behind a valid header so the
		// fuzzer reaches the JSON and the record checks past the CRC.
		checkCheckpoint(t, b)
		head := fmt.Sprintf("%s %d 1 %d %08x\n", ckptMagic, ckptFormat, len(b), crc32.Checksum(b, castagnoli))
		checkCheckpoint(t, append([]byte(head), b...))
	})
}

func checkCheckpoint(t *testing.T, b []byte) {
	gen, files, err := decodeCheckpoint(b)
	if err != nil {
		return
	}
	again := encodeCheckpoint(gen, files)
	g2, f2, err := decodeCheckpoint(again)
	if err != nil || g2 != gen || len(f2) != len(files) {
		t.Fatalf("re-encoding an accepted checkpoint failed: %v", err)
	}
	for i := range files {
		if files[i] != f2[i] {
			t.Fatalf("record %d changed: %+v != %+v", i, files[i], f2[i])
		}
	}
}
