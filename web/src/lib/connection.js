// The connection indicator (#connection) and the banner shown when the server ends
// the session for good (#connection-banner).
//
// #connection[data-state] is one of:
//   connecting  first connection or a reconnect attempt in progress
//   connected   socket open and the document synced with the server
//   offline     no connection (browser offline, or the server unreachable for a while);
//               data-unsent tells how many local changes have not been sent yet
//   closed      the server refused or ended the session for good (signed out, no
//               access, plan deleted, ...); data-close-code holds the close code

const OFFLINE_GRACE_MS = 2500

/**
 * The close codes this file names, for a page whose config lacks some. The server sends its
 * own (server/protocol.py Close) in the page config; tests/test_contracts.py checks these
 * agree with them.
 */
export const CLOSE_CODES = {
  BAD_FRAME: 4400,
  UNAUTHORIZED: 4401,
  FORBIDDEN: 4403,
  PLAN_NOT_FOUND: 4404,
  FRAME_TOO_LARGE: 4413,
  READ_ONLY: 4405,
  SERVER_SHUTDOWN: 1012,
  INTERNAL: 1011,
}

/** Close codes after which reconnecting cannot help, with what we tell the person. */
function terminalMessages (codes, config) {
  const here = window.location.pathname + window.location.search
  const loginUrl = (config.loginUrl || '/login') + '?next=' + encodeURIComponent(here)
  const home = config.homeUrl || '/'
  const reload = { text: 'Reload', href: here }
  return new Map([
    [codes.UNAUTHORIZED, {
      label: 'Signed out',
      title: 'You are signed out.',
      body: 'Sign in again to keep editing this plan.',
      link: { text: 'Sign in', href: loginUrl },
    }],
    [codes.FORBIDDEN, {
      label: 'No access',
      title: 'You no longer have access to this plan.',
      body: 'Ask the plan owner to invite you again.',
      link: { text: 'Back to your plans', href: home },
    }],
    [codes.PLAN_NOT_FOUND, {
      label: 'Plan not found',
      title: 'This plan no longer exists.',
      body: 'It may have been deleted.',
      link: { text: 'Back to your plans', href: home },
    }],
    [codes.READ_ONLY, {
      label: 'View only',
      title: 'You can view this plan but not edit it.',
      body: 'Reload the page to see the latest version.',
      link: reload,
    }],
    [codes.FRAME_TOO_LARGE, {
      label: 'Change too large',
      title: 'Your last change was too large to save.',
      body: 'Reload the page to continue; that change will not be kept.',
      link: reload,
    }],
    [codes.BAD_FRAME, {
      label: 'Sync error',
      title: 'The server could not read a change from this page.',
      body: 'Reload the page to continue.',
      link: reload,
    }],
  ])
}

export class ConnectionStatus {
  /**
   * @param {object} o
   * @param {import('y-websocket').WebsocketProvider} o.provider
   * @param {import('yjs').Doc} o.ydoc
   * @param {object} o.config the page config (closeCodes, loginUrl, ...)
   * @param {HTMLElement} o.el #connection
   * @param {HTMLElement} o.banner #connection-banner
   * @param {import('./pending.js').PendingStore | null} o.pending
   * @param {number} o.unsent changes restored from a previous session, not yet sent
   * @param {(status: ConnectionStatus) => void} o.onChange
   */
  constructor ({ provider, ydoc, config, el, banner, pending, unsent, onChange }) {
    this.provider = provider
    this.ydoc = ydoc
    this.el = el
    this.banner = banner
    this.pending = pending
    this.onChange = onChange
    this.unsent = unsent || 0
    this.everSynced = false
    this.closed = null // { code, reason, message }
    this.state = ''
    this.messages = terminalMessages(config.closeCodes || {}, config)
    this._offlineSince = Date.now()
    this._timer = 0

    // y-websocket calls this for every close the server sent; false = stop reconnecting.
    provider.shouldReconnect = (event) => !this.isTerminal(event.code)

    ydoc.on('update', (_update, origin) => {
      if (origin === provider || provider.wsconnected) return
      this.unsent += 1
      if (this.pending) this.pending.schedule(this.unsent)
      this.render()
    })
    provider.on('status', ({ status }) => {
      if (status === 'connected') this._offlineSince = 0
      else if (!this._offlineSince) this._offlineSince = Date.now()
      this.render()
    })
    provider.on('sync', (synced) => {
      if (synced && provider.wsconnected) {
        this.everSynced = true
        this.unsent = 0
        if (this.pending) this.pending.clear()
      }
      this.render()
    })
    provider.on('connection-close', (event) => {
      if (event && this.isTerminal(event.code)) this.close(event.code, event.reason)
      else this.render()
    })
    window.addEventListener('online', () => {
      if (!this.closed && !provider.wsconnected && provider.shouldConnect) {
        // retry now instead of waiting for the backoff timer
        provider.disconnect()
        provider.connect()
      }
      this.render()
    })
    window.addEventListener('offline', () => this.render())
    // keep unsent edits when the tab goes away before it could send them
    window.addEventListener('pagehide', () => {
      if (this.unsent > 0 && this.pending) this.pending.saveNow(this.unsent)
    })
    window.addEventListener('beforeunload', (event) => {
      if (this.unsent > 0 && (!this.pending || this.pending.failed)) {
        event.preventDefault()
        event.returnValue = ''
      }
    })
    this.render()
  }

