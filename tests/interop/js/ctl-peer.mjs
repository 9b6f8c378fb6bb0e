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
// PEERS-CONTRACT options (kad, mdns, gossipsub, request-response; /work/wt/PEERS-CONTRACT.md, and
// tests/interop/lib_peer.sh start_ctl_peer):
//   --kad server|client     @libp2p/kad-dht (clientMode false for server; passthroughMapper: loopback
//                           and private addresses are kept)   --kad-protocol ID (default /ipfs/kad/1.0.0)
//   --bootstrap MADDR       (repeatable) peer store + routing table + dial at start
//   --mdns / --mdns-dial    @libp2p/mdns: report (and with --mdns-dial dial) discovered peers
//   --pubsub                @libp2p/gossipsub (library defaults: StrictSign, message id from+seqno,
//                           publishing to a topic without peers fails: NoPeersSubscribedToTopic)
//   --reqresp PROTOCOL      (repeatable) JSON request-response server (answer rule in the contract)
// Every option also reads LP2P_PEER_<NAME> from the environment (upper case, '-' -> '_'; repeatable
// ones comma-separated); argv wins.
// Commands (one per line on stdin; results are events on stdout):
//   dial MADDR                  -> dialed {addr, peer, ok, error?}
//   ping MADDR|PEER             -> ping {peer, rtt} | ping:error {target, message}
//   pingloop MADDR MS SECONDS   -> ping every MS ms for SECONDS (one at a time, a new stream each),
//                                  then pingloop {ok, failed, min, max, avg, firstError}
//   peers                       -> peers {count, peers}
//   hangup PEER                 -> hungup {peer}
//   handle PROTOCOL             -> handled {protocol} (a new protocol: js sends identify push)
//   quit                        -> stopped, exit 0
//   kad-add PEER MADDR, kad-bootstrap, kad-find-peer PEER, kad-closest KEYHEX, kad-put KEYHEX VALUEHEX,
//   kad-get KEYHEX, kad-provide CID, kad-find-providers CID, kad-table, subscribe/unsubscribe TOPIC,
//   publish TOPIC TEXT..., mesh TOPIC, request PEER PROTOCOL JSON...: results as in the contract.
// Success of `ping` is {target, peer, ok: true, rtt}; a failure stays `ping:error {target, message}`
// (existing tests count `ping` events as successes).
// Contract events: peer-discovered {peer, addrs, source: "mdns"}, gossip-message {topic, from, id
// (hex), data}, request {peer, protocol, body}.
// Events are JSON lines with "event" (same shapes as peer.mjs where they overlap):
//   listening {peerId, addrs}, connection:open / connection:close {peer, addr, direction,
//   muxerNegotiation}, peer:identify {peer, agentVersion, protocolVersion, protocols,
//   listenAddrs, observedAddr, signedRecordSeq (null: no verified signed peer record)},
//   error {where, message}, stopped {}.
// The node exits when its parent process goes away (no orphan after a killed test) and when stdin
// closes.
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair, privateKeyFromProtobuf } from '@libp2p/crypto/keys'
import { gossipsub } from '@libp2p/gossipsub'
import { identify, identifyPush } from '@libp2p/identify'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { mdns } from '@libp2p/mdns'
import { peerIdFromString } from '@libp2p/peer-id'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { CID } from 'multiformats/cid'

const PERF_PROTOCOL = '/perf/1.0.0'
const emit = (event, fields = {}) => process.stdout.write(JSON.stringify({ event, ...fields }) + '\n')
const errMsg = (err) => err?.message ?? String(err)

const OPTIONS = {
  listen: 'list', key: 'str', 'muxer-negotiation': 'str', perf: 'flag', 'no-perf': 'flag', timeout: 'num',
  'ping-max-outbound': 'num', kad: 'str', 'kad-protocol': 'str', bootstrap: 'list', mdns: 'flag',
  'mdns-dial': 'flag', pubsub: 'flag', reqresp: 'list'
}

