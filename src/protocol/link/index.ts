// The peer link: authenticated, framed, bounded connections between agents
// over hal.net (real TCP or the simulated network). Streams use it today;
// groups (issue 6) add a channel and encryption on top.
export { LINK_CHANNELS, channelNumber, type ChannelName } from './channels'
export { FRAME_HEADER_BYTES, createFrameDecoder, type FrameDecoder, allocFrame, encodeFrame, framePayload } from './frame'
export { CLOSE_REASONS, LINK_VERSION, PROOF_DOMAIN, type CloseReason, type Hello } from './control'
export { createLink, type Link, type LinkIdentity, type LinkOptions, type LinkTimings, type SendOptions, type LinkCounters } from './link'
export { createLinkHost, type LinkHost, type LinkHostOptions, type ChannelHandler, type LinkHostCounters } from './host'
export { byteReader, byteWriter, sha256, type ByteReader, type ByteWriter, textBytes, U8, U16, U32, OFFSET, blob, decodeFields, decodeTyped, encodeFields, hexId, list, raw, record, text, uint, type Field } from './bytes'
export { createFramePool, type FramePool, type FramePoolCounters } from './pool'

/** The link port assumed for a peer whose description does not give one. */
export const LINK_PORT_DEFAULT = 8788
export { createLinkService, type LinkService, type LinkServiceOptions } from './service'
