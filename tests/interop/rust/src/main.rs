//! rust-peer - a rust-libp2p node for lp2p's interop matrix (TCP + Noise + Yamux, identify, ping,
//! perf and an echo protocol). It speaks the command-line and JSON-event contract of
//! tests/interop/js/peer.mjs (read that header for the full list):
//!
//!   --listen MADDR (repeatable)  --dial MADDR  --key FILE  --muxer-negotiation noise|mss
//!   --ping N  --ping-interval MS  --identify  --perf-upload BYTES  --perf-download BYTES
//!   --streams N  --echo-bytes BYTES  --hold MS  --serve  --timeout SEC  --agent STRING
//!   --dial-at UNIX_MS   (dial at that wall-clock time: simultaneous-dial tests)
//!   --handle-after MS   (start handling /lp2p-test/pushed/1.0.0 after MS ms: identify push)
//!   --signed-record     rust only: send a signed peer record in identify
//!                       (identify::Config::new_with_signed_peer_record). Off by default, as in
//!                       rust-libp2p (identify::Config::new sends none). rust-libp2p 0.57 signs it
//!                       with the legacy "libp2p-routing-state" domain and payload type
//!                       "/libp2p/routing-state-record", not the peer-record multicodec go/js use
//!                       (rust-libp2p#6204).
//!
//! Every option also reads from the environment as LP2P_PEER_<NAME> (argv wins).
//! `rust-peer bench serve|client ...` is the rust-libp2p side of bench/run (src/bench.rs);
//! `rust-peer ctl [options]` is the stdin-driven kad/mdns/gossipsub/request-response peer (src/ctl.rs).
//!
//! Differences that the matrix records: rust-libp2p's Noise does not implement the
//! stream_muxers extension (early muxer negotiation), so the muxer is always negotiated with
//! multistream-select ("muxerNegotiation": "mss"), whatever --muxer-negotiation says.
//! Pings are rust-libp2p's ping behaviour (interval --ping-interval, default 100 ms while
//! dialing with --ping); echo and perf run over libp2p-stream.

mod bench;
mod ctl;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::identity::Keypair;
use libp2p::swarm::{dial_opts::DialOpts, NetworkBehaviour, SwarmEvent};
use libp2p::{identify, noise, ping, tcp, yamux, Multiaddr, PeerId, StreamProtocol};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot, Notify};

const ECHO: StreamProtocol = StreamProtocol::new("/lp2p-test/echo/1.0.0");
const PERF: StreamProtocol = StreamProtocol::new("/perf/1.0.0");
const PUSHED: StreamProtocol = StreamProtocol::new("/lp2p-test/pushed/1.0.0");
const PERF_BLOCK: usize = 64 * 1024;
const DEFAULT_AGENT: &str = "rust-libp2p/0.57.1";

// ---- output ------------------------------------------------------------------------------------
fn emit(event: &str, fields: Value) {
    let mut m = serde_json::Map::new();
    m.insert("event".into(), json!(event));
    if let Value::Object(f) = fields {
        m.extend(f);
    }
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", Value::Object(m));
    let _ = out.flush();
}

fn emit_error(where_: &str, msg: impl std::fmt::Display) {
    emit("error", json!({"where": where_, "message": msg.to_string()}));
}

// ---- options -----------------------------------------------------------------------------------
#[derive(Default)]
struct Opts {
    listen: Vec<String>,
    str_: HashMap<String, String>,
    num: HashMap<String, u64>,
    flag: HashSet<String>,
}

fn kind(name: &str) -> Option<&'static str> {
    Some(match name {
        "listen" => "list",
        "dial" | "key" | "muxer-negotiation" | "agent" => "str",
        "ping" | "ping-interval" | "perf-upload" | "perf-download" | "streams" | "echo-bytes"
        | "hold" | "timeout" | "dial-at" | "handle-after" => "int",
        "identify" | "serve" | "signed-record" => "flag",
        _ => return None,
    })
}

