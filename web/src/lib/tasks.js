// Tasks with structure (docs/plan-document.md): TaskItem from @tiptap/extension-list plus
//   id        stable id, assigned by ./ids.js (data-id)
//   status    'todo' | 'in_progress' | 'blocked' | 'done', null = todo (data-status)
//   milestone boolean (data-milestone)
// `checked` and status 'done' stay consistent: the checkbox sets/clears 'done', choosing a
// status sets `checked`, and a task a plain client checked reads as done (checked wins).
//
// The node view is TaskItem's own (checkbox, a11y label) with a milestone flag and a status
// pill added (contenteditable=false). Keyboard: Ctrl/⌘+Alt+S opens the status menu of the
// task at the cursor, Ctrl/⌘+Alt+M toggles the milestone flag, Ctrl/⌘+Enter toggles done.
import { Extension } from '@tiptap/core'
import { TaskItem } from '@tiptap/extension-list'
import { Plugin, PluginKey } from '@tiptap/pm/state'
import { Decoration, DecorationSet } from '@tiptap/pm/view'
import { ySyncPluginKey } from '@tiptap/y-tiptap'
import { icon } from './icons.js'
import { openMenu } from './popup.js'

export const STATUSES = [
  { value: 'todo', label: 'To do', key: 't' },
  { value: 'in_progress', label: 'In progress', key: 'i' },
  { value: 'blocked', label: 'Blocked', key: 'b' },
  { value: 'done', label: 'Done', key: 'd' },
]
const STATUS_LABEL = Object.fromEntries(STATUSES.map((s) => [s.value, s.label]))

/** The status a task shows: checked wins, unknown/absent is 'todo'. */
export function effectiveStatus (attrs) {
  if (attrs.checked) return 'done'
  return STATUS_LABEL[attrs.status] && attrs.status !== 'done' ? attrs.status : 'todo'
}

/** The innermost taskItem around the selection: {node, pos} or null. */
export function taskAtSelection (state) {
  const { $from } = state.selection
  for (let d = $from.depth; d > 0; d--) {
    const node = $from.node(d)
    if (node.type.name === 'taskItem') return { node, pos: $from.before(d) }
  }
  return null
}

const syncKey = new PluginKey('tandemTaskStatus')

