//! `rust-peer ctl [options]`: a rust-libp2p node driven by commands on stdin, answering with JSON lines on
//! stdout, per /work/wt/PEERS-CONTRACT.md (tests/interop/PEERS-CONTRACT.md once merged): Kademlia, mDNS,
//! gossipsub and request-response beside identify and ping, one swarm, TCP + Noise + Yamux.
//!
//! Options (also LP2P_PEER_<NAME>, argv wins):
//!   --listen MADDR (repeatable)  --key FILE  --kad server|client  --kad-protocol ID  --bootstrap MADDR (repeatable)
//!   --mdns  --mdns-dial  --pubsub  --reqresp PROTOCOL (repeatable)  --reqresp-timeout SEC (default 30)
//!   --timeout SEC
//! Timeouts as in the js and go peers: 30 s for requests (rust-libp2p's default is 10 s) and kad queries (60 s).
//!
//! rust-libp2p specifics (what the library does, not choices of this peer):
//! - Kademlia: kad::Behaviour with a MemoryStore and the library's default record filtering
//!   (StoreInserts::Unfiltered): inbound PUT_VALUE records of any key namespace are stored as they are, with
//!   no validation at all (no /pk/ check, no signature); limits: value < 65 KiB, 1,024 records, 1,024 provided
//!   keys, 20 providers per key. ADD_PROVIDER is accepted only when the provider id is the sending peer.
//!   Mode::Server is forced with --kad server (the library's automatic mode would pick client: loopback
//!   addresses are never confirmed external addresses). With --kad every concrete listen address is added as
//!   an external address: rust-libp2p writes only those into its ADD_PROVIDER messages, and go, js and lp2p
//!   drop a provider entry without an address. Peers that identify with the kad protocol get their
//!   listen addresses added to the routing table (rust-libp2p leaves that to the application).
//! - kad-find-peer runs get_closest_peers(peer id) and reports the target if the query returned it, else the
//!   routing table's entry ("source" says which).
//! - ping: rust-libp2p's ping behaviour has no on-demand API, replaces an inbound stream by the next one and
//!   stops answering once its own ping found the protocol unsupported, so /ipfs/ping/1.0.0 is served here
//!   (src/serve.rs: every inbound stream queued, 32-byte echo until EOF) and driven over libp2p-stream.
//! - request-response: rust-libp2p's request_response::Behaviour with its json codec serves every --reqresp
//!   protocol. `request` to the FIRST --reqresp protocol goes through that behaviour (multistream-select offers
//!   its protocols in order, so only the first one is certain to be the one negotiated); any other protocol is
//!   requested over libp2p-stream with the same wire format (write the JSON, close, read to EOF). The response
//!   event says which ("via": "request-response" | "stream").
//! - gossipsub ids are the library's default message id (publisher base58 + sequence number), printed in hex.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::BufRead;
use std::time::{Duration, Instant};

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::identity::Keypair;
use libp2p::kad::{self, store::MemoryStore, QueryId, QueryResult, Quorum, Record, RecordKey};
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport, ResponseChannel};
use libp2p::swarm::{behaviour::toggle::Toggle, dial_opts::DialOpts, ConnectionId, NetworkBehaviour, SwarmEvent};
use libp2p::multiaddr::Protocol;
use libp2p::{gossipsub, identify, mdns, noise, tcp, yamux, Multiaddr, PeerId, StreamProtocol, Swarm};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::{conn_info, emit, emit_error, DEFAULT_AGENT};

const PING: StreamProtocol = StreamProtocol::new("/ipfs/ping/1.0.0");

// ---- options -------------------------------------------------------------------------------------
#[derive(Default)]
struct Opts {
    list: HashMap<&'static str, Vec<String>>,
    str_: HashMap<&'static str, String>,
    flag: HashSet<&'static str>,
}

const LISTS: &[&str] = &["listen", "bootstrap", "reqresp"];
const STRS: &[&str] = &["key", "kad", "kad-protocol", "timeout", "reqresp-timeout"];
const FLAGS: &[&str] = &["mdns", "mdns-dial", "pubsub"];

fn opt_name(n: &str) -> Option<&'static str> {
    LISTS.iter().chain(STRS).chain(FLAGS).find(|x| **x == n).copied()
}

impl Opts {
    fn set(&mut self, name: &'static str, value: &str) {
        if LISTS.contains(&name) {
            self.list.entry(name).or_default().extend(value.split(',').filter(|s| !s.is_empty()).map(String::from));
        } else if FLAGS.contains(&name) {
            if matches!(value.to_ascii_lowercase().as_str(), "1" | "true" | "yes") {
                self.flag.insert(name);
            } else {
                self.flag.remove(name);
            }
        } else {
            self.str_.insert(name, value.into());
        }
    }
    fn list(&self, n: &str) -> Vec<String> {
        self.list.get(n).cloned().unwrap_or_default()
    }
    fn secs(&self, n: &str, default: u64) -> Result<u64, String> {
        match self.str_.get(n) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("--{n} needs a non-negative integer, got '{v}'")),
        }
    }
}

