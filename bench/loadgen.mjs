// Load generator: N plans x C real Yjs clients (the stock y-websocket WebsocketProvider, as the
// editor uses it), all in this one Node process so that every timestamp comes from one clock.
//
//   node bench/loadgen.mjs --url ws://127.0.0.1:8000/ws/plans --plans id1,id2 --clients 50 \
//     [--token T] [--rate 1] [--awareness-rate 0.5] [--warmup 5] [--seconds 30] [--drain 15] \
//     [--settle 15] [--storm-timeout 60] [--deflate off|on] [--timeline off|on]
//     [--protocol y-websocket|hocuspocus] [--shared off|on] [--waves 1|2] [--connect-batch 0]
//
// --protocol: the wire protocol (bench/clients.mjs): y-websocket for Tandem and the stock
//   server, hocuspocus for Hocuspocus. --shared on: every client of a plan types into the same
//   paragraph (at a random spot of it) instead of its own. --waves 2: connect one client per
//   plan first, then the others, with a "wave" phase line between (the orchestrator reads the
//   server's memory there: rooms, then connections). --connect-batch N: connect N clients at a
//   time, each batch synced before the next (0: all at once).
//
// Run it from the repo root so node_modules resolves. Phases:
//   1. connect storm: every provider is created in one synchronous loop, then we wait for all
//      of them to report 'sync' (or --storm-timeout);
//   2. warmup: clients edit at --rate, nothing is measured;
//   3. measured window (--seconds): the edits sent in it are the ones we count;
//   4. drain: editing stops; we wait (at most --drain s) for every measured edit to reach every
//      other client of its plan; what has not arrived by then counts as lost;
//   5. settle: we wait (at most --settle s) until all docs of a plan have the same state, then
//      a fresh client joins each plan (50 plans at a time) and must see that same state.
//
// Every stdout line is one JSON object with an "event" key: "phase" lines as phases begin (the
// orchestrator uses "measure-start"/"measure-end" to window its CPU samples), then one
// "result" (client-side errors are counted in it). The process always exits on its own: a
// hard deadline covers every phase.
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { connect, PROTOCOLS } from './clients.mjs'

const args = parseArgs(process.argv.slice(2), {
  url: null,
  plans: null,
  clients: 50,
  token: '',
  rate: 1,
  'awareness-rate': 0.5,
  warmup: 5,
  seconds: 30,
  drain: 15,
  settle: 15,
  'storm-timeout': 60,
  deflate: 'off',
  timeline: 'off',
  protocol: 'y-websocket',
  shared: 'off',
  waves: 1,
  'connect-batch': 0
})
if (!args.url || !args.plans) {
  process.stderr.write('usage: node bench/loadgen.mjs --url WS_BASE --plans ID[,ID...] [--clients C] ...\n')
  process.exit(2)
}
const PLANS = String(args.plans).split(',').filter(Boolean)
const CLIENTS = Number(args.clients)
const RATE = Number(args.rate)
const AWARENESS_RATE = Number(args['awareness-rate'])
const SHARED = args.shared === 'on'
if (!PROTOCOLS.includes(args.protocol)) {
  process.stderr.write(`unknown --protocol ${args.protocol}\n`)
  process.exit(2)
}

// The client's websocket class. Browsers offer permessage-deflate and so does `ws` by default;
// Tandem (uvicorn + websockets) accepts it, the stock server does not. Here, though, all clients
// share one process, and `ws` inflates every frame through one process-wide queue of async zlib
// jobs (10 at a time, on libuv's thread pool): with 50 sockets that queue, not the server,
// becomes the latency. So by default we do not offer it (--deflate off), like a client of the
// stock server; --deflate on offers it, to see what compression costs the server in CPU.
const ClientWebSocket = class extends WebSocket {
  constructor (url, protocols) {
    super(url, protocols, args.deflate === 'on' ? {} : { perMessageDeflate: false })
  }
}

// One clock for senders and receivers. timeOrigin + now() rather than Date.now(): monotonic,
// sub-millisecond, and still comparable across worker processes should we ever split the load.
const now = () => performance.timeOrigin + performance.now()
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')

// Each provider registers a process 'exit' listener; 100 of them are expected, not a leak.
process.setMaxListeners(0)

// Hard deadline: whatever happens (a server that never answers, a stuck phase), we stop.
const budget = Number(args['storm-timeout']) + Number(args.warmup) + Number(args.seconds) +
  Number(args.drain) + 2 * Number(args.settle) + 30
