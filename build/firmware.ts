// npm run firmware: dist/canopy-firmware-<version>.tar.gz with the bundle,
// the init files (OpenWrt procd, systemd), the default config and a manifest
// holding the SHA-256 of every file. Deterministic: same inputs, same bytes.

import { createHash } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { BUNDLE, ROOT, bundle } from './bundle'
import { tar, type TarEntry } from './tar'
import { defaultConfig } from '../src/config'

const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version

/** Where a packaged agent keeps its state. */
const DEVICE_DATA_DIR = '/var/lib/canopy'
const CONFIG_FILE = join(ROOT, 'firmware', 'canopy.json')

/** Where each file goes on the device (documented in the README). */
const FILES: Array<{ from: string, to: string, mode: number }> = [
  { from: BUNDLE, to: 'usr/lib/canopy/canopy.js', mode: 0o755 },
  { from: join(ROOT, 'README.md'), to: 'usr/lib/canopy/README.md', mode: 0o644 },
  { from: CONFIG_FILE, to: 'etc/canopy/canopy.json', mode: 0o644 },
  { from: join(ROOT, 'firmware', 'openwrt', 'canopy.init'), to: 'etc/init.d/canopy', mode: 0o755 },
  { from: join(ROOT, 'firmware', 'systemd', 'canopy.service'), to: 'lib/systemd/system/canopy.service', mode: 0o644 }
]

/** The shipped config: every default spelled out, so a vendor sees (and can edit) every field. */
export function firmwareConfigText (): string {
  return JSON.stringify({ ...defaultConfig(), dataDir: DEVICE_DATA_DIR }, null, 2) + '\n'
}

export async function firmware (): Promise<{ path: string, bytes: number }> {
  await bundle({ quiet: true })
  const entries: TarEntry[] = FILES.map((f) => ({ path: f.to, data: readFileSync(f.from), mode: f.mode }))
  const manifest = {
    name: 'canopy',
    version,
    node: '>=18',
    nodeFlags: ['--max-old-space-size=48', '--max-semi-space-size=1'],
    files: entries.map((e) => ({ path: e.path, bytes: e.data.length, mode: `0${e.mode.toString(8)}`, sha256: createHash('sha256').update(e.data).digest('hex') }))
  }
  entries.push({ path: 'usr/lib/canopy/MANIFEST.json', data: Buffer.from(JSON.stringify(manifest, null, 2) + '\n'), mode: 0o644 })
  const image = gzipSync(tar(entries, 0), { level: 9 })
  const path = join(ROOT, 'dist', `canopy-firmware-${version}.tar.gz`)
  writeFileSync(path, image)
  return { path, bytes: image.length }
}

if (require.main === module && process.argv.includes('--write-config')) {
  // After a config section is added: npm run firmware -- --write-config
  writeFileSync(CONFIG_FILE, firmwareConfigText())
  console.log(`${CONFIG_FILE} written`)
} else if (require.main === module) {
  firmware().then(
    ({ path, bytes }) => { console.log(`${path}: ${bytes} bytes`) },
    (err: unknown) => { console.error(`firmware failed: ${(err as Error).message}`); process.exit(1) })
}
