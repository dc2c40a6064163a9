// In-memory twin of Files for simulations: many agents in one process, each
// with its own "disk".

import { CanopyError } from '../errors'
import type { Files } from './files'

export class SimFiles implements Files {
  readonly entries = new Map<string, { data: Buffer, mode: number }>()
  readonly dirs = new Set<string>()

  async read (path: string, maxBytes: number): Promise<Buffer | null> {
    const e = this.entries.get(path)
    if (e === undefined) return null
    if (e.data.length > maxBytes) throw new CanopyError('FILE_TOO_LARGE', `${path} is ${e.data.length} bytes, more than ${maxBytes}`)
    return Buffer.from(e.data)
  }

  async writeAtomic (path: string, data: Uint8Array, mode = 0o600): Promise<void> {
    this.entries.set(path, { data: Buffer.from(data), mode })
  }

  async mkdir (path: string): Promise<void> { this.dirs.add(path) }
  async remove (path: string): Promise<void> { this.entries.delete(path) }
  async mode (path: string): Promise<number | null> { return this.entries.get(path)?.mode ?? null }
}
