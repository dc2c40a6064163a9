// A simulated flash device with the faults real ones have: power cut after the
// N-th program/erase/sync (unsynced writes kept, dropped, torn or reordered),
// the five littlefs bad-block behaviours, injected EIO/ENOSPC, wear counters.
// The medium (durable bytes, wear, bad blocks) outlives a power cut; reboot()
// returns a fresh handle on it.

import { CanopyError } from '../errors'
import { SIM_FLASH_PENDING_OPS_MAX } from '../limits'
import { ERASED_BYTE, checkGeometry, checkRange, type Flash, type FlashGeometry } from './flash'
import { createSeededRandom, type Random } from './random'

export type UnsyncedPolicy = 'keep' | 'drop' | 'torn' | 'reorder'
export type BadBlockKind = 'prog-error' | 'erase-error' | 'read-error' | 'prog-noop' | 'erase-noop'
export type FlashOp = 'read' | 'program' | 'erase' | 'sync'

export interface SimFlashOptions {
  /** Seed for torn/reorder choices. */
  seed?: number
  /** What a power cut does to writes not yet synced. Default 'drop'. */
  unsynced?: UnsyncedPolicy
  /** Refuse programs onto bytes that are not erased (catches callers that rewrite in place). Default true. */
  checkErased?: boolean
  /** Erases a block survives before it goes bad ('prog-error'). */
  eraseCyclesMax?: number
}

type PendingOp = { kind: 'program', block: number, offset: number, data: Buffer } | { kind: 'erase', block: number }

interface Fault { op: FlashOp, code: 'EIO' | 'ENOSPC', skip: number, times: number }

class Medium {
  readonly durable: Buffer
  readonly wear: Uint32Array
  readonly bad = new Map<number, BadBlockKind>()
  constructor (readonly geometry: FlashGeometry) {
    this.durable = Buffer.alloc(geometry.blockBytes * geometry.blockCount, ERASED_BYTE)
    this.wear = new Uint32Array(geometry.blockCount)
  }
}

export interface SimFlashStats {
  reads: number
  programs: number
  erases: number
  syncs: number
  bytesRead: number
  bytesProgrammed: number
}

export class SimFlash implements Flash {
  readonly geometry: FlashGeometry
  readonly stats: SimFlashStats = { reads: 0, programs: 0, erases: 0, syncs: 0, bytesRead: 0, bytesProgrammed: 0 }
  readonly #medium: Medium
  readonly #visible: Buffer
  #pending: PendingOp[] = []
  readonly #random: Random
  #writes = 0
  #cutAt: number | null = null
  #powered = true
  #closed = false
  #faults: Fault[] = []

  constructor (geometry: FlashGeometry, private readonly options: SimFlashOptions = {}, medium?: Medium) {
    checkGeometry(geometry)
    this.geometry = { ...geometry }
    this.#medium = medium ?? new Medium(this.geometry)
    this.#visible = Buffer.from(this.#medium.durable)
    this.#random = createSeededRandom(options.seed ?? 1)
  }

  // ---- the Flash contract ------------------------------------------------------

