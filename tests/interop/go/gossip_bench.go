// gossip_bench.go - `go-peer bench gossip [--nodes 50] [--extra 2] [--count 200] [--burst 500] [--procs 1]`:
// the go-libp2p-pubsub counterpart of bench/bench_gossip.c, so that go's router can be compared with lp2p's
// in the same network: N go-libp2p hosts in this process on loopback TCP (Noise, Yamux), one topic, every
// host subscribed; topology a chain plus EXTRA random links per host drawn with the same xorshift generator
// and seed as bench_gossip.c (so the same graph); go-libp2p-pubsub defaults (GossipSub v1.1+, D 6,
// heartbeat 1 s, flood publishing, StrictSign). GOMAXPROCS = --procs (1: like lp2p's 50 nodes on one loop).
//
//	latency    --count 1 KiB messages one at a time from random hosts: publish -> the LAST of the N-1
//	           other subscribers got it (Subscription.Next), p50/p99/max; delivery ratio
//	duplicates RawTracer DuplicateMessage (a copy of an already seen message arrived) per
//	           DeliverMessage of a message received from another host (the publisher's own delivery
//	           to its local subscription is not counted), summed over all hosts: the same ratio as
//	           lp2p's router stats (duplicates / delivered)
//	throughput --burst messages back to back from random hosts: messages/s until all delivered
//
// Output: one JSON object per line {"bench":"gossip", "phase":..., ...} and a summary on stderr.
package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

type gbTracer struct {
	self      peer.ID
	mesh      atomic.Int64
	delivered *atomic.Int64
	dups      *atomic.Int64
}

func (t *gbTracer) Graft(peer.ID, string)                    { t.mesh.Add(1) }
func (t *gbTracer) Prune(peer.ID, string)                    { t.mesh.Add(-1) }
func (t *gbTracer) AddPeer(peer.ID, protocol.ID)             {}
func (t *gbTracer) RemovePeer(peer.ID)                       {}
func (t *gbTracer) Join(string)                              {}
func (t *gbTracer) Leave(string)                             {}
func (t *gbTracer) ValidateMessage(*pubsub.Message)          {}
func (t *gbTracer) RejectMessage(*pubsub.Message, string)    {}
func (t *gbTracer) ThrottlePeer(peer.ID)                     {}
func (t *gbTracer) RecvRPC(*pubsub.RPC)                      {}
func (t *gbTracer) SendRPC(*pubsub.RPC, peer.ID)             {}
func (t *gbTracer) DropRPC(*pubsub.RPC, peer.ID)             {}
func (t *gbTracer) UndeliverableMessage(*pubsub.Message)     {}
func (t *gbTracer) OnNewOutboundStream(peer.ID, protocol.ID) {}
func (t *gbTracer) OnClosedOutboundStream(peer.ID)           {}
func (t *gbTracer) DuplicateMessage(*pubsub.Message)         { t.dups.Add(1) }
func (t *gbTracer) DeliverMessage(m *pubsub.Message) {
	if m.ReceivedFrom != t.self {
		t.delivered.Add(1)
	}
}

const gbMaxMsg = 8000

