// Task owners as @mentions (docs/plan-document.md): node `mention` with attrs
// {id: 'user:<id>' | 'contact:<row id>' | 'name:<text>', label, side: 'vendor'|'customer'|null}.
// Typing "@" lists the plan's members (GET /api/plans/<id>/people, fetched once) and the key contacts read
// from the document's Key contacts table(s), with their side; a name in neither is offered as
// "name:<text>".
import Mention from '@tiptap/extension-mention'
import { Plugin, PluginKey, TextSelection } from '@tiptap/pm/state'
import { initials } from './people.js'
import { openMenu } from './popup.js'
import { SIDES, keyContacts } from './sections.js'
import { suggestionRenderer } from './suggest-list.js'

const MAX_ITEMS = 8

let peoplePromise = null
function planId () {
  // The page config's planId is "<id>" or "<id>/internal" (the room name): the plan is the first part.
  const config = JSON.parse(document.getElementById('tandem-config')?.textContent || '{}')
  return String(config.planId || '').split('/')[0]
}

/** The plan's members from the server (cached; [] when the request fails). */
export function loadPeople () {
  if (!peoplePromise) {
    peoplePromise = fetch(`/api/plans/${encodeURIComponent(planId())}/people`, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then((r) => (r.ok ? r.json() : { people: [] }))
      .then((data) => (Array.isArray(data.people) ? data.people : []).map((p) => ({ ...p, kind: 'person' })))
      .catch(() => {
        peoplePromise = null // try again next time
        return []
      })
  }
  return peoplePromise
}

const norm = (s) => String(s || '').toLowerCase().normalize('NFKD').replace(/[\u0300-\u036f]/g, '')

function score (item, q) {
  if (!q) return 1
  const label = norm(item.label)
  if (label.startsWith(q)) return 3
  if (label.split(/\s+/).some((w) => w.startsWith(q))) return 2
  if (label.includes(q) || norm(item.email).includes(q)) return 1
  return 0
}

/** The suggestion items for `query`: contacts, then people, then "name:<query>". */
export async function ownerItems (editor, query) {
  const q = norm(query.trim())
  const people = await loadPeople()
  const contacts = keyContacts(editor.state.doc)
  const seen = new Set()
  const ranked = []
  for (const [order, item] of [...contacts, ...people].entries()) {
    const s = score(item, q)
    const key = `${norm(item.label)}|${item.side || ''}`
    if (s === 0 || seen.has(key)) continue
    seen.add(key)
    ranked.push({ item, s, order })
  }
  ranked.sort((a, b) => b.s - a.s || a.order - b.order)
  const items = ranked.slice(0, MAX_ITEMS).map((r) => r.item)
  const typed = query.trim()
  // Once the text after "@" has a space and matches nobody, it is a sentence, not a name:
  // offer nothing (the list hides and Enter is a plain Enter again).
  if (items.length === 0 && /\s/.test(query)) return []
  if (typed && typed.length <= 60 && !items.some((i) => norm(i.label) === q)) {
    items.push({ id: `name:${typed}`, label: typed, side: null, kind: 'name' })
  }
  return items.map((i) => ({ ...i, key: i.id }))
}

function sideBadge (side) {
  const b = document.createElement('span')
  b.className = 'side-badge'
  b.dataset.side = side
  b.textContent = side === 'vendor' ? 'Vendor' : 'Customer'
  return b
}

function renderOwner (item) {
  const avatar = document.createElement('span')
  avatar.className = 'suggest-avatar'
  avatar.setAttribute('aria-hidden', 'true')
  avatar.textContent = item.kind === 'name' ? '+' : initials(item.label)
  if (item.side) avatar.dataset.side = item.side
  const main = document.createElement('span')
  main.className = 'suggest-main'
  const name = document.createElement('span')
  name.className = 'suggest-label'
  name.textContent = item.kind === 'name' ? `Assign to “${item.label}”` : item.label
  main.append(name)
  const detail = item.kind === 'person' ? item.email : item.kind === 'contact' ? [item.role, item.email].filter(Boolean).join(' · ') || 'Key contact' : 'Not in the workspace or the contacts table'
  if (detail) {
    const d = document.createElement('span')
    d.className = 'suggest-detail'
    d.textContent = detail
    main.append(d)
  }
  const out = [avatar, main]
  if (item.side) out.push(sideBadge(item.side))
  else if (item.kind === 'person') {
    const b = document.createElement('span')
    b.className = 'side-badge'
    b.dataset.side = 'workspace'
    b.textContent = 'Workspace'
    out.push(b)
  }
  return out
}

export const ownerSuggestionKey = new PluginKey('ownerSuggestion')

/**
 * The owner chips of the task whose first paragraph holds `pos`: [{node, pos}] in document
 * order, or null outside a task. A task has one owner (the server reads the first chip), so
 * choosing an owner in a task replaces the chip instead of adding a second one.
 */
export function taskOwnerChips (state, pos) {
  const $pos = state.doc.resolve(pos)
  if ($pos.depth < 2 || $pos.node($pos.depth - 1).type.name !== 'taskItem' || $pos.index($pos.depth - 1) !== 0) return null
  const start = $pos.start($pos.depth)
  const chips = []
  $pos.parent.forEach((child, offset) => {
    if (child.type.name === 'mention') chips.push({ node: child, pos: start + offset })
  })
  return chips
}

/** Make `attrs` the task's only owner: the first chip takes them, any others go (with their space). */
function replaceOwner (tr, chips, attrs) {
  for (const chip of [...chips].reverse()) {
    if (chip === chips[0]) {
      if (attrs) tr.setNodeMarkup(chip.pos, undefined, attrs)
      else removeChip(tr, chip)
    } else removeChip(tr, chip)
  }
}

function removeChip (tr, chip) {
  let to = chip.pos + chip.node.nodeSize
  const after = tr.doc.resolve(to).nodeAfter
  if (after && after.isText && after.text.startsWith(' ')) to += 1
  let from = chip.pos
  const before = tr.doc.resolve(from).nodeBefore
  // "Call @Ana" loses " @Ana", not only "@Ana": no stray space at the end of the line
  if (to === chip.pos + chip.node.nodeSize && before && before.isText && before.text.endsWith(' ')) from -= 1
  tr.delete(from, to)
}

const ownerAttrs = (item) => ({ id: item.id, label: item.label, side: SIDES.includes(item.side) ? item.side : null })

/** The owner menu of the chip at `pos`: the people and contacts to choose, someone else, or none. */
export async function openOwnerMenu (editor, pos, anchor) {
  const chip = editor.state.doc.nodeAt(pos)
  if (!chip || chip.type.name !== 'mention') return
  const current = chip.attrs
  const items = [{ ...current, kind: 'owner' }]
  const add = (i) => { if (i.id && !items.some((o) => o.id === i.id)) items.push(i) }
  for (const i of await ownerItems(editor, '')) add(i)
  // the owners the plan already uses (a template's role placeholders among them)
  editor.state.doc.descendants((node) => {
    if (node.type.name === 'mention' && items.length < MAX_ITEMS + 4) add({ ...node.attrs, kind: 'owner' })
  })
  const byValue = new Map(items.map((i) => [i.id, i]))
  const hint = (i) => (i.side === 'vendor' ? 'Vendor' : i.side === 'customer' ? 'Customer' : i.kind === 'person' ? 'Workspace' : '')
  const label = current.label || current.id
  openMenu({
    anchor,
    label: `Owner: ${label}. Choose the owner`,
    radio: true,
    id: 'owner-menu',
    className: 'owner-menu',
    items: [
      ...items.map((i) => ({ value: i.id, label: i.label, hint: hint(i), checked: i.id === current.id })),
      { value: ':other', label: 'Someone else…', separatorBefore: true },
      { value: ':none', label: 'No owner' },
    ],
    onClose: (reason) => { if (reason !== 'select') editor.commands.focus(undefined, { scrollIntoView: false }) },
    onSelect: (value) => {
      // the document may have moved while the menu was open: find the chip again
      const now = editor.state.doc.nodeAt(pos)
      if (!now || now.type.name !== 'mention') return
      const chips = taskOwnerChips(editor.state, pos) || [{ node: now, pos }]
      const ordered = [chips.find((c) => c.pos === pos) || { node: now, pos }, ...chips.filter((c) => c.pos !== pos)]
      if (value === ':other') {
        const end = pos + now.nodeSize
        editor.chain().focus().command(({ tr }) => {
          tr.setSelection(TextSelection.create(tr.doc, end))
          const after = tr.doc.resolve(end).nodeAfter
          tr.insertText(after && after.isText && after.text.startsWith(' ') ? ' @' : ' @ ', end)
          tr.setSelection(TextSelection.create(tr.doc, end + 2))
          return true
        }).run()
        return
      }
      const item = value === ':none' ? null : byValue.get(value)
      if (value !== ':none' && !item) return
      editor.chain().focus(undefined, { scrollIntoView: false }).command(({ tr }) => {
        replaceOwner(tr, ordered.sort((a, b) => a.pos - b.pos), item ? ownerAttrs(item) : null)
        return true
      }).run()
    },
  })
}

export const Owner = Mention.extend({
  addAttributes () {
    return {
      id: {
        default: null,
        parseHTML: (el) => el.getAttribute('data-id'),
        renderHTML: (a) => (a.id ? { 'data-id': a.id } : {}),
      },
      label: {
        default: null,
        parseHTML: (el) => el.getAttribute('data-label'),
        renderHTML: (a) => (a.label ? { 'data-label': a.label } : {}),
      },
      side: {
        default: null,
        parseHTML: (el) => (SIDES.includes(el.getAttribute('data-side')) ? el.getAttribute('data-side') : null),
        renderHTML: (a) => (SIDES.includes(a.side) ? { 'data-side': a.side } : {}),
      },
    }
  },
  addKeyboardShortcuts () {
    // Backspace right after a mention turns it back into "@Label" text to edit.
    return {
      Backspace: () => this.editor.commands.command(({ tr, state }) => {
        const { empty, anchor } = state.selection
        if (!empty) return false
        const before = state.doc.resolve(anchor).nodeBefore
        if (!before || before.type.name !== this.name) return false
        tr.insertText(`@${before.attrs.label || ''}`, anchor - before.nodeSize, anchor)
        return true
      }),
    }
  },
  addProseMirrorPlugins () {
    const editor = this.editor
    return [
      ...(this.parent?.() || []),
      // A click on a task's owner chip opens the owner menu (a chip is an atom: no caret inside).
      new Plugin({
        key: new PluginKey('ownerChipClick'),
        props: {
          handleClickOn: (view, pos, node, nodePos, event) => {
            if (node.type.name !== 'mention' || !editor.isEditable) return false
            if (!taskOwnerChips(view.state, nodePos)) return false
            const el = view.nodeDOM(nodePos)
            openOwnerMenu(editor, nodePos, el instanceof Element ? el : event.target)
            return true
          },
        },
      }),
    ]
  },
}).configure({
  HTMLAttributes: { class: 'mention' },
  renderText: ({ node }) => `@${node.attrs.label ?? node.attrs.id}`,
  renderHTML: ({ options, node }) => [
    'span',
    { ...options.HTMLAttributes, title: node.attrs.side ? `${node.attrs.label} (${node.attrs.side})` : node.attrs.label },
    `@${node.attrs.label ?? node.attrs.id}`,
  ],
  suggestion: {
    char: '@',
    pluginKey: ownerSuggestionKey,
    allowSpaces: true,
    items: ({ editor, query }) => ownerItems(editor, query),
    command: ({ editor, range, props }) => {
      const attrs = ownerAttrs(props)
      const chips = (taskOwnerChips(editor.state, range.from) || []).filter((c) => c.pos < range.from || c.pos >= range.to)
      if (chips.length) {
        // The task has an owner already: the new one takes its place, the "@query" goes.
        editor.chain().focus().command(({ tr }) => {
          let { from, to } = range
          const $to = tr.doc.resolve(to)
          const after = $to.nodeAfter
          const before = tr.doc.resolve(from).nodeBefore
          if (after && after.isText && after.text.startsWith(' ')) to += 1
          else if (!after && before && before.isText && before.text.endsWith(' ')) from -= 1
          tr.delete(from, to)
          replaceOwner(tr, chips.map((c) => ({ node: c.node, pos: tr.mapping.map(c.pos) })), attrs)
          return true
        }).run()
        return
      }
      // swallow a space already after the range, so we don't end up with two
      const after = editor.view.state.selection.$to.nodeAfter
      if (after && after.text && after.text.startsWith(' ')) range.to += 1
      editor.chain().focus().insertContentAt(range, [
        { type: 'mention', attrs },
        { type: 'text', text: ' ' },
      ]).run()
    },
    render: suggestionRenderer({
      id: 'owner-suggest',
      label: 'Assign an owner',
      className: 'owner-suggest',
      renderItem: renderOwner,
      empty: (q) => (q.trim() ? null : 'Type a name'),
    }),
  },
})
