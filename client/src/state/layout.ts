// Which tile the room shows large (the stage) and how the rest are arranged (#18).
//
// A pinned tile wins; else someone else's screen share; else, in speaker view, the last
// person who spoke (never ourselves while anyone else is here). The grid view has no stage.

export type Layout = 'grid' | 'speaker'
export type StageReason = 'pinned' | 'screen' | 'speaker'

export interface StageInput {
  layout: Layout
  /** Tiles in their room order (ourselves included). */
  ids: string[]
  selfId: string | null
  pinned: string | null
  /** Who shares a screen, in room order. */
  screens: string[]
  /** Who spoke last (any tile), or null. */
  lastSpeaker: string | null
}

export interface Arrangement {
  stage: string | null
  reason: StageReason | null
  /** Everyone else, in room order: the grid, or the strip beside the stage. */
  others: string[]
}

export function arrange(input: StageInput): Arrangement {
  const { ids, selfId } = input
  const present = (id: string | null): id is string => id !== null && ids.includes(id)
  let stage: string | null = null
  let reason: StageReason | null = null
  const remoteScreen = input.screens.find((id) => id !== selfId && ids.includes(id)) ?? null
  if (present(input.pinned)) {
    stage = input.pinned
    reason = 'pinned'
  } else if (remoteScreen !== null) {
    stage = remoteScreen
    reason = 'screen'
  } else if (input.layout === 'speaker' && ids.length > 1) {
    const remotes = ids.filter((id) => id !== selfId)
    stage = present(input.lastSpeaker) && input.lastSpeaker !== selfId ? input.lastSpeaker : (remotes[0] ?? null)
    reason = stage !== null ? 'speaker' : null
  }
  return { stage, reason, others: ids.filter((id) => id !== stage) }
}

/** Columns of a grid of n tiles: as square as the room allows (1, 2, 3, 4, then 5 for 17+). */
export function gridColumns(n: number): number {
  if (n <= 1) return 1
  if (n <= 4) return 2
  if (n <= 9) return 3
  if (n <= 16) return 4
  return 5
}

/**
 * How many tiles one page of the grid holds (#18), past which the grid pages ("1/2" with
 * previous and next buttons). On a laptop-sized window 25 (a 5x5 grid: at 1280x800 a tile is
 * still about 240x130 px, enough for a face and a readable name); on a phone (the app's
 * narrow layout, up to 700 px wide, where the tiles stack in one scrolling column) 6, so a
 * page is a few swipes long and a phone decodes at most six videos at once. The stage layouts
 * (pin, screen share, speaker view) never page: their strip of small tiles scrolls.
 */
export const TILES_PER_PAGE = { wide: 25, narrow: 6 } as const

export function tilesPerPage(narrow: boolean): number {
  return narrow ? TILES_PER_PAGE.narrow : TILES_PER_PAGE.wide
}

export interface GridPage {
  /** The tiles shown on this page, in room order (ourselves included on every page). */
  ids: string[]
  /** 0-based, clamped to the pages there are. */
  page: number
  pages: number
}

/**
 * One page of the grid. All tiles fit: one page. Else we keep our own tile on every page (one
 * of its places) and the others fill the rest, in room order; ``page`` out of range (people
 * left) is clamped to the last page.
 */
export function paginate(ids: string[], selfId: string | null, perPage: number, page: number): GridPage {
  const per = Math.max(1, Math.floor(perPage))
  if (ids.length <= per) return { ids, page: 0, pages: 1 }
  const self = selfId !== null && ids.includes(selfId) ? selfId : null
  const others = self === null ? ids : ids.filter((id) => id !== self)
  const slots = self === null ? per : Math.max(1, per - 1)
  const pages = Math.ceil(others.length / slots)
  const at = Math.min(Math.max(0, Math.floor(page)), pages - 1)
  const shown = new Set(others.slice(at * slots, (at + 1) * slots))
  if (self !== null) shown.add(self)
  return { ids: ids.filter((id) => shown.has(id)), page: at, pages }
}
