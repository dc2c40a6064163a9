// Channels of a link, by name. The wire carries the number, fixed here, so
// a frame's header is the same on every link and a relay can forward one
// Buffer to many peers. A side's hello lists the channels it serves; a frame
// for a channel the peer does not serve is refused at send.

export const LINK_CHANNELS = {
  /** The link's own control: hello, proof, ping, pong, close. */
  link: 0,
  /** Live streams (src/stream). */
  stream: 1
  // group: 2 — reserved for groups and records (issue 6)
} as const

export type ChannelName = keyof typeof LINK_CHANNELS

export const channelNumber = (name: ChannelName): number => LINK_CHANNELS[name]
