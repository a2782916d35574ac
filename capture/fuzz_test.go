package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
)

// maxFuzzResults bounds how many results one fuzz input may produce
// before the reader counts as stuck.
const maxFuzzResults = 1 << 20

// FuzzReader feeds arbitrary bytes to the reader as a capture file: it
// must never panic or loop, every datagram it returns must be
// self-consistent, and its counters must add up. Seeds are in
// testdata/fuzz/FuzzReader and below.
func FuzzReader(f *testing.F) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf)
	if err != nil {
		f.Fatal(err)
	}
	if err := w.WriteUDP(t0, addr4a, addr4b, validMapRequest); err != nil {
		f.Fatal(err)
	}
	if err := w.WriteUDP(t0, addr6a, addr6b, []byte{0x80, 0, 0, 1, 0, 0, 0, 0}); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add(pcapFile(binary.BigEndian, false, 113, rec{ts: t0, data: sll(0x0800, 1, fragments4(addr4a, addr4b, 1, make([]byte, 24), 16)[0])}))
	f.Add(pcapFile(binary.LittleEndian, true, 0, rec{ts: t0, data: nullHdr(binary.LittleEndian, 30, ipv6With(addr6a.Addr(), addr6b.Addr(), 0, []byte{17, 0, 0, 0, 0, 0, 0, 0}))}))

	f.Fuzz(func(t *testing.T, data []byte) {
		for _, opts := range [][]Option{nil, {WithReassembly()}} {
			r, err := NewReader(bytes.NewReader(data), opts...)
			if err != nil {
				if r != nil || !strings.HasPrefix(err.Error(), "capture: ") {
					t.Fatalf("NewReader = %v, %v", r, err)
				}
				continue
			}
			reassemble := opts != nil
			var datagrams, frameErrs int
			var final error
			for i := 0; ; i++ {
				if i == maxFuzzResults {
					t.Fatal("reader does not reach the end")
				}
				d, err := r.Next()
				if err != nil {
					var fe *FrameError
					if errors.As(err, &fe) {
						frameErrs++
						if fe.Frame < 1 || fe.Frame > r.Stats().Frames || !strings.HasPrefix(err.Error(), "capture: frame ") {
							t.Fatalf("bad frame error %v (frames read %d)", err, r.Stats().Frames)
						}
						continue
					}
					final = err
					break
				}
				datagrams++
				checkFuzzDatagram(t, d, r.Stats().Frames)
			}
			if final != io.EOF && !errors.Is(final, ErrCorrupt) {
				t.Fatalf("final error %v, want io.EOF or ErrCorrupt", final)
			}
			if _, err := r.Next(); err != final {
				t.Fatalf("final error not sticky: %v then %v", final, err)
			}
			s := r.Stats()
			if s.Datagrams != datagrams || s.Errors != frameErrs {
				t.Fatalf("stats %+v, but saw %d datagrams and %d frame errors", s, datagrams, frameErrs)
			}
			if !reassemble && s.Frames != s.Datagrams+s.Skipped+s.Errors {
				t.Fatalf("stats do not add up: %+v", s)
			}
		}
	})
}

// checkFuzzDatagram checks a datagram's invariants.
func checkFuzzDatagram(t *testing.T, d Datagram, framesRead int) {
	t.Helper()
	if d.Frame < 1 || d.Frame > framesRead || d.FirstFrame < 1 || d.FirstFrame > d.Frame {
		t.Fatalf("frame %d (first %d) after %d frames read", d.Frame, d.FirstFrame, framesRead)
	}
	sa, da := d.Src.Addr(), d.Dst.Addr()
	if !sa.IsValid() || !da.IsValid() || sa.Is4() != da.Is4() {
		t.Fatalf("addresses %v -> %v", d.Src, d.Dst)
	}
	if len(d.Payload) > maxUDPDatagram-8 {
		t.Fatalf("payload of %d bytes", len(d.Payload))
	}
	if d.FirstFrame != d.Frame && !d.Fragmented {
		t.Fatal("reassembled datagram not marked Fragmented")
	}
}

// FuzzParseTsharkJSON feeds arbitrary bytes to the tshark JSON reader: it
// must never panic, and every packet it returns has a frame number.
func FuzzParseTsharkJSON(f *testing.F) {
	f.Add([]byte(tsharkSample))
	f.Add([]byte(`[]`))
	f.Add([]byte(`[{"_source":{"layers":{"frame":{"frame.number":"1","frame.time_epoch":"-5.5"},"x":[[["a"]]]}}}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		pkts, _ := ParseTsharkJSON(bytes.NewReader(data))
		for _, p := range pkts {
			if p.Frame < 1 || p.Fields == nil {
				t.Fatalf("packet %+v", p)
			}
		}
	})
}
