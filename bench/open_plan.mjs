// Open-time benchmark: how long a newcomer waits for a big plan.
//
//   node bench/open_plan.mjs build --url WS_BASE --plan ID [--token T] [--edits 20000] [--bytes 50]
//   node bench/open_plan.mjs open  --url WS_BASE --plan ID [--token T] [--runs 5]
// Both take [--deflate off|on] (offer permessage-deflate or not; default off) and
// [--protocol y-websocket|hocuspocus] (the wire protocol, bench/clients.mjs).
//
// Run from the repo root so node_modules resolves. Each mode prints one JSON line on stdout.
//
// build: one editor client types --edits edits of ~--bytes bytes into the "default" fragment,
//   one transaction (one update on the wire) per edit, as typing does: a new paragraph every
//   tenth edit, otherwise an insert at a random spot of one of the last paragraphs (so the
//   document is made of many small items, like a real one, not one long run). A second client
//   watches: the writer keeps at most --window edits ahead of what the watcher has received,
//   so the server is never flooded faster than it forwards (and, for Tandem, commits: it
//   forwards only what is durable). Done when the watcher holds every edit.
// open: --runs times in a row, a brand-new Y.Doc + WebsocketProvider joins the plan; we time
//   `new WebsocketProvider` -> 'sync' true, and count the bytes the socket received by then.
//   With --expect-clock N (the build's writerClock), until the newcomer also holds all N of
//   the writer's characters: a server may answer the sync before it has loaded the plan from
//   its store (the stock server with LevelDB does) and send the content afterwards.
//   Before the first run, Yjs is warmed up locally on a document of the same shape, so the
//   first run measures the server's cold load, not this process's JIT.
import { performance } from 'node:perf_hooks'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { connect as connectTo } from './clients.mjs'

const [mode, ...rest] = process.argv.slice(2)
const args = { url: null, plan: null, token: '', edits: 20000, bytes: 50, window: 200, runs: 5, timeout: 300, deflate: 'off', protocol: 'y-websocket', 'expect-clock': 0 }
for (let i = 0; i < rest.length; i += 2) {
  const key = rest[i].replace(/^--/, '')
  if (!(key in args)) fail(`unknown option --${key}`, 2)
  args[key] = rest[i + 1]
}
if (!['build', 'open'].includes(mode) || !args.url || !args.plan) {
  fail('usage: node bench/open_plan.mjs build|open --url WS_BASE --plan ID [--token T] ...', 2)
}

const WRITER = 0x9e3779b9 // the build's writer: a fixed client id (see build)
const now = () => performance.now()
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const round = (x) => Math.round(x * 100) / 100
process.setMaxListeners(0)

// Hard deadline: the process always ends on its own.
setTimeout(() => fail(`hard deadline of ${args.timeout}s reached`, 3), Number(args.timeout) * 1000).unref()

function fail (message, code = 1) {
  process.stdout.write(JSON.stringify({ error: message }) + '\n')
  process.stderr.write(`open_plan: ${message}\n`)
  process.exit(code)
}

// Whether to offer permessage-deflate, as browsers do (see bench/loadgen.mjs): off by default
// so that both servers send the same bytes; on shows what compressing the big sync costs.
const ClientWebSocket = class extends WebSocket {
  constructor (url, protocols) {
    super(url, protocols, args.deflate === 'on' ? {} : { perMessageDeflate: false })
  }
}

const connect = (doc) =>
  connectTo(args.protocol, args.url, args.plan, doc, { token: args.token, WebSocketPolyfill: ClientWebSocket })

const waitUntil = async (predicate, timeoutMs, what) => {
  const until = now() + timeoutMs
  while (!predicate()) {
    if (now() >= until) fail(`timed out waiting for ${what}`)
    await sleep(5)
  }
}

const close = (provider, doc) => {
  provider.awareness.destroy()
  provider.destroy()
  doc.destroy()
}

// Deterministic text (no Math.random in content): "word word ..." of about `n` bytes.
const WORDS = 'plan goal risk owner kickoff milestone success metric review contact launch budget'.split(' ')
const phrase = (i, n) => {
  let s = ''
  for (let k = i; s.length < n; k = (k * 7 + 3) % 9973) s += WORDS[k % WORDS.length] + ' '
  return s.slice(0, n)
}

// One edit of the build: what a typist does in one transaction.
const makeEditor = (doc, seed = 1) => {
  const fragment = doc.getXmlFragment('default')
  const recent = []
  let rnd = seed
  const random = (n) => {
    rnd = (rnd * 1103515245 + 12345) % 2147483648
    return rnd % n
  }
  return (i) =>
    doc.transact(() => {
      const text = phrase(i, Number(args.bytes))
      if (i % 10 === 0 || recent.length === 0) {
        const paragraph = new Y.XmlElement('paragraph')
        const yText = new Y.XmlText()
        paragraph.insert(0, [yText])
        yText.insert(0, text)
        fragment.push([paragraph])
        recent.push(yText)
        if (recent.length > 20) recent.shift()
      } else {
        const yText = recent[random(recent.length)]
        yText.insert(random(yText.length + 1), text)
      }
    })
}

