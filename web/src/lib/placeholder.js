// Shows a hint in an empty document (a decoration, so nothing is written to the doc).
import { Extension } from '@tiptap/core'
import { Plugin, PluginKey } from '@tiptap/pm/state'
import { Decoration, DecorationSet } from '@tiptap/pm/view'

export const Placeholder = Extension.create({
  name: 'tandemPlaceholder',
  addOptions () {
    return { text: 'Start writing…' }
  },
  addProseMirrorPlugins () {
    const text = this.options.text
    return [new Plugin({
      key: new PluginKey('tandemPlaceholder'),
      props: {
        decorations: ({ doc }) => {
          const first = doc.firstChild
          const empty = doc.childCount === 1 && first && first.isTextblock && first.content.size === 0
          if (!empty) return null
          return DecorationSet.create(doc, [
            Decoration.node(0, first.nodeSize, { class: 'is-editor-empty', 'data-placeholder': text }),
          ])
        },
      },
    })]
  },
})
