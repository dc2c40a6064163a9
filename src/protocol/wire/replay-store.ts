// Replay high-water marks kept across restarts of the receiver: written to a
// small file every REPLAY_PERSIST_MS when they changed, and at stop. After a
// power cut the marks may be up to one interval old, so messages a sender
// sent in that last interval could be replayed once to this node (FORMAT.md,
// "Replay"). A damaged file is logged and ignored, never fatal.

import type { Files } from '../../hal'
import { REPLAY_FILE_BYTES_MAX, REPLAY_PERSIST_COUNT_MAX, WIRE_COUNTER_MAX } from '../../limits'
import type { Logger } from '../../log'
import { arrayOf, int, obj, oneOf, str, validate } from '../../validate'
import type { ReplayMark } from './replay'

const FORMAT = 'canopy-wire-replay'

const fileSpec = obj({
  format: oneOf([FORMAT] as const),
  marks: arrayOf(obj({ key: str({ min: 64, max: 64, pattern: /^[0-9a-f]{64}$/ }), top: int(1, WIRE_COUNTER_MAX) }), { max: REPLAY_PERSIST_COUNT_MAX })
})

export async function loadReplayMarks (files: Files, path: string, log: Logger): Promise<ReplayMark[]> {
  try {
    const data = await files.read(path, REPLAY_FILE_BYTES_MAX)
    if (!data) return []
    return validate(fileSpec, JSON.parse(data.toString('utf8')), 'INPUT_INVALID', 'replay marks').marks
  } catch (err) {
    log.warn('replay marks unreadable; starting without them', { path, err })
    return []
  }
}

export async function saveReplayMarks (files: Files, path: string, marks: readonly ReplayMark[]): Promise<void> {
  const doc = { format: FORMAT, marks: marks.slice(0, REPLAY_PERSIST_COUNT_MAX) }
  await files.writeAtomic(path, Buffer.from(JSON.stringify(doc) + '\n'), 0o600)
}
