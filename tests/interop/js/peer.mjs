// peer.mjs - a js-libp2p 3.x node for interop tests (TCP + Noise + Yamux, identify (+ push), ping,
// perf and an echo protocol). It always serves; with --dial it also runs the requested client
// actions against the dialed peer and exits (0 = every action succeeded).
//
// Usage: scripts/node tests/interop/js/peer.mjs [options]
//   --listen MADDR            listen address (repeatable), e.g. /ip4/127.0.0.1/tcp/0
//   --dial MADDR              dial this address (with or without /p2p/<id>) and run the actions
//   --key FILE                identity: libp2p `PrivateKey` protobuf (default: fresh Ed25519)
//   --muxer-negotiation M     noise (default): muxer list in the Noise handshake (early negotiation)
//                             mss: empty list and remote list ignored => yamux via multistream-select
//   --ping N                  N pings (/ipfs/ping/1.0.0) on the dialed connection
//   --ping-interval MS        pause MS ms between those pings (default 0)
//   --identify                require the remote's identify result (/ipfs/id/1.0.0)
//   --perf-upload BYTES       perf (/perf/1.0.0) client: bytes to send
//   --perf-download BYTES     perf client: bytes to request back
//   --streams N               N concurrent echo streams (/lp2p-test/echo/1.0.0) on one connection
//   --echo-bytes BYTES        payload per echo stream (default 4096)
//   --hold MS                 keep the connection open MS ms after the actions (default 0)
//   --serve                   after --dial actions, keep serving instead of exiting
//   --timeout SEC             watchdog: emit an error and exit 1 after SEC seconds (0 = off;
//                             default 60 with --dial, off otherwise)
//   --agent STRING            identify agentVersion name (default js-libp2p's own)
//   --dial-at UNIX_MS         wait until this wall-clock time (ms since the epoch) before dialing
//                             (simultaneous-dial tests)
//   --handle-after MS         start handling /lp2p-test/pushed/1.0.0 MS ms after start (a new
//                             protocol: identify push to connected peers)
// Every option also reads from the environment as LP2P_PEER_<NAME> or LP2P_JS_<NAME> (e.g.
// LP2P_JS_DIAL, LP2P_PEER_PING); argv wins. This is the contract of the go and rust peers too
// (tests/interop/go, tests/interop/rust), which read LP2P_PEER_<NAME>. Without --dial the node serves until SIGINT/SIGTERM, the watchdog, or until its parent
// process exits (so a killed test script leaves no node behind).
//
// Output: one JSON object per line on stdout; every object has "event":
//   listening {peerId, addrs}      started {peerId} (when not listening)
//   connection:open, connection:close {peer, addr, direction, muxer, encryption,
//                                      muxerNegotiation: "noise" (early, in the handshake) | "mss"}
//   peer:identify {peer, agentVersion, protocolVersion, protocols, listenAddrs, observedAddr}
//   ping {seq, rtt}                perf {upload, download, seconds, uploadSeconds, downloadSeconds}
//   echo {streams, bytes, seconds} perf:served {received, sent}    echo:served {bytes}
//   error {where, message}         done {ok}                       stopped {}
// Diagnostics go to stderr only.
import { readFileSync } from 'node:fs'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair, privateKeyFromProtobuf } from '@libp2p/crypto/keys'
import { identify, identifyPush } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'

export const ECHO_PROTOCOL = '/lp2p-test/echo/1.0.0'
export const PERF_PROTOCOL = '/perf/1.0.0'
const PERF_BLOCK = 64 * 1024
const STREAM_LIMIT = 1024

// ---- output ------------------------------------------------------------------------------------
function emit (event, fields = {}) {
  process.stdout.write(JSON.stringify({ event, ...fields }) + '\n')
}
function emitError (where, err) {
  emit('error', { where, message: err?.message ?? String(err) })
}

// ---- options -----------------------------------------------------------------------------------
const SPEC = {
  listen: 'list', dial: 'str', key: 'str', 'muxer-negotiation': 'str', ping: 'int', identify: 'flag',
  'perf-upload': 'int', 'perf-download': 'int', streams: 'int', 'echo-bytes': 'int', hold: 'int',
  serve: 'flag', timeout: 'int', agent: 'str', 'ping-interval': 'int', 'dial-at': 'int', 'handle-after': 'int'
}
export const PUSHED_PROTOCOL = '/lp2p-test/pushed/1.0.0'

