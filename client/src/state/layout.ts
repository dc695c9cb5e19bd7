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
