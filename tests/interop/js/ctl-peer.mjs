// ctl-peer.mjs - a long-running js-libp2p 3.x node driven by commands on stdin, for the lp2p
// interop tests that need js to act at a chosen moment (simultaneous dial, periodic pings for the
// soak run, missing protocols). TCP + Noise + Yamux, identify, ping, and optionally perf.
//
// Usage: scripts/node tests/interop/js/ctl-peer.mjs [options]
//   --listen MADDR          listen address (repeatable; default /ip4/127.0.0.1/tcp/0)
//   --key FILE              identity: libp2p `PrivateKey` protobuf (default: fresh Ed25519)
//   --muxer-negotiation M   noise (default) | mss  (as in peer.mjs)
//   --no-perf               do not serve /perf/1.0.0 (for "protocol not supported" tests)
//   --perf                  serve /perf/1.0.0 (default)
//   --timeout SEC           watchdog: exit 1 after SEC seconds (default 0 = off)
//   --ping-max-outbound N   outbound /ipfs/ping/1.0.0 streams per connection (default 2, js's own
//                           default is 1: see the services comment below)
// Commands (one per line on stdin; results are events on stdout):
//   dial MADDR                  -> dialed {addr, peer, ok, error?}
//   ping MADDR|PEER             -> ping {peer, rtt} | ping:error {target, message}
//   pingloop MADDR MS SECONDS   -> ping every MS ms for SECONDS (one at a time, a new stream each),
//                                  then pingloop {ok, failed, min, max, avg, firstError}
//   peers                       -> peers {count, peers}
//   hangup PEER                 -> hungup {peer}
//   handle PROTOCOL             -> handled {protocol} (a new protocol: js sends identify push)
//   quit                        -> stopped, exit 0
// Events are JSON lines with "event" (same shapes as peer.mjs where they overlap):
//   listening {peerId, addrs}, connection:open / connection:close {peer, addr, direction,
//   muxerNegotiation}, peer:identify {peer, agentVersion, protocolVersion, protocols,
//   listenAddrs, observedAddr, signedRecordSeq (null: no verified signed peer record)},
//   error {where, message}, stopped {}.
// The node exits when its parent process goes away (no orphan after a killed test).
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair, privateKeyFromProtobuf } from '@libp2p/crypto/keys'
import { identify, identifyPush } from '@libp2p/identify'
import { peerIdFromString } from '@libp2p/peer-id'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'

const PERF_PROTOCOL = '/perf/1.0.0'
const emit = (event, fields = {}) => process.stdout.write(JSON.stringify({ event, ...fields }) + '\n')
const errMsg = (err) => err?.message ?? String(err)

function parseArgs (argv) {
  const o = { listen: [], key: null, mux: 'noise', perf: true, timeout: 0, pingOut: 2 }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const val = () => { if (i + 1 >= argv.length) throw new Error(`${a} needs a value`); return argv[++i] }
    if (a === '--listen') o.listen.push(val())
    else if (a === '--key') o.key = val()
    else if (a === '--muxer-negotiation') o.mux = val()
    else if (a === '--no-perf') o.perf = false
    else if (a === '--perf') o.perf = true
    else if (a === '--timeout') o.timeout = Number(val())
    else if (a === '--ping-max-outbound') o.pingOut = Number(val())
    else throw new Error(`unknown argument ${a}`)
  }
  if (!['noise', 'mss'].includes(o.mux)) throw new Error('--muxer-negotiation must be noise or mss')
  if (o.listen.length === 0) o.listen.push('/ip4/127.0.0.1/tcp/0')
  return o
}

// Noise wrapper recording whether the muxer came from the handshake extension ('noise') or from
// multistream-select ('mss'); with skip, early negotiation is disabled on our side.
const early = new Map()
function noiseRecording (skip) {
  const factory = noise()
  return (components) => {
    const enc = factory(components)
    for (const m of ['secureOutbound', 'secureInbound']) {
      const orig = enc[m].bind(enc)
      enc[m] = async (conn, options) => {
        const res = await orig(conn, skip ? { ...options, skipStreamMuxerNegotiation: true } : options)
        early.set(res.remotePeer.toString(), res.streamMuxer != null ? 'noise' : 'mss')
        return res
      }
    }
    return enc
  }
}

async function servePerf (stream) {
  try {
    let head = new Uint8Array(0)
    for await (const chunk of stream) {
      const b = chunk instanceof Uint8Array ? chunk : chunk.subarray()
      if (head.length < 8) {
        const h = new Uint8Array(Math.min(8, head.length + b.length))
        h.set(head)
        h.set(b.subarray(0, h.length - head.length), head.length)
        head = h
      }
    }
    if (head.length < 8) throw new Error('perf: no header')
    let left = Number(new DataView(head.buffer).getBigUint64(0, false))
    const block = new Uint8Array(65536)
    while (left > 0) {
      const n = Math.min(left, block.length)
      if (!stream.send(block.subarray(0, n))) await stream.onDrain()
      left -= n
    }
    await stream.close()
  } catch (err) {
    emit('error', { where: 'perf:serve', message: errMsg(err) })
    stream.abort(err)
  }
}

function target (text) {
  return text.startsWith('/') ? multiaddr(text) : peerIdFromString(text)
}

