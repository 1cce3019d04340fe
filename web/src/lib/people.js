// Small helpers for showing people: colours, initials, readable text on a colour.

const HEX_COLOR = /^#[0-9a-fA-F]{6}$/

/** A #rrggbb colour we can safely use, or a neutral grey. */
export function safeColor (color) {
  return typeof color === 'string' && HEX_COLOR.test(color) ? color : '#8a94a6'
}

/** '#1a1a1a' or '#ffffff', whichever reads better on `color` (WCAG relative luminance). */
export function textColorOn (color) {
  const hex = safeColor(color)
  const channel = (i) => {
    const c = parseInt(hex.slice(i, i + 2), 16) / 255
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4
  }
  const l = 0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5)
  // White reads well on most saturated colours (and looks better there); near-black
  // only when white would be too faint (contrast below 3:1, e.g. yellows, light greens).
  return 1.05 / (l + 0.05) >= 3 ? '#ffffff' : '#1a1a1a'
}

/** Up to two initials from a display name ("Ada Lovelace" -> "AL", "ada" -> "A"). */
export function initials (name) {
  const words = String(name || '').trim().split(/[\s._@-]+/).filter(Boolean)
  if (words.length === 0) return '?'
  const first = Array.from(words[0])[0] || ''
  const last = words.length > 1 ? Array.from(words[words.length - 1])[0] || '' : ''
  return (first + last).toUpperCase()
}

/** A display name we can show: trimmed, never empty, never absurdly long. */
export function displayName (name) {
  const s = typeof name === 'string' ? name.trim() : ''
  if (!s) return 'Anonymous'
  return s.length > 60 ? s.slice(0, 59) + '…' : s
}
