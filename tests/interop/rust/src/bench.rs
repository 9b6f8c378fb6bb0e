//! `rust-peer bench serve|client ...`: the rust-libp2p side of bench/run, with the command line and JSON
//! lines of bench/bench_swarm.c and bench/js/bench-peer.mjs (read bench_swarm.c's header):
//!
//!   rust-peer bench serve [--listen MADDR]...
//!   rust-peer bench client --dial MADDR/p2p/ID --test bulk|connrate|echo|ping|streams [options] [--timeout SEC]
//!
//! TCP + Noise + Yamux. The server accepts perf, echo and /ipfs/ping/1.0.0 streams through src/serve.rs (a
//! queue that never drops an inbound stream; libp2p-stream's accept drops one that arrives before the previous
//! was taken, which broke the 1,000-streams test) and answers pings itself (32-byte echo until EOF, any number
//! of streams). rust-libp2p's ping behaviour could not be the server: its handler keeps one inbound ping stream
//! per connection (a new one replaces the previous: the client's own ping behaviour cut the measured stream),
//! and it stops answering inbound pings altogether once its own ping to the client found the protocol
//! unsupported. The client opens every stream over libp2p-stream and has no ping behaviour; it opens a new
//! /ipfs/ping/1.0.0 stream per ping: wall = open -> echoed 32 bytes, rtt = write -> echoed 32 bytes.
//! "cpu" is this process's user+system CPU seconds over the measured interval. ("conns" is run by lp2p's
//! client against every listener, so it is not implemented here.)

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{identity::Keypair, noise, tcp, yamux, Multiaddr, PeerId, StreamProtocol, Swarm};
use serde_json::{json, Value};

const ECHO: StreamProtocol = StreamProtocol::new("/lp2p-test/echo/1.0.0");
const PERF: StreamProtocol = StreamProtocol::new("/perf/1.0.0");
const PING: StreamProtocol = StreamProtocol::new("/ipfs/ping/1.0.0");
const BLOCK: usize = 64 * 1024;

/// The server: perf, echo and ping streams are accepted by crate::serve (see the header for why not
/// libp2p-stream's accept nor rust-libp2p's ping behaviour).
#[derive(NetworkBehaviour)]
struct ServerBehaviour {
    serve: crate::serve::Behaviour,
}

/// The client opens every stream itself over libp2p-stream, ping streams included (no ping behaviour).
#[derive(NetworkBehaviour)]
struct ClientBehaviour {
    stream: libp2p_stream::Behaviour,
}

fn out(v: Value) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "{v}");
    let _ = o.flush();
}

fn cpu_seconds() -> f64 {
    let mut ru: libc_rusage = unsafe { std::mem::zeroed() };
    unsafe { getrusage(0, &mut ru) };
    let tv = |t: timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

#[repr(C)]
#[derive(Clone, Copy)]
struct timeval {
    tv_sec: i64,
    tv_usec: i64,
}
#[repr(C)]
struct libc_rusage {
    ru_utime: timeval,
    ru_stime: timeval,
    _rest: [i64; 14],
}
extern "C" {
    fn getrusage(who: i32, usage: *mut libc_rusage) -> i32;
}

fn stats(name: &str, v: &mut [f64], m: &mut serde_json::Map<String, Value>) {
    if v.is_empty() {
        return;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    m.insert(format!("{name}_p50"), json!(v[n / 2]));
    m.insert(format!("{name}_p90"), json!(v[n * 9 / 10]));
    m.insert(format!("{name}_p99"), json!(v[n * 99 / 100]));
    m.insert(format!("{name}_mean"), json!(v.iter().sum::<f64>() / n as f64));
}

fn transport_swarm<B: NetworkBehaviour>(behaviour: impl FnOnce() -> B) -> Swarm<B> {
    libp2p::SwarmBuilder::with_existing_identity(Keypair::generate_ed25519())
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, || {
            let mut c = yamux::Config::default();
            c.set_max_num_streams(4096); // yamux: <= max_connection_receive_window (1 GiB) / 256 KiB
            c
        })
        .expect("tcp")
        .with_behaviour(|_| behaviour())
        .expect("behaviour")
        .with_swarm_config(|c| {
            // default 128 streams in negotiation per connection: the 1,000-stream test opens more at once
            c.with_idle_connection_timeout(Duration::from_secs(3600)).with_max_negotiating_inbound_streams(4096)
        })
        .build()
}

fn new_swarm() -> Swarm<ClientBehaviour> {
    transport_swarm(|| ClientBehaviour { stream: libp2p_stream::Behaviour::new() })
}

async fn serve_perf(mut s: libp2p::Stream) -> std::io::Result<()> {
    let mut head = [0u8; 8];
    s.read_exact(&mut head).await?;
    let mut buf = vec![0u8; BLOCK];
    while s.read(&mut buf).await? > 0 {}
    let mut left = u64::from_be_bytes(head);
    let block = vec![0u8; BLOCK];
    while left > 0 {
        let n = left.min(BLOCK as u64) as usize;
        s.write_all(&block[..n]).await?;
        left -= n as u64;
    }
    s.close().await
}

/// /ipfs/ping/1.0.0: echo 32-byte pings until the dialer closes (any number of streams per connection).
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

async fn serve_echo(mut s: libp2p::Stream) -> std::io::Result<()> {
    let mut buf = vec![0u8; BLOCK];
    loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            return s.close().await;
        }
        s.write_all(&buf[..n]).await?;
    }
}