impl Opts {
    fn set(&mut self, name: &str, value: &str, where_: &str) -> Result<(), String> {
        match kind(name) {
            Some("flag") => {
                let v = value.to_ascii_lowercase();
                if v == "1" || v == "true" || v == "yes" {
                    self.flag.insert(name.into());
                } else {
                    self.flag.remove(name);
                }
            }
            Some("int") => {
                let n: u64 = value
                    .parse()
                    .map_err(|_| format!("{where_} needs a non-negative integer, got '{value}'"))?;
                self.num.insert(name.into(), n);
            }
            Some("list") => self.listen.extend(value.split(',').filter(|s| !s.is_empty()).map(String::from)),
            Some(_) => {
                self.str_.insert(name.into(), value.into());
            }
            None => return Err(format!("unknown option {where_}")),
        }
        Ok(())
    }
}

const NAMES: &[&str] = &[
    "listen", "dial", "key", "muxer-negotiation", "ping", "ping-interval", "identify", "perf-upload",
    "perf-download", "streams", "echo-bytes", "hold", "serve", "timeout", "agent", "dial-at",
    "handle-after", "signed-record",
];

fn parse_options() -> Result<Opts, String> {
    let mut o = Opts::default();
    for name in NAMES {
        let env = format!("LP2P_PEER_{}", name.to_uppercase().replace('-', "_"));
        if let Ok(v) = std::env::var(&env) {
            if !v.is_empty() {
                o.set(name, &v, &env)?;
            }
        }
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut listen_from_argv = false;
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        let body = a.strip_prefix("--").ok_or_else(|| format!("unexpected argument '{a}'"))?;
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (body.to_string(), None),
        };
        let k = kind(&name).ok_or_else(|| format!("unknown option --{name}"))?;
        let value = match inline {
            Some(v) => v,
            None if k == "flag" => "true".into(),
            None => {
                i += 1;
                args.get(i).cloned().ok_or_else(|| format!("--{name} needs a value"))?
            }
        };
        if k == "list" && !listen_from_argv {
            listen_from_argv = true;
            o.listen.clear();
        }
        o.set(&name, &value, &format!("--{name}"))?;
        i += 1;
    }
    let mn = o.str_.entry("muxer-negotiation".into()).or_insert_with(|| "noise".into()).clone();
    if mn != "noise" && mn != "mss" {
        return Err(format!("--muxer-negotiation must be noise or mss, got '{mn}'"));
    }
    o.num.entry("echo-bytes".into()).or_insert(4096);
    if !o.num.contains_key("timeout") && o.str_.contains_key("dial") {
        o.num.insert("timeout".into(), 60);
    }
    if o.listen.is_empty() && !o.str_.contains_key("dial") {
        o.listen.push("/ip4/127.0.0.1/tcp/0".into());
    }
    Ok(o)
}

// ---- shared state between the swarm task and the client actions -------------------------------
#[derive(Default)]
struct State {
    identified: HashSet<PeerId>,
    pings: HashMap<PeerId, Vec<Result<f64, String>>>,
}

struct Shared {
    state: Mutex<State>,
    changed: Notify,
}

impl Shared {
    /// Wait until `f` returns Some (checked after every swarm event).
    async fn wait<T>(&self, mut f: impl FnMut(&mut State) -> Option<T>) -> T {
        loop {
            let notified = self.changed.notified();
            if let Some(v) = f(&mut self.state.lock().unwrap()) {
                return v;
            }
            notified.await;
        }
    }
}

enum Cmd {
    Dial(Multiaddr, oneshot::Sender<Result<PeerId, String>>),
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    stream: libp2p_stream::Behaviour,
}

