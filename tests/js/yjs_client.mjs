// A stock Yjs client (yjs + y-websocket, as any integrator would use them) for the tests.
// Usage: node yjs_client.mjs <ws base> <room> <token> <text to insert or ""> [name]
// Prints one JSON line: {"synced", "denied", "text"} after inserting and waiting a moment.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'

const [base, room, token, text, name] = process.argv.slice(2)
const denied = []
const warn = console.warn
console.warn = (...args) => {
  const message = args.join(' ')
  if (message.includes('Permission denied')) denied.push(message.split('\n').pop())
  else warn(...args)
}
const doc = new Y.Doc()
const params = { token }
if (name) params.name = name
const provider = new WebsocketProvider(base, room, doc, {
  WebSocketPolyfill: WebSocket, params, disableBc: true, connect: true,
})
const closes = []
provider.on('connection-close', (event) => { if (event) closes.push(event.code) })
const synced = await new Promise((resolve) => {
  const timer = setTimeout(() => resolve(false), 8000)
  provider.once('sync', (ok) => { clearTimeout(timer); resolve(ok) })
})
if (synced && text) {
  const para = new Y.XmlElement('paragraph')
  para.insert(0, [new Y.XmlText(text)])
  doc.getXmlFragment('default').push([para])
}
await new Promise((resolve) => setTimeout(resolve, 1500))
const out = doc.getXmlFragment('default').toString()
provider.destroy()
console.log(JSON.stringify({ synced, denied, text: out, closes }))
process.exit(0)
