// scenario.go — what one "visit" is for each plugin under test:
//
//	alliance:  therapist creates, joins; client joins with the invite;
//	           admit; both configure with an offer (A/V + data channel).
//	echotest:  two independent sessions, each echoing itself back.
//	videocall: two users register; one calls, the other accepts.
//
// Every visit has two PeerConnections with the same media per direction.
package main

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v3"
)

const (
	pluginAlliance  = "janus.plugin.alliance"
	pluginEchoTest  = "janus.plugin.echotest"
	pluginVideoCall = "janus.plugin.videocall"
	reqTimeout      = 20 * time.Second
)

type Visit struct {
	Idx      int
	Sessions []*Session
	Handles  []*Handle
	Peers    []*Peer

	// alliance only
	th, cl   *Handle
	tp, cp   *Peer
	pulseAt  atomic.Int64 // UnixNano of the last pulse request sent (0: none)
	mu       sync.Mutex
	answered map[string]time.Time // pulse_id -> when our answer went out
	hello    chan struct{}        // closed when the client's `hello` arrived (data channel up)
	helloOne sync.Once
	g        *Gen
}

// Timings and counters every visit adds to.
type Pulses struct {
	mu                                   sync.Mutex
	deliveryMS, requestMS, ackMS         []float64
	sent, delivered, answered, acked     int
	refused                              int            // pulse requests refused (e.g. 487 open pulse)
	dcErrors                             map[string]int // data-channel error codes received
	hellos, qualityMsgs, alerts, expired int
	viaEvent                             int // pulses that came as Janus events (no data channel)
}

func (ps *Pulses) add(f func()) { ps.mu.Lock(); f(); ps.mu.Unlock() }

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000.0 }

// allianceRequest sends a request and checks the answer is `"alliance": what`.
func allianceRequest(h *Handle, body map[string]any, what string) (map[string]any, error) {
	m, err := h.Request(body, nil, reqTimeout)
	if err != nil {
		return nil, err
	}
	b := m.Body()
	if b == nil {
		return nil, fmt.Errorf("%s: no plugin data (%s)", what, m.Janus)
	}
	if b["alliance"] != what {
		return b, fmt.Errorf("expected alliance=%s, got %v (error_code %v: %v)", what, b["alliance"], b["error_code"], b["error"])
	}
	return b, nil
}

func (g *Gen) newParticipant(plugin, name string, withDC bool) (*Session, *Handle, *Peer, error) {
	s, err := g.janus.CreateSession()
	if err != nil {
		return nil, nil, nil, err
	}
	h, err := s.Attach(plugin)
	if err != nil {
		s.Destroy()
		return nil, nil, nil, err
	}
	g.mu.Lock()
	api := g.apis[g.nPeers%len(g.apis)]
	g.nPeers++
	g.mu.Unlock()
	p, err := NewPeer(api, g.pacer, name, g.cfg.Video, withDC)
	if err != nil {
		s.Destroy()
		return nil, nil, nil, err
	}
	return s, h, p, nil
}

func (v *Visit) add(s *Session, h *Handle, p *Peer) {
	v.Sessions = append(v.Sessions, s)
	v.Handles = append(v.Handles, h)
	v.Peers = append(v.Peers, p)
}

// configure: offer, send it with body, wait for the JSEP answer.
func configure(h *Handle, p *Peer, body map[string]any) error {
	if err := p.AddTracks(); err != nil {
		return err
	}
	offer, err := p.Offer()
	if err != nil {
		return err
	}
	m, err := h.Request(body, offer, reqTimeout)
	if err != nil {
		return err
	}
	if b := m.Body(); b != nil && (b["alliance"] == "error" || b["error_code"] != nil) {
		return fmt.Errorf("%s: %v", p.Name, b["error"])
	}
	return p.ApplyAnswer(m.Jsep)
}

