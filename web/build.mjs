// Builds Tandem's browser assets into web/dist/ with esbuild.
//
//   node web/build.mjs            one minified build (what `npm run build` runs)
//   node web/build.mjs --watch    rebuild on change (development)
//
//   node web/build.mjs --src DIR --outdir DIR   (the tests build a changed copy of web/src)
//
// Output (all served by the server at /static/<name>), each named with a hash of its content so
// the server can let browsers cache it for a year (a changed file gets a new name):
//   editor-HASH.js  + .map        the plan editor (Tiptap + Yjs + y-websocket), one IIFE bundle
//   editor-HASH.css + .map        editor-only styles (document, toolbar, carets, presence)
//   app-HASH.css    + .map        the site-wide stylesheet linked by base.html
// Both stylesheets are entries that @import one file per component from src/styles/; esbuild
// inlines the imports in order, so each is still one file.
//   *.gz, *.br                    the same files precompressed, served to browsers that accept them
//   manifest.json                 {"editor.js": "editor-HASH.js", ...}: what templates link to
//
// The build is deterministic: same sources and node_modules give byte-identical files.
import * as esbuild from 'esbuild'
import { mkdir, readdir, rm, stat } from 'node:fs/promises'
import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import zlib from 'node:zlib'

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, '..')
const argValue = (flag, fallback) => {
  const at = process.argv.indexOf(flag)
  return at === -1 ? fallback : path.resolve(process.argv[at + 1])
}
const src = argValue('--src', path.join(here, 'src'))
const outdir = argValue('--outdir', path.join(here, 'dist'))
const watch = process.argv.includes('--watch')

// Both builds (and every watch rebuild) add their entries to one manifest, written whole.
const manifest = {}
const manifestPlugin = {
  name: 'manifest',
  setup (build) {
    build.onEnd((result) => {
      if (result.errors.length) return
      for (const [file, output] of Object.entries(result.metafile.outputs)) {
        const name = path.basename(file)
        if (output.entryPoint) {
          const entry = path.basename(output.entryPoint)
          manifest[entry] = name
        }
        // Precompressed once here instead of on every request: the editor bundle is ~640 KB.
        // Source maps are left alone: only a developer's tools fetch them.
        if (name.endsWith('.map')) continue
        const body = readFileSync(path.join(root, file))
        const level = { [zlib.constants.BROTLI_PARAM_QUALITY]: zlib.constants.BROTLI_MAX_QUALITY }
        writeFileSync(path.join(root, file) + '.gz', zlib.gzipSync(body, { level: 9 }))
        writeFileSync(path.join(root, file) + '.br', zlib.brotliCompressSync(body, { params: level }))
      }
      const sorted = Object.fromEntries(Object.entries(manifest).sort())
      writeFileSync(path.join(outdir, 'manifest.json'), JSON.stringify(sorted, null, 2) + '\n')
    })
  },
}

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
  entryNames: '[name]-[hash]',
  metafile: true,
  plugins: [manifestPlugin],
  // node_modules is found from the project even when --src is a copy elsewhere.
  nodePaths: [path.join(root, 'node_modules')],
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
