// ctl.go - `go-peer ctl [options]`: a long-running go-libp2p node driven by commands on stdin,
// speaking the contract of PEERS-CONTRACT (tests/interop/lib_peer.sh documents the helpers):
// Kademlia (go-libp2p-kad-dht), mDNS (go-libp2p p2p/discovery/mdns), gossipsub
// (go-libp2p-pubsub) and a JSON request-response protocol, plus dial/ping/peers/quit.
//
// Options (env LP2P_PEER_<NAME> too; argv wins):
//
//	--listen MADDR (repeatable, default /ip4/127.0.0.1/tcp/0)  --key FILE
//	--kad server|client  --kad-protocol ID (default /ipfs/kad/1.0.0)  --bootstrap MADDR (repeatable)
//	--mdns  --mdns-dial  --pubsub  --reqresp PROTOCOL (repeatable)  --timeout SEC
//
// Events and commands: see the contract (one JSON object per line on stdout, "event" field).
package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	tcp "github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

const (
	defaultKadProtocol = "/ipfs/kad/1.0.0"
	opTimeout          = 30 * time.Second
	maxReqResp         = 1 << 20
)

var ctlSpec = map[string]string{
	"listen": "list", "key": "str", "kad": "str", "kad-protocol": "str", "bootstrap": "list",
	"mdns": "flag", "mdns-dial": "flag", "pubsub": "flag", "reqresp": "list", "timeout": "int",
}

// ---- gossipsub mesh tracking (go-libp2p-pubsub reports GRAFT/PRUNE to a RawTracer) ----------
type meshTracer struct {
	mu   sync.Mutex
	mesh map[string]map[peer.ID]bool
}

func (t *meshTracer) Graft(p peer.ID, topic string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mesh[topic] == nil {
		t.mesh[topic] = map[peer.ID]bool{}
	}
	t.mesh[topic][p] = true
}
func (t *meshTracer) Prune(p peer.ID, topic string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.mesh[topic], p)
}
func (t *meshTracer) Leave(topic string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.mesh, topic)
}
func (t *meshTracer) dropPeer(p peer.ID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, m := range t.mesh {
		delete(m, p)
	}
}
func (t *meshTracer) peers(topic string) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := []string{}
	for p := range t.mesh[topic] {
		out = append(out, p.String())
	}
	sort.Strings(out)
	return out
}
func (t *meshTracer) OnNewOutboundStream(peer.ID, protocol.ID) {}
func (t *meshTracer) OnClosedOutboundStream(peer.ID)           {}
func (t *meshTracer) Join(string)                              {}
func (t *meshTracer) ValidateMessage(*pubsub.Message)          {}
func (t *meshTracer) DeliverMessage(*pubsub.Message)           {}
func (t *meshTracer) RejectMessage(*pubsub.Message, string)    {}
func (t *meshTracer) DuplicateMessage(*pubsub.Message)         {}
func (t *meshTracer) ThrottlePeer(peer.ID)                     {}
func (t *meshTracer) RecvRPC(*pubsub.RPC)                      {}
func (t *meshTracer) SendRPC(*pubsub.RPC, peer.ID)             {}
func (t *meshTracer) DropRPC(*pubsub.RPC, peer.ID)             {}
func (t *meshTracer) UndeliverableMessage(*pubsub.Message)     {}

type mdnsNotifee struct {
	h    host.Host
	dial bool
}

func (n *mdnsNotifee) HandlePeerFound(ai peer.AddrInfo) {
	if ai.ID == n.h.ID() {
		return
	}
	emit("peer-discovered", map[string]any{"peer": ai.ID.String(), "addrs": addrStrings(ai.Addrs), "source": "mdns"})
	if n.dial {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
			defer cancel()
			if err := n.h.Connect(ctx, ai); err != nil {
				emitError("mdns-dial", err)
			}
		}()
	}
}

// splitP2p: MADDR with /p2p/ID -> AddrInfo (address without the /p2p part).
func splitP2p(s string) (peer.AddrInfo, error) {
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		return peer.AddrInfo{}, err
	}
	ai, err := peer.AddrInfoFromP2pAddr(m)
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("address needs /p2p/<id>: %w", err)
	}
	return *ai, nil
}