func (g *Gen) setupAlliance(v *Visit) error {
	st, th, tp, err := g.newParticipant(pluginAlliance, fmt.Sprintf("t%04d", v.Idx), true)
	if err != nil {
		return err
	}
	v.add(st, th, tp)
	sc, cl, cp, err := g.newParticipant(pluginAlliance, fmt.Sprintf("c%04d", v.Idx), true)
	if err != nil {
		return err
	}
	v.add(sc, cl, cp)
	v.th, v.cl, v.tp, v.cp = th, cl, tp, cp
	v.answered = map[string]time.Time{}
	v.hello = make(chan struct{})
	tp.OnDCMessage = v.onTherapistDC
	cp.OnDCMessage = v.onClientDC

	created, err := allianceRequest(th, map[string]any{"request": "create", "therapist_key": g.cfg.TherapistKey,
		"client_code": fmt.Sprintf("C-L%s-%04d", g.runTag, v.Idx),
		"schedule":    map[string]any{"in_session_at_s": []int{}, "end_pulse": false}}, "created")
	if err != nil {
		return fmt.Errorf("create: %v", err)
	}
	visitID, _ := created["visit_id"].(string)
	invite, _ := created["invite"].(string)
	if _, err := allianceRequest(th, map[string]any{"request": "join", "role": "therapist",
		"visit_id": visitID, "therapist_key": g.cfg.TherapistKey}, "joined"); err != nil {
		return fmt.Errorf("therapist join: %v", err)
	}
	if _, err := allianceRequest(cl, map[string]any{"request": "join", "role": "client", "invite": invite,
		"consent": map[string]any{"research": false}}, "joined"); err != nil {
		return fmt.Errorf("client join: %v", err)
	}
	if _, err := th.WaitEvent(func(b map[string]any, _ *Msg) bool { return b["alliance"] == "waiting" }, reqTimeout); err != nil {
		return fmt.Errorf("therapist not told the client waits: %v", err)
	}
	if _, err := allianceRequest(th, map[string]any{"request": "admit"}, "admitted"); err != nil {
		return fmt.Errorf("admit: %v", err)
	}
	if _, err := cl.WaitEvent(func(b map[string]any, _ *Msg) bool { return b["alliance"] == "admitted" }, reqTimeout); err != nil {
		return fmt.Errorf("client not admitted: %v", err)
	}
	errs := make(chan error, 2)
	body := map[string]any{"request": "configure", "audio": true, "video": true}
	go func() { errs <- configure(th, tp, body) }()
	go func() { errs <- configure(cl, cp, body) }()
	for i := 0; i < 2; i++ {
		if err := <-errs; err != nil {
			return fmt.Errorf("configure: %v", err)
		}
	}
	return nil
}

func (g *Gen) setupEchoTest(v *Visit) error {
	for i := 0; i < 2; i++ {
		s, h, p, err := g.newParticipant(pluginEchoTest, fmt.Sprintf("e%04d%c", v.Idx, 'a'+i), true)
		if err != nil {
			return err
		}
		v.add(s, h, p)
		if err := configure(h, p, map[string]any{"audio": true, "video": true}); err != nil {
			return fmt.Errorf("echotest: %v", err)
		}
	}
	return nil
}

