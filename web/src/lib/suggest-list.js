// The floating list behind @tiptap/suggestion (owner @mentions, due dates): a role=listbox
// that keeps the focus in the editor. The editor element (role=textbox) points at it with
// aria-controls and at the highlighted option with aria-activedescendant while it is open; ↑/↓ move, Enter/Tab pick, Escape closes.
import { placeAt } from './popup.js'

let seq = 0

/**
 * A `render` for a Suggestion config.
 * renderItem(item) -> Node[] (the option's content); empty(query) -> text when no items
 * (null: hide the list until there are items again).
 * extra(props, close) -> optional Node appended under the list (e.g. a date input).
 * onEnter(props) -> true when it handled Enter itself (e.g. a typed date).
 */
export function suggestionRenderer ({ id, label, className, renderItem, empty, extra, onEnter }) {
  return () => {
    let el = null
    let list = null
    let props = null
    let active = 0
    const prefix = `${id}-${++seq}`

    const pick = (i) => {
      const item = props.items[i]
      if (item) props.command(item)
    }
    const setActive = (i) => {
      const n = props.items.length
      active = n ? (i + n) % n : 0
      const options = list.querySelectorAll('[role=option]')
      options.forEach((o, j) => o.setAttribute('aria-selected', String(j === active)))
      const on = options[active]
      const dom = props.editor.view.dom
      if (on) {
        dom.setAttribute('aria-activedescendant', on.id)
        on.scrollIntoView({ block: 'nearest' })
      } else dom.removeAttribute('aria-activedescendant')
    }
    const draw = () => {
      list.replaceChildren()
      props.items.forEach((item, i) => {
        const o = document.createElement('div')
        o.id = `${prefix}-${i}`
        o.className = 'suggest-option'
        o.setAttribute('role', 'option')
        if (item.key) o.dataset.key = item.key
        o.append(...renderItem(item))
        o.addEventListener('mousedown', (e) => e.preventDefault())
        o.addEventListener('mousemove', () => { if (active !== i) setActive(i) })
        o.addEventListener('click', () => pick(i))
        list.append(o)
      })
      const emptyText = props.items.length === 0 ? (empty ? empty(props.query) : 'No matches') : ''
      el.hidden = emptyText === null
      if (emptyText) {
        const o = document.createElement('div')
        o.className = 'suggest-empty'
        o.textContent = emptyText
        list.append(o)
      }
      setActive(Math.min(active, Math.max(props.items.length - 1, 0)))
    }
    const position = () => {
      const rect = props.clientRect && props.clientRect()
      if (rect) placeAt(el, rect)
    }
    // The list is fixed to the window while the line it belongs to scrolls with the page: on a
    // phone the browser scrolls when the keyboard opens, which left the list over the line
    // being typed. It follows the line on every scroll and every change of the visible area.
    const follow = (on) => {
      const method = on ? 'addEventListener' : 'removeEventListener'
      window[method]('scroll', position, { capture: true, passive: true })
      window[method]('resize', position)
      if (window.visualViewport) {
        window.visualViewport[method]('resize', position)
        window.visualViewport[method]('scroll', position)
      }
    }
    const close = () => {
      if (!el) return
      follow(false)
      const dom = props.editor.view.dom
      dom.removeAttribute('aria-activedescendant')
      dom.removeAttribute('aria-controls')
      el.remove()
      el = null
    }

    return {
      onStart: (p) => {
        props = p
        active = 0
        el = document.createElement('div')
        el.className = `suggest ${className}`
        el.id = prefix
        list = document.createElement('div')
        list.className = 'suggest-list'
        list.id = `${prefix}-list`
        list.setAttribute('role', 'listbox')
        list.setAttribute('aria-label', label)
        el.append(list)
        if (extra) {
          const node = extra(() => props, close)
          if (node) el.append(node)
        }
        document.body.append(el)
        const dom = p.editor.view.dom
        dom.setAttribute('aria-controls', list.id)
        draw()
        position()
        follow(true)
      },
      onUpdate: (p) => {
        props = p
        if (!el) return
        draw()
        position()
      },
      onKeyDown: ({ event }) => {
        if (!el || el.hidden) return false
        if (event.key === 'ArrowDown') { setActive(active + 1); return true }
        if (event.key === 'ArrowUp') { setActive(active - 1); return true }
        if (event.key === 'Escape') { close(); return true }
        if (event.key === 'Enter' || event.key === 'Tab') {
          if (event.key === 'Enter' && onEnter && onEnter(props)) return true
          if (props.items.length === 0) return false
          pick(active)
          return true
        }
        return false
      },
      onExit: () => close(),
    }
  }
}
