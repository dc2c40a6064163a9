// The Linux twin of the flash device: one file per erase block in a directory.
// Erase is a truncate (cheap, and a missing or short file reads as 0xff), a
// program is one positional write, sync fsyncs every block file touched since
// the last sync (beside later programs), and the directory only when a block
// file was created. Which
// block files exist is read once at open, so reads and erases of blocks never
// written cost no system call, and only bytes past a file's end are filled
// with 0xff.

import { promises as fsp, constants as fsc } from 'node:fs'
import { join } from 'node:path'
import { CanopyError } from '../errors'
import { FLASH_OPEN_FILES_MAX } from '../limits'
import { ERASED_BYTE, checkGeometry, checkRange, sameGeometry, type Flash, type FlashGeometry } from './flash'

const GEOMETRY_FILE = 'geometry.json'
const GEOMETRY_FILE_BYTES_MAX = 1024
const BLOCK_FILE = /^b([0-9a-f]{6})$/

const deviceError = (err: unknown, op: string, block: number): CanopyError => {
  if (CanopyError.is(err)) return err
  const code = (err as NodeJS.ErrnoException).code === 'ENOSPC' ? 'FLASH_NO_SPACE' : 'FLASH_IO'
  return CanopyError.from(err, code, `flash ${op} of block ${block}`)
}

/** Flash devices made here (the cache skips read-back checks on them: the page cache would answer). */
const made = new WeakSet<Flash>()

/** A FileFlash is a Flash; FileFlash.open makes one, FileFlash.is tells one apart. */
export type FileFlash = Flash

export const FileFlash = {
  is: (flash: Flash): boolean => made.has(flash),

  async open (dir: string, geometry: FlashGeometry): Promise<FileFlash> {
    checkGeometry(geometry)
    try {
      await fsp.mkdir(dir, { recursive: true, mode: 0o700 })
    } catch (err) {
      throw CanopyError.from(err, 'FLASH_IO', `cannot mkdir ${dir}`)
    }
    const path = join(dir, GEOMETRY_FILE)
    let stored: FlashGeometry | null = null
    try {
      const text = await fsp.readFile(path, 'utf8')
      if (text.length > GEOMETRY_FILE_BYTES_MAX) throw new Error('too large')
      stored = JSON.parse(text) as FlashGeometry
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw CanopyError.from(err, 'FLASH_GEOMETRY_MISMATCH', `unreadable ${path}`)
      }
    }
    if (stored !== null && !sameGeometry(stored, geometry)) {
      throw new CanopyError('FLASH_GEOMETRY_MISMATCH', `${dir}: geometry ${JSON.stringify(stored)}, not ${JSON.stringify(geometry)}`)
    }
    if (stored === null) {
      const tmp = `${path}.tmp`
      await fsp.writeFile(tmp, JSON.stringify(geometry), { mode: 0o600 })
      await fsp.rename(tmp, path)
    }
    const present = new Set<number>()
    for (const name of await fsp.readdir(dir)) {
      const m = BLOCK_FILE.exec(name)
      const block = m === null ? -1 : parseInt(m[1]!, 16)
      if (block >= 0 && block < geometry.blockCount) present.add(block)
    }
    const dirHandle = await fsp.open(dir, fsc.O_RDONLY)
    const flash = fileFlash(dir, { ...geometry }, present, dirHandle)
    await dirHandle.sync()
    return flash
  }
}