const deadline = setTimeout(() => {
  process.stderr.write(`loadgen: hard deadline of ${budget}s reached, giving up\n`)
  emit({ event: 'result', error: `hard deadline of ${budget}s reached` })
  process.exit(3)
}, budget * 1000)
deadline.unref()

// Errors as counts by kind ("close 1006", "connection-error", ...): a storm of identical
// failures stays readable. The first few messages are kept verbatim.
const errors = {}
const errorSamples = []
const noteError = (kind, detail) => {
  errors[kind] = (errors[kind] || 0) + 1
  if (errorSamples.length < 20) errorSamples.push(detail ? `${kind}: ${detail}` : kind)
}
process.on('uncaughtException', (err) => noteError('uncaught', err && err.stack ? err.stack.split('\n')[0] : String(err)))

// The measured window, set when it opens and closes. An edit is "measured" when its send time
// falls inside it; only measured edits count towards latency and loss.
let windowStart = Infinity
let windowEnd = Infinity
const inWindow = (t) => t >= windowStart && t < windowEnd

const latencies = [] // ms, one per delivery of a measured edit to another client
// --timeline on: the worst latency per 250 ms of send time, to see whether slow deliveries
// come in periodic spikes (a checkpoint, a GC pause) or are spread out.
const TIMELINE_BIN_MS = 250
const timeline = args.timeline === 'on' ? [] : null
const awarenessLatencies = [] // ms, one per delivery of a measured cursor move
let measuredSends = 0
let expectedDeliveries = 0
let measuredDeliveries = 0
let duplicates = 0
let tornDown = false

// The edit payload: a marker a receiver can find in the inserted text, padded to ~50 bytes
// like a few typed words. Ids are numbers (client index, sequence) so receivers can dedupe
// cheaply; the send time travels in the text itself.
const FILLER = ' lorem ipsum dolor sit amet'
// A run id in every marker: text left in the plan by an earlier run (seen at sync) is ignored.
const RUN = Math.floor(Math.random() * 0x10000).toString(16).padStart(4, '0')
const MARKER = /\{([0-9a-f]{4})c(\d+)\.(\d+)@(\d+\.\d+)\}/g
const EDITS_PER_PARAGRAPH = 10 // then the client "presses Enter" and types in a new paragraph

// This process's own event-loop lag is reported so that a slow *client* is not mistaken for a
// slow server: every latency includes it.
const LOOP_RESOLUTION_MS = 10

class Client {
  constructor (plan, planIndex, index) {
    this.plan = plan
    this.planIndex = planIndex
    this.index = index // unique over all plans
    this.seq = 0
    this.awarenessSeq = 0
    this.sent = 0
    this.connects = 0
    this.paragraph = null
    this.text = null
    this.seen = new Set() // `${sender}.${seq}` delivered here: a second sighting is a duplicate
    this.lastCursorSeq = new Map() // sender's awareness client id -> newest cursor seq seen
    this.doc = new Y.Doc()
    this.fragment = this.doc.getXmlFragment('default')
    this.fragment.observeDeep((events, txn) => {
      if (!txn.local) this.onRemote(events)
    })
    this.createdAt = now()
    this.syncedAt = null
    this.frames = 0
    this.bytes = 0
    this.extensions = ''
    this.provider = connect(args.protocol, args.url, plan, this.doc, {
      token: args.token,
      WebSocketPolyfill: ClientWebSocket
    })
    const awareness = this.provider.awareness
    awareness.setLocalStateField('user', { name: `Bench ${index}`, color: '#30bced' })
    awareness.on('change', (change, origin) => {
      if (origin !== 'local') this.onAwareness(change)
    })
    this.provider.on('status', ({ status }) => {
      if (status !== 'connected') return
      this.connects++
      // Count what this socket receives (after decompression), and what was negotiated.
      const ws = this.provider.ws
      this.extensions = ws.extensions || 'none'
      ws.on('message', (data) => {
        this.frames++
        this.bytes += data.byteLength
      })
    })
    this.provider.on('sync', (synced) => {
      if (synced && this.syncedAt === null) this.syncedAt = now()
    })
    this.provider.on('connection-close', (event) => {
      if (!tornDown) noteError(event ? `close ${event.code}` : 'close (local watchdog)', event && event.reason)
    })
    this.provider.on('connection-error', (event) => {
      if (!tornDown) noteError('connection-error', event && event.message)
    })
  }