fn parse_options(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts::default();
    for name in LISTS.iter().chain(STRS).chain(FLAGS) {
        let env = format!("LP2P_PEER_{}", name.to_uppercase().replace('-', "_"));
        if let Ok(v) = std::env::var(&env) {
            if !v.is_empty() {
                o.set(name, &v);
            }
        }
    }
    let mut from_argv: HashSet<&str> = HashSet::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        let body = a.strip_prefix("--").ok_or_else(|| format!("unexpected argument '{a}'"))?;
        let (n, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let name = opt_name(n).ok_or_else(|| format!("unknown option --{n}"))?;
        let value = match inline {
            Some(v) => v,
            None if FLAGS.contains(&name) => "true".into(),
            None => {
                i += 1;
                args.get(i).cloned().ok_or_else(|| format!("--{name} needs a value"))?
            }
        };
        if LISTS.contains(&name) && from_argv.insert(name) {
            o.list.remove(name); // argv replaces the environment's list
        }
        o.set(name, &value);
        i += 1;
    }
    if o.list("listen").is_empty() {
        o.list.insert("listen", vec!["/ip4/127.0.0.1/tcp/0".into()]);
    }
    if let Some(m) = o.str_.get("kad") {
        if m != "server" && m != "client" {
            return Err(format!("--kad must be server or client, got '{m}'"));
        }
    }
    Ok(o)
}

// ---- request-response codec: rust-libp2p's json codec, with the negotiated protocol kept ---------
/// Requests carry the protocol: inbound, the one negotiated; outbound, the one wanted (a request whose
/// negotiated protocol differs fails instead of being sent on the wrong protocol).
#[derive(Clone, Default)]
struct Codec {
    inner: request_response::json::codec::Codec<Value, Value>,
}

impl request_response::Codec for Codec {
    type Protocol = StreamProtocol;
    type Request = (StreamProtocol, Value);
    type Response = Value;

    async fn read_request<T>(&mut self, p: &StreamProtocol, io: &mut T) -> std::io::Result<Self::Request>
    where
        T: futures::AsyncRead + Unpin + Send,
    {
        let v = request_response::Codec::read_request(&mut self.inner, p, io).await?;
        Ok((p.clone(), v))
    }
    async fn read_response<T>(&mut self, p: &StreamProtocol, io: &mut T) -> std::io::Result<Value>
    where
        T: futures::AsyncRead + Unpin + Send,
    {
        request_response::Codec::read_response(&mut self.inner, p, io).await
    }
    async fn write_request<T>(&mut self, p: &StreamProtocol, io: &mut T, req: Self::Request) -> std::io::Result<()>
    where
        T: futures::AsyncWrite + Unpin + Send,
    {
        if *p != req.0 {
            return Err(std::io::Error::other(format!("the remote negotiated {p}, not {}", req.0)));
        }
        request_response::Codec::write_request(&mut self.inner, p, io, req.1).await
    }
    async fn write_response<T>(&mut self, p: &StreamProtocol, io: &mut T, res: Value) -> std::io::Result<()>
    where
        T: futures::AsyncWrite + Unpin + Send,
    {
        request_response::Codec::write_response(&mut self.inner, p, io, res).await
    }
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    identify: identify::Behaviour,
    stream: libp2p_stream::Behaviour,
    serve: crate::serve::Behaviour,
    kad: Toggle<kad::Behaviour<MemoryStore>>,
    mdns: Toggle<mdns::tokio::Behaviour>,
    gossipsub: Toggle<gossipsub::Behaviour>,
    rr: Toggle<request_response::Behaviour<Codec>>,
}

// ---- helpers -------------------------------------------------------------------------------------
fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Result<Vec<u8>, String> {
    if s.len() % 2 != 0 {
        return Err(format!("'{s}' is not hex (odd length)"));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|_| format!("'{s}' is not hex")))
        .collect()
}

fn base58_decode(s: &str) -> Result<Vec<u8>, String> {
    const ALPHA: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    let mut out: Vec<u8> = Vec::new(); // big number, little-endian bytes
    for c in s.bytes() {
        let mut carry = ALPHA.iter().position(|&a| a == c).ok_or("bad base58 character")? as u32;
        for b in out.iter_mut() {
            carry += (*b as u32) * 58;
            *b = carry as u8;
            carry >>= 8;
        }
        while carry > 0 {
            out.push(carry as u8);
            carry >>= 8;
        }
    }
    let zeros = s.bytes().take_while(|&c| c == b'1').count();
    let mut v = vec![0u8; zeros];
    v.extend(out.iter().rev());
    Ok(v)
}

