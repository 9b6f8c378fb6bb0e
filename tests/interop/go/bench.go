// bench.go - `go-peer bench serve|client ...`: the go-libp2p side of bench/run, with the command line and
// JSON lines of bench/bench_swarm.c and bench/js/bench-peer.mjs (read bench_swarm.c's header):
//
//	go-peer bench serve [--listen MADDR]...
//	go-peer bench client --dial MADDR/p2p/ID --test bulk|connrate|echo|ping|streams [options] [--timeout SEC]
//
// TCP + Noise + Yamux; the server serves /perf/1.0.0, /ipfs/ping/1.0.0 and /lp2p-test/echo/1.0.0 with no
// resource or connection limits. "cpu" is this process's user+system CPU seconds over the measured interval.
// (The "conns" test is run by lp2p's client against every listener, so it is not implemented here.)
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	tcp "github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

func benchOut(m map[string]any) {
	b, _ := json.Marshal(m)
	outMu.Lock()
	os.Stdout.Write(append(b, '\n'))
	outMu.Unlock()
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

func stats(name string, v []float64) map[string]any {
	out := map[string]any{}
	if len(v) == 0 {
		return out
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	n := len(s)
	sum := 0.0
	for _, x := range s {
		sum += x
	}
	out[name+"_p50"] = s[n/2]
	out[name+"_p90"] = s[n*9/10]
	out[name+"_p99"] = s[n*99/100]
	out[name+"_mean"] = sum / float64(n)
	return out
}

func benchHost(listen []string) (host.Host, error) {
	cm, err := connmgr.NewConnManager(1<<30, 1<<30)
	if err != nil {
		return nil, err
	}
	opts := []libp2p.Option{
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ResourceManager(&network.NullResourceManager{}),
		libp2p.ConnectionManager(cm),
		libp2p.DisableRelay(),
		libp2p.Ping(true),
	}
	if len(listen) > 0 {
		opts = append(opts, libp2p.ListenAddrStrings(listen...))
	} else {
		opts = append(opts, libp2p.NoListenAddrs)
	}
	return libp2p.New(opts...)
}

func benchMain(args []string) {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: go-peer bench serve|client ...")
		os.Exit(2)
	}
	o := map[string]string{}
	var listen []string
	for i := 1; i < len(args); i++ {
		name := strings.TrimPrefix(args[i], "--")
		if name == args[i] || i+1 >= len(args) {
			fmt.Fprintf(os.Stderr, "go-peer bench: bad argument %s\n", args[i])
			os.Exit(2)
		}
		i++
		if name == "listen" {
			listen = append(listen, args[i])
		} else {
			o[name] = args[i]
		}
	}
	num := func(k string, def int64) int64 {
		if v, ok := o[k]; ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err == nil {
				return n
			}
		}
		return def
	}
	switch args[0] {
	case "gossip":
		gossipBench(num)
	case "serve":
		if len(listen) == 0 {
			listen = []string{"/ip4/127.0.0.1/tcp/0"}
		}
		h, err := benchHost(listen)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		h.SetStreamHandler(echoProtocol, func(s network.Stream) { io.Copy(s, s); s.Close() })
		h.SetStreamHandler(perfProtocol, func(s network.Stream) { benchServePerf(s) })
		addrs := []string{}
		for _, a := range h.Addrs() {
			addrs = append(addrs, a.String()+"/p2p/"+h.ID().String())
		}
		benchOut(map[string]any{"event": "listening", "peer": h.ID().String(), "pid": os.Getpid(), "addrs": addrs})
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
		parent := os.Getppid()
		for {
			select {
			case <-sigs:
				h.Close()
				benchOut(map[string]any{"event": "stopped"})
				os.Exit(0)
			case <-time.After(500 * time.Millisecond):
				if os.Getppid() != parent {
					os.Exit(0)
				}
			}
		}
	case "client":
		test := o["test"]
		timeout := num("timeout", 120)
		time.AfterFunc(time.Duration(timeout)*time.Second, func() {
			benchOut(map[string]any{"test": test, "error": fmt.Sprintf("timed out after %d s", timeout)})
			os.Exit(1)
		})
		if err := benchClient(test, o["dial"], num); err != nil {
			benchOut(map[string]any{"test": test, "error": err.Error()})
			os.Exit(1)
		}
		os.Exit(0)
	default:
		fmt.Fprintln(os.Stderr, "usage: go-peer bench serve|client ...")
		os.Exit(2)
	}
}

func benchServePerf(s network.Stream) {
	var head [8]byte
	if _, err := io.ReadFull(s, head[:]); err != nil {
		s.Reset()
		return
	}
	if _, err := io.Copy(io.Discard, s); err != nil {
		s.Reset()
		return
	}
	block := make([]byte, perfBlock)
	for left := binary.BigEndian.Uint64(head[:]); left > 0; {
		n := uint64(perfBlock)
		if left < n {
			n = left
		}
		if _, err := s.Write(block[:n]); err != nil {
			s.Reset()
			return
		}
		left -= n
	}
	s.Close()
}

// perfOnce: one perf stream; returns the bytes received back.
func perfOnce(ctx context.Context, h host.Host, p peer.ID, up, down int64) error {
	s, err := h.NewStream(ctx, p, perfProtocol)
	if err != nil {
		return err
	}
	var head [8]byte
	binary.BigEndian.PutUint64(head[:], uint64(down))
	if _, err := s.Write(head[:]); err != nil {
		s.Reset()
		return err
	}
	block := make([]byte, perfBlock)
	for left := up; left > 0; {
		n := int64(perfBlock)
		if left < n {
			n = left
		}
		if _, err := s.Write(block[:n]); err != nil {
			s.Reset()
			return err
		}
		left -= n
	}
	if err := s.CloseWrite(); err != nil {
		s.Reset()
		return err
	}
	got, err := io.Copy(io.Discard, s)
	if err != nil {
		s.Reset()
		return err
	}
	s.Close()
	if got != down {
		return fmt.Errorf("perf: expected %d bytes back, got %d", down, got)
	}
	return nil
}

