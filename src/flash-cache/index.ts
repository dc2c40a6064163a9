// Crash-safe, bounded, content-addressed piece store on flash (issue 4). Its only door.
export { FlashCache, boundBytesMax, type FlashCacheOptions, type FlashCacheStats } from './store'
export type { VerifyReads } from './reader'
export { pieceKey, type PieceHash } from './key'
export type { RecoveryReport } from './recover'
export type { WriteBudgetStatus } from './budget'
export { FlashCacheService, checkCacheConfig, cacheGeometry, CACHE_FLASH_NAME } from './service'