fn base32_decode(s: &str) -> Result<Vec<u8>, String> {
    let (mut acc, mut bits, mut out) = (0u32, 0u32, Vec::new());
    for c in s.bytes() {
        let v = match c {
            b'a'..=b'z' => c - b'a',
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            b'=' => break,
            _ => return Err("bad base32 character".into()),
        } as u32;
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

fn read_varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &x) in b.iter().enumerate().take(9) {
        v |= ((x & 0x7f) as u64) << (7 * i);
        if x & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// CID text -> its multihash bytes (the key of provider records in go/js/rust DHTs alike).
fn cid_multihash(cid: &str) -> Result<Vec<u8>, String> {
    let bad = |e: String| format!("bad CID '{cid}': {e}");
    if cid.starts_with("Qm") && cid.len() == 46 {
        return base58_decode(cid).map_err(bad);
    }
    let bytes = match cid.as_bytes().first() {
        Some(b'b') | Some(b'B') => base32_decode(&cid[1..]).map_err(bad)?,
        Some(b'z') => base58_decode(&cid[1..]).map_err(bad)?,
        Some(b'f') | Some(b'F') => unhex(&cid[1..].to_ascii_lowercase()).map_err(bad)?,
        _ => return Err(bad("expected CIDv0 (Qm...) or multibase b/z/f CIDv1".into())),
    };
    let (ver, n1) = read_varint(&bytes).ok_or_else(|| bad("truncated".into()))?;
    if ver != 1 {
        return Err(bad(format!("CID version {ver}")));
    }
    let (_codec, n2) = read_varint(&bytes[n1..]).ok_or_else(|| bad("truncated".into()))?;
    let mh = bytes[n1 + n2..].to_vec();
    if mh.len() < 2 {
        return Err(bad("no multihash".into()));
    }
    Ok(mh)
}

/// PEER: a peer id, or a multiaddr ending in /p2p/ID (its address is then returned too).
fn parse_peer(s: &str) -> Result<(PeerId, Option<Multiaddr>), String> {
    if s.starts_with('/') {
        let mut a: Multiaddr = s.parse().map_err(|e| format!("{s}: {e}"))?;
        match a.pop() {
            Some(libp2p::multiaddr::Protocol::P2p(p)) => Ok((p, Some(a))),
            _ => Err(format!("{s}: no /p2p/ at the end")),
        }
    } else {
        s.parse().map(|p| (p, None)).map_err(|e| format!("'{s}' is not a peer id: {e}"))
    }
}

fn without_p2p(a: &Multiaddr) -> Multiaddr {
    let mut a = a.clone();
    if matches!(a.iter().last(), Some(libp2p::multiaddr::Protocol::P2p(_))) {
        a.pop();
    }
    a
}

fn strs<T: ToString>(v: impl IntoIterator<Item = T>) -> Vec<String> {
    v.into_iter().map(|x| x.to_string()).collect()
}

fn answer(me: &PeerId, body: &Value) -> Option<(Value, u64)> {
    if body.get("omit") == Some(&Value::Bool(true)) {
        return None;
    }
    let delay = body.get("sleep_ms").and_then(|v| v.as_u64()).unwrap_or(0);
    Some((json!({"echo": body, "from": me.to_string()}), delay))
}

// ---- protocols served / driven over libp2p-stream -------------------------------------------------
async fn serve_ping(mut s: libp2p::Stream) -> std::io::Result<()> {
    let mut b = [0u8; 32];
    loop {
        match s.read_exact(&mut b).await {
            Ok(()) => s.write_all(&b).await?,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return s.close().await,
            Err(e) => return Err(e),
        }
    }
}

async fn ping_once(mut c: libp2p_stream::Control, peer: PeerId) -> Result<f64, String> {
    let mut s = c.open_stream(peer, PING).await.map_err(|e| e.to_string())?;
    let payload: [u8; 32] = std::array::from_fn(|i| (i as u8).wrapping_mul(31) ^ (Instant::now().elapsed().subsec_nanos() as u8));
    let t = Instant::now();
    s.write_all(&payload).await.map_err(|e| e.to_string())?;
    let mut back = [0u8; 32];
    s.read_exact(&mut back).await.map_err(|e| e.to_string())?;
    let rtt = t.elapsed().as_secs_f64() * 1000.0;
    let _ = s.close().await;
    if back != payload {
        return Err("ping: payload not echoed".into());
    }
    Ok(rtt)
}

async fn stream_request(mut c: libp2p_stream::Control, peer: PeerId, proto: StreamProtocol, body: Value) -> Result<Value, String> {
    let mut s = c.open_stream(peer, proto).await.map_err(|e| e.to_string())?;
    s.write_all(&serde_json::to_vec(&body).unwrap()).await.map_err(|e| e.to_string())?;
    s.close().await.map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    (&mut s).take(10 << 20).read_to_end(&mut buf).await.map_err(|e| e.to_string())?;
    if buf.is_empty() {
        return Err("the stream closed without a response".into());
    }
    serde_json::from_slice(&buf).map_err(|e| format!("response is not JSON: {e}"))
}

// ---- the node ------------------------------------------------------------------------------------
enum Pending {
    Bootstrap,
    FindPeer(PeerId),
    Closest,
    Put,
    Get,
    Provide,
    FindProviders(BTreeSet<PeerId>),
}

enum Internal {
    Respond(ResponseChannel<Value>, Value),
}

struct Node {
    swarm: Swarm<Behaviour>,
    me: PeerId,
    kad_proto: StreamProtocol,
    mdns_dial: bool,
    rr_first: Option<StreamProtocol>,
    control: libp2p_stream::Control,
    dials: HashMap<ConnectionId, String>,
    queries: HashMap<QueryId, Pending>,
    requests: HashMap<OutboundRequestId, (PeerId, StreamProtocol)>,
    addrbook: HashMap<PeerId, BTreeSet<Multiaddr>>,
    int_tx: mpsc::UnboundedSender<Internal>,
}

fn stop(code: i32) -> ! {
    emit("stopped", json!({}));
    std::process::exit(code)
}

impl Node {
    fn learn(&mut self, peer: PeerId, a: &Multiaddr) {
        self.addrbook.entry(peer).or_default().insert(without_p2p(a));
    }

    fn addrs_of(&mut self, peer: &PeerId) -> Vec<String> {
        let mut s: BTreeSet<String> = self.addrbook.get(peer).map(|v| strs(v.iter())).unwrap_or_default().into_iter().collect();
        if let Some(k) = self.swarm.behaviour_mut().kad.as_mut() {
            for b in k.kbuckets() {
                for e in b.iter() {
                    if e.node.key.preimage() == peer {
                        s.extend(e.node.value.iter().map(|a| without_p2p(a).to_string()));
                    }
                }
            }
        }
        s.into_iter().collect()
    }

    fn dial(&mut self, addr_s: &str) {
        let r = (|| {
            let addr: Multiaddr = addr_s.parse().map_err(|e| format!("{addr_s}: {e}"))?;
            let o: DialOpts = addr.into();
            let id = o.connection_id();
            self.swarm.dial(o).map_err(|e| e.to_string())?;
            Ok::<_, String>(id)
        })();
        match r {
            Ok(id) => {
                self.dials.insert(id, addr_s.into());
            }
            Err(e) => emit("dialed", json!({"addr": addr_s, "ok": false, "error": e})),
        }
    }

    fn command(&mut self, line: &str) {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return;
        }
        let (cmd, rest) = line.split_once(char::is_whitespace).map(|(c, r)| (c, r.trim())).unwrap_or((line, ""));
        let args: Vec<&str> = rest.split_whitespace().collect();
        let need = |n: usize| -> Result<(), String> {
            if args.len() < n {
                Err(format!("{cmd} needs {n} argument(s)"))
            } else {
                Ok(())
            }
        };
        // commands answered at once with an error when their arguments are wrong
        macro_rules! fail {
            ($ev:expr, $fields:expr, $e:expr) => {{
                let mut f = $fields;
                f["ok"] = json!(false);
                f["error"] = json!($e.to_string());
                emit($ev, f);
                return;
            }};
        }
        macro_rules! kad {
            ($ev:expr) => {
                match self.swarm.behaviour_mut().kad.as_mut() {
                    Some(k) => k,
                    None => fail!($ev, json!({}), "kad is not enabled (--kad server|client)"),
                }
            };
        }
        macro_rules! gs {
            ($ev:expr, $topic:expr) => {
                match self.swarm.behaviour_mut().gossipsub.as_mut() {
                    Some(g) => g,
                    None => fail!($ev, json!({"topic": $topic}), "pubsub is not enabled (--pubsub)"),
                }
            };
        }
        match cmd {
            "quit" => stop(0),
            "dial" => {
                if let Err(e) = need(1) {
                    fail!("dialed", json!({"addr": ""}), e);
                }
                self.dial(args[0]);
            }
            "peers" => {
                let p = strs(self.swarm.connected_peers());
                emit("peers", json!({"count": p.len(), "peers": p}));
            }
            "ping" => {
                let peer = match need(1).and_then(|_| parse_peer(args[0])) {
                    Ok((p, a)) => {
                        if let Some(a) = a {
                            self.learn(p, &a);
                            self.swarm.add_peer_address(p, a);
                        }
                        p
                    }
                    Err(e) => fail!("ping", json!({"peer": args.first()}), e),
                };
                let c = self.control.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(Duration::from_secs(20), ping_once(c, peer)).await {
                        Ok(Ok(rtt)) => emit("ping", json!({"peer": peer.to_string(), "ok": true, "rtt": rtt})),
                        Ok(Err(e)) => emit("ping", json!({"peer": peer.to_string(), "ok": false, "error": e})),
                        Err(_) => emit("ping", json!({"peer": peer.to_string(), "ok": false, "error": "timed out after 20 s"})),
                    }
                });
            }
            "kad-add" => {
                let r = need(2).and_then(|_| {
                    let (p, _) = parse_peer(args[0])?;
                    let a: Multiaddr = args[1].parse().map_err(|e| format!("{}: {e}", args[1]))?;
                    Ok((p, a))
                });
                let (p, mut a) = match r {
                    Ok(v) => v,
                    Err(e) => fail!("kad-add", json!({}), e),
                };
                if matches!(a.iter().last(), Some(libp2p::multiaddr::Protocol::P2p(_))) {
                    a.pop();
                }
                self.learn(p, &a);
                let k = kad!("kad-add");
                match k.add_address(&p, a) {
                    kad::RoutingUpdate::Failed => emit("kad-add", json!({"ok": false, "error": "the routing table refused the peer"})),
                    kad::RoutingUpdate::Pending => emit("kad-add", json!({"ok": true, "pending": true})),
                    kad::RoutingUpdate::Success => emit("kad-add", json!({"ok": true})),
                }
            }
            "kad-bootstrap" => {
                let k = kad!("kad-bootstrap");
                match k.bootstrap() {
                    Ok(id) => {
                        self.queries.insert(id, Pending::Bootstrap);
                    }
                    Err(e) => fail!("kad-bootstrap", json!({}), e),
                }
            }
            "kad-find-peer" => {
                let p = match need(1).and_then(|_| parse_peer(args[0])) {
                    Ok((p, _)) => p,
                    Err(e) => fail!("kad-find-peer", json!({"peer": args.first()}), e),
                };
                let k = kad!("kad-find-peer");
                let id = k.get_closest_peers(p);
                self.queries.insert(id, Pending::FindPeer(p));
            }
            "kad-closest" => {
                let key = match need(1).and_then(|_| unhex(args[0])) {
                    Ok(k) => k,
                    Err(e) => fail!("kad-closest", json!({}), e),
                };
                let k = kad!("kad-closest");
                let id = k.get_closest_peers(key);
                self.queries.insert(id, Pending::Closest);
            }
            "kad-put" => {
                let r = need(2).and_then(|_| Ok((unhex(args[0])?, unhex(args[1])?)));
                let (key, value) = match r {
                    Ok(v) => v,
                    Err(e) => fail!("kad-put", json!({}), e),
                };
                let k = kad!("kad-put");
                match k.put_record(Record::new(RecordKey::from(key), value), Quorum::One) {
                    Ok(id) => {
                        self.queries.insert(id, Pending::Put);
                    }
                    Err(e) => fail!("kad-put", json!({}), format!("local store: {e:?}")),
                }
            }
            "kad-get" => {
                let key = match need(1).and_then(|_| unhex(args[0])) {
                    Ok(k) => k,
                    Err(e) => fail!("kad-get", json!({}), e),
                };
                let k = kad!("kad-get");
                let id = k.get_record(RecordKey::from(key));
                self.queries.insert(id, Pending::Get);
            }
            "kad-provide" => {
                let key = match need(1).and_then(|_| cid_multihash(args[0])) {
                    Ok(k) => k,
                    Err(e) => fail!("kad-provide", json!({}), e),
                };
                let k = kad!("kad-provide");
                match k.start_providing(RecordKey::from(key)) {
                    Ok(id) => {
                        self.queries.insert(id, Pending::Provide);
                    }
                    Err(e) => fail!("kad-provide", json!({}), format!("local store: {e:?}")),
                }
            }
            "kad-find-providers" => {
                let key = match need(1).and_then(|_| cid_multihash(args[0])) {
                    Ok(k) => k,
                    Err(e) => fail!("kad-find-providers", json!({"providers": []}), e),
                };
                let k = kad!("kad-find-providers");
                let id = k.get_providers(RecordKey::from(key));
                self.queries.insert(id, Pending::FindProviders(BTreeSet::new()));
            }
            "kad-table" => {
                let k = kad!("kad-table");
                let mut peers = Vec::new();
                for b in k.kbuckets() {
                    for e in b.iter() {
                        peers.push(json!({"peer": e.node.key.preimage().to_string(), "addrs": strs(e.node.value.iter().map(without_p2p))}));
                    }
                }
                emit("kad-table", json!({"count": peers.len(), "peers": peers}));
            }
            "subscribe" | "unsubscribe" => {
                let ev = if cmd == "subscribe" { "subscribed" } else { "unsubscribed" };
                if args.is_empty() {
                    fail!(ev, json!({"topic": ""}), "needs a topic");
                }
                let t = gossipsub::IdentTopic::new(args[0]);
                let g = gs!(ev, args[0]);
                if cmd == "subscribe" {
                    match g.subscribe(&t) {
                        Ok(_) => emit(ev, json!({"topic": args[0], "ok": true})),
                        Err(e) => fail!(ev, json!({"topic": args[0]}), e),
                    }
                } else {
                    g.unsubscribe(&t);
                    emit(ev, json!({"topic": args[0], "ok": true}));
                }
            }
            "publish" => {
                let (topic, text) = rest.split_once(char::is_whitespace).map(|(t, x)| (t, x.trim_start())).unwrap_or((rest, ""));
                if topic.is_empty() {
                    fail!("published", json!({"topic": ""}), "needs a topic");
                }
                let g = gs!("published", topic);
                match g.publish(gossipsub::IdentTopic::new(topic), text.as_bytes()) {
                    Ok(id) => emit("published", json!({"topic": topic, "ok": true, "id": id.to_string()})),
                    Err(e) => fail!("published", json!({"topic": topic}), e),
                }
            }
            "mesh" => {
                if args.is_empty() {
                    fail!("mesh", json!({"topic": "", "peers": []}), "needs a topic");
                }
                let h = gossipsub::IdentTopic::new(args[0]).hash();
                let g = gs!("mesh", args[0]);
                let p = strs(g.mesh_peers(&h));
                emit("mesh", json!({"topic": args[0], "peers": p}));
            }
            "request" => {
                let mut it = rest.splitn(3, char::is_whitespace);
                let (ps, proto_s, body_s) = (it.next().unwrap_or(""), it.next().unwrap_or(""), it.next().unwrap_or("").trim());
                let base = json!({"peer": ps, "protocol": proto_s});
                let r = (|| {
                    let (p, a) = parse_peer(ps)?;
                    let proto = StreamProtocol::try_from_owned(proto_s.to_string()).map_err(|e| format!("protocol '{proto_s}': {e}"))?;
                    let body: Value = serde_json::from_str(body_s).map_err(|e| format!("request body is not JSON: {e}"))?;
                    Ok::<_, String>((p, a, proto, body))
                })();
                let (peer, addr, proto, body) = match r {
                    Ok(v) => v,
                    Err(e) => fail!("response", base, e),
                };
                if let Some(a) = addr {
                    self.learn(peer, &a);
                    self.swarm.add_peer_address(peer, a);
                }
                if self.rr_first.as_ref() == Some(&proto) {
                    let rr = self.swarm.behaviour_mut().rr.as_mut().expect("rr");
                    let id = rr.send_request(&peer, (proto.clone(), body));
                    self.requests.insert(id, (peer, proto));
                } else {
                    let c = self.control.clone();
                    tokio::spawn(async move {
                        let mut ev = json!({"peer": peer.to_string(), "protocol": proto.to_string(), "via": "stream"});
                        match tokio::time::timeout(Duration::from_secs(30), stream_request(c, peer, proto, body)).await {
                            Ok(Ok(v)) => {
                                ev["ok"] = json!(true);
                                ev["body"] = v;
                            }
                            Ok(Err(e)) => {
                                ev["ok"] = json!(false);
                                ev["error"] = json!(e);
                            }
                            Err(_) => {
                                ev["ok"] = json!(false);
                                ev["error"] = json!("timed out after 30 s");
                            }
                        }
                        emit("response", ev);
                    });
                }
            }
            _ => emit_error("command", format!("unknown command '{cmd}'")),
        }
    }

    fn kad_event(&mut self, ev: kad::Event) {
        let kad::Event::OutboundQueryProgressed { id, result, step, .. } = ev else {
            if let kad::Event::RoutingUpdated { peer, is_new_peer, addresses, .. } = ev {
                emit("kad-routing-updated", json!({"peer": peer.to_string(), "new": is_new_peer, "addrs": strs(addresses.iter().map(without_p2p))}));
            }
            return;
        };
        let Some(p) = self.queries.get_mut(&id) else { return };
        let mut done = step.last;
        match (p, result) {
            (Pending::Bootstrap, QueryResult::Bootstrap(r)) => {
                if let Err(e) = &r {
                    if step.last {
                        emit("kad-bootstrap", json!({"ok": false, "error": e.to_string()}));
                    }
                } else if step.last || matches!(r, Ok(ref o) if o.num_remaining == 0) {
                    emit("kad-bootstrap", json!({"ok": true}));
                    done = true;
                }
            }
            (Pending::FindPeer(target), QueryResult::GetClosestPeers(r)) => {
                let target = *target;
                let peers = match r {
                    Ok(o) => o.peers,
                    Err(kad::GetClosestPeersError::Timeout { peers, .. }) => peers,
                };
                for pi in &peers {
                    for a in &pi.addrs {
                        self.learn(pi.peer_id, a);
                    }
                }
                let found = peers.iter().find(|pi| pi.peer_id == target);
                if let Some(pi) = found {
                    emit("kad-find-peer", json!({"ok": true, "peer": target.to_string(), "addrs": strs(pi.addrs.iter().map(without_p2p)), "source": "query"}));
                } else {
                    let in_table = self.swarm.behaviour_mut().kad.as_mut().is_some_and(|k| {
                        k.kbuckets().any(|b| b.iter().any(|e| e.node.key.preimage() == &target))
                    });
                    if in_table {
                        let addrs = self.addrs_of(&target);
                        emit("kad-find-peer", json!({"ok": true, "peer": target.to_string(), "addrs": addrs, "source": "table"}));
                    } else {
                        emit("kad-find-peer", json!({"ok": false, "peer": target.to_string(), "addrs": [], "error": "not found"}));
                    }
                }
            }
            (Pending::Closest, QueryResult::GetClosestPeers(r)) => match r {
                Ok(o) => emit("kad-closest", json!({"ok": true, "peers": strs(o.peers.iter().map(|p| p.peer_id))})),
                Err(kad::GetClosestPeersError::Timeout { peers, .. }) => emit(
                    "kad-closest",
                    json!({"ok": false, "error": "the request timed out", "peers": strs(peers.iter().map(|p| p.peer_id))}),
                ),
            },
            (Pending::Put, QueryResult::PutRecord(r)) => match r {
                Ok(_) => emit("kad-put", json!({"ok": true})),
                Err(e) => emit("kad-put", json!({"ok": false, "error": e.to_string()})),
            },
            (Pending::Get, QueryResult::GetRecord(r)) => match r {
                Ok(kad::GetRecordOk::FoundRecord(pr)) => {
                    emit("kad-get", json!({"ok": true, "value": hex(&pr.record.value),
                        "from": pr.peer.map(|p| p.to_string())}));
                    if let Some(k) = self.swarm.behaviour_mut().kad.as_mut() {
                        if let Some(mut q) = k.query_mut(&id) {
                            q.finish();
                        }
                    }
                    done = true;
                }
                Ok(kad::GetRecordOk::FinishedWithNoAdditionalRecord { .. }) => {
                    emit("kad-get", json!({"ok": false, "error": "the record was not found"}));
                    done = true;
                }
                Err(e) => {
                    emit("kad-get", json!({"ok": false, "error": e.to_string()}));
                    done = true;
                }
            },
            (Pending::Provide, QueryResult::StartProviding(r)) => match r {
                Ok(_) => emit("kad-provide", json!({"ok": true})),
                Err(e) => emit("kad-provide", json!({"ok": false, "error": e.to_string()})),
            },
            (Pending::FindProviders(set), QueryResult::GetProviders(r)) => {
                let err = match r {
                    Ok(kad::GetProvidersOk::FoundProviders { providers, .. }) => {
                        set.extend(providers);
                        None
                    }
                    Ok(kad::GetProvidersOk::FinishedWithNoAdditionalRecord { .. }) => None,
                    Err(e) => Some(e.to_string()),
                };
                if step.last {
                    let set = set.clone();
                    let providers: Vec<Value> = set
                        .iter()
                        .map(|p| json!({"peer": p.to_string(), "addrs": self.addrs_of(p)}))
                        .collect();
                    match err {
                        Some(e) if providers.is_empty() => {
                            emit("kad-find-providers", json!({"ok": false, "providers": [], "error": e}))
                        }
                        _ => emit("kad-find-providers", json!({"ok": true, "providers": providers})),
                    }
                }
            }
            (_, other) => {
                emit_error("kad", format!("unexpected query result {other:?}"));
                done = true;
            }
        }
        if done {
            self.queries.remove(&id);
        }
    }

    fn rr_event(&mut self, ev: request_response::Event<(StreamProtocol, Value), Value>) {
        use request_response::{Event as E, Message as M};
        match ev {
            E::Message { peer, message: M::Request { request: (proto, body), channel, .. }, .. } => {
                // reported on receipt, as the js and go peers do (also for omit, whose channel is dropped)
                emit("request", json!({"peer": peer.to_string(), "protocol": proto.to_string(), "body": body}));
                match answer(&self.me, &body) {
                    None => drop(channel),
                    Some((resp, 0)) => {
                        let rr = self.swarm.behaviour_mut().rr.as_mut().expect("rr");
                        if rr.send_response(channel, resp).is_err() {
                            emit_error("reqresp", format!("response to {peer} not sent: the stream is gone"));
                        }
                    }
                    Some((resp, ms)) => {
                        let tx = self.int_tx.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(Duration::from_millis(ms)).await;
                            let _ = tx.send(Internal::Respond(channel, resp));
                        });
                    }
                }
            }
            E::Message { peer, message: M::Response { request_id, response }, .. } => {
                let proto = self.requests.remove(&request_id).map(|r| r.1.to_string());
                emit("response", json!({"peer": peer.to_string(), "protocol": proto, "ok": true, "body": response, "via": "request-response"}));
            }
            E::OutboundFailure { peer, request_id, error, .. } => {
                let proto = self.requests.remove(&request_id).map(|r| r.1.to_string());
                emit("response", json!({"peer": peer.to_string(), "protocol": proto, "ok": false, "error": error.to_string(), "via": "request-response"}));
            }
            E::InboundFailure { peer, error, .. } => {
                if !matches!(error, request_response::InboundFailure::ResponseOmission) {
                    emit_error("reqresp", format!("inbound request from {peer}: {error}"));
                }
            }
            E::ResponseSent { .. } => {}
        }
    }

    fn swarm_event(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        match ev {
            SwarmEvent::ConnectionEstablished { peer_id, connection_id, endpoint, .. } => {
                emit("connection:open", conn_info(&peer_id, &endpoint));
                if endpoint.is_dialer() {
                    self.learn(peer_id, endpoint.get_remote_address());
                }
                if let Some(a) = self.dials.remove(&connection_id) {
                    emit("dialed", json!({"addr": a, "peer": peer_id.to_string(), "ok": true}));
                }
            }
            SwarmEvent::ConnectionClosed { peer_id, endpoint, .. } => {
                emit("connection:close", conn_info(&peer_id, &endpoint));
            }
            SwarmEvent::OutgoingConnectionError { connection_id, error, .. } => {
                if let Some(a) = self.dials.remove(&connection_id) {
                    emit("dialed", json!({"addr": a, "ok": false, "error": error.to_string()}));
                }
            }
            SwarmEvent::NewExternalAddrOfPeer { peer_id, address } => self.learn(peer_id, &address),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. })) => {
                emit("peer:identify", json!({
                    "peer": peer_id.to_string(), "agentVersion": info.agent_version,
                    "protocols": strs(info.protocols.iter()), "listenAddrs": strs(info.listen_addrs.iter()),
                }));
                for a in &info.listen_addrs {
                    self.learn(peer_id, a);
                }
                let kp = self.kad_proto.clone();
                if info.protocols.contains(&kp) {
                    if let Some(k) = self.swarm.behaviour_mut().kad.as_mut() {
                        for a in info.listen_addrs {
                            k.add_address(&peer_id, a);
                        }
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(e)) => self.kad_event(e),
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(e)) => match e {
                mdns::Event::Discovered(list) => {
                    let mut by: HashMap<PeerId, Vec<Multiaddr>> = HashMap::new();
                    for (p, a) in list {
                        by.entry(p).or_default().push(a);
                    }
                    for (p, addrs) in by {
                        for a in &addrs {
                            self.learn(p, a);
                        }
                        emit("peer-discovered", json!({"peer": p.to_string(), "addrs": strs(addrs.iter()), "source": "mdns"}));
                        if self.mdns_dial && !self.swarm.is_connected(&p) {
                            let _ = self.swarm.dial(DialOpts::peer_id(p).addresses(addrs).build());
                        }
                    }
                }
                mdns::Event::Expired(list) => {
                    let peers: BTreeSet<PeerId> = list.into_iter().map(|(p, _)| p).collect();
                    for p in peers {
                        emit("peer-expired", json!({"peer": p.to_string()}));
                    }
                }
            },
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message { propagation_source, message_id, message })) => {
                emit("gossip-message", json!({
                    "topic": message.topic.to_string(),
                    "from": message.source.unwrap_or(propagation_source).to_string(),
                    "id": message_id.to_string(),
                    "data": String::from_utf8_lossy(&message.data),
                    "via": propagation_source.to_string(),
                }));
            }
            SwarmEvent::Behaviour(BehaviourEvent::Rr(e)) => self.rr_event(e),
            _ => {}
        }
    }
}