  /**
   * Only the closes listed in terminalMessages() stop us. Every other code, including
   * TOO_SLOW (4408), ROOM_RESET (4500), SERVER_SHUTDOWN and INTERNAL, means "try again":
   * y-websocket reconnects with backoff and the sync sends whatever the server lacks.
   */
  isTerminal (code) {
    return this.messages.has(code)
  }

  /** Stop for good and say why (also used when the editor meets content it cannot show). */
  close (code, reason = '', message = null, { disconnect = false } = {}) {
    if (this.closed) return
    this.closed = {
      code,
      reason,
      message: message || this.messages.get(code) || {
        label: 'Disconnected',
        title: 'The server ended this editing session.',
        body: reason || 'Reload the page to continue.',
        link: { text: 'Reload', href: window.location.pathname + window.location.search },
      },
    }
    // y-websocket itself stops after a close its shouldReconnect refused; a close we
    // decide on (disconnect: true) has to drop the socket here.
    this.provider.shouldConnect = false
    if (disconnect) this.provider.disconnect()
    if (this.unsent > 0 && this.pending) this.pending.saveNow(this.unsent)
    this.render()
  }

  computeState () {
    const p = this.provider
    if (this.closed) return { state: 'closed', text: this.closed.message.label }
    if (p.wsconnected && p.synced) return { state: 'connected', text: 'Connected' }
    const retrying = this.everSynced ? 'Reconnecting…' : 'Connecting…'
    if (p.wsconnected) return { state: 'connecting', text: retrying }
    const offline = !p.shouldConnect || !navigator.onLine ||
      (this._offlineSince && Date.now() - this._offlineSince >= OFFLINE_GRACE_MS)
    if (!offline) {
      this._armTimer()
      return { state: 'connecting', text: retrying }
    }
    const n = this.unsent
    let text
    if (n > 0) text = `Offline — ${n} unsent change${n === 1 ? '' : 's'}`
    else if (this.everSynced) text = 'Offline — all changes saved'
    else text = 'Offline — can’t reach the server'
    return { state: 'offline', text }
  }

  _armTimer () {
    if (this._timer) return
    const wait = Math.max(50, OFFLINE_GRACE_MS - (Date.now() - this._offlineSince) + 20)
    this._timer = window.setTimeout(() => {
      this._timer = 0
      this.render()
    }, wait)
  }

  render () {
    const { state, text } = this.computeState()
    const el = this.el
    el.dataset.state = state
    el.dataset.unsent = String(this.unsent)
    if (this.closed) el.dataset.closeCode = String(this.closed.code)
    else delete el.dataset.closeCode
    const label = el.querySelector('.connection-label') || el
    if (label.textContent !== text) label.textContent = text
    el.title = state === 'offline' && this.unsent > 0
      ? 'Your changes are kept in this browser and will be sent when the connection is back.'
      : ''
    this.renderBanner()
    const changed = state !== this.state
    this.state = state
    if (changed && this.onChange) this.onChange(this)
  }

  renderBanner () {
    const banner = this.banner
    if (!banner) return
    if (!this.closed) {
      if (!banner.hidden) {
        banner.hidden = true
        banner.replaceChildren()
      }
      return
    }
    if (banner.dataset.code === String(this.closed.code)) return
    const { title, body, link } = this.closed.message
    const strong = document.createElement('strong')
    strong.textContent = title
    const text = document.createElement('span')
    text.textContent = ' ' + body
    if (this.unsent > 0 && this.pending && !this.pending.failed) {
      text.textContent += ' Your unsent changes are kept in this browser.'
    }
    const parts = [strong, text]
    if (link) {
      const a = document.createElement('a')
      a.href = link.href
      a.textContent = link.text
      a.className = 'btn btn-primary banner-action'
      parts.push(a)
    }
    banner.replaceChildren(...parts)
    banner.dataset.code = String(this.closed.code)
    banner.hidden = false
  }
}
