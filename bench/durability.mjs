// Durability under kill -9: which edits that a client had *seen* survive the server's death.
//
//   node bench/durability.mjs write --url WS_BASE --plan ID [--token T] [--clients 5] [--rate 20]
//        [--seconds 15] [--protocol y-websocket|hocuspocus]
//   node bench/durability.mjs check --url WS_BASE --plan ID [--token T] --markers FILE
//        [--protocol ...] [--wait 5]
//
// write: --clients clients of one plan each type --rate edits per second (one transaction each,
//   a marker `{<run>c<client>.<seq>}` plus filler, a new paragraph every tenth edit). Prints a
//   {"event":"phase","phase":"editing"} line when the editing starts; the orchestrator kills the
//   server a few seconds later. A client whose socket closes is destroyed at once (so it can
//   never reconnect and hand its edits to the restarted server); when every socket has closed
//   (or --seconds passed) it prints one "result" line: the markers some client had received
//   from another (so the server had forwarded them: a user saw them on screen), and the count
//   of edits sent.
// check: after the orchestrator restarted the server on the same data, a new client joins and
//   reads the plan; a marker seen before the kill and missing now is a lost edit. The client
//   waits up to --wait seconds after its sync for the markers to appear, since a server may
//   answer the sync before it has loaded the document from its store.
import { readFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { connect } from './clients.mjs'

const [mode, ...rest] = process.argv.slice(2)
const args = { url: null, plan: null, token: '', clients: 5, rate: 20, seconds: 15, protocol: 'y-websocket', markers: null, wait: 5 }
for (let i = 0; i < rest.length; i += 2) {
  const key = rest[i].replace(/^--/, '')
  if (!(key in args)) fail(`unknown option --${key}`, 2)
  args[key] = rest[i + 1]
}
if (!['write', 'check'].includes(mode) || !args.url || !args.plan) {
  fail('usage: node bench/durability.mjs write|check --url WS_BASE --plan ID ...', 2)
}

const now = () => performance.now()
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
process.setMaxListeners(0)
setTimeout(() => fail('hard deadline reached', 3), (Number(args.seconds) + Number(args.wait) + 60) * 1000).unref()

function fail (message, code = 1) {
  emit({ event: 'result', error: message })
  process.stderr.write(`durability: ${message}\n`)
  process.exit(code)
}

const NoDeflate = class extends WebSocket {
  constructor (url, protocols) {
    super(url, protocols, { perMessageDeflate: false })
  }
}
const open = (doc) => connect(args.protocol, args.url, args.plan, doc, { token: args.token, WebSocketPolyfill: NoDeflate })
const RUN = Math.floor(Math.random() * 0x10000).toString(16).padStart(4, '0')
const MARKER = /\{([0-9a-f]{4})c(\d+)\.(\d+)\}/g
const markersIn = (text) => Array.from(text.matchAll(MARKER), (m) => `${m[1]}c${m[2]}.${m[3]}`)

async function write () {
  const seen = new Set() // markers received by a client other than their sender
  let sent = 0
  const clients = Array.from({ length: Number(args.clients) }, (_, index) => {
    const doc = new Y.Doc()
    const fragment = doc.getXmlFragment('default')
    const client = { index, doc, fragment, closed: false, seq: 0, text: null, timer: null }
    fragment.observeDeep((_events, txn) => {
      if (txn.local) return
      // Cheap enough at this size: the whole fragment, every time something arrives.
      for (const m of fragment.toString().matchAll(MARKER)) {
        if (m[1] === RUN && Number(m[2]) !== index) seen.add(`${m[1]}c${m[2]}.${m[3]}`)
      }
    })
    client.provider = open(doc)
    client.provider.on('connection-close', () => {
      if (client.closed) return // destroy() below closes again
      client.closed = true
      clearTimeout(client.timer)
      client.provider.destroy() // never reconnect: the restarted server must not get these
    })
    return client
  })
  const until = now() + 30000
  while (!clients.every((c) => c.provider.synced)) {
    if (now() > until) fail('clients did not sync within 30 s')
    await sleep(10)
  }
  emit({ event: 'phase', phase: 'editing', t: now() })
  const mean = 1000 / Number(args.rate)
  for (const c of clients) {
    const next = () => {
      if (c.closed) return
      c.doc.transact(() => {
        if (c.text === null || c.seq % 10 === 0) {
          const paragraph = new Y.XmlElement('paragraph')
          c.text = new Y.XmlText()
          paragraph.insert(0, [c.text])
          c.fragment.push([paragraph])
        }
        c.text.insert(c.text.length, `{${RUN}c${c.index}.${c.seq}} lorem ipsum dolor sit amet`)
      })
      c.seq++
      sent++
      c.timer = setTimeout(next, mean * (0.5 + Math.random()))
    }
    c.timer = setTimeout(next, Math.random() * mean)
  }
  const stop = now() + Number(args.seconds) * 1000
  while (!clients.every((c) => c.closed) && now() < stop) await sleep(20)
  for (const c of clients) {
    clearTimeout(c.timer)
    if (!c.closed) {
      c.closed = true
      c.provider.destroy()
    }
  }
  emit({ event: 'result', mode: 'write', sent, seen: [...seen].sort() })
}

async function check () {
  const expected = JSON.parse(readFileSync(args.markers, 'utf8'))
  const doc = new Y.Doc()
  const provider = open(doc)
  const until = now() + 30000
  while (!provider.synced) {
    if (now() > until) fail('the checker did not sync within 30 s')
    await sleep(10)
  }
  const present = () => new Set(markersIn(doc.getXmlFragment('default').toString()))
  const waitUntil = now() + Number(args.wait) * 1000
  while (expected.some((m) => !present().has(m)) && now() < waitUntil) await sleep(50)
  const have = present()
  const missing = expected.filter((m) => !have.has(m))
  emit({ event: 'result', mode: 'check', expected: expected.length, found: expected.length - missing.length, lost: missing.length, missing: missing.slice(0, 50), markersInDoc: have.size })
  provider.destroy()
}

if (mode === 'write') await write()
else await check()
setTimeout(() => process.exit(0), 200)