pub async fn ctl_main(args: Vec<String>) {
    let opts = match parse_options(&args) {
        Ok(o) => o,
        Err(e) => {
            emit_error("options", &e);
            eprintln!("rust-peer ctl: {e}");
            std::process::exit(2);
        }
    };
    let fatal = |w: &str, e: String| -> ! {
        emit_error(w, &e);
        eprintln!("rust-peer ctl: {e}");
        std::process::exit(2)
    };
    let timeout = opts.secs("timeout", 0).unwrap_or_else(|e| fatal("options", e));
    let rr_timeout = opts.secs("reqresp-timeout", 30).unwrap_or_else(|e| fatal("options", e));
    let key = match opts.str_.get("key") {
        Some(f) => std::fs::read(f)
            .map_err(|e| format!("{f}: {e}"))
            .and_then(|b| Keypair::from_protobuf_encoding(&b).map_err(|e| format!("{f}: {e}")))
            .unwrap_or_else(|e| fatal("key", e)),
        None => Keypair::generate_ed25519(),
    };
    let kad_proto_s = opts.str_.get("kad-protocol").cloned().unwrap_or_else(|| "/ipfs/kad/1.0.0".into());
    let kad_proto = StreamProtocol::try_from_owned(kad_proto_s.clone()).unwrap_or_else(|e| fatal("options", format!("--kad-protocol: {e}")));
    let kad_mode = opts.str_.get("kad").cloned();
    let reqresp: Vec<StreamProtocol> = opts
        .list("reqresp")
        .into_iter()
        .map(|p| StreamProtocol::try_from_owned(p.clone()).unwrap_or_else(|e| fatal("options", format!("--reqresp {p}: {e}"))))
        .collect();
    let (mdns_on, pubsub) = (opts.flag.contains("mdns"), opts.flag.contains("pubsub"));

    if timeout > 0 {
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(timeout)).await;
            emit_error("watchdog", format!("timed out after {timeout} s"));
            stop(1);
        });
    }

    let (serve, mut incoming) = crate::serve::Behaviour::new(vec![PING]);
    let kp2 = kad_proto.clone();
    let rr2 = reqresp.clone();
    let swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, || {
            let mut c = yamux::Config::default();
            c.set_max_num_streams(4096);
            c
        })
        .map_err(|e| e.to_string())
        .unwrap_or_else(|e| fatal("transport", e))
        .with_behaviour(move |k| {
            let me = k.public().to_peer_id();
            let kad = kad_mode.map(|m| {
                let mut cfg = kad::Config::new(kp2);
                cfg.set_query_timeout(Duration::from_secs(30)); // as the js and go peers (library default 60 s)
                let mut b = kad::Behaviour::with_config(me, MemoryStore::new(me), cfg);
                b.set_mode(Some(if m == "server" { kad::Mode::Server } else { kad::Mode::Client }));
                b
            });
            let mdns = if mdns_on {
                Some(mdns::tokio::Behaviour::new(mdns::Config::default(), me).map_err(|e| format!("mdns: {e}"))?)
            } else {
                None
            };
            let gossipsub = if pubsub {
                let cfg = gossipsub::ConfigBuilder::default()
                    .protocol_id_prefix("/meshsub")
                    .validation_mode(gossipsub::ValidationMode::Strict)
                    .build()
                    .map_err(|e| format!("gossipsub config: {e}"))?;
                Some(gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Signed(k.clone()), cfg)?)
            } else {
                None
            };
            let rr = (!rr2.is_empty()).then(|| {
                request_response::Behaviour::with_codec(
                    Codec::default(),
                    rr2.iter().map(|p| (p.clone(), ProtocolSupport::Full)),
                    request_response::Config::default().with_request_timeout(Duration::from_secs(rr_timeout)),
                )
            });
            Ok(Behaviour {
                identify: identify::Behaviour::new(
                    identify::Config::new("ipfs/0.1.0".into(), k.public())
                        .with_agent_version(DEFAULT_AGENT.into())
                        .with_push_listen_addr_updates(true),
                ),
                stream: libp2p_stream::Behaviour::new(),
                serve,
                kad: kad.into(),
                mdns: mdns.into(),
                gossipsub: gossipsub.into(),
                rr: rr.into(),
            })
        })
        .map_err(|e| e.to_string())
        .unwrap_or_else(|e| fatal("behaviour", e))
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
        .build();

    let (int_tx, mut int_rx) = mpsc::unbounded_channel();
    let control = swarm.behaviour().stream.new_control();
    let mut node = Node {
        me: *swarm.local_peer_id(),
        swarm,
        kad_proto,
        mdns_dial: opts.flag.contains("mdns-dial"),
        rr_first: reqresp.first().cloned(),
        control: control.clone(),
        dials: HashMap::new(),
        queries: HashMap::new(),
        requests: HashMap::new(),
        addrbook: HashMap::new(),
        int_tx,
    };
    tokio::spawn(async move {
        while let Some((_, _, s)) = incoming.recv().await {
            tokio::spawn(serve_ping(s));
        }
    });

    let listen = opts.list("listen");
    for l in &listen {
        let a: Multiaddr = l.parse().unwrap_or_else(|e| fatal("listen", format!("{l}: {e}")));
        if let Err(e) = node.swarm.listen_on(a) {
            fatal("listen", format!("{l}: {e}"));
        }
    }
    let me = node.me;
    let with_kad = opts.str_.contains_key("kad");
    let mut addrs = Vec::new();
    let mut early = Vec::new();
    while addrs.len() < listen.len() {
        match node.swarm.select_next_some().await {
            SwarmEvent::NewListenAddr { address, .. } => {
                // rust-libp2p's ADD_PROVIDER carries the swarm's confirmed external addresses only; on
                // loopback nothing confirms one, and go, js and lp2p drop provider entries without an
                // address: with --kad, a concrete listen address counts as external.
                if with_kad && !address.iter().any(|p| matches!(p, Protocol::Ip4(a) if a.is_unspecified())
                    || matches!(p, Protocol::Ip6(a) if a.is_unspecified())) {
                    node.swarm.add_external_address(address.clone());
                }
                addrs.push(format!("{address}/p2p/{me}"))
            }
            SwarmEvent::ListenerError { error, .. } | SwarmEvent::ListenerClosed { reason: Err(error), .. } => {
                fatal("listen", error.to_string())
            }
            e => early.push(e),
        }
    }
    emit("listening", json!({"peerId": me.to_string(), "addrs": addrs}));
    for e in early {
        node.swarm_event(e);
    }

    for b in opts.list("bootstrap") {
        match parse_peer(&b) {
            Ok((p, Some(a))) => {
                node.learn(p, &a);
                if let Some(k) = node.swarm.behaviour_mut().kad.as_mut() {
                    k.add_address(&p, a.clone());
                }
                if let Err(e) = node.swarm.dial(DialOpts::peer_id(p).addresses(vec![a]).build()) {
                    emit_error("bootstrap", format!("{b}: {e}"));
                }
            }
            Ok((_, None)) => emit_error("bootstrap", format!("{b}: needs /p2p/ID")),
            Err(e) => emit_error("bootstrap", e),
        }
    }

    // stdin on a thread (tokio's io-std feature is not compiled in); EOF ends the peer
    let (line_tx, mut line_rx) = mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for l in std::io::stdin().lock().lines() {
            match l {
                Ok(l) => {
                    if line_tx.send(l).is_err() {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
    });
    let parent = std::os::unix::process::parent_id();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).unwrap();
    loop {
        tokio::select! {
            l = line_rx.recv() => match l {
                Some(l) => node.command(&l),
                None => stop(0),
            },
            Some(Internal::Respond(ch, v)) = int_rx.recv() => {
                if let Some(rr) = node.swarm.behaviour_mut().rr.as_mut() {
                    if rr.send_response(ch, v).is_err() {
                        emit_error("reqresp", "delayed response not sent: the stream is gone");
                    }
                }
            }
            ev = node.swarm.select_next_some() => node.swarm_event(ev),
            _ = tick.tick() => if std::os::unix::process::parent_id() != parent { stop(0) },
            _ = term.recv() => stop(0),
            _ = int.recv() => stop(0),
        }
    }
}
