// Which simulcast encodings a camera is published in (#17). Chromium sends no more layers
// than a picture's size allows (960x540 and up: 3; 480x270 and up: 2; below: 1) and drops
// the *top* ones when asked for more, so a 640x480 camera asked for the server's three
// would send a quarter and a half picture and never its full one. Like LiveKit's
// computeVideoEncodings, the app asks for the top layers the size allows: the full picture
// is always among them, and one layer means no simulcast at all.

import type { Reduced } from './transport'

/** The capture size a camera is raised to in a simulcast room (the app captures 640x480
 * elsewhere): 720 lines let Chromium send all three layers (a 320x180, 640x360 and 1280x720
 * picture with the default settings), as LiveKit's and Jitsi's apps capture. A camera
 * that cannot give it keeps what it gives (only `ideal` is asked). */
export const SIMULCAST_CAPTURE = { width: { ideal: 1280 }, height: { ideal: 720 } } as const

/** Raises a camera track to SIMULCAST_CAPTURE when the room sends simulcast (its device,
 * frame rate and other constraints kept). Never throws: a camera that refuses keeps its
 * size, and the layers follow from the size it has. */
export async function raiseForSimulcast(
  track: MediaStreamTrack,
  configured: RTCRtpEncodingParameters[] | undefined,
): Promise<void> {
  if (!configured || configured.length < 2 || track.kind !== 'video') return
  if ((track.getSettings?.().height ?? 0) >= SIMULCAST_CAPTURE.height.ideal) return
  const constraints = { ...(track.getConstraints?.() ?? {}), ...SIMULCAST_CAPTURE }
  await track.applyConstraints?.(constraints).catch((err: unknown) => console.warn('camera size', err))
}

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
export function reducedBy(l: SfuLayer): Reduced | undefined {
  if (l.reason !== 'bandwidth') return undefined
  const top = l.layers?.[l.layers.length - 1]
  if (l.frameRate === 'reduced' && l.layer != null && l.layer === top) return 'frameRate'
  return 'picture'
}
