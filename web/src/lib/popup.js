// Small floating surfaces shared by the editor's structure features:
//   placeAt(el, rect)  positions a fixed element under (or above) a rect, inside the visible part
//                      of the window and never over the rect;
//   openMenu(...)      a focus-taking ARIA menu (role=menu, menuitem/menuitemradio), keyboard
//                      driven: arrows, Home/End, type-ahead, Enter/Space, Escape, Tab closes.
// Suggestion lists (@mentions, due dates) keep the focus in the editor and are in their own
// modules; they use placeAt too.

/** Put `el` (position: fixed) just below `rect`, or above it when there's more room there; never
 *  over `rect` itself (the line being typed). Room is measured in the visible part of the page
 *  (on a phone the on-screen keyboard hides the bottom of the window); a list taller than the
 *  room scrolls inside itself instead of covering the line or running off the screen. */
export function placeAt (el, rect, gap = 6) {
  if (!rect) return
  el.style.left = '0px'
  el.style.top = '0px'
  el.style.maxHeight = ''
  el.style.overflowY = ''
  const { width, height } = el.getBoundingClientRect()
  const vv = window.visualViewport
  const viewTop = vv ? vv.offsetTop : 0
  const viewBottom = viewTop + (vv ? vv.height : window.innerHeight)
  const vw = window.innerWidth
  const below = viewBottom - 8 - (rect.bottom + gap)
  const above = rect.top - gap - (viewTop + 8)
  let top
  if (height <= below || below >= above) {
    top = rect.bottom + gap
    if (height > below) {
      el.style.maxHeight = `${Math.max(Math.floor(below), 48)}px`
      el.style.overflowY = 'auto'
    }
  } else {
    const room = Math.floor(above)
    if (height > room) {
      el.style.maxHeight = `${room}px`
      el.style.overflowY = 'auto'
    }
    top = rect.top - gap - Math.min(height, room)
  }
  // left-aligned with the anchor, or right-aligned when that would run off the screen
  let left = rect.left
  if (left + width > vw - 8) left = (rect.right ?? rect.left) - width
  left = Math.max(8, Math.min(left, vw - width - 8))
  el.style.left = `${Math.round(left)}px`
  el.style.top = `${Math.round(top)}px`
}

let openOne = null

/** Close whichever menu is open (e.g. before the editor is destroyed). */
export function closeMenus () {
  if (openOne) openOne()
}

/**
 * Open a menu near `anchor` (an element or a DOMRect).
 * items: [{value, label, hint?, icon?: Node, checked?: boolean, disabled?, separatorBefore?}]
 * onSelect(value) runs after the menu closes; onClose(reason) always runs ('select'|'escape'|'blur').
 * footer(select) -> an optional Node under the items (e.g. a date input); calling select(value)
 * picks `value` as if it were an item. Tab then moves between the items and the footer.
 */
export function openMenu ({ anchor, items, label, onSelect, onClose, radio = false, className = '', id = '', footer = null }) {
  closeMenus()
  const menu = document.createElement('div')
  menu.className = `popup-menu ${className}`.trim()
  menu.setAttribute('role', 'menu')
  if (id) menu.id = id
  if (label) menu.setAttribute('aria-label', label)
  const buttons = []
  for (const item of items) {
    if (item.separatorBefore) {
      const sep = document.createElement('div')
      sep.className = 'popup-separator'
      sep.setAttribute('role', 'separator')
      menu.append(sep)
    }
    const b = document.createElement('button')
    b.type = 'button'
    b.className = 'popup-item'
    b.tabIndex = -1
    b.dataset.value = item.value
    b.setAttribute('role', radio ? 'menuitemradio' : 'menuitem')
    if (radio) b.setAttribute('aria-checked', String(!!item.checked))
    if (item.disabled) b.disabled = true
    if (item.icon) b.append(item.icon)
    const text = document.createElement('span')
    text.className = 'popup-label'
    text.textContent = item.label
    b.append(text)
    if (item.hint) {
      const hint = document.createElement('span')
      hint.className = 'popup-hint'
      hint.textContent = item.hint
      b.append(hint)
    }
    b.addEventListener('mousedown', (e) => e.preventDefault())
    b.addEventListener('click', () => finish('select', item.value))
    menu.append(b)
    buttons.push(b)
  }
  let wrap = menu
  if (footer) {
    wrap = document.createElement('div')
    wrap.className = `popup-menu-wrap ${className}`.trim()
    menu.className = 'popup-menu popup-menu-inner'
    wrap.append(menu)
    const f = footer((value) => finish('select', value))
    if (f) wrap.append(f)
  }
  document.body.append(wrap)
  const menuBox = wrap
  const rect = anchor instanceof Element ? anchor.getBoundingClientRect() : anchor
  placeAt(wrap, rect)

  const enabled = () => buttons.filter((b) => !b.disabled)
  const focusAt = (b) => b && b.focus()
  const start = buttons.find((b) => b.getAttribute('aria-checked') === 'true' && !b.disabled) || enabled()[0]
  focusAt(start)

  let done = false
  function finish (reason, value) {
    if (done) return
    done = true
    openOne = null
    document.removeEventListener('mousedown', outside, true)
    window.removeEventListener('resize', blur)
    wrap.remove()
    if (onClose) onClose(reason)
    if (reason === 'select' && onSelect) onSelect(value)
  }
  const blur = () => finish('blur')
  function outside (e) {
    if (!menuBox.contains(e.target)) finish('blur')
  }
  wrap.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') {
      e.preventDefault()
      e.stopPropagation()
      return finish('escape')
    }
    if (!menu.contains(e.target)) return // the footer's own controls
    const list = enabled()
    const i = list.indexOf(document.activeElement)
    if (e.key === 'ArrowDown') focusAt(list[(i + 1) % list.length])
    else if (e.key === 'ArrowUp') focusAt(list[(i - 1 + list.length) % list.length])
    else if (e.key === 'Home') focusAt(list[0])
    else if (e.key === 'End') focusAt(list[list.length - 1])
    else if (e.key === 'Escape') finish('escape')
    else if (e.key === 'Tab' && !footer) finish('blur')
    else if (e.key.length === 1 && /\S/.test(e.key) && !e.ctrlKey && !e.metaKey && !e.altKey) {
      const k = e.key.toLowerCase()
      const from = i + 1
      const match = [...list.slice(from), ...list.slice(0, from)].find((b) => b.textContent.trim().toLowerCase().startsWith(k))
      if (match) focusAt(match)
    } else return
    e.preventDefault()
    e.stopPropagation()
  })
  wrap.addEventListener('focusout', (e) => {
    if (e.relatedTarget && !wrap.contains(e.relatedTarget)) finish('blur')
  })
  document.addEventListener('mousedown', outside, true)
  window.addEventListener('resize', blur)
  openOne = () => finish('blur')
  return { el: wrap, close: () => finish('blur') }
}
