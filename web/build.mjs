// Builds Tandem's browser assets into web/dist/ with esbuild.
//
//   node web/build.mjs            one minified build (what `npm run build` runs)
//   node web/build.mjs --watch    rebuild on change (development)
//
// Output (all served by the server at /static/<name>):
//   editor.js  + editor.js.map    the plan editor (Tiptap + Yjs + y-websocket), one IIFE bundle
//   editor.css + editor.css.map   editor-only styles (document, toolbar, carets, presence)
//   app.css    + app.css.map      the site-wide stylesheet linked by base.html
//
// The build is deterministic: same sources and node_modules give byte-identical files.
import * as esbuild from 'esbuild'
import { mkdir, readdir, rm, stat } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, '..')
const src = path.join(here, 'src')
const outdir = path.join(here, 'dist')
const watch = process.argv.includes('--watch')

// Browsers we support: current Chromium and Firefox (and their ESR / recent releases).
const target = ['chrome111', 'firefox115', 'safari16.4']

const common = {
  absWorkingDir: root,
  bundle: true,
  minify: true,
  sourcemap: 'linked',
  sourcesContent: true,
  target,
  outdir,
  entryNames: '[name]',
  logLevel: 'warning',
  legalComments: 'eof',
  charset: 'utf8',
}

const builds = [
  {
    ...common,
    entryPoints: [path.join(src, 'editor.js')],
    format: 'iife',
    platform: 'browser',
    define: { 'process.env.NODE_ENV': '"production"' },
  },
  {
    ...common,
    entryPoints: [path.join(src, 'editor.css'), path.join(src, 'app.css')],
    loader: { '.css': 'css' },
  },
]

async function report () {
  const names = (await readdir(outdir)).sort()
  for (const name of names) {
    const { size } = await stat(path.join(outdir, name))
    console.log(`  web/dist/${name.padEnd(24)} ${(size / 1024).toFixed(1).padStart(8)} KiB`)
  }
}

const started = Date.now()
// A clean directory each time, so no stale file from an older build is ever served.
await rm(outdir, { recursive: true, force: true })
await mkdir(outdir, { recursive: true })

if (watch) {
  const contexts = await Promise.all(builds.map((b) => esbuild.context(b)))
  await Promise.all(contexts.map((c) => c.watch()))
  console.log('watching web/src for changes (Ctrl-C to stop)')
} else {
  await Promise.all(builds.map((b) => esbuild.build(b)))
  await report()
  console.log(`built web/dist in ${Date.now() - started} ms`)
}
