// pacer.go — the send clock. A few goroutines (one per shard of peers)
// wake every tick (default 5 ms) and send what fell due on each of their
// peers. One timer per peer and medium would wake the process ~80 times a
// second per PeerConnection; context switches are what a generator built on
// per-packet goroutines pays most for (bench/README.md), so sends are
// quantised to the tick instead: a packet leaves at most one tick late,
// while each peer keeps its own phase and exact mean rate.
package main

import (
	"sync"
	"time"
)

type Pacer struct {
	tick   time.Duration
	mu     sync.Mutex
	shards []*shard
	next   int
}

type shard struct {
	mu    sync.Mutex
	peers map[*Peer]*sender
	wake  chan struct{}
	once  sync.Once
}

func NewPacer(tick time.Duration, shards int) *Pacer {
	if shards < 1 {
		shards = 1
	}
	pc := &Pacer{tick: tick}
	for i := 0; i < shards; i++ {
		pc.shards = append(pc.shards, &shard{peers: map[*Peer]*sender{}})
	}
	return pc
}

// Add starts sending for p (on a shard chosen round robin) until p.stop closes.
func (pc *Pacer) Add(p *Peer) {
	pc.mu.Lock()
	sh := pc.shards[pc.next%len(pc.shards)]
	pc.next++
	pc.mu.Unlock()
	sh.mu.Lock()
	sh.peers[p] = p.newSender(time.Now())
	sh.mu.Unlock()
	sh.once.Do(func() { go sh.run(pc.tick) })
}

func (sh *shard) run(tick time.Duration) {
	t := time.NewTicker(tick)
	defer t.Stop()
	var batch []*Peer
	for now := range t.C {
		batch = batch[:0]
		sh.mu.Lock()
		for p := range sh.peers {
			select {
			case <-p.stop:
				delete(sh.peers, p)
				continue
			default:
			}
			batch = append(batch, p)
		}
		sh.mu.Unlock()
		for _, p := range batch {
			sh.mu.Lock()
			s := sh.peers[p]
			sh.mu.Unlock()
			if s != nil {
				p.tick(s, now)
			}
		}
	}
}