async fn perf_once(mut c: libp2p_stream::Control, peer: PeerId, up: u64, down: u64) -> Result<(), String> {
    let mut s = c.open_stream(peer, PERF).await.map_err(|e| e.to_string())?;
    s.write_all(&down.to_be_bytes()).await.map_err(|e| e.to_string())?;
    let block = vec![0u8; BLOCK];
    let mut left = up;
    while left > 0 {
        let n = left.min(BLOCK as u64) as usize;
        s.write_all(&block[..n]).await.map_err(|e| e.to_string())?;
        left -= n as u64;
    }
    s.close().await.map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; BLOCK];
    let mut got = 0u64;
    loop {
        let n = s.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        got += n as u64;
    }
    if got != down {
        return Err(format!("perf: expected {down} bytes back, got {got}"));
    }
    Ok(())
}

/// Runs the swarm in the background; returns the stream control and the connected peer.
async fn connect(dial: &Multiaddr) -> Result<(libp2p_stream::Control, PeerId), String> {
    let mut swarm = new_swarm();
    let control = swarm.behaviour().stream.new_control();
    swarm.dial(dial.clone()).map_err(|e| e.to_string())?;
    let peer = loop {
        match swarm.select_next_some().await {
            SwarmEvent::ConnectionEstablished { peer_id, .. } => break peer_id,
            SwarmEvent::OutgoingConnectionError { error, .. } => return Err(error.to_string()),
            _ => {}
        }
    };
    tokio::spawn(async move {
        loop {
            if let SwarmEvent::ConnectionClosed { cause, .. } = swarm.select_next_some().await {
                eprintln!("rust-peer bench client: connection closed: {cause:?}");
            }
        }
    });
    Ok((control, peer))
}

