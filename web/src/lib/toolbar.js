// The formatting toolbar (#toolbar): buttons built with DOM calls, each with an
// aria-label, data-action, and aria-pressed / .is-active for formats that are on.
// The table buttons (.toolbar-group[data-group="table-edit"]) show only inside a table.
import { openDuePicker } from './duedate.js'
import { icon } from './icons.js'
import { normalizeHref } from './links.js'
import { askLink } from './link-dialog.js'
import { openMenu } from './popup.js'
import { SECTION_TEMPLATES, insertSection } from './sections.js'
import { caretRect, openStatusMenu, taskAtSelection } from './tasks.js'

const SECTION_ICONS = { contacts: 'contacts', 'key-results': 'target', risks: 'alert', milestones: 'milestone' }

/** The Insert menu: a plan section (heading + table or milestone list) in one step. */
function openInsertMenu (editor, button) {
  button.setAttribute('aria-expanded', 'true')
  openMenu({
    anchor: button,
    label: 'Insert a plan section',
    id: 'insert-menu',
    className: 'insert-menu',
    items: SECTION_TEMPLATES.map((t) => ({ value: t.value, label: t.label, hint: t.hint, icon: icon(SECTION_ICONS[t.value]) })),
    onClose: (reason) => {
      button.setAttribute('aria-expanded', 'false')
      if (reason === 'escape') button.focus()
    },
    onSelect: (value) => insertSection(editor, value),
  })
}

/** Start an owner @mention at the cursor (the @ list opens). */
function startOwner (editor) {
  const { state } = editor
  const before = state.selection.$from.nodeBefore
  const space = before && before.isText && !/\s$/.test(before.text) ? ' ' : ''
  editor.chain().focus().insertContent(`${space}@`).run()
}

function dueInSelectedTask (editor) {
  const t = taskAtSelection(editor.state)
  const para = t && t.node.firstChild
  let pos = null
  if (para) para.forEach((child, offset) => { if (pos === null && child.type.name === 'dueDate') pos = t.pos + 2 + offset })
  return pos
}

