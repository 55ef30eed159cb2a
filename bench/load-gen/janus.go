// janus.go — a minimal client of the Janus HTTP API (the REST transport):
// sessions, handles, plugin messages with an optional JSEP, and the
// long poll that brings events back.
//
// One long-poll goroutine per Janus session. An event that carries the
// transaction of a request still waiting for its answer goes to that
// request; every other event goes to its handle's Events channel.
// Requests answered synchronously (`success` with plugindata) come back in
// the POST's own response.
package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

type Jsep struct {
	Type    string `json:"type"`
	SDP     string `json:"sdp"`
	Trickle *bool  `json:"trickle,omitempty"`
}

type PluginData struct {
	Plugin string          `json:"plugin"`
	Data   json.RawMessage `json:"data"`
}

type JanusError struct {
	Code   int    `json:"code"`
	Reason string `json:"reason"`
}

// Msg is one message from Janus (a response or an event).
type Msg struct {
	Janus       string `json:"janus"`
	Transaction string `json:"transaction"`
	SessionID   uint64 `json:"session_id"`
	Sender      uint64 `json:"sender"`
	Data        *struct {
		ID uint64 `json:"id"`
	} `json:"data"`
	PluginData *PluginData `json:"plugindata"`
	Jsep       *Jsep       `json:"jsep"`
	Error      *JanusError `json:"error"`
}

// Body decodes plugindata.data into a generic map (nil if none).
func (m *Msg) Body() map[string]any {
	if m == nil || m.PluginData == nil || len(m.PluginData.Data) == 0 {
		return nil
	}
	var out map[string]any
	if json.Unmarshal(m.PluginData.Data, &out) != nil {
		return nil
	}
	return out
}

type JanusClient struct {
	Base string
	HTTP *http.Client
}

func NewJanusClient(base string) *JanusClient {
	tr := &http.Transport{MaxIdleConns: 4096, MaxIdleConnsPerHost: 4096, IdleConnTimeout: 90 * time.Second}
	return &JanusClient{Base: base, HTTP: &http.Client{Transport: tr, Timeout: 75 * time.Second}}
}

func txid() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (c *JanusClient) post(url string, body map[string]any) (*Msg, error) {
	buf, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	resp, err := c.HTTP.Post(url, "application/json", bytes.NewReader(buf))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var m Msg
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("bad JSON from %s: %v", url, err)
	}
	if m.Janus == "error" && m.Error != nil {
		return &m, fmt.Errorf("janus error %d: %s", m.Error.Code, m.Error.Reason)
	}
	return &m, nil
}

type Session struct {
	c       *JanusClient
	ID      uint64
	mu      sync.Mutex
	pending map[string]chan *Msg
	handles map[uint64]*Handle
	done    chan struct{}
	once    sync.Once
}

type Handle struct {
	S      *Session
	ID     uint64
	Plugin string
	Events chan *Msg // plugin events and core events (webrtcup, media, hangup...) not answering a request
}

func (c *JanusClient) CreateSession() (*Session, error) {
	m, err := c.post(c.Base, map[string]any{"janus": "create", "transaction": txid()})
	if err != nil {
		return nil, err
	}
	if m.Janus != "success" || m.Data == nil {
		return nil, fmt.Errorf("create session: unexpected %q", m.Janus)
	}
	s := &Session{c: c, ID: m.Data.ID, pending: map[string]chan *Msg{}, handles: map[uint64]*Handle{},
		done: make(chan struct{})}
	go s.poll()
	go s.keepalive()
	return s, nil
}

func (s *Session) url() string { return fmt.Sprintf("%s/%d", s.c.Base, s.ID) }

func (s *Session) poll() {
	url := s.url() + "?maxev=20"
	for {
		select {
		case <-s.done:
			return
		default:
		}
		resp, err := s.c.HTTP.Get(url)
		if err != nil {
			select {
			case <-s.done:
				return
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			continue
		}
		raw = bytes.TrimSpace(raw)
		var msgs []*Msg
		if len(raw) > 0 && raw[0] == '[' {
			_ = json.Unmarshal(raw, &msgs)
		} else {
			var m Msg
			if json.Unmarshal(raw, &m) == nil {
				msgs = append(msgs, &m)
			}
		}
		for _, m := range msgs {
			if m.Janus == "error" && m.Error != nil && m.Error.Code == 458 { // no such session
				s.Close()
				return
			}
			s.dispatch(m)
		}
	}
}

// keepalive: the long poll already counts as activity for Janus; this is
// belt and braces for sessions whose poll is slow to come back.
func (s *Session) keepalive() {
	t := time.NewTicker(25 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			_, _ = s.c.post(s.url(), map[string]any{"janus": "keepalive", "transaction": txid()})
		}
	}
}

