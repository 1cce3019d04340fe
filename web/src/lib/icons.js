// Toolbar icons as data (24x24, stroke icons in the style of Lucide, ISC licence),
// turned into SVG elements with DOM calls: no HTML strings anywhere.

const SVG_NS = 'http://www.w3.org/2000/svg'

const ICONS = {
  bold: [['path', { d: 'M6 12h9a4 4 0 0 1 0 8H7a1 1 0 0 1-1-1V5a1 1 0 0 1 1-1h7a4 4 0 0 1 0 8' }]],
  italic: [
    ['line', { x1: 19, x2: 10, y1: 4, y2: 4 }],
    ['line', { x1: 14, x2: 5, y1: 20, y2: 20 }],
    ['line', { x1: 15, x2: 9, y1: 4, y2: 20 }],
  ],
  link: [
    ['path', { d: 'M10 13a5 5 0 0 0 7.54.54l3-3a5 5 0 0 0-7.07-7.07l-1.72 1.71' }],
    ['path', { d: 'M14 11a5 5 0 0 0-7.54-.54l-3 3a5 5 0 0 0 7.07 7.07l1.71-1.71' }],
  ],
  bulletList: [
    ['path', { d: 'M9 6h11' }], ['path', { d: 'M9 12h11' }], ['path', { d: 'M9 18h11' }],
    ['circle', { cx: 4.5, cy: 6, r: 1, fill: 'currentColor' }],
    ['circle', { cx: 4.5, cy: 12, r: 1, fill: 'currentColor' }],
    ['circle', { cx: 4.5, cy: 18, r: 1, fill: 'currentColor' }],
  ],
  orderedList: [
    ['path', { d: 'M10 6h11' }], ['path', { d: 'M10 12h11' }], ['path', { d: 'M10 18h11' }],
    ['path', { d: 'M4 6h1v4' }], ['path', { d: 'M4 10h2' }],
    ['path', { d: 'M6 18H4c0-1 2-2 2-3s-1-1.5-2-1' }],
  ],
  taskList: [
    ['rect', { x: 3, y: 4, width: 6, height: 6, rx: 1.5 }],
    ['path', { d: 'm3 17 2 2 4-4' }],
    ['path', { d: 'M13 7h8' }], ['path', { d: 'M13 17h8' }],
  ],
  table: [
    ['rect', { x: 3, y: 3, width: 18, height: 18, rx: 2 }],
    ['path', { d: 'M3 9h18' }], ['path', { d: 'M3 15h18' }], ['path', { d: 'M9 3v18' }], ['path', { d: 'M15 3v18' }],
  ],
  rowAdd: [
    ['rect', { x: 3, y: 3, width: 18, height: 8, rx: 2 }],
    ['path', { d: 'M12 15v6' }], ['path', { d: 'M9 18h6' }],
  ],
  rowRemove: [
    ['rect', { x: 3, y: 3, width: 18, height: 8, rx: 2 }],
    ['path', { d: 'M9 18h6' }],
  ],
  colAdd: [
    ['rect', { x: 3, y: 3, width: 8, height: 18, rx: 2 }],
    ['path', { d: 'M15 12h6' }], ['path', { d: 'M18 9v6' }],
  ],
  colRemove: [
    ['rect', { x: 3, y: 3, width: 8, height: 18, rx: 2 }],
    ['path', { d: 'M15 12h6' }],
  ],
  tableRemove: [
    ['path', { d: 'M14 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2v9' }],
    ['path', { d: 'M3 9h18' }], ['path', { d: 'M9 3v18' }],
    ['path', { d: 'm16 17 5 5' }], ['path', { d: 'm21 17-5 5' }],
  ],
  milestone: [
    ['path', { d: 'M12 2.5 21.5 12 12 21.5 2.5 12Z' }],
  ],
  calendar: [
    ['rect', { x: 3, y: 4, width: 18, height: 18, rx: 2 }],
    ['path', { d: 'M16 2v4' }], ['path', { d: 'M8 2v4' }], ['path', { d: 'M3 10h18' }],
  ],
  user: [
    ['circle', { cx: 12, cy: 8, r: 4 }],
    ['path', { d: 'M4 21a8 8 0 0 1 16 0' }],
  ],
  plus: [['path', { d: 'M12 5v14' }], ['path', { d: 'M5 12h14' }]],
  chevronDown: [['path', { d: 'm6 9 6 6 6-6' }]],
  status: [
    ['circle', { cx: 12, cy: 12, r: 9 }],
    ['path', { d: 'M12 3a9 9 0 0 1 0 18Z', fill: 'currentColor' }],
  ],
  contacts: [
    ['circle', { cx: 9, cy: 8, r: 3.5 }], ['path', { d: 'M2.5 20a6.5 6.5 0 0 1 13 0' }],
    ['path', { d: 'M16 4.5a3.5 3.5 0 0 1 0 7' }], ['path', { d: 'M18 14.5a6.5 6.5 0 0 1 3.5 5.5' }],
  ],
  target: [
    ['circle', { cx: 12, cy: 12, r: 9 }], ['circle', { cx: 12, cy: 12, r: 5 }], ['circle', { cx: 12, cy: 12, r: 1, fill: 'currentColor' }],
  ],
  alert: [
    ['path', { d: 'M10.3 3.9 1.8 18a2 2 0 0 0 1.7 3h17a2 2 0 0 0 1.7-3L13.7 3.9a2 2 0 0 0-3.4 0Z' }],
    ['path', { d: 'M12 9v4' }], ['path', { d: 'M12 17h.01' }],
  ],
  undo: [
    ['path', { d: 'M9 14 4 9l5-5' }],
    ['path', { d: 'M4 9h10.5a5.5 5.5 0 0 1 5.5 5.5a5.5 5.5 0 0 1-5.5 5.5H11' }],
  ],
  redo: [
    ['path', { d: 'm15 14 5-5-5-5' }],
    ['path', { d: 'M20 9H9.5A5.5 5.5 0 0 0 4 14.5A5.5 5.5 0 0 0 9.5 20H13' }],
  ],
}

/** An <svg> element for the named icon (decorative: aria-hidden). */
export function icon (name) {
  const svg = document.createElementNS(SVG_NS, 'svg')
  for (const [k, v] of Object.entries({
    viewBox: '0 0 24 24', width: 18, height: 18, fill: 'none', stroke: 'currentColor',
    'stroke-width': 2, 'stroke-linecap': 'round', 'stroke-linejoin': 'round',
    'aria-hidden': 'true', focusable: 'false', class: 'icon',
  })) svg.setAttribute(k, String(v))
  for (const [tag, attrs] of ICONS[name] || []) {
    const el = document.createElementNS(SVG_NS, tag)
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v))
    svg.appendChild(el)
  }
  return svg
}
