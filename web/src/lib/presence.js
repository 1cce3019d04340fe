// The presence strip (#presence): who has this plan open right now.
//
// One entry per person: awareness clients (browser tabs) that announce the same `user.person`
// (the server's key for an account on this plan) are one entry; a client without one (a
// visitor through a shared link) is an entry of its own.
//   <li class="presence-person" data-client-id="…" data-name="…" data-color="#rrggbb"
//       data-self="true|false" data-tabs="n" data-guest="true|false">
//     <span class="presence-avatar">AL</span><span class="presence-name">Ada</span>
//     <span class="presence-guest">guest</span>        (a link or embed visitor, as the
//                                                       server stamps it: never the client's say)
//     <span class="presence-you">you</span>            (only on your own entry)
//   </li>
// Your own entry comes first; the others are sorted by name.
import { displayName, initials, safeColor, textColorOn } from './people.js'

export class Presence {
  /**
   * @param {import('y-protocols/awareness').Awareness} awareness
   * @param {HTMLElement} el the #presence list
   */
  constructor (awareness, el) {
    this.awareness = awareness
    this.el = el
    this._signature = ''
    this._onChange = () => this.render()
    awareness.on('change', this._onChange)
    this.render()
    // The window changes width: names come back, or give way, as the top bar allows.
    const bar = el.closest('.topbar')
    if (bar && typeof ResizeObserver === 'function') {
      new ResizeObserver(() => this.fit()).observe(bar)
    }
  }

  /** Avatars only when there are many people, or when the names would push the top bar's
   *  last items (the account menu) past the window's edge; names stay in tooltips. */
  fit () {
    this.el.classList.remove('is-compact')
    const bar = this.el.closest('.topbar')
    const crowded = Number(this.el.dataset.count || 0) > 3
    if (crowded || (bar && bar.scrollWidth > bar.clientWidth + 1)) {
      this.el.classList.add('is-compact')
    }
  }

  people () {
    const self = this.awareness.clientID
    const byPerson = new Map()
    for (const [clientId, state] of this.awareness.getStates()) {
      const user = state && state.user
      if (!user) continue
      const key = typeof user.person === 'string' && user.person
        ? `p:${user.person}`
        : `c:${clientId}`
      const entry = {
        clientId,
        name: displayName(user.name),
        color: safeColor(user.color),
        self: clientId === self,
        guest: user.guest === true,
        tabs: 1,
      }
      const known = byPerson.get(key)
      if (!known) {
        byPerson.set(key, entry)
      } else {
        // Your own tab wins, then the lowest client id, so the entry does not flicker.
        const keep = entry.self || (!known.self && clientId < known.clientId) ? entry : known
        byPerson.set(key, { ...keep, tabs: known.tabs + 1 })
      }
    }
    return [...byPerson.values()].sort((a, b) =>
      (b.self - a.self) || a.name.localeCompare(b.name) || a.clientId - b.clientId)
  }

  render () {
    const people = this.people()
    const signature = JSON.stringify(people)
    if (signature === this._signature) return
    this._signature = signature
    const items = people.map((p) => {
      const li = document.createElement('li')
      li.className = 'presence-person'
      li.dataset.clientId = String(p.clientId)
      li.dataset.name = p.name
      li.dataset.color = p.color
      li.dataset.self = String(p.self)
      li.dataset.tabs = String(p.tabs)
      li.dataset.guest = String(p.guest)
      const where = p.tabs > 1 ? `, in ${p.tabs} tabs` : ''
      const who = p.guest ? `${p.name}, guest` : p.name
      li.title = p.self ? `${who} (you${where})` : `${who}${where ? ` (${where.slice(2)})` : ''}`
      const avatar = document.createElement('span')
      avatar.className = 'presence-avatar'
      avatar.style.backgroundColor = p.color
      avatar.style.color = textColorOn(p.color)
      avatar.textContent = initials(p.name)
      avatar.setAttribute('aria-hidden', 'true')
      const name = document.createElement('span')
      name.className = 'presence-name'
      name.textContent = p.name
      li.append(avatar, name)
      if (p.guest) {
        const guest = document.createElement('span')
        guest.className = 'presence-guest'
        guest.textContent = 'guest'
        li.append(guest)
      }
      if (p.self) {
        const you = document.createElement('span')
        you.className = 'presence-you'
        you.textContent = 'you'
        li.append(you)
      }
      return li
    })
    this.el.replaceChildren(...items)
    this.el.dataset.count = String(people.length)
    this.fit()
    const others = people.length - people.filter((p) => p.self).length
    this.el.setAttribute('aria-label', others === 0
      ? 'Only you are here'
      : `${people.length} people here`)
  }
}
