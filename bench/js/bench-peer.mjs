// bench/js/bench-peer.mjs - the js-libp2p side of the end-to-end benchmarks: the twin of bench/bench_swarm.c
// with the same command line and the same JSON lines, on the same Node 22 and pinned npm packages as the
// interop tests (tests/interop/package-lock.json). bench/run copies this file next to a node_modules link to
// tests/interop/node_modules and runs it with scripts/node.
//
//   bench-peer.mjs serve [--listen MADDR]...
//       TCP + Noise + Yamux, serves /perf/1.0.0, /ipfs/ping/1.0.0 (the @libp2p/ping service) and the echo
//       protocol /lp2p-test/echo/1.0.0; connection limits raised so that nothing is refused. No identify on
//       either side (lp2p's bench peers do not run it either). Prints {"event":"listening",..} like bench_swarm.
//   bench-peer.mjs client --dial MADDR/p2p/ID --test bulk|connrate|echo|ping|streams|conns [options]
//       Options and output as in bench_swarm.c. connrate and conns open extra connections to the same peer
//       with dial(..., {force: true}) from one node (js-libp2p allows several connections per peer).
// "cpu" is process.cpuUsage() (user+system, all threads) over the measured interval, in seconds.
import { readFileSync } from 'node:fs'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'

const ECHO_PROTOCOL = '/lp2p-test/echo/1.0.0'
const PERF_PROTOCOL = '/perf/1.0.0'
const PERF_BLOCK = 64 * 1024
const STREAM_LIMIT = 4096

const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
const asBytes = (chunk) => chunk instanceof Uint8Array ? chunk : chunk.subarray()
const cpuSeconds = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6 }

function fail (test, what) {
  out({ test, error: String(what?.message ?? what) })
  process.exit(1)
}

function stats (name, samplesMs) {
  const v = samplesMs.map(x => x / 1000).sort((a, b) => a - b)
  const n = v.length
  if (n === 0) return {}
  const mean = v.reduce((a, b) => a + b, 0) / n
  return {
    [`${name}_p50`]: v[Math.floor(n / 2)],
    [`${name}_p90`]: v[Math.floor(n * 9 / 10)],
    [`${name}_p99`]: v[Math.floor(n * 99 / 100)],
    [`${name}_mean`]: mean
  }
}

function rssKib (pid) {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) : -1
}

async function sendAll (stream, bytes) {
  if (!stream.send(bytes)) await stream.onDrain()
}

async function makeNode (listen) {
  return createLibp2p({
    privateKey: await generateKeyPair('Ed25519'),
    addresses: { listen },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux({ maxInboundStreams: STREAM_LIMIT, maxOutboundStreams: STREAM_LIMIT })],
    connectionGater: { denyDialMultiaddr: () => false },
    connectionManager: {
      maxConnections: 1_000_000,
      maxIncomingPendingConnections: 100_000,
      inboundConnectionThreshold: 1_000_000_000,
      maxParallelDials: 1000,
      maxDialQueueLength: 1_000_000,
      allow: ['/ip4/127.0.0.0/ipcidr/8']
    },
    services: { ping: ping({ maxInboundStreams: STREAM_LIMIT, maxOutboundStreams: STREAM_LIMIT }) }
  })
}

// ---- server handlers (as in tests/interop/js/peer.mjs) -----------------------------------------------------
async function handleEcho (stream) {
  try {
    for await (const chunk of stream) await sendAll(stream, asBytes(chunk))
    await stream.close()
  } catch (err) {
    stream.abort(err)
  }
}

async function handlePerf (stream) {
  try {
    const head = new Uint8Array(8)
    let headLen = 0
    for await (const chunk of stream) {
      const b = asBytes(chunk)
      if (headLen < 8) {
        const take = b.subarray(0, 8 - headLen)
        head.set(take, headLen)
        headLen += take.byteLength
      }
    }
    if (headLen < 8) throw new Error('perf: stream closed before the 8-byte header')
    let toSend = Number(new DataView(head.buffer).getBigUint64(0, false))
    const block = new Uint8Array(PERF_BLOCK)
    while (toSend > 0) {
      const n = Math.min(toSend, PERF_BLOCK)
      await sendAll(stream, block.subarray(0, n))
      toSend -= n
    }
    await stream.close()
  } catch (err) {
    stream.abort(err)
  }
}