func (s *Session) dispatch(m *Msg) {
	if m.Janus == "keepalive" || m.Janus == "ack" {
		return
	}
	s.mu.Lock()
	if ch, ok := s.pending[m.Transaction]; ok && m.Transaction != "" {
		delete(s.pending, m.Transaction)
		s.mu.Unlock()
		ch <- m
		return
	}
	h := s.handles[m.Sender]
	s.mu.Unlock()
	if h != nil {
		select {
		case h.Events <- m:
		default: // nobody reads this kind of event fast enough: drop it
		}
	}
}

func (s *Session) Attach(plugin string) (*Handle, error) {
	m, err := s.c.post(s.url(), map[string]any{"janus": "attach", "plugin": plugin, "transaction": txid()})
	if err != nil {
		return nil, err
	}
	if m.Janus != "success" || m.Data == nil {
		return nil, fmt.Errorf("attach %s: unexpected %q", plugin, m.Janus)
	}
	h := &Handle{S: s, ID: m.Data.ID, Plugin: plugin, Events: make(chan *Msg, 256)}
	s.mu.Lock()
	s.handles[h.ID] = h
	s.mu.Unlock()
	return h, nil
}

// Destroy ends the Janus session (its handles are detached by Janus) and
// stops the long poll.
func (s *Session) Destroy() {
	_, _ = s.c.post(s.url(), map[string]any{"janus": "destroy", "transaction": txid()})
	s.Close()
}

func (s *Session) Close() { s.once.Do(func() { close(s.done) }) }

// Request sends a plugin message and returns its answer: the synchronous
// `success` or, after an `ack`, the event carrying the same transaction.
func (h *Handle) Request(body map[string]any, jsep *Jsep, timeout time.Duration) (*Msg, error) {
	tx := txid()
	ch := make(chan *Msg, 1)
	h.S.mu.Lock()
	h.S.pending[tx] = ch
	h.S.mu.Unlock()
	forget := func() {
		h.S.mu.Lock()
		delete(h.S.pending, tx)
		h.S.mu.Unlock()
	}
	req := map[string]any{"janus": "message", "transaction": tx, "body": body}
	if jsep != nil {
		req["jsep"] = jsep
	}
	m, err := h.S.c.post(fmt.Sprintf("%s/%d", h.S.url(), h.ID), req)
	if err != nil {
		forget()
		return m, err
	}
	if m.Janus == "success" {
		forget()
		return m, nil
	}
	select {
	case ev := <-ch:
		return ev, nil
	case <-time.After(timeout):
		forget()
		return nil, fmt.Errorf("no answer to %v within %v", body["request"], timeout)
	case <-h.S.done:
		return nil, fmt.Errorf("session closed")
	}
}

// WaitEvent returns the next plugin event on the handle for which match
// says true; other events are passed to other (may be nil) and dropped.
func (h *Handle) WaitEvent(match func(map[string]any, *Msg) bool, timeout time.Duration) (*Msg, error) {
	deadline := time.After(timeout)
	for {
		select {
		case m := <-h.Events:
			if m.Janus == "event" && match(m.Body(), m) {
				return m, nil
			}
		case <-deadline:
			return nil, fmt.Errorf("event not seen within %v", timeout)
		case <-h.S.done:
			return nil, fmt.Errorf("session closed")
		}
	}
}

// AdminHandleInfo asks the Admin API for one handle's info (nil on error).
func AdminHandleInfo(c *http.Client, adminURL, secret string, session, handle uint64) map[string]any {
	body, _ := json.Marshal(map[string]any{"janus": "handle_info", "transaction": txid(), "admin_secret": secret})
	resp, err := c.Post(fmt.Sprintf("%s/%d/%d", adminURL, session, handle), "application/json", bytes.NewReader(body))
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var out map[string]any
	if json.NewDecoder(resp.Body).Decode(&out) != nil {
		return nil
	}
	info, _ := out["info"].(map[string]any)
	return info
}