function parseArgs (argv) {
  const raw = {}
  const set = (name, value, fromEnv) => {
    const kind = OPTIONS[name]
    if (kind === 'list') {
      const vals = fromEnv ? value.split(',').filter((v) => v !== '') : [value]
      raw[name] = fromEnv ? vals : [...(raw[name]?.fromArgv ? raw[name] : []), ...vals]
      if (!fromEnv) raw[name].fromArgv = true
    } else if (kind === 'flag') {
      raw[name] = fromEnv ? /^(1|true|yes)$/i.test(value) : true
    } else {
      raw[name] = value
    }
  }
  for (const name of Object.keys(OPTIONS)) {
    const v = process.env['LP2P_PEER_' + name.toUpperCase().replaceAll('-', '_')]
    if (v != null && v !== '') set(name, v, true)
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const m = /^--([a-z-]+)$/.exec(a)
    if (m == null || OPTIONS[m[1]] == null) throw new Error(`unknown argument ${a}`)
    if (OPTIONS[m[1]] === 'flag') { set(m[1], 'true', false); continue }
    if (i + 1 >= argv.length) throw new Error(`${a} needs a value`)
    set(m[1], argv[++i], false)
  }
  const o = {
    listen: raw.listen ?? [],
    key: raw.key ?? null,
    mux: raw['muxer-negotiation'] ?? 'noise',
    perf: raw['no-perf'] !== true,
    timeout: Number(raw.timeout ?? 0),
    pingOut: Number(raw['ping-max-outbound'] ?? 2),
    kad: raw.kad ?? null,
    kadProtocol: raw['kad-protocol'] ?? '/ipfs/kad/1.0.0',
    bootstrap: raw.bootstrap ?? [],
    mdns: raw.mdns === true || raw['mdns-dial'] === true,
    mdnsDial: raw['mdns-dial'] === true,
    pubsub: raw.pubsub === true,
    reqresp: raw.reqresp ?? []
  }
  if (!['noise', 'mss'].includes(o.mux)) throw new Error('--muxer-negotiation must be noise or mss')
  if (o.kad != null && !['server', 'client'].includes(o.kad)) throw new Error('--kad must be server or client')
  if (o.listen.length === 0) o.listen.push('/ip4/127.0.0.1/tcp/0')
  return o
}

const hex = (u8) => Buffer.from(u8).toString('hex')
const unhex = (text) => {
  if (!/^([0-9a-fA-F]{2})*$/.test(text ?? '')) throw new Error(`not hex: '${text}'`)
  return new Uint8Array(Buffer.from(text, 'hex'))
}

// readAll: a stream's bytes until the remote closes its write side. Not `for await (... of stream)`:
// js-libp2p 3.x's stream iterator (@libp2p/utils 7.4.x AbstractMessageStream) ends only on a
// 'remoteCloseWrite' event that comes after it started, so a stream whose FIN arrived before the
// handler ran never ends there. go-libp2p does exactly that (a lazy multistream-select client
// sends header + request + FIN at once once identify said the protocol is supported).
function readAll (stream, limit = 1 << 20) {
  return new Promise((resolve, reject) => {
    const chunks = []
    let n = 0
    const cleanup = () => {
      stream.removeEventListener('message', onMessage)
      stream.removeEventListener('remoteCloseWrite', maybeEnd)
      stream.removeEventListener('close', onClose)
    }
    const done = () => { cleanup(); resolve(Buffer.concat(chunks)) }
    const maybeEnd = () => { if (stream.remoteWriteStatus === 'closed' && stream.readBufferLength === 0) done() }
    const onMessage = (e) => {
      const b = e.data instanceof Uint8Array ? e.data : e.data.subarray()
      n += b.length
      if (n > limit) { cleanup(); reject(new Error('message too large')); return }
      chunks.push(b)
      maybeEnd()
    }
    const onClose = (e) => { cleanup(); if (e.error != null) reject(e.error); else resolve(Buffer.concat(chunks)) }
    stream.addEventListener('message', onMessage)
    stream.addEventListener('remoteCloseWrite', maybeEnd)
    stream.addEventListener('close', onClose)
    queueMicrotask(maybeEnd)
  })
}

