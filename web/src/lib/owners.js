// Task owners as @mentions (docs/plan-document.md): node `mention` with attrs
// {id: 'user:<id>' | 'contact:<row id>' | 'name:<text>', label, side: 'vendor'|'customer'|null}.
// Typing "@" lists the plan's members (GET /api/plans/<id>/people, fetched once) and the key contacts read
// from the document's Key contacts table(s), with their side; a name in neither is offered as
// "name:<text>".
import Mention from '@tiptap/extension-mention'
import { PluginKey } from '@tiptap/pm/state'
import { initials } from './people.js'
import { keyContacts } from './sections.js'
import { suggestionRenderer } from './suggest-list.js'

const SIDES = new Set(['vendor', 'customer'])
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
        parseHTML: (el) => (SIDES.has(el.getAttribute('data-side')) ? el.getAttribute('data-side') : null),
        renderHTML: (a) => (SIDES.has(a.side) ? { 'data-side': a.side } : {}),
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
      const attrs = { id: props.id, label: props.label, side: SIDES.has(props.side) ? props.side : null }
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
