// go-peer - a go-libp2p node for lp2p's interop matrix (TCP + Noise + Yamux, identify, ping, perf
// and an echo protocol). It speaks the command-line and JSON-event contract of
// tests/interop/js/peer.mjs (read that header for the full list); in short:
//
//	--listen MADDR (repeatable)  --dial MADDR  --key FILE  --muxer-negotiation noise|mss
//	--ping N  --ping-interval MS  --identify  --perf-upload BYTES  --perf-download BYTES
//	--streams N  --echo-bytes BYTES  --hold MS  --serve  --timeout SEC  --agent STRING
//	--dial-at UNIX_MS  (dial at that wall-clock time: simultaneous-dial tests)
//	--handle-after MS  (start handling /lp2p-test/pushed/1.0.0 MS ms after start: identify push)
//
// Every option also reads from the environment as LP2P_PEER_<NAME> (argv wins).
// Extra: `go-peer ctl [options]` is the stdin-driven node of PEERS-CONTRACT (kad, mdns, gossipsub,
// request-response; ctl.go), `go-peer bench serve|client ...` is the go-libp2p side of bench/run (bench.go), and
// `go-peer --keygen TYPE FILE` writes a libp2p PrivateKey protobuf of TYPE (Ed25519,
// secp256k1, RSA, ECDSA) and prints its peer id.
//
// Output: one JSON object per line on stdout, each with "event" (listening, started,
// connection:open, connection:close, peer:identify, ping, perf, echo, perf:served, echo:served,
// error, done, stopped), with the fields peer.mjs uses.
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
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	tcp "github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

const (
	echoProtocol   = "/lp2p-test/echo/1.0.0"
	perfProtocol   = "/perf/1.0.0"
	pushedProtocol = "/lp2p-test/pushed/1.0.0"
	perfBlock      = 64 * 1024
	defaultAgent   = "go-libp2p/0.49.0"
)

// ---- output ----------------------------------------------------------------------------------
var outMu sync.Mutex

func emit(ev string, fields map[string]any) {
	m := map[string]any{"event": ev}
	for k, v := range fields {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	outMu.Lock()
	os.Stdout.Write(append(b, '\n'))
	outMu.Unlock()
}

func emitError(where string, err error) {
	emit("error", map[string]any{"where": where, "message": err.Error()})
}

// ---- options ---------------------------------------------------------------------------------
var spec = map[string]string{
	"listen": "list", "dial": "str", "key": "str", "muxer-negotiation": "str", "ping": "int",
	"ping-interval": "int", "identify": "flag", "perf-upload": "int", "perf-download": "int",
	"streams": "int", "echo-bytes": "int", "hold": "int", "serve": "flag", "timeout": "int",
	"agent": "str", "dial-at": "int", "handle-after": "int",
}

type options struct {
	str  map[string]string
	num  map[string]int64
	flag map[string]bool
	list map[string][]string
}

func (o *options) set(name, value, where string) error {
	switch spec[name] {
	case "flag":
		o.flag[name] = value == "true" || regexp.MustCompile(`^(?i)(1|true|yes)$`).MatchString(value)
	case "int":
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("%s needs a non-negative integer, got '%s'", where, value)
		}
		o.num[name] = n
	case "list":
		for _, v := range strings.Split(value, ",") {
			if v != "" {
				o.list[name] = append(o.list[name], v)
			}
		}
	case "str":
		o.str[name] = value
	default:
		return fmt.Errorf("unknown option %s", where)
	}
	return nil
}

func envName(name string) string {
	return "LP2P_PEER_" + strings.ReplaceAll(strings.ToUpper(name), "-", "_")
}

