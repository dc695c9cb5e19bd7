// Which simulcast encodings a camera is published in (#17). Chromium sends no more layers
// than a picture's size allows (960x540 and up: 3; 480x270 and up: 2; below: 1) and drops
// the *top* ones when asked for more, so a 640x480 camera asked for the server's three
// would send a quarter and a half picture and never its full one. Like LiveKit's
// computeVideoEncodings, the app asks for the top layers the size allows: the full picture
// is always among them, and one layer means no simulcast at all.

/** Encodings for a track of this height, from the server's list (lowest first). */
export function simulcastEncodings(
  configured: RTCRtpEncodingParameters[] | undefined,
  height: number | undefined,
): RTCRtpEncodingParameters[] | undefined {
  if (!configured || configured.length < 2) return undefined
  const h = height ?? 0
  const allowed = h >= 540 ? 3 : h >= 270 ? 2 : 1
  const count = Math.min(allowed, configured.length)
  if (count < 2) return undefined
  return configured.slice(configured.length - count).map((e) => ({ ...e }))
}

/** The server's `sfu-layer`: which layer of a track this browser gets, and why. */
export interface SfuLayer {
  mid?: string
  userId?: string
  source?: string
  layer?: string | null
  layers?: string[]
  reason?: string
  frameRate?: 'full' | 'reduced'
}

/** How a track is reduced for this browser's connection: a smaller layer than its tile
 * could show (`picture`), or the top one with its upper temporal layers dropped
 * (`frameRate`); undefined when it is not reduced for bandwidth (a small tile, a
 * preference: the viewer's own choice). */
export function reducedBy(l: SfuLayer): 'picture' | 'frameRate' | undefined {
  if (l.reason !== 'bandwidth') return undefined
  const top = l.layers?.[l.layers.length - 1]
  if (l.frameRate === 'reduced' && l.layer != null && l.layer === top) return 'frameRate'
  return 'picture'
}