func gossipBench(num func(string, int64) int64) {
	N := int(num("nodes", 50))
	extra := int(num("extra", 2))
	K := int(num("count", 200))
	M := int(num("burst", 500))
	runtime.GOMAXPROCS(int(num("procs", 1)))
	if K+M > gbMaxMsg {
		M = gbMaxMsg - K
	}
	var delivered, dups atomic.Int64
	hosts := make([]host.Host, N)
	tracers := make([]*gbTracer, N)
	topics := make([]*pubsub.Topic, N)
	ctx := context.Background()

	var mu sync.Mutex
	cond := sync.NewCond(&mu)
	got := make([]int, gbMaxMsg)
	last := make([]time.Time, gbMaxMsg)
	recv := make([][]uint16, N)

	for i := 0; i < N; i++ {
		h, err := benchHost([]string{"/ip4/127.0.0.1/tcp/0"})
		if err != nil {
			fmt.Fprintf(os.Stderr, "go-peer bench gossip: host %d: %v\n", i, err)
			os.Exit(1)
		}
		hosts[i] = h
		tracers[i] = &gbTracer{self: h.ID(), delivered: &delivered, dups: &dups}
		ps, err := pubsub.NewGossipSub(ctx, h, pubsub.WithMessageSigning(true),
			pubsub.WithStrictSignatureVerification(true), pubsub.WithRawTracer(tracers[i]))
		if err != nil {
			fmt.Fprintf(os.Stderr, "go-peer bench gossip: pubsub %d: %v\n", i, err)
			os.Exit(1)
		}
		t, err := ps.Join("bench")
		if err == nil {
			topics[i] = t
			var s *pubsub.Subscription
			if s, err = t.Subscribe(); err == nil {
				recv[i] = make([]uint16, gbMaxMsg)
				go func(i int, s *pubsub.Subscription) {
					for {
						m, err := s.Next(ctx)
						if err != nil {
							return
						}
						if m.ReceivedFrom == hosts[i].ID() {
							continue
						}
						k := gbIndex(m.Data)
						if k < 0 {
							continue
						}
						now := time.Now()
						mu.Lock()
						recv[i][k]++
						got[k]++
						last[k] = now
						cond.Broadcast()
						mu.Unlock()
					}
				}(i, s)
			}
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "go-peer bench gossip: topic %d: %v\n", i, err)
			os.Exit(1)
		}
	}
	// the topology of bench_gossip.c: same generator, seed and draw order
	rs := uint64(88172645463325252)
	rnd := func() uint32 {
		rs ^= rs << 13
		rs ^= rs >> 7
		rs ^= rs << 17
		return uint32(rs >> 11)
	}
	links := 0
	connect := func(a, b int) {
		links++
		go func() {
			c, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := hosts[a].Connect(c, peer.AddrInfo{ID: hosts[b].ID(), Addrs: hosts[b].Addrs()}); err != nil {
				fmt.Fprintf(os.Stderr, "go-peer bench gossip: connect %d -> %d: %v\n", a, b, err)
			}
		}()
	}
	for i := 1; i < N; i++ {
		connect(i, i-1)
		for e := 0; e < extra; e++ {
			j := int(rnd() % uint32(N))
			if j == i || j == i-1 {
				continue
			}
			connect(i, j)
		}
	}
	time.Sleep(500 * time.Millisecond)
	ready := false
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		ready = true
		for _, t := range tracers {
			if t.mesh.Load() < 3 {
				ready = false
			}
		}
		if ready {
			break
		}
	}
	time.Sleep(time.Second)
	fmt.Fprintf(os.Stderr, "# %d go hosts, %d links, meshes formed: %v, GOMAXPROCS %d\n", N, links, ready,
		runtime.GOMAXPROCS(0))

	payload := func(k int) []byte {
		d := make([]byte, 1024)
		for i := range d {
			d[i] = 'g'
		}
		copy(d, fmt.Sprintf("%06d:", k))
		return d
	}
	publish := func(k int) {
		p := int(rnd() % uint32(N))
		mu.Lock()
		recv[p][k] = 1
		mu.Unlock()
		if err := topics[p].Publish(ctx, payload(k)); err != nil {
			fmt.Fprintf(os.Stderr, "go-peer bench gossip: publish: %v\n", err)
		}
	}
	// waitFor: until every message in [from, to) reached N-1 subscribers, or the deadline
	waitFor := func(from, to int, deadline time.Time) bool {
		timer := time.AfterFunc(time.Until(deadline), func() { mu.Lock(); cond.Broadcast(); mu.Unlock() })
		defer timer.Stop()
		mu.Lock()
		defer mu.Unlock()
		for {
			done := true
			for k := from; k < to; k++ {
				if got[k] < N-1 {
					done = false
					break
				}
			}
			if done {
				return true
			}
			if !time.Now().Before(deadline) {
				return false
			}
			cond.Wait()
		}
	}

	d0, u0 := delivered.Load(), dups.Load()
	lat := make([]float64, 0, K)
	lost := 0
	for k := 0; k < K; k++ {
		t0 := time.Now()
		publish(k)
		if !waitFor(k, k+1, t0.Add(5*time.Second)) {
			lost++
		}
		mu.Lock()
		l := last[k]
		mu.Unlock()
		if l.IsZero() {
			l = time.Now()
		}
		lat = append(lat, l.Sub(t0).Seconds())
	}
	time.Sleep(300 * time.Millisecond)
	d1, u1 := delivered.Load(), dups.Load()
	sort.Float64s(lat)
	mu.Lock()
	sum := 0
	for k := 0; k < K; k++ {
		sum += got[k]
	}
	mu.Unlock()
	ratio := float64(sum) / float64(K*(N-1))
	dpm := 0.0
	if d1 > d0 {
		dpm = float64(u1-u0) / float64(d1-d0)
	}
	benchOut(map[string]any{"bench": "gossip", "phase": "latency", "impl": "go", "nodes": N, "links": links,
		"p50": lat[K/2], "p99": lat[K*99/100], "max": lat[K-1], "ratio": ratio, "dups": dpm, "lost": lost,
		"procs": runtime.GOMAXPROCS(0)})

	d0, u0 = delivered.Load(), dups.Load()
	t0 := time.Now()
	for k := K; k < K+M; k++ {
		publish(k)
	}
	all := waitFor(K, K+M, time.Now().Add(60*time.Second))
	time.Sleep(300 * time.Millisecond)
	d1, u1 = delivered.Load(), dups.Load()
	mu.Lock()
	var t1 time.Time
	sum = 0
	for k := K; k < K+M; k++ {
		if last[k].After(t1) {
			t1 = last[k]
		}
		sum += got[k]
	}
	app := 0
	for i := range recv {
		for k := 0; k < K+M; k++ {
			if recv[i][k] > 1 {
				app++
			}
		}
	}
	mu.Unlock()
	dpm = 0
	if d1 > d0 {
		dpm = float64(u1-u0) / float64(d1-d0)
	}
	rate := 0.0
	if all && t1.After(t0) {
		rate = float64(M) / t1.Sub(t0).Seconds()
	}
	benchOut(map[string]any{"bench": "gossip", "phase": "burst", "impl": "go", "nodes": N, "rate": rate,
		"ratio": float64(sum) / float64(M*(N-1)), "dups": dpm, "complete": all, "app_duplicates": app})
	for _, h := range hosts {
		h.Close()
	}
}

func gbIndex(d []byte) int {
	if len(d) < 7 || d[6] != ':' {
		return -1
	}
	k := 0
	for _, c := range d[:6] {
		if c < '0' || c > '9' {
			return -1
		}
		k = k*10 + int(c-'0')
	}
	if k >= gbMaxMsg {
		return -1
	}
	return k
}
