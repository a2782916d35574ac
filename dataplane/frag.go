package dataplane

import "encoding/binary"

// ipv4FragmentPlan computes how fragmentIPv4 splits an IPv4 packet: the
// data bytes per fragment (a multiple of 8) and the number of fragments, so
// that every fragment's total length is at most maxLen and the fragments are
// of (nearly) equal size, as RFC 9300 section 7.1 describes ("splitting the
// original packet into 2 equal-sized fragments" when it is at most twice the
// limit). ok is false when maxLen leaves no room for 8 data bytes.
func ipv4FragmentPlan(hdrLen, dataLen, maxLen int) (per, count int, ok bool) {
	maxData := (maxLen - hdrLen) &^ 7
	if maxData < 8 || dataLen <= 0 {
		return 0, 0, false
	}
	count = (dataLen + maxData - 1) / maxData
	per = ((dataLen+count-1)/count + 7) &^ 7
	// per <= maxData, and (count-1)*per < dataLen, so every fragment
	// carries at least one byte.
	return per, count, true
}

// copiedOptions appends to dst the IPv4 options of opts whose copied flag is
// set (RFC 791: they go into every fragment), padded with End-of-Option to a
// multiple of 4 bytes, and returns the result. Malformed options end the
// copy.
func copiedOptions(dst, opts []byte) []byte {
	start := len(dst)
	for i := 0; i < len(opts); {
		t := opts[i]
		if t == 0 { // end of options
			break
		}
		if t == 1 { // no-operation
			i++
			continue
		}
		if i+1 >= len(opts) {
			break
		}
		l := int(opts[i+1])
		if l < 2 || i+l > len(opts) {
			break
		}
		if t&0x80 != 0 {
			dst = append(dst, opts[i:i+l]...)
		}
		i += l
	}
	for (len(dst)-start)%4 != 0 {
		dst = append(dst, 0)
	}
	return dst
}

// fragmentIPv4 fragments the well-formed IPv4 packet p (len(p) ==
// h.length, DF clear) so that each fragment's total length is at most
// maxLen. The first fragment stays in p, shortened in place (its length is
// returned as firstLen); fragment i (i >= 1) is written at dst[i-1][dstOff:]
// and its length stored in sizes[i-1]. count is the number of
// fragments written to dst. ok is false, and p untouched, when maxLen is too
// small or dst has too few (or too short) buffers.
func fragmentIPv4(p []byte, h ipHeader, maxLen int, dst [][]byte, dstOff int, sizes []int) (firstLen, count int, ok bool) {
	hl := h.hdrLen
	data := p[hl:]
	per, k, ok := ipv4FragmentPlan(hl, len(data), maxLen)
	if !ok || k < 2 || k-1 > len(dst) || k-1 > len(sizes) {
		return 0, 0, false
	}
	// Header of the later fragments: the fixed part plus copied options.
	var hbuf [60]byte
	h2 := append(hbuf[:0], p[:ipv4HeaderLen]...)
	h2 = copiedOptions(h2, p[ipv4HeaderLen:hl])
	h2[0] = 0x40 | byte(len(h2)/4)
	for i := 1; i < k; i++ {
		if len(dst[i-1]) < dstOff+len(h2)+min(per, len(data)-i*per) {
			return 0, 0, false
		}
	}
	fo := binary.BigEndian.Uint16(p[6:8])
	origMF := fo&ipv4MF != 0
	origOff := int(fo & ipv4OffMask) // in 8-byte units
	for i := 1; i < k; i++ {
		chunk := data[i*per : min((i+1)*per, len(data))]
		f := dst[i-1][dstOff:]
		copy(f, h2)
		copy(f[len(h2):], chunk)
		l := len(h2) + len(chunk)
		binary.BigEndian.PutUint16(f[2:4], uint16(l))
		nfo := uint16(origOff+i*per/8) & ipv4OffMask
		if i < k-1 || origMF {
			nfo |= ipv4MF
		}
		binary.BigEndian.PutUint16(f[6:8], nfo)
		setIPv4Checksum(f[:len(h2)])
		sizes[i-1] = l
	}
	firstLen = hl + per
	binary.BigEndian.PutUint16(p[2:4], uint16(firstLen))
	binary.BigEndian.PutUint16(p[6:8], uint16(origOff)&ipv4OffMask|ipv4MF)
	setIPv4Checksum(p[:hl])
	return firstLen, k - 1, true
}
