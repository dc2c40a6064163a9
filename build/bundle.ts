// npm run build: one CommonJS file for Node 18+, minified, that runs from a
// folder with no node_modules. Checks which packages entered the bundle and
// fails above the size budget.

import { build, type Metafile } from 'esbuild'
import { chmodSync, mkdirSync, statSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { BUNDLE_BYTES_MAX } from '../src/limits'

/** Packages allowed inside the bundle (design.md: cbor-x is the one runtime dependency). */
const ALLOWED_PACKAGES = new Set(['cbor-x'])
/** Optional native accelerator of cbor-x: never bundled, never required at run time. */
const LEFT_OUT = ['cbor-extract']

export const ROOT = resolve(__dirname, '..')
export const BUNDLE = join(ROOT, 'dist', 'canopy.js')

function packagesIn (meta: Metafile): Set<string> {
  const found = new Set<string>()
  for (const input of Object.keys(meta.inputs)) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input)
    if (m !== null) found.add(m[1]!)
  }
  return found
}

export async function bundle (options: { quiet?: boolean } = {}): Promise<{ bytes: number, path: string }> {
  mkdirSync(join(ROOT, 'dist'), { recursive: true })
  const result = await build({
    entryPoints: [join(ROOT, 'src', 'main.ts')],
    outfile: BUNDLE,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node18',
    minify: true,
    legalComments: 'none',
    metafile: true,
    external: LEFT_OUT,
    banner: { js: '#!/usr/bin/env node' },
    logLevel: 'warning'
  })
  const found = packagesIn(result.metafile)
  const foreign = [...found].filter((p) => !ALLOWED_PACKAGES.has(p))
  if (foreign.length > 0) throw new Error(`bundle contains packages not allowed at run time: ${foreign.join(', ')}`)
  chmodSync(BUNDLE, 0o755)
  const bytes = statSync(BUNDLE).size
  writeFileSync(join(ROOT, 'dist', 'meta.json'), JSON.stringify(result.metafile))
  if (!options.quiet) console.log(`dist/canopy.js: ${bytes} bytes (budget ${BUNDLE_BYTES_MAX}); packages inside: ${[...found].join(', ') || 'none'}`)
  if (bytes > BUNDLE_BYTES_MAX) throw new Error(`bundle is ${bytes} bytes, over the ${BUNDLE_BYTES_MAX}-byte budget`)
  return { bytes, path: BUNDLE }
}

if (require.main === module) {
  bundle().catch((err: unknown) => {
    console.error(`build failed: ${(err as Error).message}`)
    process.exit(1)
  })
}