export const PlanTaskItem = TaskItem.extend({
  addAttributes () {
    return {
      ...this.parent?.(),
      id: {
        default: null,
        keepOnSplit: false, // ./ids.js gives the second half its own id
        parseHTML: (el) => el.getAttribute('data-id'),
        renderHTML: (attrs) => (attrs.id ? { 'data-id': attrs.id } : {}),
      },
      status: {
        default: null,
        keepOnSplit: false,
        parseHTML: (el) => {
          const v = el.getAttribute('data-status')
          return STATUS_LABEL[v] ? v : null
        },
        renderHTML: (attrs) => ({ 'data-status': effectiveStatus(attrs) }),
      },
      milestone: {
        default: false,
        keepOnSplit: true, // Enter at the end of a milestone starts another milestone
        parseHTML: (el) => el.getAttribute('data-milestone') === 'true',
        renderHTML: (attrs) => (attrs.milestone ? { 'data-milestone': 'true' } : {}),
      },
    }
  },

  addCommands () {
    return {
      ...this.parent?.(),
      setTaskStatus: (status, pos) => ({ state, tr, dispatch }) => {
        const found = pos == null ? taskAtSelection(state) : { node: state.doc.nodeAt(pos), pos }
        if (!found || !found.node || found.node.type.name !== this.name || !STATUS_LABEL[status]) return false
        if (dispatch) {
          tr.setNodeMarkup(found.pos, undefined, {
            ...found.node.attrs,
            status: status === 'todo' ? null : status,
            checked: status === 'done',
          })
        }
        return true
      },
      toggleMilestone: (pos) => ({ state, tr, dispatch }) => {
        const found = pos == null ? taskAtSelection(state) : { node: state.doc.nodeAt(pos), pos }
        if (!found || !found.node || found.node.type.name !== this.name) return false
        if (dispatch) tr.setNodeAttribute(found.pos, 'milestone', !found.node.attrs.milestone)
        return true
      },
      toggleTaskDone: () => ({ state, commands }) => {
        const found = taskAtSelection(state)
        if (!found) return false
        return commands.setTaskStatus(found.node.attrs.checked ? 'todo' : 'done', found.pos)
      },
    }
  },

  addNodeView () {
    const base = this.parent?.()
    if (!base) return null
    return (props) => {
      const view = base(props)
      const { editor, getPos } = props
      const li = view.dom
      li.classList.add('task-item')

      const flag = document.createElement('button')
      flag.type = 'button'
      flag.className = 'task-milestone task-control'
      flag.tabIndex = -1 // Ctrl/⌘+Alt+M from the keyboard
      flag.append(icon('milestone'))
      flag.addEventListener('mousedown', (e) => e.preventDefault())
      flag.addEventListener('click', () => {
        const pos = getPos()
        if (typeof pos === 'number' && editor.isEditable) editor.chain().focus(undefined, { scrollIntoView: false }).toggleMilestone(pos).run()
      })

      const pill = document.createElement('button')
      pill.type = 'button'
      pill.className = 'task-status task-control'
      pill.tabIndex = -1 // Ctrl/⌘+Alt+S from the keyboard
      pill.setAttribute('aria-haspopup', 'menu')
      pill.addEventListener('mousedown', (e) => e.preventDefault())
      pill.addEventListener('click', () => {
        const pos = getPos()
        if (typeof pos === 'number' && editor.isEditable) openStatusMenu(editor, pos, pill)
      })

      // a diamond before the text of a milestone (click: unflag) …
      const mark = document.createElement('span')
      mark.className = 'task-milestone-mark'
      mark.setAttribute('aria-hidden', 'true')
      mark.append(icon('milestone'))
      mark.addEventListener('mousedown', (e) => e.preventDefault())
      mark.addEventListener('click', () => flag.click())
      const meta = document.createElement('span')
      meta.className = 'task-meta'
      meta.contentEditable = 'false'
      meta.append(mark)
      const checkbox = li.querySelector(':scope > label')
      if (checkbox) checkbox.after(meta)
      else li.prepend(meta)
      // … and at the end of the line the milestone toggle and the status pill
      const end = document.createElement('span')
      end.className = 'task-end'
      end.contentEditable = 'false'
      end.append(flag, pill)
      li.append(end)

      const paint = (node) => {
        const status = effectiveStatus(node.attrs)
        const milestone = !!node.attrs.milestone
        pill.dataset.status = status
        pill.textContent = STATUS_LABEL[status]
        pill.setAttribute('aria-label', `Status: ${STATUS_LABEL[status]}. Change status`)
        pill.title = 'Change status (Ctrl+Alt+S)'
        flag.setAttribute('aria-pressed', String(milestone))
        flag.setAttribute('aria-label', milestone ? 'Milestone (click to unflag)' : 'Flag as milestone')
        flag.title = milestone ? 'Milestone — click to unflag (Ctrl+Alt+M)' : 'Flag as milestone (Ctrl+Alt+M)'
        li.classList.toggle('is-milestone', milestone)
      }
      paint(props.node)
      return {
        ...view,
        update: (node, decorations, innerDecorations) => {
          const ok = view.update(node, decorations, innerDecorations)
          if (ok) paint(node)
          return ok
        },
        // The checkbox and its label are no content either: a style set on them (screenshot tools
        // hiding the caret, password managers marking inputs) is no edit; read as one, the list
        // was drawn again and the focused checkbox, with its focus ring, went with it.
        ignoreMutation: (mutation) => meta.contains(mutation.target) || end.contains(mutation.target) ||
          (!!checkbox && checkbox.contains(mutation.target)),
        stopEvent: (event) => meta.contains(event.target) || end.contains(event.target),
      }
    }
  },

  addProseMirrorPlugins () {
    const type = () => this.editor.schema.nodes.taskItem
    return [
      ...(this.parent?.() || []),
      // A done task's words are struck through, not the spaces around its owner and date chips
      // (striking the paragraph left stray dashes next to the chips).
      new Plugin({
        key: new PluginKey('tandemDoneText'),
        props: {
          decorations: (state) => {
            const found = []
            state.doc.descendants((node, pos) => {
              if (node.type !== type()) return !node.isTextblock
              const para = node.firstChild
              if (!node.attrs.checked || !para || !para.isTextblock) return true
              para.forEach((child, offset) => {
                if (!child.isText) return
                const start = child.text.length - child.text.trimStart().length
                const end = child.text.trimEnd().length
                const from = pos + 2 + offset
                if (end > start) found.push(Decoration.inline(from + start, from + end, { class: 'task-done-text' }))
              })
              return true
            })
            return found.length ? DecorationSet.create(state.doc, found) : null
          },
        },
      }),
      // The checkbox only sets `checked`: bring `status` along (local changes only).
      new Plugin({
        key: syncKey,
        appendTransaction: (transactions, oldState, newState) => {
          if (!transactions.some((t) => t.docChanged)) return null
          if (transactions.some((t) => (t.getMeta(ySyncPluginKey) || {}).isChangeOrigin)) return null
          let tr = null
          newState.doc.descendants((node, pos) => {
            if (node.type !== type()) return !node.isTextblock
            const { checked, status } = node.attrs
            let next = status
            if (checked && status !== 'done') next = 'done'
            else if (!checked && status === 'done') next = null
            if (next !== status) {
              tr = tr || newState.tr
              tr.setNodeAttribute(pos, 'status', next)
            }
            return true
          })
          return tr
        },
      }),
    ]
  },
})

