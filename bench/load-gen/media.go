// media.go — synthetic but correctly packetised Opus and VP8 RTP.
//
// Nothing is encoded: payloads are random bytes behind the headers a
// receiver inspects.
//
//	Opus: one packet per 20 ms frame, timestamp +960 (48 kHz), a TOC byte
//	(config 31 = CELT fullband 20 ms, mono, one frame) and opusBytes-1
//	bytes, no marker.
//	VP8 (RFC 7741): 90 kHz timestamps, +3000 per frame at 30 fps; every
//	packet starts with the payload descriptor X=1 I=1 M=1 (15-bit picture
//	id, the same on every packet of a frame, +1 per frame), S=1 and PID=0
//	on the first packet of a frame. The first packet then carries the VP8
//	payload header (RFC 6386 §9.1: P bit 0 for a key frame, show_frame 1,
//	version 0, first partition size) and, on key frames, the start code
//	9d 01 2a and 640x480. The marker bit is set on the last packet of a
//	frame. A key frame every keyframeEvery frames, and one on request
//	(PLI/FIR) at most every 300 ms. Frame sizes: key frames 4x the mean,
//	delta frames sized so the mean bitrate is videoKbps.
package main

import (
	"math/rand"
)

const (
	opusBytes     = 100  // ≈ 40 kbit/s, a browser's Opus at speech levels
	vp8MaxPayload = 1200 // bytes of RTP payload per packet, descriptor included
	vp8DescLen    = 4    // X|S|PID, I|M, picture id (15 bits)
	width, height = 640, 480
)

// noise: random bytes every payload is cut from (read-only once filled).
var noise = func() []byte {
	b := make([]byte, 64*1024)
	r := rand.New(rand.NewSource(1))
	r.Read(b)
	return b
}()

type VideoShape struct {
	FPS           int
	Kbps          int
	KeyframeEvery int // frames
}

func (v VideoShape) sizes() (key, delta int) {
	mean := v.Kbps * 1000 / 8 / v.FPS
	key = 4 * mean
	n := v.KeyframeEvery
	if n < 2 {
		return mean, mean
	}
	delta = (n*mean - key) / (n - 1)
	if delta < 200 {
		delta = 200
	}
	return key, delta
}

// opusPayload writes one 20 ms Opus packet's payload into buf.
func opusPayload(buf []byte, frame uint32) []byte {
	p := buf[:opusBytes]
	p[0] = 31<<3 | 0<<2 | 0 // TOC: config 31, mono, 1 frame
	off := int(frame*97) % (len(noise) - opusBytes)
	copy(p[1:], noise[off:off+opusBytes-1])
	return p
}

// vp8Packets splits a frame of `size` bytes into RTP payloads and calls
// emit(payload, last) for each. buf must hold vp8MaxPayload bytes.
func vp8Packets(buf []byte, size int, key bool, picID uint16, emit func([]byte, bool)) {
	per := vp8MaxPayload - vp8DescLen
	n := (size + per - 1) / per
	if n < 1 {
		n = 1
	}
	chunk := (size + n - 1) / n
	left := size
	off := int(picID) * 131 % (len(noise) - vp8MaxPayload)
	for i := 0; i < n; i++ {
		c := chunk
		if c > left {
			c = left
		}
		left -= c
		p := buf[:vp8DescLen+c]
		p[0] = 0x80 // X
		if i == 0 {
			p[0] |= 0x10 // S, PID 0
		}
		p[1] = 0x80                       // I: picture id present
		p[2] = 0x80 | byte(picID>>8&0x7f) // M: 15-bit picture id
		p[3] = byte(picID)
		body := p[vp8DescLen:]
		copy(body, noise[off:off+c])
		if i == 0 && c >= 10 {
			// VP8 frame tag: size0..2 | show_frame | version | P (0 = key frame)
			part := uint32(c * 3 / 4) // first partition size (19 bits)
			tag := part<<5 | 1<<4
			if !key {
				tag |= 1
			}
			body[0], body[1], body[2] = byte(tag), byte(tag>>8), byte(tag>>16)
			if key {
				body[3], body[4], body[5] = 0x9d, 0x01, 0x2a
				body[6], body[7] = byte(width&0xff), byte(width>>8)
				body[8], body[9] = byte(height&0xff), byte(height>>8)
			}
		}
		emit(p, i == n-1)
	}
}