fn conn_info(peer: &PeerId, endpoint: &libp2p::core::ConnectedPoint) -> Value {
    json!({
        "peer": peer.to_string(),
        "addr": endpoint.get_remote_address().to_string(),
        "direction": if endpoint.is_dialer() { "outbound" } else { "inbound" },
        "muxer": "/yamux/1.0.0",
        "encryption": "/noise",
        // rust-libp2p's Noise has no stream_muxers extension: always multistream-select
        "muxerNegotiation": "mss",
    })
}

// ---- protocol handlers ---------------------------------------------------------------------------
fn echo_payload(index: usize, size: usize) -> Vec<u8> {
    let mut x: u32 = ((index as u64 + 1).wrapping_mul(2654435761) & 0xffff_ffff) as u32;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

async fn serve_echo(mut s: libp2p::Stream) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        total += n as u64;
        s.write_all(&buf[..n]).await?;
    }
    s.close().await?;
    Ok(total)
}

async fn serve_perf(mut s: libp2p::Stream) -> std::io::Result<(u64, u64)> {
    let mut head = [0u8; 8];
    s.read_exact(&mut head).await?;
    let mut buf = vec![0u8; PERF_BLOCK];
    let mut received = 0u64;
    loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        received += n as u64;
    }
    let to_send = u64::from_be_bytes(head);
    let block = vec![0u8; PERF_BLOCK];
    let mut left = to_send;
    while left > 0 {
        let n = left.min(PERF_BLOCK as u64) as usize;
        s.write_all(&block[..n]).await?;
        left -= n as u64;
    }
    s.close().await?;
    Ok((received, to_send))
}

async fn run_perf(
    mut control: libp2p_stream::Control,
    peer: PeerId,
    upload: u64,
    download: u64,
) -> Result<Value, String> {
    let t0 = Instant::now();
    let mut s = control.open_stream(peer, PERF).await.map_err(|e| format!("{e}"))?;
    s.write_all(&download.to_be_bytes()).await.map_err(|e| e.to_string())?;
    let block = vec![0u8; PERF_BLOCK];
    let mut left = upload;
    while left > 0 {
        let n = left.min(PERF_BLOCK as u64) as usize;
        s.write_all(&block[..n]).await.map_err(|e| e.to_string())?;
        left -= n as u64;
    }
    s.close().await.map_err(|e| e.to_string())?;
    let t1 = Instant::now();
    let mut buf = vec![0u8; PERF_BLOCK];
    let mut got = 0u64;
    loop {
        let n = s.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        got += n as u64;
    }
    let t2 = Instant::now();
    if got != download {
        return Err(format!("perf: expected {download} bytes back, got {got}"));
    }
    Ok(json!({"upload": upload, "download": got, "seconds": (t2 - t0).as_secs_f64(),
              "uploadSeconds": (t1 - t0).as_secs_f64(), "downloadSeconds": (t2 - t1).as_secs_f64()}))
}

async fn echo_one(mut control: libp2p_stream::Control, peer: PeerId, i: usize, size: usize) -> Result<(), String> {
    let s = control.open_stream(peer, ECHO).await.map_err(|e| format!("echo stream {i}: {e}"))?;
    let payload = echo_payload(i, size);
    let (mut r, mut w) = s.split();
    let write = async {
        w.write_all(&payload).await?;
        w.close().await
    };
    let read = async {
        let mut back = Vec::with_capacity(size);
        (&mut r).take(size as u64 + 1).read_to_end(&mut back).await?;
        Ok::<_, std::io::Error>(back)
    };
    let (wr, back) = futures::join!(write, read);
    wr.map_err(|e| format!("echo stream {i}: {e}"))?;
    let back = back.map_err(|e| format!("echo stream {i}: {e}"))?;
    if back.len() != size {
        return Err(format!("echo stream {i}: sent {size} bytes, got {} back", back.len()));
    }
    if let Some(k) = (0..size).find(|&k| back[k] != payload[k]) {
        return Err(format!("echo stream {i}: content differs at byte {k}"));
    }
    Ok(())
}

