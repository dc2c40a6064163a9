export * from './ed25519'
export * from './key-text'