async function serve (args) {
  const listen = []
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--listen' && i + 1 < args.length) listen.push(args[++i])
    else throw new Error(`unexpected argument ${args[i]}`)
  }
  if (listen.length === 0) listen.push('/ip4/127.0.0.1/tcp/0')
  const node = await makeNode(listen)
  const opts = { maxInboundStreams: STREAM_LIMIT, maxOutboundStreams: STREAM_LIMIT }
  await node.handle(ECHO_PROTOCOL, handleEcho, opts)
  await node.handle(PERF_PROTOCOL, handlePerf, opts)
  out({ event: 'listening', peer: node.peerId.toString(), pid: process.pid, addrs: node.getMultiaddrs().map(String) })
  const stop = async () => { await node.stop(); out({ event: 'stopped' }); process.exit(0) }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
  const parent = process.ppid
  setInterval(() => { if (process.ppid !== parent) process.exit(0) }, 500).unref()
}

// ---- client ------------------------------------------------------------------------------------------------
async function runPerf (conn, upload, download) {
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
  let got = 0
  for await (const chunk of stream) got += chunk.byteLength
  if (got !== download) throw new Error(`perf: expected ${download} bytes back, got ${got}`)
  return upload
}

const TESTS = {
  async bulk (node, ma, o) {
    const conn = await node.dial(ma)
    const t0 = performance.now(); const c0 = cpuSeconds()
    await runPerf(conn, o.bytes, o.download)
    out({ test: 'bulk', bytes: o.bytes, download: o.download, seconds: (performance.now() - t0) / 1000, cpu: cpuSeconds() - c0 })
  },

  async streams (node, ma, o) {
    const conn = await node.dial(ma)
    const t0 = performance.now(); const c0 = cpuSeconds()
    const res = await Promise.allSettled(Array.from({ length: o.streams }, () => runPerf(conn, o.bytes, 0)))
    const failed = res.filter(r => r.status === 'rejected')
    if (failed.length > 0) fail('streams', `${failed.length} of ${o.streams} perf streams failed, first: ${failed[0].reason?.message}`)
    out({ test: 'streams', streams: o.streams, bytes: o.streams * o.bytes, seconds: (performance.now() - t0) / 1000, cpu: cpuSeconds() - c0, retries: 0 })
  },

  async echo (node, ma, o) {
    const conn = await node.dial(ma)
    const stream = await conn.newStream(ECHO_PROTOCOL)
    const it = stream[Symbol.asyncIterator]()
    const payload = new Uint8Array(o.size).map((_, i) => i * 7 + 1)
    const lat = []
    const c0 = cpuSeconds()
    for (let i = 0; i < o.count + 100; i++) {
      const t = performance.now()
      await sendAll(stream, payload)
      let got = 0
      while (got < o.size) {
        const { value, done } = await it.next()
        if (done) fail('echo', 'stream closed')
        got += value.byteLength
      }
      if (i >= 100) lat.push(performance.now() - t)
    }
    out({ test: 'echo', count: o.count, size: o.size, cpu: cpuSeconds() - c0, ...stats('rtt', lat) })
  },

  async ping (node, ma, o) {
    const conn = await node.dial(ma)
    const wall = []; const rtt = []
    const c0 = cpuSeconds()
    for (let i = 0; i < o.count + 20; i++) {
      const t = performance.now()
      const ms = await node.services.ping.ping(conn.remotePeer)
      if (i >= 20) { wall.push(performance.now() - t); rtt.push(ms) }
    }
    out({ test: 'ping', count: o.count, cpu: cpuSeconds() - c0, ...stats('wall', wall), ...stats('rtt', rtt) })
  },

  // One node per worker: concurrent dials to the same peer from ONE js-libp2p node are coalesced into one
  // connection by its dial queue (even with force: true), so each worker has its own node (identity), like the
  // lp2p client's one swarm per worker. Failed attempts are counted in "errors" (run fails above 5 %).
  async connrate (node, ma, o) {
    const nodes = [node]
    while (nodes.length < o.concurrency) nodes.push(await makeNode([]))
    const lat = []
    let started = 0; let errors = 0; let firstError = null
    const t0 = performance.now(); const c0 = cpuSeconds()
    const deadline = o.seconds > 0 ? t0 + o.seconds * 1000 : Infinity
    const worker = async (n) => {
      while (started < o.count && performance.now() < deadline) {
        started++
        const t = performance.now()
        try {
          const conn = await n.dial(ma, { force: true })
          const ms = performance.now() - t
          await conn.close()
          lat.push(ms)
        } catch (err) {
          errors++
          firstError ??= err.message
        }
      }
    }
    await Promise.all(nodes.map(worker))
    if (errors > 0.05 * started) fail('connrate', `${errors} of ${started} connections failed, first: ${firstError}`)
    out({ test: 'connrate', count: lat.length, concurrency: o.concurrency, seconds: (performance.now() - t0) / 1000, cpu: cpuSeconds() - c0, errors, ...stats('lat', lat) })
  },

  // `inflight` nodes, each dialing sequentially with force: true (see connrate), all connections held.
  async conns (node, ma, o) {
    const nodes = [node]
    while (nodes.length < o.inflight) nodes.push(await makeNode([]))
    const t0 = performance.now()
    const report = (n) => out({ test: 'conns', conns: n, server_rss_kib: rssKib(o.serverPid), client_rss_kib: rssKib(process.pid), seconds: (performance.now() - t0) / 1000 })
    const held = new Map()
    report(0)
    for (const target of o.steps) {
      let next = held.size
      const worker = async (n) => {
        while (next < target) {
          next++
          let conn
          try {
            conn = await n.dial(ma, { force: true })
          } catch (err) {
            fail('conns', `dial failed after ${held.size} connections: ${err.message}`)
          }
          if (held.has(conn.id)) fail('conns', 'dial returned an existing connection')
          held.set(conn.id, conn)
        }
      }
      await Promise.all(nodes.map(worker))
      await new Promise(resolve => setTimeout(resolve, o.settleMs))
      const live = nodes.reduce((a, n) => a + n.getConnections().length, 0)
      if (live < target) fail('conns', `only ${live} of ${target} connections still open`)
      report(target)
    }
  }
}