async fn run_echo(control: libp2p_stream::Control, peer: PeerId, count: usize, size: usize) -> Result<Value, String> {
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..count)
        .map(|i| tokio::spawn(echo_one(control.clone(), peer, i, size)))
        .collect();
    let mut failed = 0;
    let mut first = None;
    for t in tasks {
        if let Err(e) = t.await.unwrap_or_else(|e| Err(e.to_string())) {
            failed += 1;
            first.get_or_insert(e);
        }
    }
    if failed > 0 {
        return Err(format!("{failed}/{count} echo streams failed; first: {}", first.unwrap()));
    }
    Ok(json!({"streams": count, "bytes": count * size, "seconds": t0.elapsed().as_secs_f64()}))
}

fn accept_loop(control: &mut libp2p_stream::Control, proto: StreamProtocol) {
    let mut incoming = match control.accept(proto.clone()) {
        Ok(i) => i,
        Err(e) => return emit_error("accept", e),
    };
    tokio::spawn(async move {
        while let Some((_peer, s)) = incoming.next().await {
            let proto = proto.clone();
            tokio::spawn(async move {
                if proto == ECHO {
                    match serve_echo(s).await {
                        Ok(n) => emit("echo:served", json!({"bytes": n})),
                        Err(e) => emit_error("echo:serve", e),
                    }
                } else if proto == PERF {
                    match serve_perf(s).await {
                        Ok((r, sent)) => emit("perf:served", json!({"received": r, "sent": sent})),
                        Err(e) => emit_error("perf:serve", e),
                    }
                } else {
                    let mut s = s;
                    let _ = s.close().await;
                }
            });
        }
    });
}

fn load_key(opts: &Opts) -> Result<Keypair, String> {
    match opts.str_.get("key") {
        Some(f) => {
            let b = std::fs::read(f).map_err(|e| format!("{f}: {e}"))?;
            Keypair::from_protobuf_encoding(&b).map_err(|e| format!("{f}: {e}"))
        }
        None => Ok(Keypair::generate_ed25519()),
    }
}

