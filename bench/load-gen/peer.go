// peer.go — one participant's PeerConnection (pion/webrtc v3): an Opus and
// a VP8 track sent at a fixed shape (media.go), the remote tracks counted
// packet by packet with RFC 3550 extended sequence numbers (loss is what
// the sequence numbers say is missing), and a data channel.
package main

import (
	"encoding/binary"
	"fmt"
	"math/rand"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v2"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v3"
)

type GenConfig struct {
	LocalIP string
	SRTP    string // "", "gcm", "cm"
	Video   VideoShape
	Reports bool           // RTCP sender/receiver reports (pion's report interceptors)
	UDPMux  net.PacketConn // if set: every PeerConnection of this API shares this socket
}

// NewAPI builds the pion API every PeerConnection shares: Opus (PT 111)
// and VP8 (PT 96, nack/pli/fir/remb feedback, as browsers offer) only,
// UDP over IPv4 on the one given local address, no mDNS, and RTCP
// reports but no NACK/TWCC interceptors (they cost per packet and Janus
// does not need them to relay).
func NewAPI(cfg GenConfig) (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
			SDPFmtpLine: "minptime=10;useinbandfec=1"},
		PayloadType: 111}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, err
	}
	fb := []webrtc.RTCPFeedback{{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"}, {Type: "nack"},
		{Type: "nack", Parameter: "pli"}}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: fb},
		PayloadType:        96}, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, err
	}
	ir := &interceptor.Registry{}
	if cfg.Reports {
		if err := webrtc.ConfigureRTCPReports(ir); err != nil {
			return nil, err
		}
	}
	se := webrtc.SettingEngine{}
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if cfg.LocalIP != "" {
		want := net.ParseIP(cfg.LocalIP)
		if want == nil {
			return nil, fmt.Errorf("bad --local-ip %q", cfg.LocalIP)
		}
		se.SetIPFilter(func(ip net.IP) bool { return ip.Equal(want) })
	}
	if cfg.UDPMux != nil {
		se.SetICEUDPMux(webrtc.NewICEUDPMux(nil, cfg.UDPMux))
	}
	switch cfg.SRTP {
	case "gcm":
		se.SetSRTPProtectionProfiles(dtlsGCM)
	case "cm":
		se.SetSRTPProtectionProfiles(dtlsCM)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir),
		webrtc.WithSettingEngine(se)), nil
}

// rxStream counts one incoming RTP stream. update() runs only on the
// stream's reader goroutine; the counters are read by anyone.
type rxStream struct {
	received atomic.Uint64
	expected atomic.Uint64
	frames   atomic.Uint64 // packets with the marker bit (video: frames)
	started  bool
	base     int64
	maxExt   int64
}

func (r *rxStream) update(seq uint16, marker bool) {
	if !r.started {
		r.started, r.base, r.maxExt = true, int64(seq), int64(seq)
	} else {
		ext := r.maxExt + int64(int16(seq-uint16(r.maxExt)))
		if ext > r.maxExt {
			r.maxExt = ext
		}
	}
	r.received.Add(1)
	r.expected.Store(uint64(r.maxExt - r.base + 1))
	if marker {
		r.frames.Add(1)
	}
}

type Peer struct {
	Name string
	PC   *webrtc.PeerConnection
	DC   *webrtc.DataChannel

	audio, video *webrtc.TrackLocalStaticRTP
	shape        VideoShape

	sentA, sentV atomic.Uint64
	keyframes    atomic.Uint64
	plis, nacks  atomic.Uint64
	late         atomic.Uint64 // send ticks more than 100 ms behind schedule (generator overloaded)
	kfWanted     atomic.Bool
	mu           sync.Mutex
	rx           map[webrtc.RTPCodecType][]*rxStream
	connected    chan struct{}
	connOnce     sync.Once
	failed       chan struct{}
	failOnce     sync.Once
	OnDCMessage  func(p *Peer, msg []byte)
	OnDCOpen     func(p *Peer)
	stop         chan struct{}
	stopOnce     sync.Once
	pacer        *Pacer
}