async function main () {
  let o
  try { o = parseArgs(process.argv.slice(2)) } catch (err) {
    process.stderr.write(`ctl-peer.mjs: ${err.message}\n`)
    process.exit(2)
  }
  if (o.timeout > 0) {
    setTimeout(() => { emit('error', { where: 'watchdog', message: `timed out after ${o.timeout} s` }); process.exit(1) },
      o.timeout * 1000).unref()
  }
  const privateKey = o.key != null ? privateKeyFromProtobuf(readFileSync(o.key)) : await generateKeyPair('Ed25519')
  const node = await createLibp2p({
    privateKey,
    addresses: { listen: o.listen },
    transports: [tcp()],
    connectionEncrypters: [noiseRecording(o.mux === 'mss')],
    streamMuxers: [yamux()],
    connectionGater: { denyDialMultiaddr: () => false },
    // identifyPush: js only accepts/sends /ipfs/id/push/1.0.0 with this service.
    // ping maxOutboundStreams 2 (--ping-max-outbound): js's connection monitor pings every connection every 10 s through
    // the same per-connection outbound limit as the ping service (1 by default); an app pinging
    // often (pingloop) then makes the heartbeat fail with TooManyOutboundProtocolStreamsError and
    // js aborts the connection (reproduced js <-> js with js-libp2p 3.3.8).
    services: { identify: identify(), identifyPush: identifyPush(), ping: ping({ maxOutboundStreams: o.pingOut }) }
  })
  const info = (c) => ({
    peer: c.remotePeer.toString(),
    addr: c.remoteAddr.toString(),
    direction: c.direction,
    muxerNegotiation: early.get(c.remotePeer.toString()) ?? null
  })
  node.addEventListener('connection:open', (e) => emit('connection:open', info(e.detail)))
  node.addEventListener('connection:close', (e) => emit('connection:close', info(e.detail)))
  node.addEventListener('peer:identify', (e) => {
    const r = e.detail
    emit('peer:identify', {
      peer: r.peerId.toString(),
      agentVersion: r.agentVersion ?? null,
      protocolVersion: r.protocolVersion ?? null,
      protocols: r.protocols,
      listenAddrs: r.listenAddrs.map(String),
      observedAddr: r.observedAddr?.toString() ?? null,
      signedRecordSeq: r.signedPeerRecord != null ? String(r.signedPeerRecord.seq) : null
    })
  })
  if (o.perf) await node.handle(PERF_PROTOCOL, servePerf, { maxInboundStreams: 64 })
  emit('listening', { peerId: node.peerId.toString(), addrs: node.getMultiaddrs().map(String) })

  const stop = async (code) => {
    try { await node.stop() } catch {}
    emit('stopped')
    process.exit(code)
  }
  process.on('SIGINT', () => stop(0))
  process.on('SIGTERM', () => stop(0))
  const parent = process.ppid
  setInterval(() => { if (process.ppid !== parent) stop(0) }, 500).unref()

  const commands = {
    async dial (addr) {
      try {
        const c = await node.dial(multiaddr(addr))
        emit('dialed', { addr, peer: c.remotePeer.toString(), ok: true })
      } catch (err) {
        emit('dialed', { addr, ok: false, error: errMsg(err) })
      }
    },
    async ping (t) {
      try {
        const rtt = await node.services.ping.ping(target(t))
        emit('ping', { target: t, rtt })
      } catch (err) {
        emit('ping:error', { target: t, message: errMsg(err) })
      }
    },
    async pingloop (t, ms, seconds) {
      const end = Date.now() + Number(seconds) * 1000
      const gap = Number(ms)
      let ok = 0; let failed = 0; let min = Infinity; let max = 0; let sum = 0; let firstError = null
      while (Date.now() < end) {
        const t0 = Date.now()
        try {
          const rtt = await node.services.ping.ping(target(t))
          ok++; sum += rtt; min = Math.min(min, rtt); max = Math.max(max, rtt)
        } catch (err) {
          failed++
          firstError ??= errMsg(err)
        }
        const wait = gap - (Date.now() - t0)
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
      }
      emit('pingloop', { ok, failed, min: ok ? min : null, max, avg: ok ? sum / ok : null, firstError })
    },
    async peers () {
      const peers = [...new Set(node.getConnections().map((c) => c.remotePeer.toString()))]
      emit('peers', { count: peers.length, peers })
    },
    async hangup (p) {
      try { await node.hangUp(peerIdFromString(p)) } catch (err) { emit('error', { where: 'hangup', message: errMsg(err) }) }
      emit('hungup', { peer: p })
    },
    async handle (protocol) {
      await node.handle(protocol, (stream) => { stream.abort(new Error('not implemented')) })
      emit('handled', { protocol })
    },
    async quit () { await stop(0) }
  }
  const rl = createInterface({ input: process.stdin })
  rl.on('line', (line) => {
    const [verb, ...args] = line.trim().split(/\s+/)
    if (!verb) return
    const fn = commands[verb]
    if (fn == null) { emit('error', { where: 'command', message: `unknown command '${verb}'` }); return }
    fn(...args).catch((err) => emit('error', { where: verb, message: errMsg(err) }))
  })
  // end of input: keep serving until a signal, quit or the parent goes away
}

main().catch((err) => {
  emit('error', { where: 'main', message: errMsg(err) })
  process.exit(1)
})
