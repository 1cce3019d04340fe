import { TextSelection } from '@tiptap/pm/state'

// The plan's recognised sections (docs/plan-document.md): read key contacts out of the
// document for the @mention list, and build new sections for the toolbar's Insert menu.
// The constants here have Python copies in crdt/structure.py; tests/test_contracts.py fails
// when the two differ.

/** The sides a contact or an owner can be on. */
export const SIDES = ['vendor', 'customer']

export const SECTION_HEADINGS = {
  contacts: ['key contacts', 'contacts', 'stakeholders', 'customer highlights'],
  keyResults: ['key results', 'measures of success', 'kpis', 'success metrics'],
  risks: ['risks', 'major concerns', 'key challenges and risks'],
  milestones: ['milestones'],
}

const norm = (s) => String(s || '').trim().replace(/\s+/g, ' ').toLowerCase()

/** The section kind a heading's text names, or null. */
export function sectionKind (text) {
  // As crdt/structure.py section_kind reads it: trailing spaces, colons and full stops go.
  const t = norm(text).replace(/[ :.]+$/, '')
  for (const [kind, names] of Object.entries(SECTION_HEADINGS)) if (names.includes(t)) return kind
  return null
}

/** Key contacts from every Key contacts section: [{id: 'contact:<row id>', label, side, role, email}]. */
export function keyContacts (doc) {
  const out = []
  let inContacts = null // heading level of the open contacts section
  doc.forEach((node) => {
    if (node.type.name === 'heading') {
      const level = node.attrs.level || 1
      if (inContacts !== null && level <= inContacts) inContacts = null
      if (sectionKind(node.textContent) === 'contacts') inContacts = level
      return
    }
    if (inContacts === null) return
    node.descendants((child) => {
      if (child.type.name !== 'table') return true
      readContactTable(child, out)
      return false
    })
    if (node.type.name === 'table') readContactTable(node, out)
  })
  return out
}

function readContactTable (table, out) {
  let columns = null
  table.forEach((row) => {
    const cells = []
    row.forEach((cell) => cells.push(cell.textContent.trim()))
    if (!columns) {
      columns = {}
      cells.forEach((c, i) => {
        const h = norm(c)
        if (!(h in columns)) columns[h] = i
      })
      if (!('name' in columns)) columns = { skip: true }
      return
    }
    if (columns.skip) return
    const name = cells[columns.name]
    if (!name) return
    const sideText = norm(cells[columns.side])
    const side = SIDES.includes(sideText) ? sideText : null
    out.push({
      id: row.attrs.id ? `contact:${row.attrs.id}` : `name:${name}`,
      label: name,
      side,
      role: columns.role != null ? cells[columns.role] || '' : '',
      email: columns.email != null ? cells[columns.email] || '' : '',
      kind: 'contact',
    })
  })
}

// --- building sections -----------------------------------------------------------------------

const text = (t) => (t ? [{ type: 'text', text: t }] : [])
const para = (t) => ({ type: 'paragraph', content: text(t) })
const cell = (type, t) => ({ type, content: [para(t)] })

function table (headers, rows) {
  return {
    type: 'table',
    content: [
      { type: 'tableRow', content: headers.map((h) => cell('tableHeader', h)) },
      ...rows.map((r) => ({ type: 'tableRow', content: headers.map((_, i) => cell('tableCell', r[i] || '')) })),
    ],
  }
}

/** A section that is a table: its menu hint names the columns it inserts, all of them. */
function tableSection (value, label, headers, rows) {
  return { value, label, hint: headers.join(' · '), content: () => [table(headers, rows)] }
}

/** The sections the Insert menu offers: heading text, and the content under it. */
export const SECTION_TEMPLATES = [
  tableSection('contacts', 'Key contacts', ['Name', 'Role', 'Email', 'Side'], [['', '', '', 'customer'], ['', '', '', 'vendor']]),
  tableSection('key-results', 'Key results', ['Metric', 'Baseline', 'Target', 'Current', 'Unit', 'Date'], [['', '', '', '', '', '']]),
  tableSection('risks', 'Risks', ['Risk', 'Severity', 'Owner', 'Mitigation'], [['', '', '', '']]),
  {
    value: 'milestones',
    label: 'Milestones',
    hint: 'Task list of milestones',
    content: () => [{ type: 'taskList', content: [{ type: 'taskItem', attrs: { milestone: true }, content: [para('')] }] }],
  },
]

/** Insert a section (heading + its table or task list) after the block holding the cursor. */
export function insertSection (editor, value) {
  const tpl = SECTION_TEMPLATES.find((t) => t.value === value)
  if (!tpl) return false
  const { state } = editor
  const { $from } = state.selection
  const nodes = [{ type: 'heading', attrs: { level: 2 }, content: text(tpl.label) }, ...tpl.content()]
  // An empty top-level paragraph at the cursor is replaced (no blank gap left behind);
  // otherwise the section goes after the top-level block the cursor is in.
  const block = $from.depth > 0 ? $from.node(1) : null
  const emptyBlock = block && block.type.name === 'paragraph' && block.content.size === 0
  const at = emptyBlock
    ? { from: $from.before(1), to: $from.after(1) }
    : $from.depth > 0 ? $from.after(1) : state.doc.content.size
  return editor.chain().focus().insertContentAt(at, nodes).command(({ tr }) => {
    // put the cursor in the first editable cell / task of the new section
    const start = typeof at === 'number' ? at : at.from
    let target = null
    tr.doc.nodesBetween(start, Math.min(tr.doc.content.size, start + 4000), (node, pos) => {
      if (target !== null) return false
      if (node.type.name === 'tableCell' || node.type.name === 'taskItem') {
        target = pos + 2 // inside its first paragraph
        return false
      }
      return true
    })
    if (target !== null) {
      tr.setSelection(TextSelection.near(tr.doc.resolve(target)))
    }
    return true
  }).scrollIntoView().run()
}