func (g *Gen) setupVideoCall(v *Visit) error {
	names := []string{fmt.Sprintf("l%s-%04da", g.runTag, v.Idx), fmt.Sprintf("l%s-%04db", g.runTag, v.Idx)}
	for i := 0; i < 2; i++ {
		s, h, p, err := g.newParticipant(pluginVideoCall, names[i], true)
		if err != nil {
			return err
		}
		v.add(s, h, p)
		m, err := h.Request(map[string]any{"request": "register", "username": names[i]}, nil, reqTimeout)
		if err != nil {
			return err
		}
		if r, _ := m.Body()["result"].(map[string]any); r == nil || r["event"] != "registered" {
			return fmt.Errorf("videocall register: %s", m.PluginData.Data)
		}
	}
	a, b := v.Handles[0], v.Handles[1]
	pa, pb := v.Peers[0], v.Peers[1]
	if err := pa.AddTracks(); err != nil {
		return err
	}
	offer, err := pa.Offer()
	if err != nil {
		return err
	}
	if _, err := a.Request(map[string]any{"request": "call", "username": names[1]}, offer, reqTimeout); err != nil {
		return fmt.Errorf("call: %v", err)
	}
	isEvent := func(name string) func(map[string]any, *Msg) bool {
		return func(body map[string]any, m *Msg) bool {
			r, _ := body["result"].(map[string]any)
			return r != nil && r["event"] == name && m.Jsep != nil
		}
	}
	inc, err := b.WaitEvent(isEvent("incomingcall"), reqTimeout)
	if err != nil {
		return fmt.Errorf("incomingcall: %v", err)
	}
	answer, err := pb.Answer(inc.Jsep)
	if err != nil {
		return err
	}
	if _, err := b.Request(map[string]any{"request": "accept"}, answer, reqTimeout); err != nil {
		return fmt.Errorf("accept: %v", err)
	}
	acc, err := a.WaitEvent(isEvent("accepted"), reqTimeout)
	if err != nil {
		return fmt.Errorf("accepted: %v", err)
	}
	return pa.ApplyAnswer(acc.Jsep)
}

// -- alliance pulses -------------------------------------------------------

type dcMessage struct {
	Type       string          `json:"type"`
	PulseID    json.RawMessage `json:"pulse_id"`
	Kind       string          `json:"kind"`
	Code       string          `json:"code"`
	Instrument struct {
		ID    string `json:"id"`
		Items []struct {
			ID    string `json:"id"`
			Scale struct {
				Type   string   `json:"type"`
				Min    *float64 `json:"min"`
				Max    *float64 `json:"max"`
				Step   *float64 `json:"step"`
				Points int      `json:"points"`
			} `json:"scale"`
		} `json:"items"`
	} `json:"instrument"`
}

func (v *Visit) onTherapistDC(p *Peer, raw []byte) {
	var m dcMessage
	if json.Unmarshal(raw, &m) != nil {
		return
	}
	ps := v.g.pulses
	switch m.Type {
	case "hello":
		ps.add(func() { ps.hellos++ })
	case "quality":
		ps.add(func() { ps.qualityMsgs++ })
	case "alert":
		ps.add(func() { ps.alerts++ })
	case "error":
		ps.add(func() { ps.dcErrors["therapist:"+m.Code]++ })
	}
}

func (v *Visit) onClientDC(p *Peer, raw []byte) {
	now := time.Now()
	var m dcMessage
	if json.Unmarshal(raw, &m) != nil {
		return
	}
	ps := v.g.pulses
	switch m.Type {
	case "hello":
		ps.add(func() { ps.hellos++ })
		v.helloOne.Do(func() { close(v.hello) })
	case "pulse":
		if t0 := v.pulseAt.Swap(0); t0 != 0 {
			d := now.Sub(time.Unix(0, t0))
			ps.add(func() { ps.delivered++; ps.deliveryMS = append(ps.deliveryMS, ms(d)) })
		}
		go v.answer(m)
	case "ack":
		v.mu.Lock()
		t, ok := v.answered[string(m.PulseID)]
		delete(v.answered, string(m.PulseID))
		v.mu.Unlock()
		if ok {
			d := now.Sub(t)
			ps.add(func() { ps.acked++; ps.ackMS = append(ps.ackMS, ms(d)) })
		}
	case "pulse_expired":
		ps.add(func() { ps.expired++ })
	case "error":
		ps.add(func() { ps.dcErrors["client:"+m.Code]++ })
	}
}

// answer: a valid final answer for every item, in the upper part of each
// scale (so no below-cutoff alerts), after a short think time.
func (v *Visit) answer(m dcMessage) {
	time.Sleep(v.g.cfg.AnswerDelay)
	resp := responses(m)
	msg, _ := json.Marshal(map[string]any{"v": 1, "type": "answer", "pulse_id": m.PulseID,
		"responses": resp, "final": true})
	v.mu.Lock()
	v.answered[string(m.PulseID)] = time.Now()
	v.mu.Unlock()
	if v.cp.SendText(string(msg)) == nil {
		ps := v.g.pulses
		ps.add(func() { ps.answered++ })
	}
}