  // What an editor does on a keystroke burst: insert a few words at the end of the paragraph
  // being typed in, one transaction each; now and then start a new paragraph after it.
  edit () {
    const t = now()
    const payload = `{${RUN}c${this.index}.${this.seq}@${t.toFixed(2)}}${FILLER}`
    const measured = inWindow(t)
    this.doc.transact(() => {
      if (SHARED) {
        // Everyone types into the plan's first paragraph, made before the warmup.
        const text = this.fragment.get(0).get(0)
        text.insert(Math.floor(Math.random() * (text.length + 1)), payload)
        return
      }
      if (this.paragraph === null || this.seq % EDITS_PER_PARAGRAPH === 0) {
        const paragraph = new Y.XmlElement('paragraph')
        const text = new Y.XmlText()
        paragraph.insert(0, [text])
        const at = this.paragraph === null ? this.fragment.length : this.fragment.toArray().indexOf(this.paragraph) + 1
        this.fragment.insert(at, [paragraph])
        this.paragraph = paragraph
        this.text = text
      }
      this.text.insert(this.text.length, payload)
    })
    this.seq++
    this.sent++
    if (measured) {
      measuredSends++
      expectedDeliveries += CLIENTS - 1
    }
  }

  // What an editor does when the selection moves: publish the caret as relative positions.
  moveCursor () {
    if (SHARED && this.text === null && this.fragment.length > 0) this.text = this.fragment.get(0).get(0)
    if (this.text === null) return
    const pos = Y.relativePositionToJSON(Y.createRelativePositionFromTypeIndex(this.text, this.text.length))
    const t = now()
    this.provider.awareness.setLocalStateField('cursor', {
      anchor: pos,
      head: pos,
      bench: { seq: this.awarenessSeq++, t }
    })
  }

  onRemote (events) {
    const t = now()
    for (const event of events) {
      if (event.target instanceof Y.XmlText) {
        for (const op of event.delta) {
          if (typeof op.insert === 'string') this.scan(op.insert, t)
        }
      } else {
        // A paragraph created in the same transaction brings its text with it, and Yjs reports
        // only the paragraph being added (no event for a type created in that transaction).
        for (const item of event.changes.added) {
          for (const node of item.content.getContent()) {
            if (node instanceof Y.XmlElement || node instanceof Y.XmlText) this.scan(node.toString(), t)
          }
        }
      }
    }
  }

  scan (text, t) {
    for (const m of text.matchAll(MARKER)) {
      if (m[1] !== RUN) continue
      const key = `${m[2]}.${m[3]}`
      if (this.seen.has(key)) {
        duplicates++
        continue
      }
      this.seen.add(key)
      const sentAt = Number(m[4])
      if (inWindow(sentAt)) {
        measuredDeliveries++
        latencies.push(t - sentAt)
        if (timeline) {
          const bin = Math.floor((sentAt - windowStart) / TIMELINE_BIN_MS)
          timeline[bin] = Math.max(timeline[bin] || 0, t - sentAt)
        }
      }
    }
  }

  onAwareness ({ added, updated }) {
    const t = now()
    const states = this.provider.awareness.getStates()
    for (const id of added.concat(updated)) {
      const bench = states.get(id)?.cursor?.bench
      if (!bench || !(bench.seq > (this.lastCursorSeq.get(id) ?? -1))) continue
      this.lastCursorSeq.set(id, bench.seq)
      if (inWindow(bench.t)) awarenessLatencies.push(t - bench.t)
    }
  }

  // Jittered timers (uniform 0.5x..1.5x of the mean interval), started at a random phase so
  // that clients never edit in lockstep.
  startEditing () {
    const loop = (mean, fn) => {
      const next = () => {
        if (this.stopped) return
        fn()
        this.timers.push(setTimeout(next, mean * (0.5 + Math.random())))
      }
      this.timers.push(setTimeout(next, Math.random() * mean))
    }
    this.stopped = false
    this.timers = []
    if (RATE > 0) loop(1000 / RATE, () => this.edit())
    if (AWARENESS_RATE > 0) loop(1000 / AWARENESS_RATE, () => this.moveCursor())
  }

  stopEditing () {
    this.stopped = true
    for (const timer of this.timers || []) clearTimeout(timer)
  }

  destroy () {
    this.stopEditing()
    this.provider.awareness.destroy()
    this.provider.destroy()
    this.doc.destroy()
  }
}

const percentile = (sorted, p) => {
  if (sorted.length === 0) return null
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return round(sorted[i])
}
const round = (x) => (x === null ? null : Math.round(x * 100) / 100)
const summary = (values) => {
  const sorted = Float64Array.from(values).sort()
  return {
    count: sorted.length,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted.length ? round(sorted[sorted.length - 1]) : null
  }
}
const sameBytes = (a, b) => a.length === b.length && a.every((x, i) => x === b[i])