function parseOptions (argv, env) {
  const opts = {}
  const set = (name, value, where) => {
    const kind = SPEC[name]
    if (kind == null) throw new Error(`unknown option ${where}`)
    if (kind === 'flag') {
      opts[name] = value === true || /^(1|true|yes)$/i.test(String(value))
    } else if (kind === 'int') {
      if (!/^\d+$/.test(String(value))) throw new Error(`${where} needs a non-negative integer, got '${value}'`)
      opts[name] = Number(value)
    } else if (kind === 'list') {
      opts[name] = [...(opts[name] ?? []), ...String(value).split(',').filter(Boolean)]
    } else {
      opts[name] = String(value)
    }
  }
  for (const prefix of ['LP2P_PEER_', 'LP2P_JS_']) {
    for (const name of Object.keys(SPEC)) {
      const v = env[prefix + name.toUpperCase().replaceAll('-', '_')]
      if (v != null && v !== '') set(name, v, prefix + name.toUpperCase().replaceAll('-', '_'))
    }
  }
  const fromArgv = {}
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(argv[i])
    if (m == null) throw new Error(`unexpected argument '${argv[i]}'`)
    const name = m[1]
    if (SPEC[name] == null) throw new Error(`unknown option --${name}`)
    let value = m[2]
    if (value == null) {
      if (SPEC[name] === 'flag') value = true
      else if (i + 1 < argv.length) value = argv[++i]
      else throw new Error(`--${name} needs a value`)
    }
    if (SPEC[name] === 'list' && fromArgv[name] == null) { fromArgv[name] = true; delete opts[name] }
    set(name, value, `--${name}`)
  }
  opts['muxer-negotiation'] ??= 'noise'
  if (!['noise', 'mss'].includes(opts['muxer-negotiation'])) {
    throw new Error(`--muxer-negotiation must be noise or mss, got '${opts['muxer-negotiation']}'`)
  }
  opts['echo-bytes'] ??= 4096
  opts.timeout ??= opts.dial != null ? 60 : 0
  opts.hold ??= 0
  if (opts.listen == null && opts.dial == null) opts.listen = ['/ip4/127.0.0.1/tcp/0']
  return opts
}

// ---- stream helpers ----------------------------------------------------------------------------
const asBytes = (chunk) => chunk instanceof Uint8Array ? chunk : chunk.subarray()

async function sendAll (stream, bytes) {
  if (!stream.send(bytes)) await stream.onDrain()
}

async function readAll (stream, max = Infinity) {
  const parts = []
  let n = 0
  for await (const chunk of stream) {
    const b = asBytes(chunk)
    n += b.byteLength
    if (n > max) throw new Error(`stream sent more than ${max} bytes`)
    parts.push(b)
  }
  const out = new Uint8Array(n)
  let off = 0
  for (const p of parts) { out.set(p, off); off += p.byteLength }
  return out
}

// Deterministic, stream-specific payload so a mixed-up echo is detected.
function echoPayload (index, size) {
  const b = new Uint8Array(size)
  let x = (index + 1) * 2654435761 >>> 0
  for (let i = 0; i < size; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0
    b[i] = x & 0xff
  }
  return b
}

// ---- protocol handlers (server side) -----------------------------------------------------------
async function handleEcho (stream) {
  let bytes = 0
  try {
    for await (const chunk of stream) {
      const b = asBytes(chunk)
      bytes += b.byteLength
      await sendAll(stream, b)
    }
    await stream.close()
    emit('echo:served', { bytes })
  } catch (err) {
    emitError('echo:serve', err)
    stream.abort(err)
  }
}

// perf: the client sends an 8-byte big-endian count, then its upload, then closes its write side;
// the server drains everything and answers with `count` bytes, then closes.
async function handlePerf (stream) {
  try {
    const head = []
    let headLen = 0
    let received = 0
    for await (const chunk of stream) {
      const b = asBytes(chunk)
      received += b.byteLength
      if (headLen < 8) {
        const take = b.subarray(0, 8 - headLen)
        head.push(take)
        headLen += take.byteLength
      }
    }
    if (headLen < 8) throw new Error(`perf: stream closed after ${received} bytes, before the 8-byte header`)
    const h = new Uint8Array(8)
    let off = 0
    for (const p of head) { h.set(p, off); off += p.byteLength }
    let toSend = Number(new DataView(h.buffer).getBigUint64(0, false))
    const sent = toSend
    const block = new Uint8Array(PERF_BLOCK)
    while (toSend > 0) {
      const n = Math.min(toSend, PERF_BLOCK)
      await sendAll(stream, block.subarray(0, n))
      toSend -= n
    }
    await stream.close()
    emit('perf:served', { received: received - 8, sent })
  } catch (err) {
    emitError('perf:serve', err)
    stream.abort(err)
  }
}

