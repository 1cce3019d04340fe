// Test helper: many stock y-websocket clients (the npm WebsocketProvider, as the editor uses it)
// of one plan in one Node process, connecting through a load balancer, each typing its own marked
// paragraphs and remembering every mark it has ever seen. Driven by the Python tests (and
// bench/cluster.py) over stdin/stdout. Run it from the repo root so node_modules resolves:
//
//   node tests/js/cluster_clients.mjs <ws base, e.g. ws://127.0.0.1:8080/ws/plans> <plan id>
//
// stdin: one JSON command per line; stdout: one JSON answer per command, in order.
//   {"cmd": "open", "tokens": [t, ...]}       one new client per token      -> {"clients": [i, ...]}
//                                             ("url": another ws base for these, e.g. one process)
//   {"cmd": "synced", "clients"?: [i]}        waits until they are connected and synced
//                                                                           -> {"servers": {i: name}}
//   {"cmd": "user", "client": i, "user": {}}  sets the awareness field `user`
//   {"cmd": "type", "count": n, "clients"?}   each types n marked paragraphs now
//   {"cmd": "task", "count": n, "clients"?}   each adds n tasks `t<client>.<k>`  -> {"texts": [...]}
//   {"cmd": "start", "rate": r, "clients"?}   each types r paragraphs a second until "stop"
//   {"cmd": "stop"}
//   {"cmd": "converge", "clients"?}           waits until they are synced, hold the same state and
//                                             every mark any of them ever saw   -> {"marks": n}
//   {"cmd": "waitMarks", "clients": [i], "marks": [m]}  waits until they hold these marks
//   {"cmd": "waitPresence", "client": i, "name": s}     a remote awareness state with user.name s
//   {"cmd": "waitAbsent", "client": i, "name": s}       ...until none has it any more
//   {"cmd": "waitClose", "client": i, "codes": [c]}     until a close with one of the codes
//   {"cmd": "waitServerChange", "clients": [i], "from": {i: name}}  until each is synced again,
//                                             on another process than `from`  -> {"servers", "ms"}
//   {"cmd": "state"}                          -> {"clients": [{index, server, servers, connects,
//                                                 closes, connected, synced, sent, seen, presence}]}
//   {"cmd": "marks", "client": i}             -> {"counts": {mark: times in the text}, "everSeen": [...]}
//   {"cmd": "destroy", "clients": [i]}        disconnects them for good
//   {"cmd": "quit"}                           destroys every client and exits 0
// Waits take "timeoutMs" (default 30000); a failed command answers {"error": message}.
// A mark is `m<client>.<seq>`, the whole text of one paragraph.
import { createInterface } from 'node:readline'
import { performance } from 'node:perf_hooks'
import WebSocket from 'ws'
import { WebsocketProvider } from 'y-websocket'
import * as Y from 'yjs'

const [serverUrl, room] = process.argv.slice(2)
if (!room) {
  process.stderr.write('usage: node tests/js/cluster_clients.mjs <ws base> <plan id>\n')
  process.exit(2)
}
process.setMaxListeners(0) // every provider adds an 'exit' listener

const MARK = /m(\d+)\.(\d+)/g
const clients = []

class Client {
  constructor (index, token, url) {
    this.index = index
    this.tasks = 0
    this.seq = 0
    this.sent = 0
    this.server = null // the process that answered the current socket's upgrade (X-Tandem-Server)
    this.servers = [] // every process this client was on, in order
    this.connects = 0
    this.closes = []
    this.everSeen = new Set()
    this.timer = null
    this.doc = new Y.Doc()
    this.fragment = this.doc.getXmlFragment('default')
    this.fragment.observeDeep((events) => {
      for (const event of events) {
        if (event.target === this.fragment) {
          for (const item of event.changes.added) {
            for (const node of item.content.getContent()) this.scan(node.toString())
          }
        } else {
          this.scan(event.target.toString())
        }
      }
    })
    const client = this
    // The upgrade response names the process HAProxy chose.
    class TracingWebSocket extends WebSocket {
      constructor (url, protocols) {
        super(url, protocols, { perMessageDeflate: false })
        this.on('upgrade', (res) => {
          client.server = res.headers['x-tandem-server'] ?? null
          client.servers.push(client.server)
        })
      }
    }
    this.provider = new WebsocketProvider(url ?? serverUrl, room, this.doc, {
      WebSocketPolyfill: TracingWebSocket,
      params: { token },
      // Node has a global BroadcastChannel: without this, the clients of this process would
      // exchange updates among themselves and never depend on the servers.
      disableBc: true
    })
    this.provider.on('status', ({ status }) => {
      if (status === 'connected') this.connects++
    })
    this.provider.on('connection-close', (event) => {
      this.closes.push(event ? { code: event.code, reason: event.reason, server: this.server, t: now() } : null)
    })
  }