func parseOptions(argv []string) (*options, error) {
	o := &options{map[string]string{}, map[string]int64{}, map[string]bool{}, map[string][]string{}}
	for name := range spec {
		if v := os.Getenv(envName(name)); v != "" {
			if err := o.set(name, v, envName(name)); err != nil {
				return nil, err
			}
		}
	}
	fromArgv := map[string]bool{}
	re := regexp.MustCompile(`^--([a-z-]+)(?:=(.*))?$`)
	for i := 0; i < len(argv); i++ {
		m := re.FindStringSubmatch(argv[i])
		if m == nil {
			return nil, fmt.Errorf("unexpected argument '%s'", argv[i])
		}
		name := m[1]
		kind, known := spec[name]
		if !known {
			return nil, fmt.Errorf("unknown option --%s", name)
		}
		value := m[2]
		if !strings.Contains(argv[i], "=") {
			if kind == "flag" {
				value = "true"
			} else if i+1 < len(argv) {
				i++
				value = argv[i]
			} else {
				return nil, fmt.Errorf("--%s needs a value", name)
			}
		}
		if kind == "list" && !fromArgv[name] {
			fromArgv[name] = true
			delete(o.list, name)
		}
		if err := o.set(name, value, "--"+name); err != nil {
			return nil, err
		}
	}
	if o.str["muxer-negotiation"] == "" {
		o.str["muxer-negotiation"] = "noise"
	}
	if mn := o.str["muxer-negotiation"]; mn != "noise" && mn != "mss" {
		return nil, fmt.Errorf("--muxer-negotiation must be noise or mss, got '%s'", mn)
	}
	if _, ok := o.num["echo-bytes"]; !ok {
		o.num["echo-bytes"] = 4096
	}
	if _, ok := o.num["timeout"]; !ok {
		if o.str["dial"] != "" {
			o.num["timeout"] = 60
		}
	}
	if len(o.list["listen"]) == 0 && o.str["dial"] == "" {
		o.list["listen"] = []string{"/ip4/127.0.0.1/tcp/0"}
	}
	return o, nil
}

// ---- keys ------------------------------------------------------------------------------------
func keygen(typ, file string) error {
	kinds := map[string]int{"ed25519": crypto.Ed25519, "secp256k1": crypto.Secp256k1, "rsa": crypto.RSA, "ecdsa": crypto.ECDSA}
	kind, ok := kinds[strings.ToLower(typ)]
	if !ok {
		return fmt.Errorf("unknown key type %s", typ)
	}
	priv, _, err := crypto.GenerateKeyPair(kind, 2048)
	if err != nil {
		return err
	}
	b, err := crypto.MarshalPrivateKey(priv)
	if err != nil {
		return err
	}
	if err := os.WriteFile(file, b, 0o600); err != nil {
		return err
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		return err
	}
	fmt.Println(id.String())
	return nil
}