// A plan has converged when every client holds the same state vector (the same set of
// operations) and renders the same XML. Byte-identical encoded state is reported too but not
// required: encoders may split or merge runs differently for the same content.
const planState = (clients) => {
  const first = clients[0]
  const sv = Y.encodeStateVector(first.doc)
  const xml = first.fragment.toString()
  const converged = clients.every((c) => sameBytes(Y.encodeStateVector(c.doc), sv) && c.fragment.toString() === xml)
  return { converged, sv, xml }
}

const waitUntil = async (predicate, timeoutMs, stepMs = 50) => {
  const until = now() + timeoutMs
  while (!predicate()) {
    if (now() >= until) return false
    await sleep(stepMs)
  }
  return true
}

// A client that joins after the load stopped must get exactly what the editors converged on:
// that proves the server holds (and for Tandem, has persisted) every edit.
const freshLook = async (plan) => {
  const doc = new Y.Doc()
  const provider = connect(args.protocol, args.url, plan, doc, {
    token: args.token,
    WebSocketPolyfill: ClientWebSocket
  })
  const ok = await waitUntil(() => provider.synced, Number(args.settle) * 1000)
  const result = ok ? { sv: Y.encodeStateVector(doc), xml: doc.getXmlFragment('default').toString() } : null
  provider.awareness.destroy()
  provider.destroy()
  doc.destroy()
  return result
}