  scan (text) {
    for (const m of text.matchAll(MARK)) this.everSeen.add(m[0])
  }

  get ready () {
    return this.provider.wsconnected && this.provider.synced
  }

  type () {
    const mark = `m${this.index}.${this.seq++}`
    const paragraph = new Y.XmlElement('paragraph')
    paragraph.insert(0, [new Y.XmlText(mark)])
    this.fragment.push([paragraph])
    this.sent++
    this.everSeen.add(mark)
  }

  // A task (taskList > taskItem > paragraph), which the worker turns into a row and a
  // "created" event of the commitment history.
  task () {
    const text = `t${this.index}.${this.tasks++}`
    const item = new Y.XmlElement('taskItem')
    item.setAttribute('checked', false)
    const paragraph = new Y.XmlElement('paragraph')
    paragraph.insert(0, [new Y.XmlText(text)])
    item.insert(0, [paragraph])
    const list = new Y.XmlElement('taskList')
    list.insert(0, [item])
    this.fragment.push([list])
    return text
  }

  start (rate) {
    this.stop()
    const next = () => {
      this.type()
      this.timer = setTimeout(next, (1000 / rate) * (0.5 + Math.random()))
    }
    this.timer = setTimeout(next, Math.random() * (1000 / rate))
  }

  stop () {
    clearTimeout(this.timer)
    this.timer = null
  }

  marks () {
    const counts = {}
    for (const node of this.fragment.toArray()) {
      if (!(node instanceof Y.XmlElement) || node.nodeName !== 'paragraph') continue
      const text = node.toArray().map((t) => t.toString()).join('')
      counts[text] = (counts[text] || 0) + 1
    }
    return counts
  }

  presence () {
    return Array.from(this.provider.awareness.getStates().entries())
      .filter(([id]) => id !== this.doc.clientID)
      .map(([, state]) => state.user?.name ?? null)
  }

  destroy () {
    this.stop()
    if (this.destroyed) return
    this.destroyed = true
    this.provider.awareness.destroy()
    this.provider.destroy()
  }

  summary () {
    return {
      index: this.index,
      server: this.server,
      servers: this.servers,
      connects: this.connects,
      closes: this.closes,
      connected: this.provider.wsconnected,
      synced: this.provider.synced,
      destroyed: !!this.destroyed,
      sent: this.sent,
      seen: this.everSeen.size,
      presence: this.presence()
    }
  }
}

const now = () => performance.timeOrigin + performance.now()

const pick = (indices) => (indices ?? clients.map((c) => c.index)).map((i) => clients[i]).filter((c) => !c.destroyed)