func errFields(fields map[string]any, err error) map[string]any {
	if err != nil {
		fields["ok"] = false
		fields["error"] = err.Error()
	} else {
		fields["ok"] = true
	}
	return fields
}

type ctlNode struct {
	h      host.Host
	kad    *dht.IpfsDHT
	ps     *pubsub.PubSub
	tracer *meshTracer
	mu     sync.Mutex
	topics map[string]*pubsub.Topic
	subs   map[string]*pubsub.Subscription
}

func ctlMain(argv []string) {
	spec = ctlSpec
	opts, err := parseOptions(argv)
	if err != nil {
		emitError("options", err)
		fmt.Fprintf(os.Stderr, "go-peer ctl: %v\n", err)
		os.Exit(2)
	}
	if k := opts.str["kad"]; k != "" && k != "server" && k != "client" {
		fmt.Fprintf(os.Stderr, "go-peer ctl: --kad must be server or client, got '%s'\n", k)
		os.Exit(2)
	}
	if t := opts.num["timeout"]; t > 0 {
		time.AfterFunc(time.Duration(t)*time.Second, func() {
			emitError("watchdog", fmt.Errorf("timed out after %d s", t))
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
	h, err := libp2p.New(
		libp2p.Identity(priv),
		libp2p.ListenAddrStrings(opts.list["listen"]...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.UserAgent(defaultAgent),
		libp2p.ResourceManager(&network.NullResourceManager{}),
		libp2p.DisableRelay(),
		libp2p.Ping(true),
	)
	if err != nil {
		emitError("main", err)
		os.Exit(1)
	}
	n := &ctlNode{h: h, topics: map[string]*pubsub.Topic{}, subs: map[string]*pubsub.Subscription{},
		tracer: &meshTracer{mesh: map[string]map[peer.ID]bool{}}}
	h.Network().Notify(&network.NotifyBundle{
		ConnectedF: func(_ network.Network, c network.Conn) { emit("connection:open", connInfo(c)) },
		DisconnectedF: func(nw network.Network, c network.Conn) {
			emit("connection:close", connInfo(c))
			if nw.Connectedness(c.RemotePeer()) != network.Connected {
				n.tracer.dropPeer(c.RemotePeer())
			}
		},
	})
	ctx := context.Background()

	if k := opts.str["kad"]; k != "" {
		mode := dht.ModeServer
		if k == "client" {
			mode = dht.ModeClient
		}
		// go-libp2p-kad-dht v0.42's defaults already keep loopback/private peers (QueryFilter and
		// RoutingTableFilter accept everything, AddressFilter nil); set them explicitly anyway.
		dopts := []dht.Option{dht.Mode(mode), dht.QueryFilter(func(any, peer.AddrInfo) bool { return true }),
			dht.RoutingTableFilter(func(any, peer.ID) bool { return true }), dht.AddressFilter(nil)}
		if p := opts.str["kad-protocol"]; p != "" && p != defaultKadProtocol {
			dopts = append(dopts, dht.V1ProtocolOverride(protocol.ID(p)))
		}
		if n.kad, err = dht.New(h, dopts...); err != nil {
			emitError("kad", err)
			os.Exit(1)
		}
	}
	if opts.flag["pubsub"] {
		n.ps, err = pubsub.NewGossipSub(ctx, h, pubsub.WithMessageSigning(true),
			pubsub.WithStrictSignatureVerification(true), pubsub.WithRawTracer(n.tracer))
		if err != nil {
			emitError("pubsub", err)
			os.Exit(1)
		}
	}
	for _, proto := range opts.list["reqresp"] {
		proto := proto
		h.SetStreamHandler(protocol.ID(proto), func(s network.Stream) { n.serveReqResp(proto, s) })
	}

	addrs := []string{}
	for _, a := range h.Addrs() {
		addrs = append(addrs, a.String()+"/p2p/"+h.ID().String())
	}
	emit("listening", map[string]any{"peerId": h.ID().String(), "addrs": addrs})

	var mdnsSvc interface{ Close() error }
	if opts.flag["mdns"] {
		svc := mdns.NewMdnsService(h, "", &mdnsNotifee{h: h, dial: opts.flag["mdns-dial"]})
		if err := svc.Start(); err != nil {
			emitError("mdns", err)
		} else {
			mdnsSvc = svc
		}
	}

	var stopOnce sync.Once
	stop := func(code int) {
		stopOnce.Do(func() {
			if mdnsSvc != nil {
				mdnsSvc.Close()
			}
			if n.kad != nil {
				n.kad.Close()
			}
			if err := h.Close(); err != nil {
				emitError("stop", err)
			}
			emit("stopped", nil)
			os.Exit(code)
		})
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

	for _, b := range opts.list["bootstrap"] {
		ai, err := splitP2p(b)
		if err != nil {
			emitError("bootstrap", err)
			continue
		}
		h.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.PermanentAddrTTL)
		if n.kad != nil {
			n.kad.RoutingTable().TryAddPeer(ai.ID, true, false)
		}
		go func() {
			cctx, cancel := context.WithTimeout(ctx, opTimeout)
			defer cancel()
			if err := h.Connect(cctx, ai); err != nil {
				emitError("bootstrap", err)
			}
		}()
	}

	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<16), 1<<22)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		verb, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimSpace(rest)
		if verb == "quit" {
			stop(0)
		}
		n.command(verb, rest)
	}
	stop(0) // stdin closed
}

// command runs quick commands in order and the ones that wait on the network in a goroutine.
func (n *ctlNode) command(verb, rest string) {
	args := strings.Fields(rest)
	need := func(k int) bool {
		if len(args) < k {
			emitError("command", fmt.Errorf("%s needs %d argument(s)", verb, k))
			return false
		}
		return true
	}
	needKad := func() bool {
		if n.kad == nil {
			emit(verb, map[string]any{"ok": false, "error": "kad is not enabled (--kad)"})
			return false
		}
		return true
	}
	needPubsub := func(topic string) bool {
		if n.ps == nil {
			emit(verb, map[string]any{"topic": topic, "ok": false, "error": "pubsub is not enabled (--pubsub)"})
			return false
		}
		return true
	}
	async := func(fn func(ctx context.Context)) {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
			defer cancel()
			fn(ctx)
		}()
	}
	switch verb {
	case "dial":
		if !need(1) {
			return
		}
		async(func(ctx context.Context) {
			f := map[string]any{"addr": args[0]}
			ai, err := splitP2p(args[0])
			if err == nil {
				f["peer"] = ai.ID.String()
				err = n.h.Connect(ctx, ai)
			}
			emit("dialed", errFields(f, err))
		})
	case "ping":
		if !need(1) {
			return
		}
		async(func(ctx context.Context) {
			f := map[string]any{"peer": args[0]}
			p, err := n.target(ctx, args[0])
			if err == nil {
				f["peer"] = p.String()
				r := <-ping.Ping(ctx, n.h, p)
				err = r.Error
				if err == nil {
					f["rtt"] = float64(r.RTT.Microseconds()) / 1000
				}
			}
			emit("ping", errFields(f, err))
		})
	case "peers":
		ps := []string{}
		for _, p := range n.h.Network().Peers() {
			ps = append(ps, p.String())
		}
		sort.Strings(ps)
		emit("peers", map[string]any{"count": len(ps), "peers": ps})
	case "kad-add":
		if !need(2) || !needKad() {
			return
		}
		err := func() error {
			p, err := peer.Decode(args[0])
			if err != nil {
				return err
			}
			m, err := ma.NewMultiaddr(args[1])
			if err != nil {
				return err
			}
			if addr, last := ma.SplitLast(m); last != nil && last.Protocol().Code == ma.P_P2P {
				m = addr
			}
			n.h.Peerstore().AddAddr(p, m, peerstore.PermanentAddrTTL)
			_, err = n.kad.RoutingTable().TryAddPeer(p, true, false)
			return err
		}()
		emit("kad-add", errFields(map[string]any{}, err))
	case "kad-bootstrap":
		if !needKad() {
			return
		}
		async(func(ctx context.Context) {
			var err error
			select {
			case err = <-n.kad.RefreshRoutingTable():
			case <-ctx.Done():
				err = ctx.Err()
			}
			emit("kad-bootstrap", errFields(map[string]any{}, err))
		})
	case "kad-find-peer":
		if !need(1) || !needKad() {
			return
		}
		async(func(ctx context.Context) {
			f := map[string]any{"peer": args[0], "addrs": []string{}}
			p, err := peer.Decode(args[0])
			if err == nil {
				var ai peer.AddrInfo
				if ai, err = n.kad.FindPeer(ctx, p); err == nil {
					f["addrs"] = addrStrings(ai.Addrs)
				}
			}
			emit("kad-find-peer", errFields(f, err))
		})
	case "kad-closest":
		if !need(1) || !needKad() {
			return
		}
		async(func(ctx context.Context) {
			f := map[string]any{"peers": []string{}}
			key, err := hex.DecodeString(args[0])
			if err == nil {
				var ps []peer.ID
				if ps, err = n.kad.GetClosestPeers(ctx, string(key)); err == nil {
					out := []string{}
					for _, p := range ps {
						out = append(out, p.String())
					}
					f["peers"] = out
				}
			}
			emit("kad-closest", errFields(f, err))
		})
	case "kad-put":
		if !need(2) || !needKad() {
			return
		}
		async(func(ctx context.Context) {
			key, err := hex.DecodeString(args[0])
			var val []byte
			if err == nil {
				val, err = hex.DecodeString(args[1])
			}
			if err == nil {
				err = n.kad.PutValue(ctx, string(key), val)
			}
			emit("kad-put", errFields(map[string]any{}, err))
		})
	case "kad-get":
		if !need(1) || !needKad() {
			return
		}
		async(func(ctx context.Context) {
			f := map[string]any{}
			key, err := hex.DecodeString(args[0])
			if err == nil {
				var val []byte
				if val, err = n.kad.GetValue(ctx, string(key)); err == nil {
					f["value"] = hex.EncodeToString(val)
				}
			}
			emit("kad-get", errFields(f, err))
		})
	case "kad-provide":
		if !need(1) || !needKad() {
			return
		}
		async(func(ctx context.Context) {
			c, err := cid.Decode(args[0])
			if err == nil {
				err = n.kad.Provide(ctx, c, true)
			}
			emit("kad-provide", errFields(map[string]any{}, err))
		})
	case "kad-find-providers":
		if !need(1) || !needKad() {
			return
		}
		async(func(ctx context.Context) {
			f := map[string]any{"providers": []any{}}
			c, err := cid.Decode(args[0])
			if err == nil {
				var ais []peer.AddrInfo
				if ais, err = n.kad.FindProviders(ctx, c); err == nil {
					out := []any{}
					for _, ai := range ais {
						out = append(out, map[string]any{"peer": ai.ID.String(), "addrs": addrStrings(ai.Addrs)})
					}
					f["providers"] = out
				}
			}
			emit("kad-find-providers", errFields(f, err))
		})
	case "kad-table":
		if !needKad() {
			return
		}
		ps := []string{}
		for _, p := range n.kad.RoutingTable().ListPeers() {
			ps = append(ps, p.String())
		}
		sort.Strings(ps)
		emit("kad-table", map[string]any{"count": len(ps), "peers": ps})
	case "subscribe":
		if !need(1) || !needPubsub(args[0]) {
			return
		}
		emit("subscribed", errFields(map[string]any{"topic": args[0]}, n.subscribe(args[0])))
	case "unsubscribe":
		if !need(1) || !needPubsub(args[0]) {
			return
		}
		n.mu.Lock()
		if s := n.subs[args[0]]; s != nil {
			s.Cancel()
			delete(n.subs, args[0])
		}
		n.mu.Unlock()
		emit("unsubscribed", map[string]any{"topic": args[0], "ok": true})
	case "publish":
		if !need(1) || !needPubsub(args[0]) {
			return
		}
		topic := args[0]
		text := strings.TrimSpace(strings.TrimPrefix(rest, topic))
		t, err := n.join(topic)
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
			err = t.Publish(ctx, []byte(text))
			cancel()
		}
		emit("published", errFields(map[string]any{"topic": topic}, err))
	case "mesh":
		if !need(1) || !needPubsub(args[0]) {
			return
		}
		emit("mesh", map[string]any{"topic": args[0], "peers": n.tracer.peers(args[0])})
	case "request":
		if !need(3) {
			return
		}
		body := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(strings.TrimPrefix(rest, args[0])), args[1]))
		async(func(ctx context.Context) { n.request(ctx, args[0], args[1], body) })
	default:
		emitError("command", fmt.Errorf("unknown command '%s'", verb))
	}
}