func responses(m dcMessage) map[string]json.RawMessage {
	resp := map[string]json.RawMessage{}
	for _, it := range m.Instrument.Items {
		sc := it.Scale
		switch sc.Type {
		case "likert":
			lo := 1
			if sc.Min != nil {
				lo = int(*sc.Min)
			}
			pts := sc.Points
			if pts < 1 {
				pts = 1
			}
			resp[it.ID] = json.RawMessage(strconv.Itoa(lo + pts/2 + rand.Intn(pts-pts/2)))
		default: // vas
			lo, hi, step := 0.0, 10.0, 0.1
			if sc.Min != nil {
				lo = *sc.Min
			}
			if sc.Max != nil {
				hi = *sc.Max
			}
			if sc.Step != nil && *sc.Step > 0 {
				step = *sc.Step
			}
			steps := int(math.Floor((hi-lo)/step + 1e-9))
			k := steps*6/10 + rand.Intn(steps-steps*6/10+1)
			dec := 0
			for s := step; s-math.Floor(s) > 1e-9 && dec < 6; s *= 10 {
				dec++
			}
			resp[it.ID] = json.RawMessage(strconv.FormatFloat(lo+float64(k)*step, 'f', dec, 64))
		}
	}
	return resp
}

// watchClientEvents: a pulse the plugin could not put on the data channel
// comes as a Janus event; count it and answer it with the `answer`
// request, so it does not stay open and block the next one.
func (v *Visit) watchClientEvents(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case m := <-v.cl.Events:
			b := m.Body()
			if m.Janus != "event" || b == nil || b["alliance"] != "pulse" {
				continue
			}
			ps := v.g.pulses
			ps.add(func() { ps.viaEvent++ })
			v.pulseAt.Store(0)
			raw, _ := json.Marshal(b)
			var dm dcMessage
			_ = json.Unmarshal(raw, &dm)
			go func() {
				resp := responses(dm)
				_, _ = v.cl.Request(map[string]any{"request": "answer", "pulse_id": dm.PulseID, "responses": resp,
					"final": true}, nil, reqTimeout)
			}()
		}
	}
}

// pulseLoop: the therapist asks for a pulse every `every`, the first after
// `first`, until stop closes.
func (v *Visit) pulseLoop(first, every time.Duration, stop <-chan struct{}) {
	ps := v.g.pulses
	t := time.NewTimer(first)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		t0 := time.Now()
		v.pulseAt.Store(t0.UnixNano())
		ps.add(func() { ps.sent++ })
		m, err := v.th.Request(map[string]any{"request": "pulse"}, nil, reqTimeout)
		if b := m.Body(); err == nil && b != nil && b["alliance"] == "pulse_sent" {
			d := time.Since(t0)
			ps.add(func() { ps.requestMS = append(ps.requestMS, ms(d)) })
		} else {
			v.pulseAt.Store(0)
			ps.add(func() { ps.refused++ })
			if v.g.cfg.Verbose {
				logf("visit %d: pulse refused: %v %v", v.Idx, err, b)
			}
		}
		t.Reset(every)
	}
}

func (g *Gen) teardown(v *Visit) {
	for _, p := range v.Peers {
		p.Close()
	}
	if v.th != nil {
		_, _ = v.th.Request(map[string]any{"request": "end"}, nil, 5*time.Second)
	}
	if len(v.Handles) == 2 && v.Handles[0].Plugin == pluginVideoCall {
		_, _ = v.Handles[0].Request(map[string]any{"request": "hangup"}, nil, 5*time.Second)
	}
	for _, s := range v.Sessions {
		s.Destroy()
	}
}

func mediaFlowing(p *Peer) bool {
	a, _, _ := p.RxTotals(webrtc.RTPCodecTypeAudio)
	vv, _, _ := p.RxTotals(webrtc.RTPCodecTypeVideo)
	return a > 0 && vv > 0
}