// Resolves once `predicate()` holds, checked on every change of any client and every 50 ms.
const until = (predicate, what, timeoutMs = 30000) =>
  new Promise((resolve, reject) => {
    const started = now()
    const check = () => {
      let value
      try {
        value = predicate()
      } catch (err) {
        clearInterval(timer)
        reject(err)
        return
      }
      if (value) {
        clearInterval(timer)
        resolve(value)
      } else if (now() - started > timeoutMs) {
        clearInterval(timer)
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'function' ? what() : what}`))
      }
    }
    const timer = setInterval(check, 50)
    check()
  })

const sameState = (group) => {
  const sv = Buffer.from(Y.encodeStateVector(group[0].doc))
  return group.every((c) => sv.equals(Buffer.from(Y.encodeStateVector(c.doc))))
}

const holds = (c, marks) => {
  const counts = c.marks()
  return marks.every((m) => counts[m])
}

const commands = {
  open: async ({ tokens, url }) => {
    const made = tokens.map((token) => {
      const c = new Client(clients.length, token, url)
      clients.push(c)
      return c.index
    })
    return { clients: made }
  },
  synced: async ({ clients: which, timeoutMs }) => {
    const group = pick(which)
    await until(() => group.every((c) => c.ready), () => `clients ${group.filter((c) => !c.ready).map((c) => c.index)} to sync`, timeoutMs)
    return { servers: Object.fromEntries(group.map((c) => [c.index, c.server])) }
  },
  user: async ({ client, user }) => {
    clients[client].provider.awareness.setLocalStateField('user', user)
    return {}
  },
  type: async ({ count, clients: which }) => {
    for (const c of pick(which)) for (let k = 0; k < count; k++) c.type()
    return {}
  },
  task: async ({ count, clients: which }) => {
    const texts = []
    for (const c of pick(which)) for (let k = 0; k < count; k++) texts.push(c.task())
    return { texts }
  },
  start: async ({ rate, clients: which }) => {
    for (const c of pick(which)) c.start(rate)
    return {}
  },
  stop: async () => {
    for (const c of clients) c.stop()
    return {}
  },
  converge: async ({ clients: which, timeoutMs }) => {
    const group = pick(which)
    const wanted = () => {
      const all = new Set()
      for (const c of group) for (const m of c.everSeen) all.add(m)
      return [...all]
    }
    const missing = () => group.map((c) => `${c.index}: ${c.ready ? 'ready' : 'not ready'}, lacks ${wanted().filter((m) => !c.marks()[m]).slice(0, 5)}`).join('; ')
    await until(() => group.every((c) => c.ready) && sameState(group) && group.every((c) => holds(c, wanted())), missing, timeoutMs)
    return { marks: wanted().length }
  },
  waitMarks: async ({ clients: which, marks, timeoutMs }) => {
    const group = pick(which)
    await until(() => group.every((c) => holds(c, marks)), `marks ${marks.slice(0, 5)} on ${which}`, timeoutMs)
    return {}
  },
  waitPresence: async ({ client, name, timeoutMs }) => {
    await until(() => clients[client].presence().includes(name), `presence of ${name} at ${client}`, timeoutMs)
    return {}
  },
  waitAbsent: async ({ client, name, timeoutMs }) => {
    await until(() => !clients[client].presence().includes(name), `${name} to leave ${client}'s presence`, timeoutMs)
    return {}
  },
  waitClose: async ({ client, codes, timeoutMs }) => {
    const c = clients[client]
    await until(() => c.closes.some((e) => e && codes.includes(e.code)), () => `close ${codes} at ${client} (closes: ${JSON.stringify(c.closes)})`, timeoutMs)
    return { closes: c.closes }
  },
  waitServerChange: async ({ clients: which, from, timeoutMs }) => {
    const group = pick(which)
    const started = now()
    const moved = (c) => c.ready && c.server !== null && c.server !== from[c.index]
    await until(() => group.every(moved), () => `clients ${group.filter((c) => !moved(c)).map((c) => c.index)} to sync on another process`, timeoutMs)
    return { servers: Object.fromEntries(group.map((c) => [c.index, c.server])), ms: now() - started }
  },
  state: async () => ({ clients: clients.map((c) => c.summary()) }),
  marks: async ({ client }) => {
    const c = clients[client]
    return { counts: c.marks(), everSeen: [...c.everSeen] }
  },
  everSeen: async () => {
    const all = new Set()
    for (const c of clients) for (const m of c.everSeen) all.add(m)
    return { marks: [...all] }
  },
  destroy: async ({ clients: which }) => {
    for (const i of which) clients[i].destroy()
    return {}
  }
}

const reply = (value) => new Promise((resolve) => process.stdout.write(JSON.stringify(value) + '\n', resolve))

const quit = () => {
  for (const c of clients) c.destroy()
  setTimeout(() => process.exit(0), 100)
}

for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue
  const command = JSON.parse(line)
  if (command.cmd === 'quit') {
    quit()
    break
  }
  const handler = commands[command.cmd]
  try {
    if (!handler) throw new Error(`unknown command ${command.cmd}`)
    await reply(await handler(command))
  } catch (err) {
    await reply({ error: String(err?.message ?? err) })
  }
}
quit() // stdin closed: the test is gone
