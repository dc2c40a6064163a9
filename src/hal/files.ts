// Small whole files (identity, config, counters): read bounded, written
// atomically. The Linux twin is here; files-sim.ts keeps them in memory.

import { promises as fsp, constants as fsc } from 'node:fs'
import { dirname, basename, join } from 'node:path'
import { CanopyError } from '../errors'

export interface Files {
  /** The whole file, or null when it does not exist; FILE_TOO_LARGE above maxBytes. */
  read (path: string, maxBytes: number): Promise<Buffer | null>
  /** Temp file, fsync, rename, fsync of the directory: readers see old or new, never a mix. */
  writeAtomic (path: string, data: Uint8Array, mode?: number): Promise<void>
  /** Recursive; new directories are private (0700). */
  mkdir (path: string): Promise<void>
  /** Remove a file; no error when it is missing. */
  remove (path: string): Promise<void>
  /** Permission bits, or null when missing. */
  mode (path: string): Promise<number | null>
}

const ioError = (err: unknown, what: string, path: string): CanopyError =>
  CanopyError.from(err, 'FILE_IO', `${what} ${path}`)

/** Run an fs call; a failure becomes FILE_IO "<what> <path>", except ENOENT: null when `orNull`. */
async function io<T> (what: string, path: string, fn: () => Promise<T>, orNull = false): Promise<T | null> {
  try {
    return await fn()
  } catch (err) {
    if (orNull && (err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw ioError(err, what, path)
  }
}

export function createLinuxFiles (): Files {
  let tmpSeq = 0
  return {
    async read (path, maxBytes) {
      const fh = await io('cannot open', path, () => fsp.open(path, fsc.O_RDONLY), true)
      if (fh === null) return null
      try {
        const { size } = await fh.stat()
        if (size > maxBytes) throw new CanopyError('FILE_TOO_LARGE', `${path}: over ${maxBytes} bytes`)
        // Read one byte past the bound so a file growing under us is still caught.
        const buf = Buffer.alloc(maxBytes + 1)
        let off = 0
        for (;;) {
          const { bytesRead } = await fh.read(buf, off, buf.length - off, off)
          if (bytesRead === 0) break
          off += bytesRead
          if (off > maxBytes) throw new CanopyError('FILE_TOO_LARGE', `${path}: over ${maxBytes} bytes`)
        }
        return buf.subarray(0, off)
      } catch (err) {
        throw ioError(err, 'cannot read', path) // a CanopyError passes as it is
      } finally {
        await fh.close()
      }
    },

    async writeAtomic (path, data, mode = 0o600) {
      const dir = dirname(path)
      const tmp = join(dir, `.${basename(path)}.${process.pid}.${tmpSeq++}.tmp`)
      try {
        const fh = await fsp.open(tmp, 'w', mode)
        try {
          await fh.writeFile(data)
          await fh.chmod(mode) // umask must not widen or narrow what we asked for
          await fh.sync()
        } finally {
          await fh.close()
        }
        await fsp.rename(tmp, path)
        const dh = await fsp.open(dir, fsc.O_RDONLY)
        try { await dh.sync() } finally { await dh.close() }
      } catch (err) {
        await fsp.rm(tmp, { force: true }).catch(() => {})
        throw ioError(err, 'cannot write', path)
      }
    },

    async mkdir (path) {
      await io('cannot mkdir', path, () => fsp.mkdir(path, { recursive: true, mode: 0o700 }))
    },

    async remove (path) {
      await io('cannot remove', path, () => fsp.rm(path, { force: true }))
    },

    mode: (path) => io('cannot stat', path, async () => (await fsp.stat(path)).mode & 0o777, true)
  }
}
