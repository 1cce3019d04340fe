// Which link targets Tandem accepts: http(s) and mailto only.

const ALLOWED = /^(https?:\/\/|mailto:)/i
const EMAIL = /^[^\s@<>()"]+@[^\s@<>()"]+\.[^\s@<>()"]+$/
const HOSTISH = /^(localhost|[\w-]+(\.[\w-]+)+)(:\d+)?([/?#]\S*)?$/i

/** True when `href` is an absolute http(s) or mailto URL, with no surrounding whitespace. */
export function isAllowedHref (href) {
  if (typeof href !== 'string') return false
  const s = href.trim()
  // Exactly as stored, as the server's exports check it (crdt/prosemirror.py safe_href): URL
  // parsing forgives surrounding spaces and inner tabs or newlines, which the exports do not.
  if (s !== href || /[\u0000-\u001f\u007f]/.test(s)) return false
  if (!ALLOWED.test(s)) return false
  try {
    const url = new URL(s)
    if (url.protocol === 'mailto:') return s.length > 'mailto:'.length
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== ''
  } catch {
    return false
  }
}

/**
 * What a person typed into the link prompt, as a safe href, or null if it is not
 * an http(s)/mailto link. "example.com/x" becomes "https://example.com/x" and
 * "ada@example.com" becomes "mailto:ada@example.com".
 */
export function normalizeHref (input) {
  const s = String(input || '').trim()
  if (!s || /\s/.test(s)) return null
  if (isAllowedHref(s)) return s
  if (EMAIL.test(s) && !s.includes('/')) return 'mailto:' + s
  if (HOSTISH.test(s) && isAllowedHref('https://' + s)) return 'https://' + s
  return null
}