async function sendAll (stream, bytes) {
  if (!stream.send(bytes)) await stream.onDrain()
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
    services: {
      identify: identify(),
      identifyPush: identifyPush(),
      ping: ping({ maxOutboundStreams: o.pingOut }),
      ...(o.kad != null
        ? { dht: kadDHT({ clientMode: o.kad === 'client', protocol: o.kadProtocol, peerInfoMapper: passthroughMapper }) }
        : {}),
      ...(o.mdns ? { mdns: mdns() } : {}),
      ...(o.pubsub ? { pubsub: gossipsub({ emitSelf: false }) } : {})
    }
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
  for (const protocol of o.reqresp) {
    await node.handle(protocol, (stream, connection) => serveReqResp(node, protocol, stream, connection),
      { maxInboundStreams: 64 })
  }
  if (o.mdns) {
    node.services.mdns.addEventListener('peer', (e) => {
      const { id, multiaddrs } = e.detail
      if (id.equals(node.peerId)) return
      emit('peer-discovered', { peer: id.toString(), addrs: multiaddrs.map(String), source: 'mdns' })
      if (o.mdnsDial) {
        node.dial(multiaddrs.length > 0 ? multiaddrs.map((a) => withPeer(a, id)) : id)
          .catch((err) => emit('error', { where: 'mdns-dial', message: errMsg(err) }))
      }
    })
  }
  if (o.pubsub) {
    node.services.pubsub.addEventListener('gossipsub:message', (e) => {
      const { msgId, msg } = e.detail
      emit('gossip-message', {
        topic: msg.topic,
        from: msg.from?.toString() ?? null,
        id: Buffer.from(msgId, 'base64').toString('hex'),
        data: Buffer.from(msg.data).toString('utf8')
      })
    })
  }
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

  for (const b of o.bootstrap) {
    try {
      const ma = multiaddr(b)
      const id = peerIdFromString(ma.getComponents().findLast((c) => c.name === 'p2p')?.value ?? '')
      await node.peerStore.merge(id, { multiaddrs: [ma.decapsulateCode(421)] })
      if (node.services.dht != null) await node.services.dht.routingTable.add(id)
      node.dial(ma).catch((err) => emit('error', { where: 'bootstrap', message: errMsg(err) }))
    } catch (err) {
      emit('error', { where: 'bootstrap', message: errMsg(err) })
    }
  }

  const dht = () => {
    if (node.services.dht == null) throw new Error('kad is not enabled (--kad)')
    return node.services.dht
  }
  const pubsub = () => {
    if (node.services.pubsub == null) throw new Error('pubsub is not enabled (--pubsub)')
    return node.services.pubsub
  }
  const withTimeout = () => ({ signal: AbortSignal.timeout(30000) })
  // result: run fn and emit EVENT {...fields, ok: true, ...fn()} or {...fields, ok: false, error}
  const result = async (event, fields, fn) => {
    try {
      emit(event, { ...fields, ok: true, ...(await fn()) })
    } catch (err) {
      emit(event, { ...fields, ok: false, error: errMsg(err) })
    }
  }
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
        emit('ping', { target: t, peer: peerOf(t), ok: true, rtt })
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
    async quit () { await stop(0) },

    // ---- Kademlia ----
    async 'kad-add' (p, addr) {
      await result('kad-add', {}, async () => {
        const id = peerIdFromString(p)
        await node.peerStore.merge(id, { multiaddrs: [multiaddr(addr).decapsulateCode(421)] })
        await dht().routingTable.add(id)
      })
    },
    async 'kad-bootstrap' () {
      await result('kad-bootstrap', {}, async () => { await dht().refreshRoutingTable(withTimeout()) })
    },
    async 'kad-find-peer' (p) {
      await result('kad-find-peer', { peer: p, addrs: [] }, async () => {
        const id = peerIdFromString(p)
        for await (const ev of dht().findPeer(id, withTimeout())) {
          if (ev.name === 'FINAL_PEER' && ev.peer.id.equals(id)) return { addrs: ev.peer.multiaddrs.map(String) }
        }
        throw new Error('peer not found')
      })
    },
    async 'kad-closest' (keyHex) {
      await result('kad-closest', { peers: [] }, async () => {
        const peers = []
        for await (const ev of dht().getClosestPeers(unhex(keyHex), withTimeout())) {
          if (ev.name === 'FINAL_PEER' && !peers.includes(ev.peer.id.toString())) peers.push(ev.peer.id.toString())
        }
        return { peers }
      })
    },
    async 'kad-put' (keyHex, valueHex) {
      await result('kad-put', {}, async () => {
        let stored = 0; let firstError = null
        for await (const ev of dht().put(unhex(keyHex), unhex(valueHex), withTimeout())) {
          if (ev.name === 'PEER_RESPONSE' && ev.messageName === 'PUT_VALUE') stored++
          if (ev.name === 'QUERY_ERROR') firstError ??= errMsg(ev.error)
        }
        if (stored === 0) throw new Error(`no peer stored the record${firstError != null ? ': ' + firstError : ''}`)
        return {}
      })
    },
    async 'kad-get' (keyHex) {
      await result('kad-get', {}, async () => {
        for await (const ev of dht().get(unhex(keyHex), withTimeout())) {
          if (ev.name === 'VALUE') return { value: hex(ev.value) }
        }
        throw new Error('not found')
      })
    },
    async 'kad-provide' (cid) {
      await result('kad-provide', {}, async () => {
        for await (const ev of dht().provide(CID.parse(cid), withTimeout())) { void ev }
      })
    },
    async 'kad-find-providers' (cid) {
      await result('kad-find-providers', { providers: [] }, async () => {
        const found = new Map()
        for await (const ev of dht().findProviders(CID.parse(cid), withTimeout())) {
          if (ev.name !== 'PROVIDER') continue
          for (const p of ev.providers) {
            const prev = found.get(p.id.toString()) ?? []
            found.set(p.id.toString(), [...new Set([...prev, ...p.multiaddrs.map(String)])])
          }
        }
        return { providers: [...found].map(([peer, addrs]) => ({ peer, addrs })) }
      })
    },
    async 'kad-table' () {
      const kb = dht().routingTable.kb
      const peers = kb != null ? [...kb.toIterable()].map((c) => (c.peerId ?? c).toString()) : []
      emit('kad-table', { count: peers.length, peers })
    },

    // ---- gossipsub ----
    async subscribe (topic) {
      await result('subscribed', { topic }, async () => { pubsub().subscribe(topic) })
    },
    async unsubscribe (topic) {
      await result('unsubscribed', { topic }, async () => { pubsub().unsubscribe(topic) })
    },
    async publish (topic, ...words) {
      await result('published', { topic }, async () => {
        await pubsub().publish(topic, new TextEncoder().encode(words.join(' ')))
      })
    },
    async mesh (topic) {
      let peers = []
      try { peers = pubsub().getMeshPeers(topic).map(String).sort() } catch {}
      emit('mesh', { topic, peers })
    },

    // ---- request-response (JSON) ----
    async request (p, protocol, ...words) {
      const body = words.join(' ')
      await result('response', { peer: p, protocol }, async () => {
        JSON.parse(body)
        const stream = await node.dialProtocol(target(p), protocol, withTimeout())
        await sendAll(stream, new TextEncoder().encode(body))
        await stream.close()
        const back = await readAll(stream)
        if (back.length === 0) throw new Error('no response (stream closed without data)')
        return { peer: peerOf(p), body: JSON.parse(back.toString('utf8')) }
      })
    }
  }
  const rl = createInterface({ input: process.stdin })
  rl.on('line', (line) => {
    const [verb, ...args] = line.trim().split(/\s+/)
    if (!verb) return
    const fn = commands[verb]
    if (fn == null) { emit('error', { where: 'command', message: `unknown command '${verb}'` }); return }
    fn(...args).catch((err) => emit('error', { where: verb, message: errMsg(err) }))
  })
  rl.on('close', () => stop(0)) // end of input (PEERS-CONTRACT: no orphans)
}

// peerOf: the peer id of a command target (a peer id, or a multiaddr ending in /p2p/ID)
function peerOf (text) {
  return text.startsWith('/') ? multiaddr(text).getComponents().findLast((c) => c.name === 'p2p')?.value ?? null : text
}

function withPeer (addr, id) {
  return addr.getComponents().some((c) => c.name === 'p2p') ? addr : addr.encapsulate(`/p2p/${id}`)
}

async function serveReqResp (node, protocol, stream, connection) {
  try {
    const bytes = await readAll(stream)
    const body = JSON.parse(bytes.toString('utf8'))
    emit('request', { peer: connection.remotePeer.toString(), protocol, body })
    if (body?.omit === true) { await stream.close(); return } // no body, then EOF, as rust-libp2p does
    if (typeof body?.sleep_ms === 'number') await new Promise((resolve) => setTimeout(resolve, body.sleep_ms))
    await sendAll(stream, new TextEncoder().encode(JSON.stringify({ echo: body, from: node.peerId.toString() })))
    await stream.close()
  } catch (err) {
    emit('error', { where: 'request:serve', message: errMsg(err) })
    stream.abort(err)
  }
}

main().catch((err) => {
  emit('error', { where: 'main', message: errMsg(err) })
  process.exit(1)
})
