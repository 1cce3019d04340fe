// Hocuspocus 3 as a user would start it: `new Server(...)` with its defaults, in memory, or with
// its SQLite extension (a file; stores the whole document after its 2 s debounce, as shipped).
//
//   HOST=127.0.0.1 PORT=1234 node bench/hocuspocus_server.mjs            # in memory
//   HOST=127.0.0.1 PORT=1234 SQLITE=/tmp/x.db node bench/hocuspocus_server.mjs
//
// GET / answers 200 ("Welcome to Hocuspocus!") once it listens. Clients speak Hocuspocus's own
// protocol (every message prefixed with the document name, an auth message first): see
// bench/clients.mjs.
import { SQLite } from '@hocuspocus/extension-sqlite'
import { Server } from '@hocuspocus/server'

const extensions = process.env.SQLITE ? [new SQLite({ database: process.env.SQLITE })] : []
const server = new Server({
  port: Number(process.env.PORT || 1234),
  address: process.env.HOST || '127.0.0.1',
  quiet: true,
  extensions
})
await server.listen()