async function client (args) {
  const o = { count: 1000, concurrency: 1, size: 32, streams: 1000, bytes: 64 << 20, download: 0, inflight: 64, settleMs: 2000, timeout: 120, seconds: 0, steps: [] }
  const names = { '--dial': 'dial', '--test': 'test', '--bytes': 'bytes', '--download': 'download', '--count': 'count', '--concurrency': 'concurrency', '--size': 'size', '--streams': 'streams', '--inflight': 'inflight', '--settle-ms': 'settleMs', '--server-pid': 'serverPid', '--timeout': 'timeout', '--seconds': 'seconds', '--steps': 'steps' }
  for (let i = 0; i < args.length; i += 2) {
    const k = names[args[i]]
    if (k == null || i + 1 >= args.length) throw new Error(`bad option ${args[i]}`)
    const v = args[i + 1]
    o[k] = k === 'dial' || k === 'test' ? v : k === 'steps' ? v.split(',').map(Number) : Number(v)
  }
  if (o.dial == null || TESTS[o.test] == null) throw new Error('--dial MADDR/p2p/ID and --test bulk|connrate|echo|ping|streams|conns are required')
  setTimeout(() => fail(o.test, 'timeout'), o.timeout * 1000).unref()
  const node = await makeNode([])
  try {
    await TESTS[o.test](node, multiaddr(o.dial), o)
  } catch (err) {
    fail(o.test, err)
  }
  process.exit(0)
}

const [mode, ...rest] = process.argv.slice(2)
try {
  if (mode === 'serve') await serve(rest)
  else if (mode === 'client') await client(rest)
  else throw new Error('usage: bench-peer.mjs serve [--listen MADDR].. | client --dial MADDR --test TEST [options]')
} catch (err) {
  process.stderr.write(`bench-peer.mjs: ${err.message}\n`)
  process.exit(2)
}
