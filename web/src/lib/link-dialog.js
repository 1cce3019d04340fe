// The link dialog (#link-dialog): a small form next to the selection that asks for a link's
// address. It replaces window.prompt, which sandboxed CRM iframes block (the embed case), and
// keeps a refused address on screen with the reason instead of dropping what was typed.
//   askLink({anchor, current, check, onDone}): check(text) -> error message or null;
//   onDone(text) runs with the address, '' to remove the link; nothing runs on cancel.
import { placeAt } from './popup.js'

let closeOpen = null

export function askLink ({ anchor, current, check, onDone, onCancel }) {
  if (closeOpen) closeOpen()
  const box = document.createElement('div')
  box.className = 'link-dialog'
  box.id = 'link-dialog'
  box.setAttribute('role', 'dialog')
  box.setAttribute('aria-label', current ? 'Edit link' : 'Add a link')
  const form = document.createElement('form')
  form.noValidate = true
  const label = document.createElement('label')
  label.htmlFor = 'link-dialog-url'
  label.textContent = 'Link address'
  const input = document.createElement('input')
  input.id = 'link-dialog-url'
  input.type = 'text'
  input.inputMode = 'url'
  input.autocomplete = 'off'
  input.spellcheck = false
  input.placeholder = 'https://… or mailto:…'
  input.value = current || ''
  const error = document.createElement('p')
  error.className = 'link-dialog-error'
  error.id = 'link-dialog-error'
  error.setAttribute('role', 'alert')
  error.hidden = true
  const actions = document.createElement('div')
  actions.className = 'link-dialog-actions'
  const button = (text, cls, type = 'button') => {
    const b = document.createElement('button')
    b.type = type
    b.className = cls
    b.textContent = text
    return b
  }
  const apply = button(current ? 'Save' : 'Add link', 'btn btn-primary btn-small', 'submit')
  const cancel = button('Cancel', 'btn btn-small')
  actions.append(apply)
  if (current) {
    const remove = button('Remove link', 'btn btn-small')
    remove.dataset.action = 'remove'
    remove.addEventListener('click', () => finish(''))
    actions.append(remove)
  }
  actions.append(cancel)
  form.append(label, input, error, actions)
  box.append(form)
  document.body.append(box)
  placeAt(box, anchor instanceof Element ? anchor.getBoundingClientRect() : anchor)
  input.focus()
  input.select()

  let done = false
  function finish (value) {
    if (done) return
    done = true
    closeOpen = null
    document.removeEventListener('mousedown', outside, true)
    box.remove()
    if (value === null) { if (onCancel) onCancel() } else onDone(value)
  }
  function outside (e) {
    if (!box.contains(e.target)) finish(null)
  }
  form.addEventListener('submit', (e) => {
    e.preventDefault()
    const text = input.value.trim()
    const problem = text ? check(text) : null
    if (problem) {
      error.textContent = problem
      error.hidden = false
      input.setAttribute('aria-invalid', 'true')
      input.setAttribute('aria-describedby', error.id)
      input.focus()
      return
    }
    finish(text)
  })
  cancel.addEventListener('click', () => finish(null))
  box.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') {
      e.preventDefault()
      e.stopPropagation()
      finish(null)
    }
  })
  document.addEventListener('mousedown', outside, true)
  closeOpen = () => finish(null)
}
