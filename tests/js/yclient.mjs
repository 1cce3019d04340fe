// Test helper: a stock y-websocket client (the npm WebsocketProvider, as a browser would use it,
// with only the `ws` polyfill and the token as a URL parameter), driven by the Python tests over
// stdin/stdout. Run it with the repo root as the working directory so node_modules resolves:
//
//   node tests/js/yclient.mjs <ws base, e.g. ws://127.0.0.1:8000/ws/plans> <plan id> <token>
//
// stdin: one JSON command per line; stdout: one JSON answer per command, in order.
//   {"cmd": "synced"}                         waits for the first sync      -> {"clientID": n}
//   {"cmd": "paragraph", "text": s}           appends <paragraph>s</paragraph> to "default"
//   {"cmd": "user", "user": {...}}            sets the awareness field `user`
//   {"cmd": "waitParagraphs", "texts": [...]} waits until every text is a paragraph
//   {"cmd": "waitPresence", "name": s}        waits until a remote awareness state has user.name s
//   {"cmd": "state"}                          -> {"clientID", "paragraphs", "xml", "presence",
//                                                 "frames", "closes"}
//   {"cmd": "quit"}                           destroys the provider and exits 0
// Waits take "timeoutMs" (default 10000); a failed command answers {"error": message}.
// "frames" lists every frame the client's sockets received, decoded: {"type": "sync", "sub": n},
// {"type": "awareness", "entries": [{"clientID", "clock", "state"}]}, {"type": n} or
// {"type": "text"}. "closes" lists the close events: {"code", "reason"}.
import { createInterface } from 'node:readline'
import * as decoding from 'lib0/decoding'
import WebSocket from 'ws'
import { WebsocketProvider } from 'y-websocket'
import * as Y from 'yjs'

const [serverUrl, room, token] = process.argv.slice(2)
if (!token) {
  process.stderr.write('usage: node tests/js/yclient.mjs <ws base> <plan id> <token>\n')
  process.exit(2)
}

const doc = new Y.Doc()
const fragment = doc.getXmlFragment('default')
const provider = new WebsocketProvider(serverUrl, room, doc, {
  WebSocketPolyfill: WebSocket,
  params: { token }
})

// Every frame the server sends, as received on the raw socket (before the provider reads it).
const frames = []
const closes = []
const watched = new WeakSet()

const decodeFrame = (data, isBinary) => {
  if (!isBinary) return { type: 'text' }
  const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  const decoder = decoding.createDecoder(bytes)
  const type = decoding.readVarUint(decoder)
  if (type === 0) return { type: 'sync', sub: decoding.readVarUint(decoder) }
  if (type === 1) {
    const body = decoding.createDecoder(decoding.readVarUint8Array(decoder))
    const entries = []
    const count = decoding.readVarUint(body)
    for (let i = 0; i < count; i++) {
      const clientID = decoding.readVarUint(body)
      const clock = decoding.readVarUint(body)
      entries.push({ clientID, clock, state: JSON.parse(decoding.readVarString(body)) })
    }
    return { type: 'awareness', entries }
  }
  return { type }
}

const watchSocket = () => {
  const ws = provider.ws
  if (ws && !watched.has(ws)) {
    watched.add(ws)
    ws.on('message', (data, isBinary) => frames.push(decodeFrame(data, isBinary)))
  }
}
watchSocket() // the constructor already opened the first socket
provider.on('status', watchSocket)
provider.on('connection-close', (event) => {
  closes.push(event ? { code: event.code, reason: event.reason } : null)
})

const paragraphs = () =>
  fragment
    .toArray()
    .filter((node) => node instanceof Y.XmlElement && node.nodeName === 'paragraph')
    .map((node) => node.toArray().map((t) => t.toString()).join(''))

const presence = () =>
  Array.from(provider.awareness.getStates().entries())
    .filter(([clientID]) => clientID !== doc.clientID)
    .map(([clientID, state]) => ({ clientID, state }))

// Resolves once `predicate()` holds, re-checking on every document or awareness change.
const until = (predicate, what, timeoutMs = 10000) =>
  new Promise((resolve, reject) => {
    const check = () => {
      if (!predicate()) return
      cleanup()
      resolve()
    }
    const timer = setTimeout(() => {
      cleanup()
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`))
    }, timeoutMs)
    const cleanup = () => {
      clearTimeout(timer)
      doc.off('update', check)
      provider.awareness.off('change', check)
      provider.off('sync', check)
    }
    doc.on('update', check)
    provider.awareness.on('change', check)
    provider.on('sync', check)
    check()
  })

const commands = {
  synced: async ({ timeoutMs }) => {
    await until(() => provider.synced, 'the first sync', timeoutMs)
    return { clientID: doc.clientID }
  },
  paragraph: async ({ text }) => {
    const paragraph = new Y.XmlElement('paragraph')
    paragraph.insert(0, [new Y.XmlText(text)])
    fragment.push([paragraph])
    return {}
  },
  user: async ({ user }) => {
    provider.awareness.setLocalStateField('user', user)
    return {}
  },
  waitParagraphs: async ({ texts, timeoutMs }) => {
    await until(() => texts.every((t) => paragraphs().includes(t)), `paragraphs ${JSON.stringify(texts)}`, timeoutMs)
    return {}
  },
  waitPresence: async ({ name, timeoutMs }) => {
    await until(() => presence().some(({ state }) => state.user?.name === name), `presence of ${name}`, timeoutMs)
    return {}
  },
  state: async () => ({
    clientID: doc.clientID,
    paragraphs: paragraphs(),
    xml: fragment.toString(),
    presence: presence(),
    frames,
    closes
  })
}

const reply = (value) => new Promise((resolve) => process.stdout.write(JSON.stringify(value) + '\n', resolve))

const quit = async () => {
  provider.destroy()
  doc.destroy()
  process.exit(0)
}

for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue
  const command = JSON.parse(line)
  if (command.cmd === 'quit') {
    await quit()
  }
  const handler = commands[command.cmd]
  try {
    if (!handler) throw new Error(`unknown command ${command.cmd}`)
    await reply(await handler(command))
  } catch (err) {
    await reply({ error: String(err?.message ?? err) })
  }
}
await quit() // stdin closed: the test is gone
