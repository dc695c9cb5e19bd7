// What the SFU needs to know of how this app shows each received video (#17): its m-line on
// the subscribe connection, the tile's height in device pixels, and whether it is on screen
// at all. The server forwards a hidden or off-screen tile nothing and a small tile a small
// simulcast layer (docs/protocol.md#sfu-view).

export interface TileView {
  mid: string
  height: number
  visible: boolean
  /** "low": the lowest layer will do (the user's low bandwidth mode). */
  preference?: 'low'
}

const LOW_BANDWIDTH_KEY = 'sfu.lowBandwidth'

/** Whether the user asked for low bandwidth mode (kept in this browser). */
export function lowBandwidth(): boolean {
  try {
    return globalThis.localStorage?.getItem(LOW_BANDWIDTH_KEY) === '1'
  } catch {
    return false // storage blocked: the mode is off
  }
}

export function setLowBandwidth(on: boolean): void {
  try {
    if (on) globalThis.localStorage?.setItem(LOW_BANDWIDTH_KEY, '1')
    else globalThis.localStorage?.removeItem(LOW_BANDWIDTH_KEY)
  } catch {
    // storage blocked: the choice lasts for this page only (the caller keeps it in state)
  }
}

export interface Box {
  top: number
  bottom: number
  left: number
  right: number
  height: number
  width: number
}

/** A track is reported hidden only after it has had no visible tile this long (ms): a
 * tile is drawn a moment after its track arrives. */
export const HIDDEN_AFTER_MS = 2000

/** One received video: where its elements are (none: not drawn), and since when it exists. */
export interface Shown {
  mid: string
  boxes: Box[]
  since: number
}

/** The views to report, from the boxes of the elements showing each track. */
export function tileViews(
  shown: Shown[],
  viewport: { width: number; height: number },
  devicePixelRatio: number,
  now: number,
  low = false,
): TileView[] {
  const out: TileView[] = []
  for (const s of shown) {
    const onScreen = s.boxes.filter(
      (b) => b.width > 0 && b.height > 0 && b.bottom > 0 && b.right > 0 && b.top < viewport.height && b.left < viewport.width,
    )
    if (!onScreen.length) {
      if (now - s.since >= HIDDEN_AFTER_MS) out.push({ mid: s.mid, height: 0, visible: false })
      continue
    }
    const height = Math.max(...onScreen.map((b) => b.height))
    const view: TileView = { mid: s.mid, height: Math.round(height * devicePixelRatio), visible: true }
    if (low) view.preference = 'low'
    out.push(view)
  }
  return out
}

/** Whether a new report says something the server should hear: a track shown or hidden, a
 * height changed by more than a tenth, or a track added or gone. */
export function viewsChanged(before: TileView[], after: TileView[]): boolean {
  if (before.length !== after.length) return true
  const old = new Map(before.map((v) => [v.mid, v]))
  return after.some((v) => {
    const o = old.get(v.mid)
    return (
      !o ||
      o.visible !== v.visible ||
      o.preference !== v.preference ||
      Math.abs(o.height - v.height) > 0.1 * Math.max(o.height, 1)
    )
  })
}

/** The boxes of the video elements that show a track now (by the track object). */
export function boxesOf(track: MediaStreamTrack, root: ParentNode = document): Box[] {
  const out: Box[] = []
  for (const video of root.querySelectorAll('video')) {
    const stream = video.srcObject
    if (!(stream instanceof MediaStream) || !stream.getVideoTracks().includes(track)) continue
    if (video.offsetParent === null && getComputedStyle(video).position !== 'fixed') continue // display: none
    out.push(video.getBoundingClientRect())
  }
  return out
}