function fileFlash (dir: string, g: FlashGeometry, present: Set<number>, dirHandle: fsp.FileHandle): Flash {
  /** Open block files, least recently used first. */
  const handles = new Map<number, fsp.FileHandle>()
  /** File sizes: bytes past the end read as 0xff. */
  const sizes = new Map<number, number>()
  const dirty = new Set<number>()
  let dirDirty = false
  let queue: Promise<unknown> = Promise.resolve()
  let closed = false

  // One operation at a time: an LRU eviction must never close a handle in use.
  const serial = <T>(op: string, block: number, fn: () => Promise<T>, closing = false): Promise<T> => {
    const run = async (): Promise<T> => {
      if (closed && !closing) throw new CanopyError('FLASH_CLOSED', 'flash is closed')
      try {
        return await fn()
      } catch (err) {
        throw deviceError(err, op, block)
      }
    }
    const p = queue.then(run, run)
    queue = p.catch(() => {})
    return p
  }

  /** The block's open file, created if it does not exist yet (then the directory needs a sync). */
  const handle = async (block: number): Promise<fsp.FileHandle> => {
    const open = handles.get(block)
    if (open !== undefined) {
      handles.delete(block)
      handles.set(block, open)
      return open
    }
    const create = !present.has(block)
    const fh = await fsp.open(join(dir, `b${block.toString(16).padStart(6, '0')}`), fsc.O_RDWR | fsc.O_CREAT, 0o600)
    if (create) {
      present.add(block)
      dirDirty = true
      sizes.set(block, 0)
    } else if (!sizes.has(block)) {
      try {
        sizes.set(block, (await fh.stat()).size)
      } catch (err) {
        await fh.close().catch(() => {})
        throw err
      }
    }
    if (handles.size >= FLASH_OPEN_FILES_MAX) {
      const [oldest, old] = handles.entries().next().value as [number, fsp.FileHandle]
      handles.delete(oldest)
      await old.close() // dirty data stays in the page cache; sync() reopens to fsync it
    }
    handles.set(block, fh)
    return fh
  }

  const writeAll = async (fh: fsp.FileHandle, data: Uint8Array, position: number): Promise<void> => {
    for (let done = 0; done < data.length;) {
      done += (await fh.write(data, done, data.length - done, position + done)).bytesWritten
    }
  }

  const flash: Flash = {
    geometry: g,

    read (block, offset, length) {
      checkRange(g, block, offset, length, g.readBytes)
      return serial('read', block, async () => {
        if (!present.has(block)) return Buffer.alloc(length, ERASED_BYTE)
        const fh = await handle(block)
        const avail = Math.min(length, Math.max(0, sizes.get(block)! - offset))
        const out = Buffer.allocUnsafe(length)
        let done = 0
        while (done < avail) {
          const { bytesRead } = await fh.read(out, done, avail - done, offset + done)
          if (bytesRead === 0) break
          done += bytesRead
        }
        return out.fill(ERASED_BYTE, done)
      })
    },

    program (block, offset, data) {
      checkRange(g, block, offset, data.length, g.programBytes)
      return serial('program', block, async () => {
        const fh = await handle(block)
        const size = sizes.get(block)!
        if (offset > size) await writeAll(fh, Buffer.alloc(offset - size, ERASED_BYTE), size)
        await writeAll(fh, data, offset)
        sizes.set(block, Math.max(size, offset + data.length))
        dirty.add(block)
      })
    },

    erase (block) {
      checkRange(g, block, 0, 0, 1)
      return serial('erase', block, async () => {
        if (!present.has(block)) return
        await (await handle(block)).truncate(0)
        sizes.set(block, 0)
        dirty.add(block)
      })
    },

    /**
     * The fsyncs run outside the one-at-a-time queue: programs issued after
     * this call may proceed while they run (what group commit needs). A
     * handle being synced is not closed under it (FileHandle.close waits).
     */
    async sync () {
      const { blocks, syncs } = await serial('sync', -1, async () => {
        const blocks = [...dirty]
        const syncs: Array<Promise<void>> = []
        const start = (fh: fsp.FileHandle): void => { const p = fh.sync(); p.catch(() => {}); syncs.push(p) }
        for (const block of blocks) start(await handle(block))
        if (dirDirty) start(dirHandle)
        dirty.clear()
        dirDirty = false
        return { blocks, syncs }
      })
      const failed = (await Promise.allSettled(syncs)).find((r) => r.status === 'rejected')
      if (failed !== undefined) {
        for (const b of blocks) dirty.add(b)
        dirDirty = true
        throw deviceError(failed.reason, 'sync', -1)
      }
    },

    close () {
      return serial('close', -1, async () => {
        closed = true
        for (const fh of [...handles.values(), dirHandle]) await fh.close().catch(() => {})
        handles.clear()
      }, true)
    }
  }
  made.add(flash)
  return flash
}