pub async fn bench_main(args: Vec<String>) {
    let mode = args.first().cloned().unwrap_or_default();
    let mut o: HashMap<String, String> = HashMap::new();
    let mut listen = Vec::new();
    let mut i = 1;
    while i + 1 < args.len() + 1 && i < args.len() {
        let name = args[i].trim_start_matches("--").to_string();
        let v = args.get(i + 1).cloned().unwrap_or_default();
        if name == "listen" {
            listen.push(v);
        } else {
            o.insert(name, v);
        }
        i += 2;
    }
    let num = |k: &str, d: u64| o.get(k).and_then(|v| v.parse().ok()).unwrap_or(d);
    if mode == "serve" {
        if listen.is_empty() {
            listen.push("/ip4/127.0.0.1/tcp/0".into());
        }
        let (serve, mut incoming) = crate::serve::Behaviour::new(vec![PERF, ECHO, PING]);
        let mut swarm = transport_swarm(|| ServerBehaviour { serve });
        tokio::spawn(async move {
            while let Some((_, proto, s)) = incoming.recv().await {
                tokio::spawn(async move {
                    let _ = if proto == PERF {
                        serve_perf(s).await
                    } else if proto == PING {
                        serve_ping(s).await
                    } else {
                        serve_echo(s).await
                    };
                });
            }
        });
        for l in &listen {
            swarm.listen_on(l.parse().expect("listen address")).expect("listen");
        }
        let me = *swarm.local_peer_id();
        let mut addrs = Vec::new();
        while addrs.len() < listen.len() {
            if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
                addrs.push(format!("{address}/p2p/{me}"));
            }
        }
        out(json!({"event": "listening", "peer": me.to_string(), "pid": std::process::id(), "addrs": addrs}));
        let parent = std::os::unix::process::parent_id();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                ev = swarm.select_next_some() => if let SwarmEvent::ConnectionClosed { cause: Some(c), peer_id, .. } = ev {
                    eprintln!("rust-peer bench serve: connection to {peer_id} closed: {c}");
                },
                _ = term.recv() => { out(json!({"event": "stopped"})); std::process::exit(0) }
                _ = tick.tick() => if std::os::unix::process::parent_id() != parent { std::process::exit(0) },
            }
        }
    }
    if mode != "client" {
        eprintln!("usage: rust-peer bench serve|client ...");
        std::process::exit(2);
    }
    let test = o.get("test").cloned().unwrap_or_default();
    let timeout = num("timeout", 120);
    {
        let test = test.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(timeout)).await;
            out(json!({"test": test, "error": format!("timed out after {timeout} s")}));
            std::process::exit(1);
        });
    }
    let r = bench_client(&test, o.get("dial").cloned().unwrap_or_default(), &num).await;
    match r {
        Ok(v) => {
            out(v);
            std::process::exit(0)
        }
        Err(e) => {
            out(json!({"test": test, "error": e}));
            std::process::exit(1)
        }
    }
}

