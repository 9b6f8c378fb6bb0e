// events.mjs - read the JSON-lines event logs that peer.mjs (and lp2p-node) write, for shell tests.
//
//   events.mjs wait FILE EVENT [SECONDS] [FIELD]
//       Wait (default 10 s) until FILE holds a line whose "event" is EVENT; print that object as
//       JSON, or only FIELD of it (arrays: first element). Exit 1 on timeout.
//   events.mjs check FILE [--quiet] EXPR...
//       Evaluate each JavaScript expression EXPR over the events of FILE and print
//       "ok   EXPR" or "FAIL EXPR (value)" per expression. Bindings available to EXPR:
//         ev         array of every event object (lines that are not JSON are ignored)
//         all(name)  events with event === name       one(name)  the first of them, or {}
//         count(name) number of them
//       The last line is "N passed, N failed"; exit status is 1 if any failed.
import { readFileSync, existsSync } from 'node:fs'

function load (file) {
  if (!existsSync(file)) return []
  const out = []
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue
    try { out.push(JSON.parse(line)) } catch {}
  }
  return out
}

const [mode, file, ...rest] = process.argv.slice(2)

if (mode === 'wait') {
  const [name, seconds = '10', field] = rest
  const deadline = Date.now() + Number(seconds) * 1000
  for (;;) {
    const hit = load(file).find((e) => e.event === name)
    if (hit != null) {
      let v = field != null ? hit[field] : hit
      if (Array.isArray(v) && field != null) v = v[0]
      process.stdout.write((typeof v === 'string' ? v : JSON.stringify(v)) + '\n')
      process.exit(0)
    }
    if (Date.now() > deadline) {
      process.stderr.write(`events.mjs: no '${name}' event in ${file} after ${seconds} s\n`)
      process.exit(1)
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
} else if (mode === 'check') {
  const quiet = rest[0] === '--quiet'
  const exprs = quiet ? rest.slice(1) : rest
  const ev = load(file)
  const all = (name) => ev.filter((e) => e.event === name)
  const one = (name) => all(name)[0] ?? {}
  const count = (name) => all(name).length
  let pass = 0; let fail = 0
  for (const expr of exprs) {
    let value
    try {
      value = new Function('ev', 'all', 'one', 'count', `return (${expr})`)(ev, all, one, count)
    } catch (err) {
      value = `threw ${err.message}`
    }
    if (value === true) {
      pass++
      if (!quiet) process.stdout.write(`ok   ${expr}\n`)
    } else {
      fail++
      process.stdout.write(`FAIL ${expr} (${JSON.stringify(value)})\n`)
    }
  }
  process.stdout.write(`${pass} passed, ${fail} failed\n`)
  process.exit(fail === 0 ? 0 : 1)
} else {
  process.stderr.write('usage: events.mjs wait FILE EVENT [SECONDS] [FIELD] | check FILE [--quiet] EXPR...\n')
  process.exit(2)
}
