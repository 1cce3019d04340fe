// The client side of the two wire protocols the benchmark speaks, behind one constructor:
//
//   connect(protocol, url, room, doc, { token, WebSocketPolyfill })
//
// 'y-websocket': the stock y-websocket WebsocketProvider, as the editor uses it (Tandem and the
//   stock server): one socket per room at `${url}/${room}`, the y-protocols sync and awareness
//   messages as they are.
// 'hocuspocus': Hocuspocus's protocol, which prefixes every message with the document name and
//   opens with an auth message (its own provider, @hocuspocus/provider, is not installed here).
//   HocuspocusClient below is the small part of that provider the benchmark needs: one socket
//   per document, the auth message, the same y-protocols sync and awareness messages inside,
//   no reconnects. It offers what bench/*.mjs use of a WebsocketProvider: `ws`, `synced`,
//   `awareness`, the 'status', 'sync', 'connection-close' and 'connection-error' events, and
//   `destroy()`.
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import { Observable } from 'lib0/observable'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as syncProtocol from 'y-protocols/sync'
import { WebsocketProvider } from 'y-websocket'

// Hocuspocus message types (@hocuspocus/server's MessageType) and auth sub-types.
const SYNC = 0
const AWARENESS = 1
const AUTH = 2
const QUERY_AWARENESS = 3
const SYNC_REPLY = 4
const AUTH_TOKEN = 0
const AUTH_DENIED = 1

export const PROTOCOLS = ['y-websocket', 'hocuspocus']

export function connect (protocol, url, room, doc, { token = '', WebSocketPolyfill }) {
  if (protocol === 'hocuspocus') return new HocuspocusClient(url, room, doc, { token, WebSocketPolyfill })
  return new WebsocketProvider(url, room, doc, {
    WebSocketPolyfill,
    params: token ? { token } : {},
    // Node has a global BroadcastChannel: without this, clients of one room in this process
    // would exchange updates among themselves and never depend on the server.
    disableBc: true
  })
}

class HocuspocusClient extends Observable {
  constructor (url, name, doc, { token, WebSocketPolyfill }) {
    super()
    this.name = name
    this.doc = doc
    this.token = token || 'bench'
    this.synced = false
    this.destroyed = false
    this.awareness = new awarenessProtocol.Awareness(doc)
    this._onUpdate = (update, origin) => {
      if (origin === this) return
      this._send(SYNC, (e) => syncProtocol.writeUpdate(e, update))
    }
    this._onAwareness = ({ added, updated, removed }, origin) => {
      if (origin !== 'local') return
      const changed = added.concat(updated, removed)
      this._send(AWARENESS, (e) =>
        encoding.writeVarUint8Array(e, awarenessProtocol.encodeAwarenessUpdate(this.awareness, changed)))
    }
    doc.on('update', this._onUpdate)
    this.awareness.on('update', this._onAwareness)
    const ws = new WebSocketPolyfill(url)
    ws.binaryType = 'arraybuffer'
    this.ws = ws
    ws.on('open', () => {
      this.emit('status', [{ status: 'connected' }])
      this._send(AUTH, (e) => {
        encoding.writeVarUint(e, AUTH_TOKEN)
        encoding.writeVarString(e, this.token)
      })
      this._send(SYNC, (e) => syncProtocol.writeSyncStep1(e, doc))
      if (this.awareness.getLocalState() !== null) {
        this._send(AWARENESS, (e) => encoding.writeVarUint8Array(e,
          awarenessProtocol.encodeAwarenessUpdate(this.awareness, [doc.clientID])))
      }
    })
    ws.on('message', (data) => this._receive(new Uint8Array(data)))
    ws.on('error', (err) => this.emit('connection-error', [err]))
    ws.on('close', (code, reason) => {
      this.emit('connection-close', [{ code, reason: String(reason) }])
      this.emit('status', [{ status: 'disconnected' }])
      // Peers forget this client's presence, as the provider's awareness would time it out.
      awarenessProtocol.removeAwarenessStates(this.awareness,
        Array.from(this.awareness.getStates().keys()).filter((id) => id !== doc.clientID), this)
    })
  }

  _send (type, write) {
    if (this.ws.readyState !== 1) return
    const e = encoding.createEncoder()
    encoding.writeVarString(e, this.name)
    encoding.writeVarUint(e, type)
    write(e)
    this.ws.send(encoding.toUint8Array(e))
  }

  _receive (bytes) {
    const d = decoding.createDecoder(bytes)
    if (decoding.readVarString(d) !== this.name) return
    const type = decoding.readVarUint(d)
    if (type === SYNC || type === SYNC_REPLY) {
      const reply = encoding.createEncoder()
      const kind = syncProtocol.readSyncMessage(d, reply, this.doc, this)
      if (encoding.length(reply) > 0) {
        this._send(SYNC, (e) => encoding.writeUint8Array(e, encoding.toUint8Array(reply)))
      }
      if (kind === syncProtocol.messageYjsSyncStep2 && !this.synced) {
        this.synced = true
        this.emit('sync', [true])
        this.emit('synced', [true])
      }
    } else if (type === AWARENESS) {
      awarenessProtocol.applyAwarenessUpdate(this.awareness, decoding.readVarUint8Array(d), this)
    } else if (type === QUERY_AWARENESS) {
      this._send(AWARENESS, (e) => encoding.writeVarUint8Array(e,
        awarenessProtocol.encodeAwarenessUpdate(this.awareness, Array.from(this.awareness.getStates().keys()))))
    } else if (type === AUTH && decoding.readVarUint(d) === AUTH_DENIED) {
      this.emit('connection-error', [new Error(`permission denied: ${decoding.readVarString(d)}`)])
    }
    // SyncStatus (8, the server's acknowledgement of a stored update) and stateless messages
    // carry nothing the benchmark uses.
  }

  destroy () {
    if (this.destroyed) return
    this.destroyed = true
    this.doc.off('update', this._onUpdate)
    this.awareness.off('update', this._onAwareness)
    this.ws.close()
    super.destroy()
  }
}