async fn bench_client(test: &str, dial: String, num: &dyn Fn(&str, u64) -> u64) -> Result<Value, String> {
    let addr: Multiaddr = dial.parse().map_err(|e| format!("{dial}: {e}"))?;
    let mut m = serde_json::Map::new();
    m.insert("test".into(), json!(test));
    match test {
        "bulk" => {
            let (c, p) = connect(&addr).await?;
            let (up, down) = (num("bytes", 0), num("download", 0));
            let (c0, t0) = (cpu_seconds(), Instant::now());
            perf_once(c, p, up, down).await?;
            m.insert("bytes".into(), json!(up));
            m.insert("download".into(), json!(down));
            m.insert("seconds".into(), json!(t0.elapsed().as_secs_f64()));
            m.insert("cpu".into(), json!(cpu_seconds() - c0));
        }
        "streams" => {
            let (c, p) = connect(&addr).await?;
            let (n, b) = (num("streams", 1000), num("bytes", 65536));
            let (c0, t0) = (cpu_seconds(), Instant::now());
            let tasks: Vec<_> = (0..n).map(|_| tokio::spawn(perf_once(c.clone(), p, b, 0))).collect();
            for t in tasks {
                t.await.map_err(|e| e.to_string())??;
            }
            m.insert("streams".into(), json!(n));
            m.insert("bytes".into(), json!(n * b));
            m.insert("seconds".into(), json!(t0.elapsed().as_secs_f64()));
            m.insert("cpu".into(), json!(cpu_seconds() - c0));
            m.insert("retries".into(), json!(0));
        }
        "echo" => {
            let (mut c, p) = connect(&addr).await?;
            let (count, size) = (num("count", 1000), num("size", 32) as usize);
            let mut s = c.open_stream(p, ECHO).await.map_err(|e| e.to_string())?;
            let (buf, mut back) = (vec![7u8; size], vec![0u8; size]);
            let mut lat = Vec::with_capacity(count as usize);
            let c0 = cpu_seconds();
            for _ in 0..count {
                let t = Instant::now();
                s.write_all(&buf).await.map_err(|e| e.to_string())?;
                s.read_exact(&mut back).await.map_err(|e| e.to_string())?;
                lat.push(t.elapsed().as_secs_f64());
            }
            let _ = s.close().await;
            stats("rtt", &mut lat, &mut m);
            m.insert("count".into(), json!(count));
            m.insert("size".into(), json!(size));
            m.insert("cpu".into(), json!(cpu_seconds() - c0));
        }
        "ping" => {
            let (mut c, p) = connect(&addr).await?;
            let count = num("count", 200);
            let (mut wall, mut rtt) = (Vec::new(), Vec::new());
            let payload: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(37).wrapping_add(count as u8)).collect();
            let mut back = [0u8; 32];
            let c0 = cpu_seconds();
            for _ in 0..count {
                let t = Instant::now();
                let mut s = c.open_stream(p, PING).await.map_err(|e| e.to_string())?;
                let t1 = Instant::now();
                s.write_all(&payload).await.map_err(|e| e.to_string())?;
                s.read_exact(&mut back).await.map_err(|e| e.to_string())?;
                if back[..] != payload[..] {
                    return Err("ping: payload not echoed".into());
                }
                rtt.push(t1.elapsed().as_secs_f64());
                wall.push(t.elapsed().as_secs_f64());
                let _ = s.close().await;
            }
            stats("wall", &mut wall, &mut m);
            stats("rtt", &mut rtt, &mut m);
            m.insert("count".into(), json!(count));
            m.insert("cpu".into(), json!(cpu_seconds() - c0));
        }
        "connrate" => {
            let (count, conc, secs) = (num("count", 100), num("concurrency", 1), num("seconds", 0));
            let next = Arc::new(AtomicU64::new(0));
            let lat = Arc::new(Mutex::new(Vec::new()));
            let errors = Arc::new(AtomicU64::new(0));
            let deadline = (secs > 0).then(|| Instant::now() + Duration::from_secs(secs));
            let (c0, t0) = (cpu_seconds(), Instant::now());
            let tasks: Vec<_> = (0..conc)
                .map(|_| {
                    let (next, lat, errors, addr) = (next.clone(), lat.clone(), errors.clone(), addr.clone());
                    tokio::spawn(async move {
                        let mut swarm = new_swarm();
                        loop {
                            if next.fetch_add(1, Ordering::SeqCst) >= count
                                || deadline.is_some_and(|d| Instant::now() > d)
                            {
                                return;
                            }
                            let t = Instant::now();
                            if swarm.dial(addr.clone()).is_err() {
                                errors.fetch_add(1, Ordering::SeqCst);
                                continue;
                            }
                            let peer = loop {
                                match swarm.select_next_some().await {
                                    SwarmEvent::ConnectionEstablished { peer_id, .. } => break Some(peer_id),
                                    SwarmEvent::OutgoingConnectionError { .. } => break None,
                                    _ => {}
                                }
                            };
                            let Some(peer) = peer else {
                                errors.fetch_add(1, Ordering::SeqCst);
                                continue;
                            };
                            lat.lock().unwrap().push(t.elapsed().as_secs_f64());
                            let _ = swarm.disconnect_peer_id(peer);
                            loop {
                                if let SwarmEvent::ConnectionClosed { num_established: 0, .. } =
                                    swarm.select_next_some().await
                                {
                                    break;
                                }
                            }
                        }
                    })
                })
                .collect();
            for t in tasks {
                let _ = t.await;
            }
            let mut l = lat.lock().unwrap().clone();
            if l.is_empty() {
                return Err("connrate: no connection succeeded".into());
            }
            m.insert("count".into(), json!(l.len()));
            stats("lat", &mut l, &mut m);
            m.insert("concurrency".into(), json!(conc));
            m.insert("seconds".into(), json!(t0.elapsed().as_secs_f64()));
            m.insert("cpu".into(), json!(cpu_seconds() - c0));
            m.insert("errors".into(), json!(errors.load(Ordering::SeqCst)));
        }
        _ => return Err(format!("unknown or unsupported test '{test}'")),
    }
    Ok(Value::Object(m))
}
