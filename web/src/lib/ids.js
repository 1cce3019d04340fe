// Stable ids on tasks (`t_…`) and table rows (`r_…`), as docs/plan-document.md asks.
//
// One appendTransaction looks at the whole document after each *local* change and fixes:
//   - a taskItem / tableRow without an id gets a new one;
//   - an id held by several nodes stays with the node that already had it before the change
//     (the original of a copy, the first half of a split task) and the others get new ids;
//     when none of them had it (or several did), the first in document order keeps it.
// Remote changes (Yjs sync, undo/redo coming back through y-tiptap) are never rewritten here:
// two editors fixing the same remote node would fight. Whatever a remote client leaves missing
// is fixed by the next local edit (or by the server), and Yjs settles concurrent fixes.
// Why not @tiptap/extension-unique-id (MIT in 3.31.3): it only looks inside the changed ranges,
// moves the id to the *second* node when the first half of a split is empty, and strips ids
// from every paste, so a cut-and-paste move would lose the task's id.
import { Extension } from '@tiptap/core'
import { TableRow } from '@tiptap/extension-table'
import { Plugin, PluginKey } from '@tiptap/pm/state'
import { ySyncPluginKey } from '@tiptap/y-tiptap'

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
export const ID_PREFIX = { taskItem: 't_', tableRow: 'r_' }
export const ID_PATTERN = /^[tr]_[A-Za-z0-9_-]{10}$/

/** `prefix` + 10 url-safe random characters (crypto-strong). */
export function newId (prefix) {
  const bytes = new Uint8Array(10)
  crypto.getRandomValues(bytes)
  let out = prefix
  for (const b of bytes) out += ALPHABET[b & 63]
  return out
}

export const stableIdsKey = new PluginKey('tandemStableIds')

function isRemote (tr) {
  const meta = tr.getMeta(ySyncPluginKey)
  return !!(meta && meta.isChangeOrigin)
}

/**
 * The fixes needed in `doc`: [{pos, node, id}]. `keepers()` says where ids were before the
 * change (id -> position in `doc`); it is only asked for when some id is held twice.
 */
export function idFixes (doc, keepers = () => new Map()) {
  const byId = new Map()
  const fixes = []
  doc.descendants((node, pos) => {
    const prefix = ID_PREFIX[node.type.name]
    if (!prefix) return !node.isTextblock
    const id = node.attrs.id
    if (typeof id !== 'string' || !id) {
      fixes.push({ pos, node, id: newId(prefix) })
    } else {
      if (!byId.has(id)) byId.set(id, [])
      byId.get(id).push({ pos, node, prefix })
    }
    return true
  })
  let kept0 = null
  for (const [id, holders] of byId) {
    if (holders.length < 2) continue
    if (!kept0) kept0 = keepers()
    const kept = kept0.get(id)
    let keeper = holders.find((h) => h.pos === kept)
    if (!keeper) keeper = holders[0]
    for (const h of holders) if (h !== keeper) fixes.push({ pos: h.pos, node: h.node, id: newId(h.prefix) })
  }
  return fixes
}

/** id -> position in `newDoc` of each node that had that id in `oldDoc` and still holds it. */
function whereIdsWent (transactions, oldDoc, newDoc) {
  const found = new Map()
  oldDoc.descendants((node, pos) => {
    if (!ID_PREFIX[node.type.name]) return !node.isTextblock
    const id = node.attrs.id
    if (!id || found.has(id)) return true
    // assoc 1 first (content inserted right before the node doesn't take its place),
    // then -1 (a node whose markup changed maps to its own start that way).
    for (const assoc of [1, -1]) {
      let mapped = pos
      for (const tr of transactions) mapped = tr.mapping.map(mapped, assoc)
      const now = mapped < newDoc.content.size ? newDoc.nodeAt(mapped) : null
      if (now && now.type === node.type && now.attrs.id === id) {
        found.set(id, mapped)
        break
      }
    }
    return true
  })
  return found
}

export const StableIds = Extension.create({
  name: 'tandemStableIds',

  addProseMirrorPlugins () {
    const editor = this.editor
    return [new Plugin({
      key: stableIdsKey,
      appendTransaction (transactions, oldState, newState) {
        if (!transactions.some((tr) => tr.docChanged)) return null
        if (transactions.some(isRemote) || !editor.isEditable) return null
        const keepers = () => whereIdsWent(transactions, oldState.doc, newState.doc)
        const fixes = idFixes(newState.doc, keepers)
        if (fixes.length === 0) return null
        const tr = newState.tr
        for (const { pos, id } of fixes) tr.setNodeAttribute(pos, 'id', id)
        tr.setMeta(stableIdsKey, true)
        if (newState.storedMarks) tr.setStoredMarks(newState.storedMarks)
        return tr
      },
    })]
  },
})

/** TableRow with its stable `id` (data-id in HTML). */
export const PlanTableRow = TableRow.extend({
  addAttributes () {
    return {
      ...this.parent?.(),
      id: {
        default: null,
        keepOnSplit: false,
        parseHTML: (el) => el.getAttribute('data-id'),
        renderHTML: (a) => (a.id ? { 'data-id': a.id } : {}),
      },
    }
  },
})