func NewPeer(api *webrtc.API, pacer *Pacer, name string, shape VideoShape, withDC bool) (*Peer, error) {
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	p := &Peer{Name: name, PC: pc, shape: shape, rx: map[webrtc.RTPCodecType][]*rxStream{},
		connected: make(chan struct{}), failed: make(chan struct{}), stop: make(chan struct{}), pacer: pacer}
	p.audio, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus,
		ClockRate: 48000, Channels: 2}, "audio", name)
	if err != nil {
		return nil, err
	}
	p.video, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8,
		ClockRate: 90000}, "video", name)
	if err != nil {
		return nil, err
	}
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		switch s {
		case webrtc.PeerConnectionStateConnected:
			p.connOnce.Do(func() { close(p.connected); p.pacer.Add(p) })
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			p.failOnce.Do(func() { close(p.failed) })
		}
	})
	pc.OnTrack(func(t *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
		go drainRTCP(r)
		st := &rxStream{}
		p.mu.Lock()
		p.rx[t.Kind()] = append(p.rx[t.Kind()], st)
		p.mu.Unlock()
		buf := make([]byte, 1600)
		for {
			n, _, err := t.Read(buf)
			if err != nil {
				return
			}
			if n < 12 {
				continue
			}
			st.update(binary.BigEndian.Uint16(buf[2:4]), buf[1]&0x80 != 0)
		}
	})
	pc.OnDataChannel(func(dc *webrtc.DataChannel) { p.bindDC(dc) })
	if withDC {
		dc, err := pc.CreateDataChannel("alliance", nil)
		if err != nil {
			return nil, err
		}
		p.bindDC(dc)
	}
	return p, nil
}

func (p *Peer) bindDC(dc *webrtc.DataChannel) {
	if dc.Label() != "alliance" {
		return
	}
	p.mu.Lock()
	if p.DC == nil {
		p.DC = dc
	}
	p.mu.Unlock()
	dc.OnOpen(func() {
		if p.OnDCOpen != nil {
			p.OnDCOpen(p)
		}
	})
	dc.OnMessage(func(m webrtc.DataChannelMessage) {
		if p.OnDCMessage != nil {
			p.OnDCMessage(p, m.Data)
		}
	})
}

// SendText sends on whichever `alliance` channel is open (ours or the
// server's).
func (p *Peer) SendText(s string) error {
	p.mu.Lock()
	dc := p.DC
	p.mu.Unlock()
	if dc == nil {
		return fmt.Errorf("no data channel")
	}
	return dc.SendText(s)
}

func drainRTCP(r *webrtc.RTPReceiver) {
	for {
		if _, _, err := r.ReadRTCP(); err != nil {
			return
		}
	}
}

// AddTracks adds the two send tracks (sendrecv transceivers; on an
// answerer, call it after SetRemoteDescription so they take the offered
// m-lines) and starts reading their RTCP (PLI/FIR ask for a key frame).
func (p *Peer) AddTracks() error {
	for _, t := range []*webrtc.TrackLocalStaticRTP{p.audio, p.video} {
		s, err := p.PC.AddTrack(t)
		if err != nil {
			return err
		}
		go func(s *webrtc.RTPSender) {
			for {
				pkts, _, err := s.ReadRTCP()
				if err != nil {
					return
				}
				for _, pk := range pkts {
					switch pk.(type) {
					case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
						p.plis.Add(1)
						p.kfWanted.Store(true)
					case *rtcp.TransportLayerNack:
						p.nacks.Add(1)
					}
				}
			}
		}(s)
	}
	return nil
}

var noTrickle = false

// Offer creates an offer with every ICE candidate in it (no trickle).
func (p *Peer) Offer() (*Jsep, error) {
	o, err := p.PC.CreateOffer(nil)
	if err != nil {
		return nil, err
	}
	return p.setLocal(o)
}

func (p *Peer) Answer(offer *Jsep) (*Jsep, error) {
	if err := p.PC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer.SDP}); err != nil {
		return nil, err
	}
	if err := p.AddTracks(); err != nil {
		return nil, err
	}
	a, err := p.PC.CreateAnswer(nil)
	if err != nil {
		return nil, err
	}
	return p.setLocal(a)
}

func (p *Peer) setLocal(d webrtc.SessionDescription) (*Jsep, error) {
	g := webrtc.GatheringCompletePromise(p.PC)
	if err := p.PC.SetLocalDescription(d); err != nil {
		return nil, err
	}
	select {
	case <-g:
	case <-time.After(10 * time.Second):
		return nil, fmt.Errorf("%s: ICE gathering did not complete", p.Name)
	}
	ld := p.PC.LocalDescription()
	return &Jsep{Type: ld.Type.String(), SDP: ld.SDP, Trickle: &noTrickle}, nil
}

func (p *Peer) ApplyAnswer(a *Jsep) error {
	if a == nil {
		return fmt.Errorf("%s: no JSEP answer", p.Name)
	}
	return p.PC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: a.SDP})
}