func benchClient(test, dial string, num func(string, int64) int64) error {
	maddr, err := ma.NewMultiaddr(dial)
	if err != nil {
		return err
	}
	ai, err := peer.AddrInfoFromP2pAddr(maddr)
	if err != nil {
		return err
	}
	ctx := context.Background()
	connect := func() (host.Host, error) {
		h, err := benchHost(nil)
		if err != nil {
			return nil, err
		}
		if err := h.Connect(ctx, *ai); err != nil {
			h.Close()
			return nil, err
		}
		return h, nil
	}
	switch test {
	case "bulk":
		h, err := connect()
		if err != nil {
			return err
		}
		up, down := num("bytes", 0), num("download", 0)
		c0, t0 := cpuSeconds(), time.Now()
		if err := perfOnce(ctx, h, ai.ID, up, down); err != nil {
			return err
		}
		benchOut(map[string]any{"test": "bulk", "bytes": up, "download": down,
			"seconds": time.Since(t0).Seconds(), "cpu": cpuSeconds() - c0})
	case "streams":
		h, err := connect()
		if err != nil {
			return err
		}
		n, b := num("streams", 1000), num("bytes", 65536)
		c0, t0 := cpuSeconds(), time.Now()
		var wg sync.WaitGroup
		var mu sync.Mutex
		var first error
		for i := int64(0); i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := perfOnce(ctx, h, ai.ID, b, 0); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if first != nil {
			return first
		}
		benchOut(map[string]any{"test": "streams", "streams": n, "bytes": n * b,
			"seconds": time.Since(t0).Seconds(), "cpu": cpuSeconds() - c0, "retries": 0})
	case "echo":
		h, err := connect()
		if err != nil {
			return err
		}
		count, size := num("count", 1000), num("size", 32)
		s, err := h.NewStream(ctx, ai.ID, echoProtocol)
		if err != nil {
			return err
		}
		buf, back := make([]byte, size), make([]byte, size)
		lat := make([]float64, 0, count)
		c0 := cpuSeconds()
		for i := int64(0); i < count; i++ {
			t := time.Now()
			if _, err := s.Write(buf); err != nil {
				return err
			}
			if _, err := io.ReadFull(s, back); err != nil {
				return err
			}
			lat = append(lat, time.Since(t).Seconds())
		}
		s.Close()
		m := stats("rtt", lat)
		m["test"], m["count"], m["size"], m["cpu"] = "echo", count, size, cpuSeconds()-c0
		benchOut(m)
	case "ping":
		h, err := connect()
		if err != nil {
			return err
		}
		count := num("count", 200)
		wall, rtt := make([]float64, 0, count), make([]float64, 0, count)
		c0 := cpuSeconds()
		for i := int64(0); i < count; i++ {
			t := time.Now()
			pctx, cancel := context.WithCancel(ctx)
			r := <-ping.Ping(pctx, h, ai.ID) // a new stream each call
			cancel()
			if r.Error != nil {
				return r.Error
			}
			wall = append(wall, time.Since(t).Seconds())
			rtt = append(rtt, r.RTT.Seconds())
		}
		m := stats("wall", wall)
		for k, v := range stats("rtt", rtt) {
			m[k] = v
		}
		m["test"], m["count"], m["cpu"] = "ping", count, cpuSeconds()-c0
		benchOut(m)
	case "connrate":
		count, conc, secs := num("count", 100), num("concurrency", 1), num("seconds", 0)
		hosts := make([]host.Host, conc)
		for i := range hosts {
			if hosts[i], err = benchHost(nil); err != nil {
				return err
			}
		}
		var mu sync.Mutex
		lat := []float64{}
		errs := 0
		var deadline time.Time
		if secs > 0 {
			deadline = time.Now().Add(time.Duration(secs) * time.Second)
		}
		next := int64(0)
		c0, t0 := cpuSeconds(), time.Now()
		var wg sync.WaitGroup
		for _, h := range hosts {
			wg.Add(1)
			go func(h host.Host) {
				defer wg.Done()
				for {
					mu.Lock()
					if next >= count || (!deadline.IsZero() && time.Now().After(deadline)) {
						mu.Unlock()
						return
					}
					next++
					mu.Unlock()
					t := time.Now()
					err := h.Connect(ctx, *ai)
					d := time.Since(t).Seconds()
					mu.Lock()
					if err != nil {
						errs++
					} else {
						lat = append(lat, d)
					}
					mu.Unlock()
					h.Network().ClosePeer(ai.ID)
					h.Peerstore().RemovePeer(ai.ID)
				}
			}(h)
		}
		wg.Wait()
		if len(lat) == 0 {
			return errors.New("connrate: no connection succeeded")
		}
		m := stats("lat", lat)
		m["test"], m["count"], m["concurrency"], m["seconds"] = "connrate", len(lat), conc, time.Since(t0).Seconds()
		m["cpu"], m["errors"] = cpuSeconds()-c0, errs
		benchOut(m)
	default:
		return fmt.Errorf("unknown or unsupported test '%s'", test)
	}
	return nil
}