/**
 * The task keys, ahead of StarterKit's (Ctrl/⌘+Enter is a hard break elsewhere): they only act
 * inside a task and fall through otherwise.
 */
export const TaskKeys = Extension.create({
  name: 'tandemTaskKeys',
  priority: 1000,
  addKeyboardShortcuts () {
    const editor = this.editor
    const inTask = () => editor.isEditable && !!taskAtSelection(editor.state)
    return {
      'Mod-Alt-s': () => {
        const found = inTask() && taskAtSelection(editor.state)
        if (!found) return false
        openStatusMenu(editor, found.pos)
        return true
      },
      'Mod-Alt-m': () => inTask() && editor.commands.toggleMilestone(),
      'Mod-Enter': () => inTask() && editor.commands.toggleTaskDone(),
    }
  },
})

/** The status menu for the task at `pos`, next to `anchor` (or the caret). */
export function openStatusMenu (editor, pos, anchor) {
  const node = editor.state.doc.nodeAt(pos)
  if (!node) return
  const current = effectiveStatus(node.attrs)
  const rect = anchor ? anchor.getBoundingClientRect() : caretRect(editor)
  openMenu({
    anchor: rect,
    label: 'Task status',
    radio: true,
    className: 'status-menu',
    id: 'task-status-menu',
    items: STATUSES.map((s) => {
      const dot = document.createElement('span')
      dot.className = 'status-dot'
      dot.dataset.status = s.value
      dot.setAttribute('aria-hidden', 'true')
      return { value: s.value, label: s.label, checked: s.value === current, icon: dot }
    }),
    onClose: () => editor.commands.focus(undefined, { scrollIntoView: false }),
    onSelect: (value) => editor.chain().focus(undefined, { scrollIntoView: false }).setTaskStatus(value, pos).run(),
  })
}

export function caretRect (editor) {
  const { from } = editor.state.selection
  const c = editor.view.coordsAtPos(from)
  return { left: c.left, right: c.right, top: c.top, bottom: c.bottom, width: 0, height: c.bottom - c.top }
}
