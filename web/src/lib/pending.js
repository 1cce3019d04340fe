// Keeps edits that have not reached the server across a reload or a closed tab.
//
// While there are unsent changes, the whole document state (a Yjs update) is kept in
// localStorage under one key per plan and user. When the next session of this page
// connects and syncs, the saved state is merged back (a CRDT merge: nothing that the
// server already has is duplicated) and sent, and the key is removed. Nothing is kept
// while everything is saved, so a shared computer does not keep plans around.
import * as Y from 'yjs'
import { fromBase64, toBase64 } from 'lib0/buffer'

const VERSION = 1
const MAX_AGE_MS = 30 * 24 * 3600 * 1000

export class PendingStore {
  /**
   * @param {Y.Doc} ydoc
   * @param {string} planId
   * @param {string} userName
   */
  constructor (ydoc, planId, userName) {
    this.ydoc = ydoc
    this.key = `tandem:pending:${planId}:${userName}`
    this.failed = false
    this._timer = 0
  }

  /** Merge a saved unsent state into the doc. Returns how many changes it held (0 if none). */
  restore () {
    let raw
    try {
      raw = window.localStorage.getItem(this.key)
    } catch {
      return 0
    }
    if (!raw) return 0
    try {
      const saved = JSON.parse(raw)
      if (saved.v !== VERSION || Date.now() - saved.savedAt > MAX_AGE_MS) {
        this.clear()
        return 0
      }
      Y.applyUpdate(this.ydoc, fromBase64(saved.update), 'tandem-restore')
      return Math.max(1, saved.unsent | 0)
    } catch (err) {
      console.warn('[tandem] could not restore unsent changes', err)
      this.clear()
      return 0
    }
  }

  /** Save soon (debounced); `unsent` is the count to show after a reload. */
  schedule (unsent) {
    this._unsent = unsent
    if (this._timer) return
    this._timer = window.setTimeout(() => this.saveNow(), 250)
  }

  /** Save at once (used on pagehide, when a timer might never fire). */
  saveNow (unsent = this._unsent) {
    window.clearTimeout(this._timer)
    this._timer = 0
    try {
      const update = toBase64(Y.encodeStateAsUpdate(this.ydoc))
      window.localStorage.setItem(this.key, JSON.stringify({
        v: VERSION, savedAt: Date.now(), unsent, update,
      }))
      this.failed = false
    } catch (err) {
      // quota exceeded or storage disabled: the edits stay in memory only
      this.failed = true
      console.warn('[tandem] could not keep unsent changes in this browser', err)
    }
  }

  clear () {
    window.clearTimeout(this._timer)
    this._timer = 0
    this.failed = false
    try {
      window.localStorage.removeItem(this.key)
    } catch {}
  }
}