  async read (block: number, offset: number, length: number): Promise<Buffer> {
    checkRange(this.geometry, block, offset, length, this.geometry.readBytes)
    this.#live('read', block)
    if (this.#medium.bad.get(block) === 'read-error') throw this.#ioError('read', block)
    this.stats.reads++
    this.stats.bytesRead += length
    const at = block * this.geometry.blockBytes + offset
    return Buffer.from(this.#visible.subarray(at, at + length))
  }

  async program (block: number, offset: number, data: Uint8Array): Promise<void> {
    checkRange(this.geometry, block, offset, data.length, this.geometry.programBytes)
    this.#live('program', block)
    const bad = this.#medium.bad.get(block)
    if (bad === 'prog-error') throw this.#ioError('program', block)
    const at = block * this.geometry.blockBytes + offset
    if (this.options.checkErased !== false) {
      for (let i = 0; i < data.length; i++) {
        if (this.#visible[at + i] !== ERASED_BYTE) {
          throw new CanopyError('FLASH_NOT_ERASED', `program over unerased byte at block ${block} offset ${offset + i}`, { detail: { block, offset: offset + i } })
        }
      }
    }
    this.stats.programs++
    this.stats.bytesProgrammed += data.length
    if (bad !== 'prog-noop') {
      this.#visible.set(data, at)
      this.#remember({ kind: 'program', block, offset, data: Buffer.from(data) })
    }
    this.#countWrite()
  }

  async erase (block: number): Promise<void> {
    checkRange(this.geometry, block, 0, 0, 1)
    this.#live('erase', block)
    const bad = this.#medium.bad.get(block)
    if (bad === 'erase-error') throw this.#ioError('erase', block)
    this.stats.erases++
    if (bad !== 'erase-noop') {
      this.#medium.wear[block]!++
      const max = this.options.eraseCyclesMax
      if (max !== undefined && this.#medium.wear[block]! > max && !this.#medium.bad.has(block)) this.#medium.bad.set(block, 'prog-error')
      const at = block * this.geometry.blockBytes
      this.#visible.fill(ERASED_BYTE, at, at + this.geometry.blockBytes)
      this.#remember({ kind: 'erase', block })
    }
    this.#countWrite()
  }

  async sync (): Promise<void> {
    this.#live('sync', -1)
    this.stats.syncs++
    for (const op of this.#pending) this.#apply(op)
    this.#pending = []
    this.#countWrite()
  }

  async close (): Promise<void> { this.#closed = true }

  // ---- fault injection -------------------------------------------------------------

  /** Program/erase/sync operations so far on this handle. */
  get writeCount (): number { return this.#writes }
  get isPowered (): boolean { return this.#powered }
  get unsyncedOps (): number { return this.#pending.length }

  /** Lose power right after the n-th program/erase/sync from now (n >= 1). null disarms. */
  cutPowerAfter (n: number | null): void {
    this.#cutAt = n === null ? null : this.#writes + Math.max(1, n)
  }

  /** Lose power now. */
  cutPower (): void {
    if (!this.#powered) return
    this.#powered = false
    const policy = this.options.unsynced ?? 'drop'
    const ops = this.#pending
    this.#pending = []
    if (policy === 'keep') for (const op of ops) this.#apply(op)
    if (policy === 'torn') {
      for (const op of ops.slice(0, -1)) this.#apply(op)
      const last = ops.at(-1)
      if (last !== undefined) this.#applyTorn(last)
    }
    if (policy === 'reorder') {
      // Any subset of unsynced writes may have reached the medium, in any order.
      for (const op of ops) if (this.#random.float() < 0.5) this.#apply(op)
    }
  }

  /** A fresh handle on the same medium, powered: what the device sees after boot. */
  reboot (options: SimFlashOptions = this.options): SimFlash {
    this.cutPower()
    this.#closed = true
    return new SimFlash(this.geometry, options, this.#medium)
  }

  /** Make a block bad in one of littlefs's five ways (persists across reboots). */
  setBadBlock (block: number, kind: BadBlockKind | null): void {
    if (kind === null) this.#medium.bad.delete(block)
    else this.#medium.bad.set(block, kind)
  }

  /** Fail `times` operations of kind op after skipping `skip` of them. */
  injectError (op: FlashOp, code: 'EIO' | 'ENOSPC', options: { skip?: number, times?: number } = {}): void {
    this.#faults.push({ op, code, skip: options.skip ?? 0, times: options.times ?? 1 })
  }

  clearErrors (): void { this.#faults = [] }

  /** Erase count of a block. */
  wear (block: number): number { return this.#medium.wear[block] ?? 0 }

  /** Flip bits directly on the medium (bit rot), durable and visible. */
  flipBits (block: number, offset: number, mask = 0x01): void {
    const at = block * this.geometry.blockBytes + offset
    this.#medium.durable[at]! ^= mask
    this.#visible[at]! ^= mask
  }

  /** The durable image (what survives a power cut), for golden-image tests. */
  durableImage (): Buffer { return Buffer.from(this.#medium.durable) }

  /** Load an image onto the medium (e.g. a committed golden image). */
  static fromImage (geometry: FlashGeometry, image: Uint8Array, options: SimFlashOptions = {}): SimFlash {
    const medium = new Medium(geometry)
    if (image.length !== medium.durable.length) throw new CanopyError('FLASH_GEOMETRY_MISMATCH', 'image size does not match geometry')
    medium.durable.set(image)
    return new SimFlash(geometry, options, medium)
  }

  // ---- internals ---------------------------------------------------------------------

  #live (op: FlashOp, block: number): void {
    if (this.#closed) throw new CanopyError('FLASH_CLOSED', 'flash is closed')
    if (!this.#powered) throw new CanopyError('FLASH_POWER_CUT', 'flash has lost power')
    for (const f of this.#faults) {
      if (f.op !== op || f.times <= 0) continue
      if (f.skip > 0) { f.skip--; continue }
      f.times--
      const code = f.code === 'EIO' ? 'FLASH_IO' : 'FLASH_NO_SPACE'
      throw new CanopyError(code, `injected ${f.code} on ${op}`, { detail: { op, block } })
    }
  }

  #ioError (op: FlashOp, block: number): CanopyError {
    return new CanopyError('FLASH_IO', `${op} failed on bad block ${block}`, { detail: { op, block } })
  }

  #remember (op: PendingOp): void {
    if (this.#pending.length >= SIM_FLASH_PENDING_OPS_MAX) throw new CanopyError('LIMIT_REACHED', 'too many unsynced flash operations')
    this.#pending.push(op)
  }

  #countWrite (): void {
    this.#writes++
    if (this.#cutAt !== null && this.#writes >= this.#cutAt) {
      this.#cutAt = null
      this.cutPower()
    }
  }

  #apply (op: PendingOp): void {
    const at = op.block * this.geometry.blockBytes
    if (op.kind === 'erase') this.#medium.durable.fill(ERASED_BYTE, at, at + this.geometry.blockBytes)
    else this.#medium.durable.set(op.data, at + op.offset)
  }

  #applyTorn (op: PendingOp): void {
    const at = op.block * this.geometry.blockBytes
    if (op.kind === 'erase') {
      const n = this.#random.int(this.geometry.blockBytes)
      this.#medium.durable.fill(ERASED_BYTE, at, at + n)
    } else {
      const n = this.#random.int(op.data.length)
      this.#medium.durable.set(op.data.subarray(0, n), at + op.offset)
    }
  }
}