// target: a peer id, or a /p2p/ multiaddr that is dialed first.
func (n *ctlNode) target(ctx context.Context, s string) (peer.ID, error) {
	if !strings.HasPrefix(s, "/") {
		return peer.Decode(s)
	}
	ai, err := splitP2p(s)
	if err != nil {
		return "", err
	}
	return ai.ID, n.h.Connect(ctx, ai)
}

func (n *ctlNode) join(topic string) (*pubsub.Topic, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if t := n.topics[topic]; t != nil {
		return t, nil
	}
	t, err := n.ps.Join(topic)
	if err != nil {
		return nil, err
	}
	n.topics[topic] = t
	return t, nil
}

func (n *ctlNode) subscribe(topic string) error {
	t, err := n.join(topic)
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.subs[topic] != nil {
		return nil
	}
	s, err := t.Subscribe()
	if err != nil {
		return err
	}
	n.subs[topic] = s
	go func() {
		for {
			m, err := s.Next(context.Background())
			if err != nil {
				return // cancelled
			}
			if m.ReceivedFrom == n.h.ID() {
				continue // our own publish
			}
			emit("gossip-message", map[string]any{"topic": topic, "from": m.GetFrom().String(),
				"id": hex.EncodeToString([]byte(m.ID)), "data": string(m.Data)})
		}
	}()
	return nil
}