async function build () {
  const writerDoc = new Y.Doc()
  // A fixed client id: ids are random 32-bit numbers written as varints into every item's
  // origin, so with a random one the same edits encode up to ~5% larger or smaller.
  writerDoc.clientID = WRITER
  const watcherDoc = new Y.Doc()
  const writer = connect(writerDoc)
  const watcher = connect(watcherDoc)
  await waitUntil(() => writer.synced && watcher.synced, 30000, 'both clients to sync')
  const me = writerDoc.clientID
  const delivered = () => Y.getState(watcherDoc.store, me)
  const edit = makeEditor(writerDoc)
  const started = now()
  const edits = Number(args.edits)
  const window = Number(args.window)
  let stallSince = now()
  let lastDelivered = 0
  for (let i = 0; i < edits; i++) {
    // Each edit is one clock tick per character; bound the edits in flight by characters too.
    while (Y.getState(writerDoc.store, me) - delivered() > window * Number(args.bytes)) {
      if (delivered() !== lastDelivered) {
        lastDelivered = delivered()
        stallSince = now()
      } else if (now() - stallSince > 30000) {
        fail(`server stopped forwarding: ${delivered()} of ${Y.getState(writerDoc.store, me)} clocks after 30 s`)
      }
      await sleep(1)
    }
    edit(i)
    if (i % 50 === 0) await sleep(0) // let the socket breathe (flush sends, read forwards)
  }
  await waitUntil(() => delivered() === Y.getState(writerDoc.store, me), 120000, 'the watcher to receive every edit')
  const seconds = (now() - started) / 1000
  const update = Y.encodeStateAsUpdate(writerDoc)
  const result = {
    mode: 'build',
    edits,
    seconds: round(seconds),
    editsPerSecond: round(edits / seconds),
    stateBytes: update.length,
    writerClock: Y.getState(writerDoc.store, me),
    xmlChars: writerDoc.getXmlFragment('default').toString().length,
    paragraphs: writerDoc.getXmlFragment('default').length,
    watcherMatches: watcherDoc.getXmlFragment('default').toString() === writerDoc.getXmlFragment('default').toString()
  }
  close(writer, writerDoc)
  close(watcher, watcherDoc)
  return result
}

async function open () {
  // Warm Yjs's encode/decode paths on a local document of the same shape (a few rounds: V8
  // optimises a function only after it has run hot for a while).
  const warm = new Y.Doc()
  const edit = makeEditor(warm, 7)
  for (let i = 0; i < Number(args.edits); i++) edit(i)
  for (let k = 0; k < 3; k++) Y.applyUpdate(new Y.Doc(), Y.encodeStateAsUpdate(warm))

  const runs = []
  for (let r = 0; r < Number(args.runs); r++) {
    const doc = new Y.Doc()
    let received = 0
    let syncedAt = null
    const t0 = now()
    const provider = connect(doc)
    const expect = Number(args['expect-clock'])
    const check = () => {
      if (syncedAt === null && provider.synced && Y.getState(doc.store, WRITER) >= expect) syncedAt = now()
    }
    provider.on('sync', check)
    doc.on('update', check)
    // The constructor opened the socket synchronously; count what it receives up to and
    // including the message that completed the sync (the provider's own handler runs first,
    // so 'sync' has already fired when this listener sees that message).
    const ws = provider.ws
    const count = (data) => {
      received += data.byteLength ?? data.length
      if (syncedAt !== null) ws.off('message', count)
    }
    ws.on('message', count)
    await waitUntil(() => syncedAt !== null, 120000, `sync of run ${r + 1}`)
    doc.off('update', check)
    const ms = syncedAt - t0
    const fragment = doc.getXmlFragment('default')
    runs.push({
      ms: round(ms),
      bytesReceived: received,
      stateBytes: Y.encodeStateAsUpdate(doc).length,
      xmlChars: fragment.toString().length,
      paragraphs: fragment.length
    })
    close(provider, doc)
    await sleep(300) // let the server see the socket close before the next newcomer
  }
  const sorted = runs.map((r) => r.ms).sort((a, b) => a - b)
  return { mode: 'open', runs, firstMs: runs[0].ms, medianMs: sorted[Math.floor(sorted.length / 2)] }
}

const result = mode === 'build' ? await build() : await open()
process.stdout.write(JSON.stringify(result) + '\n')
setTimeout(() => process.exit(0), 200)