// ---- stream helpers ---------------------------------------------------------------------------
// echoPayload: the same deterministic, stream-specific bytes as peer.mjs.
func echoPayload(index int, size int) []byte {
	b := make([]byte, size)
	x := uint32((uint64(index+1) * 2654435761) & 0xffffffff)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

func handleEcho(s network.Stream) {
	n, err := io.Copy(s, s)
	if err != nil {
		emitError("echo:serve", err)
		s.Reset()
		return
	}
	s.Close()
	emit("echo:served", map[string]any{"bytes": n})
}

// perf: 8-byte big-endian count of bytes to send back, then the upload until EOF.
func handlePerf(s network.Stream) {
	var head [8]byte
	if _, err := io.ReadFull(s, head[:]); err != nil {
		emitError("perf:serve", fmt.Errorf("perf: stream closed before the 8-byte header: %w", err))
		s.Reset()
		return
	}
	received, err := io.Copy(io.Discard, s)
	if err != nil {
		emitError("perf:serve", err)
		s.Reset()
		return
	}
	toSend := binary.BigEndian.Uint64(head[:])
	block := make([]byte, perfBlock)
	for left := toSend; left > 0; {
		n := uint64(perfBlock)
		if left < n {
			n = left
		}
		if _, err := s.Write(block[:n]); err != nil {
			emitError("perf:serve", err)
			s.Reset()
			return
		}
		left -= n
	}
	s.Close()
	emit("perf:served", map[string]any{"received": received, "sent": toSend})
}

func runPerf(ctx context.Context, h host.Host, p peer.ID, upload, download int64) (map[string]any, error) {
	t0 := time.Now()
	s, err := h.NewStream(ctx, p, perfProtocol)
	if err != nil {
		return nil, err
	}
	var head [8]byte
	binary.BigEndian.PutUint64(head[:], uint64(download))
	if _, err := s.Write(head[:]); err != nil {
		s.Reset()
		return nil, err
	}
	block := make([]byte, perfBlock)
	for left := upload; left > 0; {
		n := int64(perfBlock)
		if left < n {
			n = left
		}
		if _, err := s.Write(block[:n]); err != nil {
			s.Reset()
			return nil, err
		}
		left -= n
	}
	if err := s.CloseWrite(); err != nil {
		s.Reset()
		return nil, err
	}
	t1 := time.Now()
	got, err := io.Copy(io.Discard, s)
	if err != nil {
		s.Reset()
		return nil, err
	}
	s.Close()
	t2 := time.Now()
	if got != download {
		return nil, fmt.Errorf("perf: expected %d bytes back, got %d", download, got)
	}
	return map[string]any{"upload": upload, "download": got, "seconds": t2.Sub(t0).Seconds(),
		"uploadSeconds": t1.Sub(t0).Seconds(), "downloadSeconds": t2.Sub(t1).Seconds()}, nil
}

func runEcho(ctx context.Context, h host.Host, p peer.ID, count, size int) (map[string]any, error) {
	t0 := time.Now()
	errs := make(chan error, count)
	for i := 0; i < count; i++ {
		go func(i int) {
			s, err := h.NewStream(ctx, p, echoProtocol)
			if err != nil {
				errs <- fmt.Errorf("echo stream %d: %w", i, err)
				return
			}
			payload := echoPayload(i, size)
			wrote := make(chan error, 1)
			go func() {
				_, err := s.Write(payload)
				if err == nil {
					err = s.CloseWrite()
				}
				wrote <- err
			}()
			back, err := io.ReadAll(io.LimitReader(s, int64(size)+1))
			if werr := <-wrote; werr != nil && err == nil {
				err = werr
			}
			if err != nil {
				s.Reset()
				errs <- fmt.Errorf("echo stream %d: %w", i, err)
				return
			}
			s.Close()
			if len(back) != size {
				errs <- fmt.Errorf("echo stream %d: sent %d bytes, got %d back", i, size, len(back))
				return
			}
			for k := range back {
				if back[k] != payload[k] {
					errs <- fmt.Errorf("echo stream %d: content differs at byte %d", i, k)
					return
				}
			}
			errs <- nil
		}(i)
	}
	var first error
	failed := 0
	for i := 0; i < count; i++ {
		if err := <-errs; err != nil {
			failed++
			if first == nil {
				first = err
			}
		}
	}
	if failed > 0 {
		return nil, fmt.Errorf("%d/%d echo streams failed; first: %v", failed, count, first)
	}
	return map[string]any{"streams": count, "bytes": count * size, "seconds": time.Since(t0).Seconds()}, nil
}

// ---- node ------------------------------------------------------------------------------------
func connInfo(c network.Conn) map[string]any {
	st := c.ConnState()
	neg := "mss"
	if st.UsedEarlyMuxerNegotiation {
		neg = "noise"
	}
	dir := "inbound"
	if c.Stat().Direction == network.DirOutbound {
		dir = "outbound"
	}
	return map[string]any{"peer": c.RemotePeer().String(), "addr": c.RemoteMultiaddr().String(),
		"direction": dir, "muxer": string(st.StreamMultiplexer), "encryption": string(st.Security),
		"muxerNegotiation": neg}
}

func addrStrings(as []ma.Multiaddr) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}

func protoStrings(ps []protocol.ID) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, string(p))
	}
	sort.Strings(out)
	return out
}