/** The buttons, in groups. `active` marks a toggle; `run` does the thing. */
function groups (editor, onLink) {
  const chain = () => editor.chain().focus()
  const heading = (level) => ({
    action: `heading-${level}`,
    label: `Heading ${level}`,
    text: `H${level}`,
    shortcut: `Ctrl+Alt+${level}`,
    active: () => editor.isActive('heading', { level }),
    can: () => editor.can().toggleHeading({ level }),
    run: () => chain().toggleHeading({ level }).run(),
  })
  return [
    { name: 'blocks', label: 'Headings', buttons: [heading(1), heading(2), heading(3)] },
    {
      name: 'marks',
      label: 'Text',
      buttons: [
        { action: 'bold', label: 'Bold', icon: 'bold', shortcut: 'Ctrl+B', active: () => editor.isActive('bold'), can: () => editor.can().toggleBold(), run: () => chain().toggleBold().run() },
        { action: 'italic', label: 'Italic', icon: 'italic', shortcut: 'Ctrl+I', active: () => editor.isActive('italic'), can: () => editor.can().toggleItalic(), run: () => chain().toggleItalic().run() },
        { action: 'link', label: 'Link', icon: 'link', shortcut: 'Ctrl+K', active: () => editor.isActive('link'), run: onLink },
      ],
    },
    {
      name: 'lists',
      label: 'Lists',
      buttons: [
        { action: 'bullet-list', label: 'Bulleted list', icon: 'bulletList', active: () => editor.isActive('bulletList'), can: () => editor.can().toggleBulletList(), run: () => chain().toggleBulletList().run() },
        { action: 'ordered-list', label: 'Numbered list', icon: 'orderedList', active: () => editor.isActive('orderedList'), can: () => editor.can().toggleOrderedList(), run: () => chain().toggleOrderedList().run() },
        { action: 'task-list', label: 'Task list', icon: 'taskList', active: () => editor.isActive('taskList'), can: () => editor.can().toggleTaskList(), run: () => chain().toggleTaskList().run() },
      ],
    },
    {
      name: 'table',
      label: 'Table',
      buttons: [
        { action: 'insert-table', label: 'Insert table', icon: 'table', can: () => editor.can().insertTable({ rows: 3, cols: 3, withHeaderRow: true }), run: () => chain().insertTable({ rows: 3, cols: 3, withHeaderRow: true }).run() },
      ],
    },
    {
      name: 'insert',
      label: 'Insert',
      buttons: [
        { action: 'insert-section', label: 'Insert a plan section', text: 'Insert', icon: 'plus', menu: true, can: () => editor.can().insertContent({ type: 'paragraph' }), run: (button) => openInsertMenu(editor, button) },
      ],
    },
    {
      name: 'task',
      label: 'Task',
      onlyInTask: true,
      buttons: [
        { action: 'task-owner', label: 'Assign an owner (type @)', icon: 'user', run: () => startOwner(editor) },
        { action: 'task-due', label: 'Set due date (type due: or //)', icon: 'calendar', shortcut: 'Ctrl+Alt+D', run: (button) => openDuePicker(editor, dueInSelectedTask(editor), button) },
        { action: 'task-status', label: 'Task status', icon: 'status', shortcut: 'Ctrl+Alt+S', menu: true, run: (button) => { const t = taskAtSelection(editor.state); if (t) openStatusMenu(editor, t.pos, button) } },
        { action: 'task-milestone', label: 'Milestone', icon: 'milestone', shortcut: 'Ctrl+Alt+M', active: () => { const t = taskAtSelection(editor.state); return !!(t && t.node.attrs.milestone) }, run: () => editor.chain().focus().toggleMilestone().run() },
      ],
    },
    {
      name: 'table-edit',
      label: 'Edit table',
      onlyInTable: true,
      buttons: [
        { action: 'add-row', label: 'Add row below', icon: 'rowAdd', can: () => editor.can().addRowAfter(), run: () => chain().addRowAfter().run() },
        { action: 'delete-row', label: 'Delete row', icon: 'rowRemove', can: () => editor.can().deleteRow(), run: () => chain().deleteRow().run() },
        { action: 'add-column', label: 'Add column to the right', icon: 'colAdd', can: () => editor.can().addColumnAfter(), run: () => chain().addColumnAfter().run() },
        { action: 'delete-column', label: 'Delete column', icon: 'colRemove', can: () => editor.can().deleteColumn(), run: () => chain().deleteColumn().run() },
        { action: 'delete-table', label: 'Delete table', icon: 'tableRemove', can: () => editor.can().deleteTable(), run: () => chain().deleteTable().run() },
      ],
    },
    {
      name: 'history',
      label: 'History',
      end: true,
      buttons: [
        { action: 'undo', label: 'Undo', icon: 'undo', shortcut: 'Ctrl+Z', can: () => editor.can().undo(), run: () => chain().undo().run() },
        { action: 'redo', label: 'Redo', icon: 'redo', shortcut: 'Ctrl+Shift+Z', can: () => editor.can().redo(), run: () => chain().redo().run() },
      ],
    },
  ]
}

export class Toolbar {
  /**
   * @param {import('@tiptap/core').Editor} editor
   * @param {HTMLElement} el the #toolbar element (role=toolbar)
   * @param {(message: string) => void} notify shows a short message to the person
   */
  constructor (editor, el, notify) {
    this.editor = editor
    this.el = el
    this.notify = notify
    this.entries = []
    this.groupEls = []
    const mac = /Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent)

    for (const group of groups(editor, () => this.editLink())) {
      const g = document.createElement('div')
      g.className = 'toolbar-group'
      g.dataset.group = group.name
      g.setAttribute('role', 'group')
      g.setAttribute('aria-label', group.label)
      if (group.end) g.classList.add('toolbar-group-end')
      for (const b of group.buttons) {
        const button = document.createElement('button')
        button.type = 'button'
        button.className = 'toolbar-button'
        button.dataset.action = b.action
        button.setAttribute('aria-label', b.label)
        const shortcut = b.shortcut && (mac ? b.shortcut.replace('Ctrl+', '⌘').replace('Alt+', '⌥').replace('Shift+', '⇧') : b.shortcut)
        button.title = shortcut ? `${b.label} (${shortcut})` : b.label
        if (b.active) button.setAttribute('aria-pressed', 'false')
        if (b.menu) {
          button.setAttribute('aria-haspopup', 'menu')
          button.setAttribute('aria-expanded', 'false')
        }
        if (b.icon) button.append(icon(b.icon))
        if (b.text) {
          const t = document.createElement('span')
          t.className = 'toolbar-text'
          t.textContent = b.text
          button.append(t)
        }
        if (b.menu && b.text) button.append(icon('chevronDown'))
        // keep the editor's selection when a button is pressed with the mouse
        button.addEventListener('mousedown', (e) => e.preventDefault())
        button.addEventListener('click', () => {
          if (!editor.isEditable) return
          b.run(button)
          this.update()
        })
        g.append(button)
        this.entries.push({ button, spec: b })
      }
      this.el.append(g)
      this.groupEls.push({ el: g, spec: group })
    }

