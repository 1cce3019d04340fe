// Test helper: the real Tiptap schema, Yjs and @tiptap/y-tiptap, driven over stdin/stdout so the
// Python tests can check crdt/ against the libraries the editor uses (run from the repo root).
//
//   node tests/crdt/tiptap_yjs.mjs encode   stdin: ProseMirror JSON
//       stdout: {"update": base64 Yjs update with the doc in fragment "default",
//                "json": the doc as Tiptap's editor.getJSON() gives it (defaults filled in)}
//   node tests/crdt/tiptap_yjs.mjs decode   stdin: base64 Yjs update
//       stdout: the ProseMirror JSON y-tiptap builds from fragment "default" (what the editor shows)
//   node tests/crdt/tiptap_yjs.mjs schema
//       stdout: {"nodes": {name: {attr: default}}, "marks": [[name, {attr: default}], ...]}
//
// The schema-shaping extensions mirror web/src/editor.js (keep them in step), so the schema and
// its attr defaults are the editor's. encode also checks the input is valid for that schema.
import { getSchema, Extension, Node as TiptapNode } from '@tiptap/core'
import StarterKit from '@tiptap/starter-kit'
import { TaskList, TaskItem } from '@tiptap/extension-list'
import { Table, TableCell, TableHeader, TableRow } from '@tiptap/extension-table'
import { Node } from '@tiptap/pm/model'
import { prosemirrorJSONToYDoc, yXmlFragmentToProseMirrorRootNode } from '@tiptap/y-tiptap'
import * as Y from 'yjs'

const FRAGMENT = 'default'

// The plan-document contract (docs/plan-document.md): inline owner and due-date nodes and the
// extra task/row attributes. Minimal stand-ins until the editor's own extensions land here.
const Mention = TiptapNode.create({
  name: 'mention', group: 'inline', inline: true, atom: true,
  addAttributes: () => ({ id: { default: null }, label: { default: null }, side: { default: null } }),
})
const DueDate = TiptapNode.create({
  name: 'dueDate', group: 'inline', inline: true, atom: true,
  addAttributes: () => ({ date: { default: null } }),
})
const PlanAttributes = Extension.create({
  name: 'planAttributes',
  addGlobalAttributes: () => [
    { types: ['taskItem'], attributes: { id: { default: null }, status: { default: null }, milestone: { default: null } } },
    { types: ['tableRow'], attributes: { id: { default: null } } },
  ],
})
const schema = getSchema([
  StarterKit.configure({
    undoRedo: false,
    link: { HTMLAttributes: { rel: 'noopener noreferrer nofollow', target: '_blank' } },
  }),
  TaskList,
  TaskItem.configure({ nested: true }),
  Table.configure({ resizable: false }),
  TableRow,
  TableHeader,
  TableCell,
  Mention,
  DueDate,
  PlanAttributes,
])

const readStdin = async () => {
  const chunks = []
  for await (const chunk of process.stdin) chunks.push(chunk)
  return Buffer.concat(chunks).toString('utf8')
}

const defaults = (type) =>
  Object.fromEntries(Object.entries(type.attrs).map(([k, a]) => [k, a.hasDefault ? a.default : null]))

const mode = process.argv[2]
if (mode === 'encode') {
  const input = JSON.parse(await readStdin())
  Node.fromJSON(schema, input).check() // throws on content the editor would reject
  const ydoc = prosemirrorJSONToYDoc(schema, input, FRAGMENT)
  const update = Buffer.from(Y.encodeStateAsUpdate(ydoc)).toString('base64')
  const json = Node.fromJSON(schema, input).toJSON()
  process.stdout.write(JSON.stringify({ update, json }))
} else if (mode === 'decode') {
  const ydoc = new Y.Doc()
  Y.applyUpdate(ydoc, Buffer.from((await readStdin()).trim(), 'base64'))
  const root = yXmlFragmentToProseMirrorRootNode(ydoc.getXmlFragment(FRAGMENT), schema)
  process.stdout.write(JSON.stringify(root.toJSON()))
} else if (mode === 'schema') {
  const nodes = Object.fromEntries(Object.values(schema.nodes).map((t) => [t.name, defaults(t)]))
  // Marks in rank order: ProseMirror sorts a text node's marks by it.
  const marks = Object.values(schema.marks)
    .sort((a, b) => a.rank - b.rank)
    .map((t) => [t.name, defaults(t)])
  process.stdout.write(JSON.stringify({ nodes, marks }))
} else {
  console.error(`unknown mode ${mode}; use encode, decode or schema`)
  process.exit(2)
}