func main() {
	if len(os.Args) >= 2 && os.Args[1] == "ctl" {
		ctlMain(os.Args[2:])
		return
	}
	if len(os.Args) >= 2 && os.Args[1] == "bench" {
		benchMain(os.Args[2:])
		return
	}
	if len(os.Args) == 4 && os.Args[1] == "--keygen" {
		if err := keygen(os.Args[2], os.Args[3]); err != nil {
			fmt.Fprintf(os.Stderr, "go-peer: %v\n", err)
			os.Exit(1)
		}
		return
	}
	opts, err := parseOptions(os.Args[1:])
	if err != nil {
		emitError("options", err)
		fmt.Fprintf(os.Stderr, "go-peer: %v\n", err)
		os.Exit(2)
	}
	if t := opts.num["timeout"]; t > 0 {
		time.AfterFunc(time.Duration(t)*time.Second, func() {
			emitError("watchdog", fmt.Errorf("timed out after %d s", t))
			emit("done", map[string]any{"ok": false})
			os.Exit(1)
		})
	}
	var priv crypto.PrivKey
	if f := opts.str["key"]; f != "" {
		b, err := os.ReadFile(f)
		if err == nil {
			priv, err = crypto.UnmarshalPrivateKey(b)
		}
		if err != nil {
			emitError("key", err)
			os.Exit(2)
		}
	} else if priv, _, err = crypto.GenerateEd25519Key(nil); err != nil {
		emitError("key", err)
		os.Exit(1)
	}
	agent := defaultAgent
	if a, ok := opts.str["agent"]; ok {
		agent = a
	}
	// Noise: with "noise" go-libp2p offers its muxers inside the handshake (the stream_muxers
	// extension, early negotiation); with "mss" the Noise transport gets no muxer list, so it
	// offers none and selects none, and the muxer is negotiated with multistream-select.
	security := libp2p.Security(noise.ID, noise.New)
	if opts.str["muxer-negotiation"] == "mss" {
		security = libp2p.Security(noise.ID, func(id protocol.ID, pk crypto.PrivKey) (*noise.Transport, error) {
			return noise.New(id, pk, nil)
		})
	}
	h, err := libp2p.New(
		libp2p.Identity(priv),
		libp2p.ListenAddrStrings(opts.list["listen"]...),
		libp2p.Transport(tcp.NewTCPTransport),
		security,
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.UserAgent(agent),
		libp2p.ProtocolVersion("ipfs/0.1.0"),
		libp2p.ResourceManager(&network.NullResourceManager{}),
		libp2p.DisableRelay(),
		libp2p.Ping(true),
	)
	if err != nil {
		emitError("main", err)
		emit("done", map[string]any{"ok": false})
		os.Exit(1)
	}

	h.Network().Notify(&network.NotifyBundle{
		ConnectedF:    func(_ network.Network, c network.Conn) { emit("connection:open", connInfo(c)) },
		DisconnectedF: func(_ network.Network, c network.Conn) { emit("connection:close", connInfo(c)) },
	})
	var idMu sync.Mutex
	identified := map[peer.ID]bool{}
	idWaiters := map[peer.ID]chan struct{}{}
	sub, err := h.EventBus().Subscribe(new(event.EvtPeerIdentificationCompleted))
	if err != nil {
		emitError("main", err)
		os.Exit(1)
	}
	go func() {
		for e := range sub.Out() {
			r := e.(event.EvtPeerIdentificationCompleted)
			obs := any(nil)
			if r.ObservedAddr != nil {
				obs = r.ObservedAddr.String()
			}
			emit("peer:identify", map[string]any{"peer": r.Peer.String(), "agentVersion": r.AgentVersion,
				"protocolVersion": r.ProtocolVersion, "protocols": protoStrings(r.Protocols),
				"listenAddrs": addrStrings(r.ListenAddrs), "observedAddr": obs,
				"signedPeerRecord": r.SignedPeerRecord != nil})
			idMu.Lock()
			identified[r.Peer] = true
			if w := idWaiters[r.Peer]; w != nil {
				close(w)
				delete(idWaiters, r.Peer)
			}
			idMu.Unlock()
		}
	}()

	h.SetStreamHandler(echoProtocol, handleEcho)
	h.SetStreamHandler(perfProtocol, handlePerf)
	if ms, ok := opts.num["handle-after"]; ok {
		time.AfterFunc(time.Duration(ms)*time.Millisecond, func() {
			h.SetStreamHandler(pushedProtocol, func(s network.Stream) { s.Close() })
		})
	}

	if len(opts.list["listen"]) > 0 {
		addrs := []string{}
		for _, a := range h.Addrs() {
			addrs = append(addrs, a.String()+"/p2p/"+h.ID().String())
		}
		emit("listening", map[string]any{"peerId": h.ID().String(), "addrs": addrs})
	} else {
		emit("started", map[string]any{"peerId": h.ID().String()})
	}

	stop := func(code int) {
		if err := h.Close(); err != nil {
			emitError("stop", err)
		}
		emit("stopped", nil)
		os.Exit(code)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() { <-sigs; stop(0) }()
	parent := os.Getppid()
	go func() {
		for range time.Tick(500 * time.Millisecond) {
			if os.Getppid() != parent {
				stop(0)
			}
		}
	}()

	if opts.str["dial"] == "" {
		select {}
	}

	ok := true
	step := func(where string, fn func() error) {
		if err := fn(); err != nil {
			ok = false
			emitError(where, err)
		}
	}
	ctx := context.Background()
	if at, has := opts.num["dial-at"]; has {
		time.Sleep(time.Until(time.UnixMilli(at)))
	}
	var p peer.ID
	step("dial", func() error {
		maddr, err := ma.NewMultiaddr(opts.str["dial"])
		if err != nil {
			return err
		}
		ai, err := peer.AddrInfoFromP2pAddr(maddr)
		if err != nil {
			return fmt.Errorf("dial address needs /p2p/<id>: %w", err)
		}
		dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := h.Connect(dctx, *ai); err != nil {
			return err
		}
		p = ai.ID
		return nil
	})
	if p != "" {
		if opts.flag["identify"] {
			step("identify", func() error {
				idMu.Lock()
				if identified[p] {
					idMu.Unlock()
					return nil
				}
				w := make(chan struct{})
				idWaiters[p] = w
				idMu.Unlock()
				select {
				case <-w:
					return nil
				case <-time.After(20 * time.Second):
					return errors.New("no identify result within 20 s")
				}
			})
		}
		interval := time.Duration(opts.num["ping-interval"]) * time.Millisecond
		for i := int64(0); i < opts.num["ping"]; i++ {
			if i > 0 && interval > 0 {
				time.Sleep(interval)
			}
			step("ping", func() error {
				pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				r := <-ping.Ping(pctx, h, p)
				if r.Error != nil {
					return r.Error
				}
				emit("ping", map[string]any{"seq": i, "rtt": float64(r.RTT.Microseconds()) / 1000})
				return nil
			})
		}
		_, up := opts.num["perf-upload"]
		_, down := opts.num["perf-download"]
		if up || down {
			step("perf", func() error {
				r, err := runPerf(ctx, h, p, opts.num["perf-upload"], opts.num["perf-download"])
				if err == nil {
					emit("perf", r)
				}
				return err
			})
		}
		if n, has := opts.num["streams"]; has {
			step("echo", func() error {
				r, err := runEcho(ctx, h, p, int(n), int(opts.num["echo-bytes"]))
				if err == nil {
					emit("echo", r)
				}
				return err
			})
		}
		if hold := opts.num["hold"]; hold > 0 {
			time.Sleep(time.Duration(hold) * time.Millisecond)
		}
	}
	emit("done", map[string]any{"ok": ok})
	if opts.flag["serve"] {
		select {}
	}
	code := 0
	if !ok {
		code = 1
	}
	stop(code)
}
