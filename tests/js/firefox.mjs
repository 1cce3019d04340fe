// Test helper: Debian's Firefox (firefox-esr) driven over WebDriver BiDi by puppeteer-core, for
// the Python browser tests. Playwright drives Chromium there; its own Firefox needs a patched
// build it cannot download here, and its BiDi path asks for commands Firefox ESR lacks.
// Run it with the repo root as the working directory so node_modules resolves:
//
//   node tests/js/firefox.mjs [<firefox executable, default /usr/bin/firefox-esr>]
//
// stdin: one JSON command per line; stdout: one JSON answer per command, in order. Pages are
// named by the test; each lives in its own browser context (its own cookies), like a person.
//   {"cmd": "version"}                                  -> {"value": "firefox/..."}
//   {"cmd": "open", "page": p}                          new context + page, 1280 x 900
//   {"cmd": "goto", "page": p, "url": u}                loads u, -> {"value": final URL}
//   {"cmd": "fill", "page": p, "selector": s, "value": v}
//   {"cmd": "click", "page": p, "selector": s, "navigates": bool}
//   {"cmd": "press", "page": p, "key": k}               e.g. "Enter", "Control+End"
//   {"cmd": "type", "page": p, "text": t, "delay": ms}
//   {"cmd": "waitFor", "page": p, "js": expr}           waits until expr is truthy
//   {"cmd": "eval", "page": p, "js": expr}              -> {"value": JSON-able result}
//   {"cmd": "viewport", "page": p, "width": w, "height": h}
//   {"cmd": "screenshot", "page": p, "path": file}
//   {"cmd": "quit"}                                     closes Firefox and exits 0
// Waits take "timeoutMs" (default 15000); a failed command answers {"error": message}.
import { createInterface } from 'node:readline'
import puppeteer from 'puppeteer-core'

const executablePath = process.argv[2] || '/usr/bin/firefox-esr'
const browser = await puppeteer.launch({
  browser: 'firefox',
  executablePath,
  headless: true,
  // Firefox's own services (updates, telemetry, safe browsing) cannot be reached from a closed
  // network; keep it from trying, so a test only ever talks to the server under test.
  extraPrefsFirefox: {
    'app.update.enabled': false,
    'browser.safebrowsing.malware.enabled': false,
    'browser.safebrowsing.phishing.enabled': false,
    'datareporting.policy.dataSubmissionEnabled': false,
    'network.captive-portal-service.enabled': false,
    'network.connectivity-service.enabled': false,
    'toolkit.telemetry.enabled': false
  }
})
const pages = new Map()

const page = (name) => {
  const found = pages.get(name)
  if (!found) throw new Error(`no page named ${name}`)
  return found
}

// Keys as Playwright spells them ("Control+End"): modifiers held while the last key is pressed.
const press = async (p, combo) => {
  const keys = combo.split('+')
  const last = keys.pop()
  for (const key of keys) await p.keyboard.down(key)
  await p.keyboard.press(last)
  for (const key of keys.reverse()) await p.keyboard.up(key)
}

const commands = {
  version: async () => ({ value: await browser.version() }),
  open: async ({ page: name }) => {
    const context = await browser.createBrowserContext()
    const p = await context.newPage()
    await p.setViewport({ width: 1280, height: 900 })
    pages.set(name, p)
    return {}
  },
  goto: async ({ page: name, url, timeoutMs }) => {
    const p = page(name)
    await p.goto(url, { waitUntil: 'load', timeout: timeoutMs })
    return { value: p.url() }
  },
  fill: async ({ page: name, selector, value, timeoutMs }) => {
    await page(name).locator(selector).setTimeout(timeoutMs).fill(value)
    return {}
  },
  click: async ({ page: name, selector, navigates, timeoutMs }) => {
    const p = page(name)
    const click = p.locator(selector).setTimeout(timeoutMs).click()
    if (navigates) await Promise.all([p.waitForNavigation({ timeout: timeoutMs }), click])
    else await click
    return { value: p.url() }
  },
  press: async ({ page: name, key }) => {
    await press(page(name), key)
    return {}
  },
  type: async ({ page: name, text, delay }) => {
    await page(name).keyboard.type(text, { delay: delay ?? 10 })
    return {}
  },
  waitFor: async ({ page: name, js, timeoutMs }) => {
    await page(name).waitForFunction(js, { timeout: timeoutMs, polling: 100 })
    return {}
  },
  eval: async ({ page: name, js }) => ({ value: await page(name).evaluate(js) }),
  viewport: async ({ page: name, width, height }) => {
    await page(name).setViewport({ width, height })
    return {}
  },
  screenshot: async ({ page: name, path }) => {
    await page(name).screenshot({ path })
    return {}
  }
}

const reply = (value) => new Promise((resolve) => process.stdout.write(JSON.stringify(value) + '\n', resolve))

for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue
  const { cmd, ...args } = JSON.parse(line)
  if (cmd === 'quit') break
  const run = commands[cmd]
  try {
    if (!run) throw new Error(`unknown command ${cmd}`)
    await reply(await run({ timeoutMs: 15000, ...args }))
  } catch (err) {
    await reply({ error: String(err && err.message ? err.message : err) })
  }
}
await browser.close()
process.exit(0)