// ---- client actions ----------------------------------------------------------------------------
async function runPerf (conn, upload, download) {
  const t0 = performance.now()
  const stream = await conn.newStream(PERF_PROTOCOL, { maxOutboundStreams: STREAM_LIMIT })
  const head = new Uint8Array(8)
  new DataView(head.buffer).setBigUint64(0, BigInt(download), false)
  await sendAll(stream, head)
  const block = new Uint8Array(PERF_BLOCK)
  let left = upload
  while (left > 0) {
    const n = Math.min(left, PERF_BLOCK)
    await sendAll(stream, block.subarray(0, n))
    left -= n
  }
  await stream.close()
  const t1 = performance.now()
  let got = 0
  for await (const chunk of stream) got += chunk.byteLength
  const t2 = performance.now()
  if (got !== download) throw new Error(`perf: expected ${download} bytes back, got ${got}`)
  return {
    upload,
    download: got,
    seconds: (t2 - t0) / 1000,
    uploadSeconds: (t1 - t0) / 1000,
    downloadSeconds: (t2 - t1) / 1000
  }
}

async function runEcho (conn, count, size) {
  const t0 = performance.now()
  const one = async (i) => {
    const stream = await conn.newStream(ECHO_PROTOCOL, { maxOutboundStreams: STREAM_LIMIT })
    const payload = echoPayload(i, size)
    const reading = readAll(stream, size)
    await sendAll(stream, payload)
    await stream.close()
    const back = await reading
    if (back.byteLength !== size) throw new Error(`echo stream ${i}: sent ${size} bytes, got ${back.byteLength} back`)
    for (let k = 0; k < size; k++) {
      if (back[k] !== payload[k]) throw new Error(`echo stream ${i}: content differs at byte ${k}`)
    }
  }
  const results = await Promise.allSettled(Array.from({ length: count }, (_, i) => one(i)))
  const failed = results.filter(r => r.status === 'rejected')
  if (failed.length > 0) {
    throw new Error(`${failed.length}/${count} echo streams failed; first: ${failed[0].reason?.message}`)
  }
  return { streams: count, bytes: count * size, seconds: (performance.now() - t0) / 1000 }
}

// ---- node --------------------------------------------------------------------------------------
// Noise wrapper. It records, per remote peer, whether the muxer was agreed inside the Noise
// handshake (the stream_muxers extension) or is left to multistream-select; connection:open
// reports it as "muxerNegotiation". With skipEarlyMuxer the extension is disabled: js sends an
// empty list and, via skipStreamMuxerNegotiation, also ignores the remote's list (the installed
// @chainsafe/libp2p-noise 17.0.0 otherwise adopts a muxer from the *remote's* list alone), so the
// muxer is always negotiated with multistream-select.
const earlyMuxer = new Map() // remote peer id string -> 'noise' | 'mss'

function noiseRecording (skipEarlyMuxer) {
  const factory = noise()
  return (components) => {
    const enc = factory(components)
    for (const method of ['secureOutbound', 'secureInbound']) {
      const orig = enc[method].bind(enc)
      enc[method] = async (conn, options) => {
        const res = await orig(conn, skipEarlyMuxer ? { ...options, skipStreamMuxerNegotiation: true } : options)
        earlyMuxer.set(res.remotePeer.toString(), res.streamMuxer != null ? 'noise' : 'mss')
        return res
      }
    }
    return enc
  }
}

function connInfo (conn) {
  return {
    peer: conn.remotePeer.toString(),
    addr: conn.remoteAddr.toString(),
    direction: conn.direction,
    muxer: conn.multiplexer ?? null,
    encryption: conn.encryption ?? null,
    muxerNegotiation: earlyMuxer.get(conn.remotePeer.toString()) ?? null
  }
}

