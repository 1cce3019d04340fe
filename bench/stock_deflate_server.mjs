// Control for `--deflate on`: the stock y-websocket server (its own setupWSConnection, documents
// in memory) behind a `ws` server that accepts permessage-deflate, which the stock server.js
// does not. Everything else is node_modules/@y/websocket-server/src/server.js.
//
//   HOST=127.0.0.1 PORT=1234 node bench/stock_deflate_server.mjs
import http from 'node:http'
import { setupWSConnection } from '@y/websocket-server/utils'
import { WebSocketServer } from 'ws'

const wss = new WebSocketServer({ noServer: true, perMessageDeflate: true })
const server = http.createServer((_request, response) => {
  response.writeHead(200, { 'Content-Type': 'text/plain' })
  response.end('okay')
})
wss.on('connection', setupWSConnection)
server.on('upgrade', (request, socket, head) => {
  wss.handleUpgrade(request, socket, head, (ws) => wss.emit('connection', ws, request))
})
server.listen(Number(process.env.PORT || 1234), process.env.HOST || '127.0.0.1')