#[tokio::main]
async fn main() {
    if std::env::args().nth(1).as_deref() == Some("bench") {
        bench::bench_main(std::env::args().skip(2).collect()).await;
        return;
    }
    if std::env::args().nth(1).as_deref() == Some("ctl") {
        return ctl::ctl_main(std::env::args().skip(2).collect()).await;
    }
    let opts = match parse_options() {
        Ok(o) => o,
        Err(e) => {
            emit_error("options", &e);
            eprintln!("rust-peer: {e}");
            std::process::exit(2);
        }
    };
    if let Some(&t) = opts.num.get("timeout").filter(|t| **t > 0) {
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(t)).await;
            emit_error("watchdog", format!("timed out after {t} s"));
            emit("done", json!({"ok": false}));
            std::process::exit(1);
        });
    }
    let key = match load_key(&opts) {
        Ok(k) => k,
        Err(e) => {
            emit_error("key", e);
            std::process::exit(2);
        }
    };
    let agent = opts.str_.get("agent").cloned().unwrap_or_else(|| DEFAULT_AGENT.into());
    let dialing = opts.str_.contains_key("dial");
    let signed_record = opts.flag.contains("signed-record");
    let ping_interval = match opts.num.get("ping-interval") {
        Some(&ms) if ms > 0 => Duration::from_millis(ms),
        _ if dialing && opts.num.get("ping").copied().unwrap_or(0) > 0 => Duration::from_millis(100),
        _ => Duration::from_secs(15),
    };

    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key.clone())
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, || {
            let mut c = yamux::Config::default();
            c.set_max_num_streams(4096);
            c
        })
        .expect("tcp transport")
        .with_behaviour(|k| Behaviour {
            identify: identify::Behaviour::new(
                if signed_record {
                    identify::Config::new_with_signed_peer_record("ipfs/0.1.0".into(), k)
                } else {
                    identify::Config::new("ipfs/0.1.0".into(), k.public())
                }
                .with_agent_version(agent.clone())
                    .with_push_listen_addr_updates(true),
            ),
            ping: ping::Behaviour::new(ping::Config::new().with_interval(ping_interval)),
            stream: libp2p_stream::Behaviour::new(),
        })
        .expect("behaviour")
        .with_swarm_config(|c| {
            c.with_idle_connection_timeout(Duration::from_secs(3600)).with_max_negotiating_inbound_streams(4096)
        })
        .build();

    for l in &opts.listen {
        let a: Multiaddr = match l.parse() {
            Ok(a) => a,
            Err(e) => {
                emit_error("listen", format!("{l}: {e}"));
                std::process::exit(2);
            }
        };
        if let Err(e) = swarm.listen_on(a) {
            emit_error("listen", format!("{l}: {e}"));
            std::process::exit(1);
        }
    }
    let local = *swarm.local_peer_id();
    // wait for every listener's first address
    let mut addrs = Vec::new();
    while addrs.len() < opts.listen.len() {
        if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
            addrs.push(format!("{address}/p2p/{local}"));
        }
    }

    let mut control = swarm.behaviour().stream.new_control();
    accept_loop(&mut control, ECHO);
    accept_loop(&mut control, PERF);
    if let Some(&ms) = opts.num.get("handle-after") {
        let mut c = control.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            accept_loop(&mut c, PUSHED);
        });
    }
    if opts.listen.is_empty() {
        emit("started", json!({"peerId": local.to_string()}));
    } else {
        emit("listening", json!({"peerId": local.to_string(), "addrs": addrs}));
    }

    // ---- the swarm task ----
    let shared = Arc::new(Shared { state: Mutex::new(State::default()), changed: Notify::new() });
    let (cmd_tx, mut cmd_rx) = mpsc::channel::<Cmd>(8);
    let (stop_tx, mut stop_rx) = mpsc::channel::<i32>(1);
    {
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut dials: HashMap<libp2p::swarm::ConnectionId, oneshot::Sender<Result<PeerId, String>>> =
                HashMap::new();
            loop {
                tokio::select! {
                    cmd = cmd_rx.recv() => match cmd {
                        Some(Cmd::Dial(addr, reply)) => {
                            let o: DialOpts = addr.into();
                            let id = o.connection_id();
                            match swarm.dial(o) {
                                Ok(()) => { dials.insert(id, reply); }
                                Err(e) => { let _ = reply.send(Err(e.to_string())); }
                            }
                        }
                        None => {}
                    },
                    code = stop_rx.recv() => {
                        // close connections cleanly, then exit
                        let peers: Vec<PeerId> = swarm.connected_peers().copied().collect();
                        for p in peers { let _ = swarm.disconnect_peer_id(p); }
                        emit("stopped", json!({}));
                        std::process::exit(code.unwrap_or(0));
                    },
                    ev = swarm.select_next_some() => {
                        match ev {
                            SwarmEvent::ConnectionEstablished { peer_id, connection_id, endpoint, .. } => {
                                emit("connection:open", conn_info(&peer_id, &endpoint));
                                if let Some(r) = dials.remove(&connection_id) { let _ = r.send(Ok(peer_id)); }
                            }
                            SwarmEvent::ConnectionClosed { peer_id, endpoint, .. } => {
                                emit("connection:close", conn_info(&peer_id, &endpoint));
                            }
                            SwarmEvent::OutgoingConnectionError { connection_id, error, .. } => {
                                if let Some(r) = dials.remove(&connection_id) { let _ = r.send(Err(error.to_string())); }
                            }
                            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. })) => {
                                emit("peer:identify", json!({
                                    "peer": peer_id.to_string(), "agentVersion": info.agent_version,
                                    "protocolVersion": info.protocol_version,
                                    "protocols": info.protocols.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
                                    "listenAddrs": info.listen_addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                                    "observedAddr": info.observed_addr.to_string(),
                                    "signedPeerRecord": info.signed_peer_record.is_some(),
                                }));
                                shared.state.lock().unwrap().identified.insert(peer_id);
                            }
                            SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event { peer, result, .. })) => {
                                let r = result.map(|d| d.as_secs_f64() * 1000.0).map_err(|e| e.to_string());
                                shared.state.lock().unwrap().pings.entry(peer).or_default().push(r);
                            }
                            _ => {}
                        }
                        shared.changed.notify_waiters();
                    }
                }
            }
        });
    }
    {
        let stop_sig = stop_tx.clone();
        tokio::spawn(async move {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
            let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).unwrap();
            tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
            let _ = stop_sig.send(0).await;
        });
        let stop_tx2 = stop_tx.clone();
        let parent = std::os::unix::process::parent_id();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                if std::os::unix::process::parent_id() != parent {
                    let _ = stop_tx2.send(0).await;
                }
            }
        });
    }

    let Some(dial) = opts.str_.get("dial").cloned() else {
        futures::future::pending::<()>().await;
        return;
    };
    let mut ok = true;
    macro_rules! step {
        ($where:expr, $e:expr) => {
            match $e {
                Ok(v) => Some(v),
                Err(e) => {
                    ok = false;
                    emit_error($where, e);
                    None
                }
            }
        };
    }
    if let Some(&at) = opts.num.get("dial-at") {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        if at > now {
            tokio::time::sleep(Duration::from_millis(at - now)).await;
        }
    }
    let peer = step!("dial", async {
        let addr: Multiaddr = dial.parse().map_err(|e| format!("{dial}: {e}"))?;
        let (tx, rx) = oneshot::channel();
        cmd_tx.send(Cmd::Dial(addr, tx)).await.map_err(|e| e.to_string())?;
        tokio::time::timeout(Duration::from_secs(30), rx)
            .await
            .map_err(|_| "dial timed out after 30 s".to_string())?
            .map_err(|e| e.to_string())?
    }
    .await);
    if let Some(peer) = peer {
        if opts.flag.contains("identify") {
            step!(
                "identify",
                tokio::time::timeout(
                    Duration::from_secs(20),
                    shared.wait(|s| s.identified.contains(&peer).then_some(()))
                )
                .await
                .map_err(|_| "no identify result within 20 s")
            );
        }
        let n = opts.num.get("ping").copied().unwrap_or(0) as usize;
        for i in 0..n {
            // the ping behaviour pings every connection at its interval: take the i-th result
            let r = tokio::time::timeout(
                Duration::from_secs(20),
                shared.wait(|s| s.pings.get(&peer).and_then(|v| v.get(i).cloned())),
            )
            .await
            .unwrap_or_else(|_| Err("no ping result within 20 s".into()));
            if let Some(rtt) = step!("ping", r) {
                emit("ping", json!({"seq": i, "rtt": rtt}));
            }
        }
        if opts.num.contains_key("perf-upload") || opts.num.contains_key("perf-download") {
            let up = opts.num.get("perf-upload").copied().unwrap_or(0);
            let down = opts.num.get("perf-download").copied().unwrap_or(0);
            if let Some(r) = step!("perf", run_perf(control.clone(), peer, up, down).await) {
                emit("perf", r);
            }
        }
        if let Some(&n) = opts.num.get("streams") {
            let size = opts.num["echo-bytes"] as usize;
            if let Some(r) = step!("echo", run_echo(control.clone(), peer, n as usize, size).await) {
                emit("echo", r);
            }
        }
        if let Some(&hold) = opts.num.get("hold").filter(|h| **h > 0) {
            tokio::time::sleep(Duration::from_millis(hold)).await;
        }
    }
    emit("done", json!({"ok": ok}));
    if opts.flag.contains("serve") {
        futures::future::pending::<()>().await;
    }
    let _ = stop_tx.send(if ok { 0 } else { 1 }).await;
    futures::future::pending::<()>().await;
}
