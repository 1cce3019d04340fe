// Tandem's plan editor: Tiptap bound to a Yjs document that y-websocket syncs with
// the server. Reads its settings from <script id="tandem-config" type="application/json">
// and mounts into #editor, #toolbar, #presence and #connection (see plan.html).
import { Editor } from '@tiptap/core'
import StarterKit from '@tiptap/starter-kit'
import { TaskList } from '@tiptap/extension-list'
import { Table, TableCell, TableHeader } from '@tiptap/extension-table'
import Collaboration from '@tiptap/extension-collaboration'
import CollaborationCaret from '@tiptap/extension-collaboration-caret'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'

import { CLOSE_CODES, ConnectionStatus } from './lib/connection.js'
import { DueDate } from './lib/duedate.js'
import { PlanTableRow, StableIds } from './lib/ids.js'
import { Owner } from './lib/owners.js'
import { isAllowedHref } from './lib/links.js'
import { PendingStore } from './lib/pending.js'
import { displayName, safeColor, textColorOn } from './lib/people.js'
import { Placeholder } from './lib/placeholder.js'
import { Presence } from './lib/presence.js'
import { PlanTaskItem, TaskKeys } from './lib/tasks.js'
import { Toolbar } from './lib/toolbar.js'

function readConfig () {
  const node = document.getElementById('tandem-config')
  if (!node) throw new Error('Tandem: no #tandem-config on this page')
  const config = JSON.parse(node.textContent)
  if (!config.planId || !config.wsUrl) throw new Error('Tandem: config needs planId and wsUrl')
  config.closeCodes = { ...CLOSE_CODES, ...(config.closeCodes || {}) }
  config.readOnly = !!config.readOnly
  return config
}

/** A caret for a remote person: a coloured bar with their name above it. */
function renderCaret (user) {
  const color = safeColor(user.color)
  const caret = document.createElement('span')
  caret.classList.add('collaboration-carets__caret')
  caret.style.borderColor = color
  caret.setAttribute('aria-hidden', 'true')
  const label = document.createElement('div')
  label.classList.add('collaboration-carets__label')
  label.style.backgroundColor = color
  label.style.color = textColorOn(color)
  label.textContent = displayName(user.name) + (user.guest === true ? ' (guest)' : '')
  caret.append(label)
  return caret
}

/** A short message near the toolbar (e.g. a refused link), announced to screen readers. */
function makeNotifier (el) {
  let timer = 0
  return (message) => {
    if (!el) return window.alert(message)
    el.textContent = message
    el.hidden = false
    window.clearTimeout(timer)
    timer = window.setTimeout(() => {
      el.hidden = true
      el.textContent = ''
    }, 5000)
  }
}