async function main () {
  const loopDelay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS })
  loopDelay.enable()

  // 1. Connect storm.
  emit({ event: 'phase', phase: 'storm', t: now() })
  const stormStart = now()
  const stormUntil = stormStart + Number(args['storm-timeout']) * 1000
  // Who connects when: all at once by default; with --waves 2 the first client of every plan,
  // then the rest; with --connect-batch N, N at a time within a wave.
  const byPlan = PLANS.map(() => new Array(CLIENTS))
  const waves = Number(args.waves) > 1
    ? [PLANS.map((_, p) => [p, 0]), PLANS.flatMap((_, p) => Array.from({ length: CLIENTS - 1 }, (_, i) => [p, i + 1]))]
    : [PLANS.flatMap((_, p) => Array.from({ length: CLIENTS }, (_, i) => [p, i]))]
  const batch = Number(args['connect-batch']) || Infinity
  for (const [w, wave] of waves.entries()) {
    for (let start = 0; start < wave.length; start += batch) {
      const made = wave.slice(start, start + batch).map(([p, i]) => {
        byPlan[p][i] = new Client(PLANS[p], p, p * CLIENTS + i)
        return byPlan[p][i]
      })
      await waitUntil(() => made.every((c) => c.syncedAt !== null), Math.max(0, stormUntil - now()))
    }
    if (waves.length > 1 && w < waves.length - 1) {
      emit({ event: 'phase', phase: 'wave', wave: w + 1, connected: byPlan.flat().filter(Boolean).length, t: now() })
    }
  }
  const clients = byPlan.flat()
  const synced = clients.filter((c) => c.syncedAt !== null)
  const stormEnd = synced.length ? Math.max(...synced.map((c) => c.syncedAt)) : now()
  const connectTimes = summary(synced.map((c) => c.syncedAt - c.createdAt))
  emit({ event: 'phase', phase: 'storm-done', synced: synced.length, of: clients.length, seconds: round((stormEnd - stormStart) / 1000) })

  // 2. Warmup. Clients that never synced do not edit (an editor would show "connecting"),
  //    but they still count as receivers, so a failed connect shows up as loss.
  if (SHARED) {
    // The shared paragraph: made by one client of each plan, seen by all before anyone types.
    for (const cs of byPlan) {
      const first = cs.find((c) => c.syncedAt !== null)
      if (!first) continue
      first.doc.transact(() => {
        const paragraph = new Y.XmlElement('paragraph')
        paragraph.insert(0, [new Y.XmlText()])
        first.fragment.insert(0, [paragraph])
      })
    }
    await waitUntil(() => synced.every((c) => c.fragment.length > 0), Number(args.settle) * 1000)
  }
  emit({ event: 'phase', phase: 'warmup', t: now() })
  for (const c of synced) if (!SHARED || c.fragment.length > 0) c.startEditing()
  await sleep(Number(args.warmup) * 1000)

  // 3. Measured window.
  loopDelay.reset()
  const cpuBefore = process.cpuUsage()
  windowStart = now()
  emit({ event: 'phase', phase: 'measure-start', t: windowStart })
  await sleep(Number(args.seconds) * 1000)
  windowEnd = now()
  const cpu = process.cpuUsage(cpuBefore)
  emit({ event: 'phase', phase: 'measure-end', t: windowEnd })
  // The histogram records whole timer intervals; the lag is what exceeds the resolution.
  const lag = (ns) => round(Math.max(0, ns / 1e6 - LOOP_RESOLUTION_MS))
  const clientLoop = { lagP99Ms: lag(loopDelay.percentile(99)), lagMaxMs: lag(loopDelay.max) }
  const clientCpuPercent = round(((cpu.user + cpu.system) / 1000 / (windowEnd - windowStart)) * 100)

  // 4. Drain.
  for (const c of clients) c.stopEditing()
  emit({ event: 'phase', phase: 'drain', t: now() })
  const drainStart = now()
  await waitUntil(() => measuredDeliveries >= expectedDeliveries, Number(args.drain) * 1000)
  const drainSeconds = round((now() - drainStart) / 1000)

  // 5. Settle, then check convergence and what a newcomer sees.
  emit({ event: 'phase', phase: 'settle', t: now() })
  await waitUntil(() => byPlan.every((cs) => planState(cs).converged), Number(args.settle) * 1000, 250)
  const plans = []
  // Newcomers join 50 plans at a time: one after the other, 1,000 plans would outlast --settle.
  const NEWCOMERS_AT_ONCE = 50
  const newcomers = []
  for (let start = 0; start < PLANS.length; start += NEWCOMERS_AT_ONCE) {
    newcomers.push(...await Promise.all(PLANS.slice(start, start + NEWCOMERS_AT_ONCE).map(freshLook)))
  }
  for (const [p, cs] of byPlan.entries()) {
    const state = planState(cs)
    const update = Y.encodeStateAsUpdate(cs[0].doc)
    const fresh = newcomers[p]
    plans.push({
      plan: PLANS[p],
      converged: state.converged,
      identicalBytes: cs.every((c) => sameBytes(Y.encodeStateAsUpdate(c.doc), update)),
      newcomerMatches: fresh !== null && sameBytes(fresh.sv, state.sv) && fresh.xml === state.xml,
      paragraphs: cs[0].fragment.length,
      stateBytes: update.length
    })
  }

  tornDown = true
  const sent = clients.reduce((n, c) => n + c.sent, 0)
  const result = {
    event: 'result',
    plans: PLANS.length,
    clientsPerPlan: CLIENTS,
    clients: clients.length,
    rate: RATE,
    awarenessRate: AWARENESS_RATE,
    seconds: Number(args.seconds),
    storm: {
      synced: synced.length,
      seconds: round((stormEnd - stormStart) / 1000),
      connectToSyncMs: connectTimes
    },
    extensions: [...new Set(clients.map((c) => c.extensions))].join(' | '),
    framesReceived: clients.reduce((n, c) => n + c.frames, 0),
    bytesReceived: clients.reduce((n, c) => n + c.bytes, 0),
    reconnects: clients.reduce((n, c) => n + Math.max(0, c.connects - 1), 0),
    editsSent: sent,
    measuredEdits: measuredSends,
    expectedDeliveries,
    receivedDeliveries: measuredDeliveries,
    lossPercent: expectedDeliveries ? round((100 * (expectedDeliveries - measuredDeliveries)) / expectedDeliveries) : null,
    duplicates,
    latencyMs: summary(latencies),
    awarenessLatencyMs: summary(awarenessLatencies),
    drainSeconds,
    converged: plans.every((p) => p.converged && p.newcomerMatches),
    planDetails: plans,
    errors,
    errorSamples,
    client: { cpuPercent: clientCpuPercent, eventLoopDelay: clientLoop },
    timeline: timeline && Array.from(timeline, (ms, i) => [round((i * TIMELINE_BIN_MS) / 1000), round(ms ?? 0)])
  }
  for (const c of clients) c.destroy()
  emit(result)
  // Give the close frames a moment to leave, then exit even if a socket lingers.
  setTimeout(() => process.exit(0), 300)
}

function parseArgs (argv, defaults) {
  const out = { ...defaults }
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i].replace(/^--/, '')
    if (!(key in defaults)) {
      process.stderr.write(`unknown option --${key}\n`)
      process.exit(2)
    }
    out[key] = argv[++i]
  }
  return out
}

main().catch((err) => {
  process.stderr.write(`loadgen: ${err.stack || err}\n`)
  emit({ event: 'result', error: String(err) })
  process.exit(1)
})