func (p *Peer) WaitConnected(timeout time.Duration) error {
	select {
	case <-p.connected:
		return nil
	case <-p.failed:
		return fmt.Errorf("%s: PeerConnection failed", p.Name)
	case <-time.After(timeout):
		return fmt.Errorf("%s: not connected within %v", p.Name, timeout)
	}
}

// Receiving: packets seen of a kind, and of those, how many the sequence
// numbers expected.
func (p *Peer) RxTotals(kind webrtc.RTPCodecType) (received, expected, frames uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.rx[kind] {
		received += s.received.Load()
		expected += s.expected.Load()
		frames += s.frames.Load()
	}
	return
}

func (p *Peer) Close() {
	p.stopOnce.Do(func() { close(p.stop) })
	_ = p.PC.Close()
}

// sender: one peer's send schedule, advanced by a Pacer (pacer.go).
// Audio is due every 20 ms, video every 1/FPS s (a frame's packets back
// to back); times are absolute, so a late tick sends what fell due and
// the mean rates stay exact. Sequence numbers and timestamps start at
// random values.
type sender struct {
	aSeq, vSeq   uint16
	aTS, vTS     uint32
	picID        uint16
	key, delta   int
	frameDur     time.Duration
	nextA, nextV time.Time
	aFrame       uint32
	vFrame       int
	lastKF       time.Time
	abuf, vbuf   []byte
	pkt          rtp.Packet
}

const audioDur = 20 * time.Millisecond

func (p *Peer) newSender(now time.Time) *sender {
	r := rand.New(rand.NewSource(now.UnixNano() ^ int64(len(p.Name))<<40))
	s := &sender{aSeq: uint16(r.Uint32()), vSeq: uint16(r.Uint32()), aTS: r.Uint32(), vTS: r.Uint32(),
		picID: uint16(r.Intn(0x7fff)), frameDur: time.Second / time.Duration(p.shape.FPS),
		abuf: make([]byte, opusBytes), vbuf: make([]byte, vp8MaxPayload)}
	s.key, s.delta = p.shape.sizes()
	// spread the peers' packets over the periods
	s.nextA = now.Add(time.Duration(r.Int63n(int64(audioDur))))
	s.nextV = now.Add(time.Duration(r.Int63n(int64(s.frameDur))))
	return s
}

// tick sends whatever is due at now.
func (p *Peer) tick(s *sender, now time.Time) {
	for !now.Before(s.nextA) {
		if now.Sub(s.nextA) > 100*time.Millisecond { // overloaded: drop what is that late
			p.late.Add(1)
			skip := now.Sub(s.nextA) / audioDur
			s.nextA = s.nextA.Add(skip * audioDur)
			s.aTS += uint32(skip) * 960
		}
		s.pkt.Header = rtp.Header{Version: 2, SequenceNumber: s.aSeq, Timestamp: s.aTS}
		s.pkt.Payload = opusPayload(s.abuf, s.aFrame)
		if p.audio.WriteRTP(&s.pkt) == nil {
			p.sentA.Add(1)
		}
		s.aSeq++
		s.aTS += 960
		s.aFrame++
		s.nextA = s.nextA.Add(audioDur)
	}
	for !now.Before(s.nextV) {
		if now.Sub(s.nextV) > 100*time.Millisecond {
			p.late.Add(1)
			skip := now.Sub(s.nextV) / s.frameDur
			s.nextV = s.nextV.Add(skip * s.frameDur)
			s.vTS += uint32(skip) * uint32(90000/p.shape.FPS)
		}
		isKey := s.vFrame%p.shape.KeyframeEvery == 0
		if !isKey && p.kfWanted.Load() && now.Sub(s.lastKF) > 300*time.Millisecond {
			isKey = true
		}
		if isKey {
			p.kfWanted.Store(false)
			s.lastKF = now
			p.keyframes.Add(1)
		}
		size := s.delta
		if isKey {
			size = s.key
		}
		vp8Packets(s.vbuf, size, isKey, s.picID, func(payload []byte, last bool) {
			s.pkt.Header = rtp.Header{Version: 2, SequenceNumber: s.vSeq, Timestamp: s.vTS, Marker: last}
			s.pkt.Payload = payload
			if p.video.WriteRTP(&s.pkt) == nil {
				p.sentV.Add(1)
			}
			s.vSeq++
		})
		s.picID = (s.picID + 1) & 0x7fff
		s.vTS += uint32(90000 / p.shape.FPS)
		s.vFrame++
		s.nextV = s.nextV.Add(s.frameDur)
	}
}