    // One tab stop for the whole toolbar; arrow keys move between its buttons.
    this.el.addEventListener('keydown', (e) => this.onKeydown(e))
    this.el.addEventListener('focusin', (e) => {
      if (e.target instanceof HTMLButtonElement) this.setTabStop(e.target)
    })

    // Ctrl/Cmd+K for links, like most editors
    editor.view.dom.addEventListener('keydown', (e) => {
      if ((e.ctrlKey || e.metaKey) && !e.altKey && !e.shiftKey && e.key.toLowerCase() === 'k') {
        e.preventDefault()
        this.editLink()
      }
    })

    let frame = 0
    const schedule = () => {
      if (frame) return
      frame = window.requestAnimationFrame(() => {
        frame = 0
        this.update()
      })
    }
    editor.on('transaction', schedule)
    editor.on('focus', schedule)
    editor.on('blur', schedule)
    this.update()
  }

  update () {
    this._update()
    const stop = this._tabStop
    if (!stop || stop.disabled || stop.offsetParent === null) {
      const first = this.focusable()[0]
      if (first) this.setTabStop(first)
    }
  }

  _update () {
    const editor = this.editor
    const editable = editor.isEditable
    const inTable = editor.isActive('table')
    const inTask = editor.isActive('taskItem')
    for (const { el, spec } of this.groupEls) {
      if (spec.onlyInTable) el.hidden = !inTable
      if (spec.onlyInTask) el.hidden = !inTask
    }
    for (const { button, spec } of this.entries) {
      if (spec.onlyInTable && !inTable) continue
      if (spec.onlyInTask && !inTask) continue
      let enabled = editable
      if (enabled && spec.can) {
        try {
          enabled = spec.can()
        } catch {
          enabled = false
        }
      }
      button.disabled = !enabled
      if (spec.active) {
        const on = editable && spec.active()
        button.setAttribute('aria-pressed', String(on))
        button.classList.toggle('is-active', on)
      }
    }
  }

  focusable () {
    return this.entries.map((e) => e.button).filter((b) => !b.disabled && b.offsetParent !== null)
  }

  setTabStop (button) {
    this._tabStop = button
    for (const { button: b } of this.entries) b.tabIndex = b === button ? 0 : -1
  }

  onKeydown (e) {
    const keys = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1, Home: 'first', End: 'last' }
    if (!(e.key in keys) || e.altKey || e.ctrlKey || e.metaKey) return
    const buttons = this.focusable()
    if (buttons.length === 0) return
    const i = buttons.indexOf(document.activeElement)
    const step = keys[e.key]
    let next
    if (step === 'first') next = buttons[0]
    else if (step === 'last') next = buttons[buttons.length - 1]
    else next = buttons[(i + step + buttons.length) % buttons.length]
    e.preventDefault()
    this.setTabStop(next)
    next.focus()
  }

  /** Ask for a URL (in the link dialog) and set, change or remove the link on the selection. */
  editLink () {
    const editor = this.editor
    if (!editor.isEditable) return
    const current = editor.getAttributes('link').href || ''
    const button = this.el.querySelector('[data-action="link"]')
    const anchor = button && button.offsetParent !== null && document.activeElement === button ? button : caretRect(editor)
    askLink({
      anchor,
      current,
      check: (text) => (normalizeHref(text) ? null : 'Only web (http, https) and email (mailto) links can be added.'),
      onCancel: () => editor.commands.focus(),
      onDone: (input) => this.applyLink(input),
    })
  }

  applyLink (input) {
    const editor = this.editor
    if (input === '') {
      editor.chain().focus().extendMarkRange('link').unsetLink().run()
      return
    }
    const href = normalizeHref(input)
    if (!href) return
    const { empty } = editor.state.selection
    if (empty && !editor.isActive('link')) {
      // nothing selected: insert the address itself as the link text
      const text = href.replace(/^mailto:/i, '')
      editor.chain().focus().insertContent({ type: 'text', text, marks: [{ type: 'link', attrs: { href } }] }).run()
    } else {
      editor.chain().focus().extendMarkRange('link').setLink({ href }).run()
    }
  }
}