function start () {
  const config = readConfig()
  const user = {
    name: displayName(config.user && config.user.name),
    color: safeColor(config.user && config.user.color),
  }
  // The server's key for this account on this plan: the presence strip lists each person
  // once, however many tabs they have open (the server stamps it on what others receive).
  if (config.user && typeof config.user.person === 'string') user.person = config.user.person
  const $ = (id) => document.getElementById(id)
  const editorEl = $('editor')
  const toolbarEl = $('toolbar')
  const presenceEl = $('presence')
  const connectionEl = $('connection')

  const ydoc = new Y.Doc()

  // Unsent edits from an earlier visit (closed tab, reload while offline) go back in
  // before we connect, so the first sync sends them.
  const pending = config.readOnly ? null : new PendingStore(ydoc, config.planId, user.name)
  const restored = pending ? pending.restore() : 0

  const provider = new WebsocketProvider(config.wsUrl, config.planId, ydoc, {
    // tabs talk to each other through the server only: one path, one set of checks
    disableBc: true,
    maxBackoffTime: 5000,
  })

  const editor = new Editor({
    element: editorEl,
    editable: false, // until the first sync (and never when read-only)
    enableContentCheck: true,
    injectCSS: false, // the base ProseMirror styles are in editor.css (no inline <style>)
    extensions: [
      StarterKit.configure({
        undoRedo: false, // Collaboration brings its own (Yjs) undo
        link: {
          openOnClick: false,
          autolink: true,
          linkOnPaste: true,
          defaultProtocol: 'https',
          isAllowedUri: (url) => isAllowedHref(url),
          shouldAutoLink: (url) => isAllowedHref(url),
          HTMLAttributes: { rel: 'noopener noreferrer nofollow', target: '_blank' },
        },
      }),
      TaskList,
      PlanTaskItem.configure({ nested: true }),
      Table.configure({ resizable: false }),
      PlanTableRow,
      TableHeader,
      TableCell,
      Owner,
      DueDate,
      StableIds,
      TaskKeys,
      Collaboration.configure({ document: ydoc, field: 'default' }),
      CollaborationCaret.configure({ provider, user, render: renderCaret }),
      Placeholder.configure({
        // the shortcuts, where a new plan's author looks first
        text: 'Start the plan: who’s involved, the objectives, key results and milestones. Type [ ] for a task, @ for its owner, due: for its date, or pick a section from Insert.',
      }),
    ],
    editorProps: {
      attributes: {
        class: 'tandem-doc',
        role: 'textbox',
        'aria-multiline': 'true',
        'aria-label': 'Plan document',
        spellcheck: 'true',
      },
    },
  })

  let connection = null
  let toolbar = null
  const applyEditable = () => {
    if (!connection) return
    const editable = !config.readOnly && connection.everSynced && !connection.closed
    if (editor.isEditable !== editable) {
      editor.setEditable(editable)
      if (toolbar) toolbar.update()
    }
    editorEl.dataset.synced = String(connection.everSynced)
    editorEl.dataset.editable = String(editable)
  }

  connection = new ConnectionStatus({
    provider,
    ydoc,
    config,
    el: connectionEl,
    banner: $('connection-banner'),
    pending,
    unsent: restored,
    onChange: () => applyEditable(),
  })
  provider.on('sync', () => applyEditable())

  // Content this version of the editor cannot represent: stop syncing rather than
  // risk rewriting the shared document.
  editor.on('contentError', ({ error }) => {
    console.error('[tandem] invalid content in the shared document', error)
    connection.close(0, 'content', {
      label: 'Sync paused',
      title: 'This plan holds content this editor can’t display.',
      body: 'Editing is paused so nothing is lost. Reload the page, or update Tandem.',
      link: { text: 'Reload', href: window.location.pathname + window.location.search },
    }, { disconnect: true })
  })

  if (config.readOnly) {
    document.body.classList.add('is-read-only')
    if (toolbarEl) toolbarEl.hidden = true
    const badge = document.createElement('span')
    badge.className = 'read-only-badge'
    badge.id = 'read-only-badge'
    badge.textContent = 'View only'
    badge.title = 'You can read this plan and see who is here, but not edit it.'
    const heading = document.querySelector('.plan-heading')
    if (heading) heading.append(badge)
  } else if (toolbarEl) {
    toolbar = new Toolbar(editor, toolbarEl, makeNotifier($('editor-notice')))
  }
  if (presenceEl) new Presence(provider.awareness, presenceEl) // eslint-disable-line no-new

  // Links: Ctrl/Cmd+click opens them while editing; a plain click does when read-only.
  editorEl.addEventListener('click', (event) => {
    const a = event.target instanceof Element && event.target.closest('a[href]')
    if (!a || !editorEl.contains(a)) return
    if (editor.isEditable && !(event.ctrlKey || event.metaKey)) return
    event.preventDefault()
    const href = a.getAttribute('href')
    if (isAllowedHref(href)) window.open(href, '_blank', 'noopener,noreferrer')
  })

  applyEditable()
  window.tandem = { editor, ydoc, provider, config, connection, Y }
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', start, { once: true })
} else {
  start()
}
