// Due dates (docs/plan-document.md): an inline atom `dueDate` {date: 'YYYY-MM-DD'} shown as a
// chip — "Due 12 Dec", red when overdue, amber within 7 days.
//   - "due:" (or "//", which becomes "due:") opens a list of quick choices and a date input;
//     what follows "due:" filters them or is parsed: 2026-12-12, fri, +3d, +2w, tomorrow, eom…
//   - "due:fri " (a space after a parsable date) turns into the chip without the list;
//   - clicking the chip, or Ctrl/⌘+Alt+D in a task, changes or removes the date.
import { InputRule, Node, mergeAttributes } from '@tiptap/core'
import { PluginKey } from '@tiptap/pm/state'
import Suggestion from '@tiptap/suggestion'
import { icon } from './icons.js'
import { openMenu } from './popup.js'
import { suggestionRenderer } from './suggest-list.js'
import { caretRect, taskAtSelection } from './tasks.js'

const ISO = /^(\d{4})-(\d{2})-(\d{2})$/
const DAY = 86400000
const WEEKDAYS = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday']
const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec']

// --- dates (local calendar days, as 'YYYY-MM-DD') --------------------------------------------

const pad = (n) => String(n).padStart(2, '0')
export const isoDate = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`
const atMidnight = (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate())
const addDays = (d, n) => new Date(d.getFullYear(), d.getMonth(), d.getDate() + n)
const addMonths = (d, n) => {
  const last = new Date(d.getFullYear(), d.getMonth() + n + 1, 0).getDate()
  return new Date(d.getFullYear(), d.getMonth() + n, Math.min(d.getDate(), last))
}

/** A 'YYYY-MM-DD' string as a local Date, or null if it isn't a real date. */
export function parseIso (s) {
  const m = ISO.exec(String(s || ''))
  if (!m) return null
  const d = new Date(+m[1], +m[2] - 1, +m[3])
  return d.getMonth() === +m[2] - 1 && d.getDate() === +m[3] ? d : null
}

/** The next `weekday` (0 = Sunday) strictly after `from`. */
const nextWeekday = (from, weekday) => addDays(from, ((weekday - from.getDay() + 6) % 7) + 1)

/** The quick choices, relative to `now`. */
export function quickChoices (now = new Date()) {
  const today = atMidnight(now)
  return [
    { key: 'today', label: 'Today', date: today },
    { key: 'tomorrow', label: 'Tomorrow', date: addDays(today, 1) },
    { key: 'next-monday', label: 'Next Monday', date: nextWeekday(today, 1) },
    { key: 'next-week', label: 'In a week', date: addDays(today, 7) },
    { key: 'end-of-month', label: 'End of month', date: new Date(today.getFullYear(), today.getMonth() + 1, 0) },
  ].map((c) => ({ ...c, date: isoDate(c.date) }))
}

/**
 * What someone typed after "due:" as 'YYYY-MM-DD', or null: 2026-12-12, today, tod, tomorrow,
 * tmr, mon…sun (the next one after today), +3d, +2w, +1m, eow (Friday), eom, 12dec, dec12, 12/31.
 */
export function parseDue (input, now = new Date()) {
  const s = String(input || '').trim().toLowerCase().replace(/[.,;:!?)]+$/, '')
  if (!s) return null
  const today = atMidnight(now)
  if (ISO.test(s)) return parseIso(s) ? s : null
  if (['today', 'tod', 'now', 'tdy'].includes(s)) return isoDate(today)
  if (['tomorrow', 'tmr', 'tom', 'tmrw', 'tomorow'].includes(s)) return isoDate(addDays(today, 1))
  let m = /^\+?(\d{1,3})\s*(d|day|days|w|wk|week|weeks|m|mo|month|months)$/.exec(s)
  if (m) {
    const n = +m[1]
    const unit = m[2][0]
    if (unit === 'd') return isoDate(addDays(today, n))
    if (unit === 'w') return isoDate(addDays(today, 7 * n))
    return isoDate(addMonths(today, n))
  }
  if (s === 'eow') return isoDate(today.getDay() === 5 ? today : nextWeekday(today, 5))
  if (s === 'eom') return isoDate(new Date(today.getFullYear(), today.getMonth() + 1, 0))
  const wd = WEEKDAYS.findIndex((w) => s.length >= 2 && w.startsWith(s.replace(/^next-?/, '')))
  if (wd >= 0 && /^(next-?)?[a-z]+$/.test(s)) return isoDate(nextWeekday(today, wd))
  // 12dec, 12-dec, dec12, dec-12, 12dec2027
  m = /^(\d{1,2})-?([a-z]{3})[a-z]*-?(\d{4})?$/.exec(s) || /^([a-z]{3})[a-z]*-?(\d{1,2})-?(\d{4})?$/.exec(s)
  if (m) {
    const [day, mon] = /^\d/.test(m[1]) ? [+m[1], m[2]] : [+m[2], m[1]]
    return futureDate(today, MONTHS.indexOf(mon), day, m[3] ? +m[3] : null)
  }
  // 12/31 (month/day) — the next such day
  m = /^(\d{1,2})\/(\d{1,2})(?:\/(\d{4}))?$/.exec(s)
  if (m) return futureDate(today, +m[1] - 1, +m[2], m[3] ? +m[3] : null)
  return null
}

function futureDate (today, month, day, year) {
  if (month < 0 || month > 11 || day < 1 || day > 31) return null
  let y = year || today.getFullYear()
  let d = new Date(y, month, day)
  if (!year && d < today) d = new Date(++y, month, day)
  return d.getMonth() === month ? isoDate(d) : null
}

/** 'Due 12 Dec' (with the year when it isn't this year's). */
export function dueLabel (date, now = new Date()) {
  const d = parseIso(date)
  if (!d) return 'Due ?'
  const opts = { day: 'numeric', month: 'short' }
  if (d.getFullYear() !== now.getFullYear()) opts.year = 'numeric'
  return `Due ${d.toLocaleDateString('en-GB', opts)}`
}

/** A task is due soon from today to this many days ahead (server/summary.py SOON_DAYS). */
export const SOON_DAYS = 7

/** 'overdue' | 'soon' (today … SOON_DAYS days) | 'later' | 'invalid'. */
export function dueState (date, now = new Date()) {
  const d = parseIso(date)
  if (!d) return 'invalid'
  const days = Math.round((d - atMidnight(now)) / DAY)
  if (days < 0) return 'overdue'
  if (days <= SOON_DAYS) return 'soon'
  return 'later'
}

const longDate = (date) => {
  const d = parseIso(date)
  return d ? d.toLocaleDateString('en-GB', { weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' }) : date
}

function relative (date, now = new Date()) {
  const d = parseIso(date)
  if (!d) return ''
  const days = Math.round((d - atMidnight(now)) / DAY)
  if (days === 0) return 'today'
  if (days === 1) return 'tomorrow'
  if (days === -1) return 'yesterday'
  return days < 0 ? `${-days} days ago` : `in ${days} days`
}

// --- the node ----------------------------------------------------------------------------------

export const dueSuggestionKey = new PluginKey('dueDateSuggestion')

export const DueDate = Node.create({
  name: 'dueDate',
  group: 'inline',
  inline: true,
  atom: true,
  selectable: true,
  draggable: false,

  addAttributes () {
    return {
      date: {
        default: null,
        parseHTML: (el) => (parseIso(el.getAttribute('data-date')) ? el.getAttribute('data-date') : null),
        renderHTML: (a) => (a.date ? { 'data-date': a.date } : {}),
      },
    }
  },

  parseHTML () {
    return [{ tag: 'span[data-type="due-date"]' }]
  },

  renderHTML ({ node, HTMLAttributes }) {
    return ['span', mergeAttributes({ 'data-type': 'due-date', class: 'due-chip' }, HTMLAttributes), dueLabel(node.attrs.date)]
  },

  renderText ({ node }) {
    return `(due ${node.attrs.date})`
  },

  addCommands () {
    return {
      setDueDate: (date, pos) => ({ state, tr, dispatch }) => {
        if (!parseIso(date)) return false
        if (pos != null) {
          const node = state.doc.nodeAt(pos)
          if (!node || node.type.name !== this.name) return false
          if (dispatch) tr.setNodeAttribute(pos, 'date', date)
          return true
        }
        // in a task that has a chip already: change it; otherwise insert at the cursor
        const existing = dueInTask(state)
        if (existing) {
          if (dispatch) tr.setNodeAttribute(existing.pos, 'date', date)
          return true
        }
        if (dispatch) {
          const { from, to } = state.selection
          const before = state.doc.resolve(from).nodeBefore
          const space = before && before.isText && !/\s$/.test(before.text) ? ' ' : ''
          const nodes = [this.type.create({ date })]
          if (space) tr.insertText(space, from, to)
          const at = from + space.length
          tr.replaceWith(at, space ? at : to, nodes)
        }
        return true
      },
      removeDueDate: (pos) => ({ state, tr, dispatch }) => {
        const node = state.doc.nodeAt(pos)
        if (!node || node.type.name !== this.name) return false
        if (dispatch) {
          // take one adjacent space along, so no double space is left behind
          const after = state.doc.resolve(pos + node.nodeSize).nodeAfter
          const before = state.doc.resolve(pos).nodeBefore
          let from = pos
          let to = pos + node.nodeSize
          if (after && after.isText && after.text.startsWith(' ')) to += 1
          else if (before && before.isText && before.text.endsWith(' ')) from -= 1
          tr.delete(from, to)
        }
        return true
      },
    }
  },

  addKeyboardShortcuts () {
    return {
      'Mod-Alt-d': () => {
        if (!this.editor.isEditable) return false
        const existing = dueInTask(this.editor.state)
        openDuePicker(this.editor, existing ? existing.pos : null)
        return true
      },
      // Enter on a selected chip opens its picker
      Enter: () => {
        const sel = this.editor.state.selection
        if (!sel.node || sel.node.type.name !== this.name || !this.editor.isEditable) return false
        openDuePicker(this.editor, sel.from)
        return true
      },
    }
  },

  addInputRules () {
    return [
      // "//" at a word start becomes "due:" (and so opens the list)
      new InputRule({
        find: /(?:^|\s)(\/\/)$/,
        handler: ({ state, range, match }) => {
          const start = range.from + match[0].indexOf('//')
          state.tr.insertText('due:', start, range.to)
        },
      }),
      // "due:fri " → the chip
      new InputRule({
        find: /(?:^|\s)(due:(\S+))\s$/,
        handler: ({ state, range, match, chain }) => {
          const date = parseDue(match[2])
          if (!date) return null
          const start = range.from + match[0].indexOf('due:')
          state.tr.replaceWith(start, range.to, [this.type.create({ date }), state.schema.text(' ')])
          dropOtherDueDates(state.tr, start)
          return undefined
        },
      }),
    ]
  },

  addNodeView () {
    return ({ node, editor, getPos }) => {
      const chip = document.createElement('span')
      chip.className = 'due-chip'
      chip.dataset.type = 'due-date'
      chip.contentEditable = 'false'
      chip.setAttribute('role', 'button')
      chip.append(icon('calendar'))
      const text = document.createElement('span')
      text.className = 'due-chip-text'
      chip.append(text)
      let current = node
      const paint = (n) => {
        const date = n.attrs.date
        chip.dataset.date = date || ''
        chip.dataset.state = dueState(date)
        text.textContent = dueLabel(date)
        const rel = relative(date)
        chip.title = `Due ${longDate(date)}${rel ? ` (${rel})` : ''} — click to change`
        chip.setAttribute('aria-label', `Due ${longDate(date)}${rel ? `, ${rel}` : ''}. Change due date`)
      }
      paint(node)
      chip.addEventListener('mousedown', (e) => e.preventDefault())
      chip.addEventListener('click', (e) => {
        e.preventDefault()
        const pos = getPos()
        if (typeof pos === 'number' && editor.isEditable) openDuePicker(editor, pos, chip)
      })
      return {
        dom: chip,
        update: (n) => {
          if (n.type !== current.type) return false
          current = n
          paint(n)
          return true
        },
        stopEvent: (e) => e.type === 'click' || e.type === 'mousedown',
        ignoreMutation: () => true,
      }
    }
  },

  addProseMirrorPlugins () {
    const type = this.type
    return [Suggestion({
      editor: this.editor,
      char: 'due:',
      pluginKey: dueSuggestionKey,
      allowToIncludeChar: true,
      allowSpaces: false,
      items: ({ query }) => dueItems(query),
      command: ({ editor, range, props }) => {
        if (!props.date) return
        const after = editor.view.state.selection.$to.nodeAfter
        if (after && after.text && after.text.startsWith(' ')) range.to += 1
        const at = range.from
        editor.chain().focus().insertContentAt(range, [
          { type: type.name, attrs: { date: props.date } },
          { type: 'text', text: ' ' },
        ]).command(({ tr }) => {
          dropOtherDueDates(tr, at)
          return true
        }).run()
      },
      render: suggestionRenderer({
        id: 'due-suggest',
        label: 'Due date',
        className: 'due-suggest',
        renderItem: renderDueItem,
        empty: (q) => `“${q}” isn’t a date — try 2026-12-12, fri, +3d`,
        extra: (getProps) => dateInputRow((date) => {
          const p = getProps()
          p.command({ date })
        }),
      }),
    })]
  },
})

/**
 * A task has one due date: after a chip is put at `pos`, remove any other chip in the same
 * task paragraph (with one space next to it), so typing a new date replaces the old one.
 */
export function dropOtherDueDates (tr, pos) {
  const $pos = tr.doc.resolve(pos)
  const para = $pos.parent
  if ($pos.depth < 1 || $pos.node($pos.depth - 1).type.name !== 'taskItem') return
  const start = $pos.start()
  const others = []
  para.forEach((child, offset) => {
    if (child.type.name === 'dueDate' && start + offset !== pos) others.push([start + offset, child])
  })
  for (const [at, child] of others.reverse()) {
    const after = tr.doc.resolve(at + child.nodeSize).nodeAfter
    const end = at + child.nodeSize + (after && after.isText && after.text.startsWith(' ') ? 1 : 0)
    tr.delete(at, end)
  }
}

/** The dueDate node in the paragraph of the task at the cursor: {node, pos} or null. */
function dueInTask (state) {
  const task = taskAtSelection(state)
  if (!task) return null
  const para = task.node.firstChild
  if (!para) return null
  let found = null
  para.forEach((child, offset) => {
    if (!found && child.type.name === 'dueDate') found = { node: child, pos: task.pos + 2 + offset }
  })
  return found
}

function dueItems (query) {
  const q = query.trim().toLowerCase()
  const items = []
  const typed = parseDue(q)
  const quick = quickChoices()
  if (typed && !quick.some((c) => c.date === typed && c.label.toLowerCase().startsWith(q))) {
    items.push({ key: 'typed', label: longDate(typed), date: typed, hint: relative(typed) })
  }
  for (const c of quick) {
    if (!q || c.label.toLowerCase().startsWith(q) || c.key.startsWith(q) || c.date === typed) {
      items.push({ ...c, hint: longDate(c.date) })
    }
  }
  return items
}

function renderDueItem (item) {
  const ic = icon('calendar')
  const label = document.createElement('span')
  label.className = 'suggest-label'
  label.textContent = item.label
  const hint = document.createElement('span')
  hint.className = 'suggest-hint'
  hint.textContent = item.hint || ''
  return [ic, label, hint]
}

/** A "Pick a date" row with a native date input; `pick(date)` on Enter or change. */
function dateInputRow (pick) {
  const row = document.createElement('label')
  row.className = 'date-input-row'
  const t = document.createElement('span')
  t.textContent = 'Pick a date'
  const input = document.createElement('input')
  input.type = 'date'
  input.className = 'date-input'
  input.setAttribute('aria-label', 'Due date')
  const commit = () => {
    if (parseIso(input.value)) pick(input.value)
  }
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') {
      e.preventDefault()
      commit()
    }
  })
  // Typing a date fires change on every complete value (year 0002, 0020…): commit typed dates
  // on Enter only, and calendar picks (pointer) on change.
  let pointer = false
  input.addEventListener('pointerdown', () => { pointer = true })
  input.addEventListener('keydown', (e) => { if (e.key !== 'Enter') pointer = false }, true)
  input.addEventListener('change', () => { if (pointer) commit() })
  row.append(t, input)
  return row
}

/** The change/remove picker for the chip at `pos`, or a new date in the task (pos null). */
export function openDuePicker (editor, pos, anchor) {
  const node = pos == null ? null : editor.state.doc.nodeAt(pos)
  const current = node ? node.attrs.date : null
  const items = quickChoices().map((c) => ({ value: c.date, label: c.label, hint: longDate(c.date), checked: c.date === current }))
  if (node) items.push({ value: '__remove', label: 'Remove due date', separatorBefore: true })
  const apply = (value) => {
    const chain = editor.chain().focus(undefined, { scrollIntoView: false })
    if (value === '__remove') return chain.removeDueDate(pos).run()
    if (!parseIso(value)) return
    return (node ? chain.setDueDate(value, pos) : chain.setDueDate(value)).run()
  }
  openMenu({
    anchor: anchor ? anchor.getBoundingClientRect() : caretRect(editor),
    label: node ? 'Change due date' : 'Set due date',
    radio: true,
    className: 'due-menu',
    id: 'due-date-menu',
    items,
    footer: (select) => {
      const row = dateInputRow((date) => select(date))
      if (current) row.querySelector('input').value = current
      return row
    },
    onSelect: apply,
    onClose: (reason) => { if (reason !== 'select') editor.commands.focus(undefined, { scrollIntoView: false }) },
  })
}
