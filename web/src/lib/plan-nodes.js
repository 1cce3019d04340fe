// The plan-document contract (docs/plan-document.md) in the editor's schema: task and row ids,
// task status and milestone flag, and the inline owner (mention) and due-date nodes.
//
// Without these, y-tiptap drops what its schema does not know: it deletes mention and dueDate
// nodes from the shared document and strips ids when a task is edited. These are plain,
// read-only renderings that keep the data intact; the editor's typing UI (@mentions, date
// shortcuts) builds on them.
import { Extension, Node, mergeAttributes } from '@tiptap/core'

const dataAttr = (name, attr) => ({
  default: null,
  parseHTML: (el) => el.getAttribute(attr),
  renderHTML: (attrs) => (attrs[name] == null ? {} : { [attr]: attrs[name] }),
})

export const PlanAttributes = Extension.create({
  name: 'planAttributes',
  addGlobalAttributes () {
    return [
      {
        types: ['taskItem'],
        attributes: {
          id: dataAttr('id', 'data-task-id'),
          status: dataAttr('status', 'data-status'),
          milestone: {
            default: null,
            parseHTML: (el) => (el.getAttribute('data-milestone') === 'true' ? true : null),
            renderHTML: (attrs) => (attrs.milestone ? { 'data-milestone': 'true' } : {}),
          },
        },
      },
      { types: ['tableRow'], attributes: { id: dataAttr('id', 'data-row-id') } },
    ]
  },
})

export const Mention = Node.create({
  name: 'mention',
  group: 'inline',
  inline: true,
  atom: true,
  selectable: true,
  addAttributes () {
    return {
      id: dataAttr('id', 'data-id'),
      label: dataAttr('label', 'data-label'),
      side: dataAttr('side', 'data-side'),
    }
  },
  parseHTML () {
    return [{ tag: 'span[data-type="mention"]' }]
  },
  renderHTML ({ node, HTMLAttributes }) {
    return [
      'span',
      mergeAttributes({ 'data-type': 'mention', class: 'chip chip-owner' }, HTMLAttributes),
      `@${node.attrs.label || ''}`,
    ]
  },
  renderText ({ node }) {
    return `@${node.attrs.label || ''}`
  },
})

export const DueDate = Node.create({
  name: 'dueDate',
  group: 'inline',
  inline: true,
  atom: true,
  selectable: true,
  addAttributes () {
    return { date: dataAttr('date', 'data-date') }
  },
  parseHTML () {
    return [{ tag: 'span[data-type="dueDate"]' }]
  },
  renderHTML ({ node, HTMLAttributes }) {
    return [
      'span',
      mergeAttributes({ 'data-type': 'dueDate', class: 'chip chip-due' }, HTMLAttributes),
      node.attrs.date || '',
    ]
  },
  renderText ({ node }) {
    return node.attrs.date || ''
  },
})