async function main () {
  let opts
  try {
    opts = parseOptions(process.argv.slice(2), process.env)
  } catch (err) {
    emitError('options', err)
    process.stderr.write(`peer.mjs: ${err.message}\n`)
    process.exit(2)
  }

  if (opts.timeout > 0) {
    setTimeout(() => {
      emitError('watchdog', new Error(`timed out after ${opts.timeout} s`))
      emit('done', { ok: false })
      process.exit(1)
    }, opts.timeout * 1000).unref()
  }

  const privateKey = opts.key != null
    ? privateKeyFromProtobuf(readFileSync(opts.key))
    : await generateKeyPair('Ed25519')

  const identifyResults = new Map() // peer id string -> result, or resolver waiting for it
  const identifyWaiters = new Map()

  const node = await createLibp2p({
    privateKey,
    addresses: { listen: opts.listen ?? [] },
    transports: [tcp()],
    connectionEncrypters: [noiseRecording(opts['muxer-negotiation'] === 'mss')],
    streamMuxers: [yamux()],
    connectionGater: { denyDialMultiaddr: () => false },
    ...(opts.agent != null ? { nodeInfo: { userAgent: opts.agent } } : {}),
    // identifyPush: js only sends and accepts /ipfs/id/push/1.0.0 with this service
    services: { identify: identify(), identifyPush: identifyPush(), ping: ping() }
  })

  node.addEventListener('connection:open', (e) => emit('connection:open', connInfo(e.detail)))
  node.addEventListener('connection:close', (e) => emit('connection:close', connInfo(e.detail)))
  node.addEventListener('peer:identify', (e) => {
    const r = e.detail
    const fields = {
      peer: r.peerId.toString(),
      agentVersion: r.agentVersion ?? null,
      protocolVersion: r.protocolVersion ?? null,
      protocols: r.protocols,
      listenAddrs: r.listenAddrs.map(String),
      observedAddr: r.observedAddr?.toString() ?? null
    }
    emit('peer:identify', fields)
    identifyResults.set(fields.peer, fields)
    identifyWaiters.get(fields.peer)?.(fields)
  })

  await node.handle(ECHO_PROTOCOL, handleEcho, { maxInboundStreams: STREAM_LIMIT, maxOutboundStreams: STREAM_LIMIT })
  await node.handle(PERF_PROTOCOL, handlePerf, { maxInboundStreams: STREAM_LIMIT, maxOutboundStreams: STREAM_LIMIT })
  if (opts['handle-after'] != null) {
    setTimeout(() => {
      node.handle(PUSHED_PROTOCOL, (stream) => { stream.close().catch(() => {}) })
        .catch((err) => emitError('handle', err))
    }, opts['handle-after']).unref()
  }

  if ((opts.listen ?? []).length > 0) {
    emit('listening', { peerId: node.peerId.toString(), addrs: node.getMultiaddrs().map(String) })
  } else {
    emit('started', { peerId: node.peerId.toString() })
  }

  const stop = async (code) => {
    try { await node.stop() } catch (err) { emitError('stop', err) }
    emit('stopped')
    process.exit(code)
  }
  process.on('SIGINT', () => { stop(0) })
  process.on('SIGTERM', () => { stop(0) })
  const parent = process.ppid
  setInterval(() => { if (process.ppid !== parent) stop(0) }, 500).unref()

  if (opts.dial == null) return // serve until a signal

  let ok = true
  const step = async (where, fn) => {
    try {
      await fn()
    } catch (err) {
      ok = false
      emitError(where, err)
    }
  }

  if (opts['dial-at'] != null) {
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, opts['dial-at'] - Date.now())))
  }
  let conn
  await step('dial', async () => { conn = await node.dial(multiaddr(opts.dial)) })
  if (conn != null) {
    const peer = conn.remotePeer.toString()
    if (opts.identify) {
      await step('identify', async () => {
        if (identifyResults.has(peer)) return
        await new Promise((resolve, reject) => {
          identifyWaiters.set(peer, resolve)
          // runOnConnectionOpen identifies on its own; ask explicitly if it has not arrived soon.
          setTimeout(() => {
            if (identifyResults.has(peer)) return
            node.services.identify.identify(conn).then(() => {
              // the peer:identify event resolves the waiter; a result without event is an error
              setTimeout(() => identifyResults.has(peer) ? resolve() : reject(new Error('identify gave no peer:identify event')), 100)
            }, reject)
          }, 2000)
        })
      })
    }
    for (let i = 0; i < (opts.ping ?? 0); i++) {
      if (i > 0 && opts['ping-interval'] > 0) await new Promise((resolve) => setTimeout(resolve, opts['ping-interval']))
      await step('ping', async () => {
        const rtt = await node.services.ping.ping(conn.remotePeer)
        emit('ping', { seq: i, rtt })
      })
    }
    if (opts['perf-upload'] != null || opts['perf-download'] != null) {
      await step('perf', async () => {
        emit('perf', await runPerf(conn, opts['perf-upload'] ?? 0, opts['perf-download'] ?? 0))
      })
    }
    if (opts.streams != null) {
      await step('echo', async () => { emit('echo', await runEcho(conn, opts.streams, opts['echo-bytes'])) })
    }
    if (opts.hold > 0) await new Promise((resolve) => setTimeout(resolve, opts.hold))
  }
  emit('done', { ok })
  if (opts.serve) return
  await stop(ok ? 0 : 1)
}

main().catch((err) => {
  emitError('main', err)
  emit('done', { ok: false })
  process.exit(1)
})