// ---- request-response (json codec: request to EOF, response to EOF) --------------------------
func (n *ctlNode) serveReqResp(proto string, s network.Stream) {
	defer s.Close()
	b, err := io.ReadAll(io.LimitReader(s, maxReqResp))
	if err != nil {
		emitError("request", err)
		s.Reset()
		return
	}
	var req map[string]any
	var raw json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		emitError("request", fmt.Errorf("request is not JSON: %w", err))
		s.Reset()
		return
	}
	_ = json.Unmarshal(b, &req)
	emit("request", map[string]any{"peer": s.Conn().RemotePeer().String(), "protocol": proto, "body": raw})
	if omit, _ := req["omit"].(bool); omit {
		s.Close() // no body, then EOF: what rust-libp2p does when the response channel is dropped
		return
	}
	if ms, ok := req["sleep_ms"].(float64); ok && ms > 0 {
		time.Sleep(time.Duration(ms) * time.Millisecond)
	}
	resp, _ := json.Marshal(map[string]any{"echo": raw, "from": n.h.ID().String()})
	if _, err := s.Write(resp); err != nil {
		emitError("request", err)
		s.Reset()
	}
}

func (n *ctlNode) request(ctx context.Context, target, proto, body string) {
	f := map[string]any{"peer": target, "protocol": proto}
	err := func() error {
		if !json.Valid([]byte(body)) {
			return errors.New("request body is not valid JSON")
		}
		p, err := n.target(ctx, target)
		if err != nil {
			return err
		}
		f["peer"] = p.String()
		s, err := n.h.NewStream(ctx, p, protocol.ID(proto))
		if err != nil {
			return err
		}
		if d, ok := ctx.Deadline(); ok {
			s.SetDeadline(d)
		}
		if _, err := s.Write([]byte(body)); err != nil {
			s.Reset()
			return err
		}
		if err := s.CloseWrite(); err != nil {
			s.Reset()
			return err
		}
		b, err := io.ReadAll(io.LimitReader(s, maxReqResp))
		if err != nil {
			s.Reset()
			return err
		}
		s.Close()
		if len(b) == 0 {
			return errors.New("no response (stream closed without data)")
		}
		var raw json.RawMessage
		if err := json.Unmarshal(b, &raw); err != nil {
			return fmt.Errorf("response is not JSON: %w", err)
		}
		f["body"] = raw
		return nil
	}()
	emit("response", errFields(f, err))
}
