// Local media: getUserMedia with fallbacks and clear messages, device lists, and the
// audio-level meter behind the speaking indicator.

import { t } from '../i18n'

export interface DeviceChoice {
  audioDeviceId?: string
  videoDeviceId?: string
  /** Where the others' sound plays (HTMLMediaElement.setSinkId), where the browser can. */
  audioOutputId?: string
}

export interface LocalMediaResult {
  stream: MediaStream | null
  /** A message for the user when some or all media could not be opened. */
  problem: string | null
  /** The DOMException name when opening failed (NotAllowedError: denied). */
  errorName?: string
}

export function audioConstraints(rawAudio: boolean, deviceId?: string): MediaTrackConstraints {
  const c: MediaTrackConstraints = {}
  if (deviceId) c.deviceId = { exact: deviceId }
  if (rawAudio) {
    // Testing aid (?raw_audio=1): keep a test tone as it is.
    c.echoCancellation = false
    c.noiseSuppression = false
    c.autoGainControl = false
  }
  return c
}

export function videoConstraints(deviceId?: string): MediaTrackConstraints {
  const c: MediaTrackConstraints = { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 24 } }
  if (deviceId) c.deviceId = { exact: deviceId }
  return c
}

export function describeMediaError(err: unknown): string {
  const name = (err as { name?: string })?.name ?? ''
  switch (name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return t('media.denied')
    case 'NotFoundError':
    case 'OverconstrainedError':
      return t('media.notFound')
    case 'NotReadableError':
    case 'AbortError':
      return t('media.inUse')
    case 'TypeError':
      return t('media.insecure')
    default:
      return name ? t('media.couldNotOpenNamed', { name }) : t('media.couldNotOpen')
  }
}

type GetUserMedia = (c: MediaStreamConstraints) => Promise<MediaStream>

/**
 * Opens camera and microphone; if both together fail for lack of a device, tries each alone.
 * A denied permission or no device at all gives a null stream and a message: the user can
 * still join, receive-only.
 */
export async function openLocalMedia(
  opts: { rawAudio: boolean; audio?: boolean; video?: boolean } & DeviceChoice,
  getUserMedia: GetUserMedia | null = defaultGetUserMedia(),
): Promise<LocalMediaResult> {
  const wantAudio = opts.audio ?? true
  const wantVideo = opts.video ?? true
  if (!getUserMedia) {
    return { stream: null, problem: describeMediaError({ name: 'TypeError' }) }
  }
  if (!wantAudio && !wantVideo) return { stream: null, problem: null }
  const audio = wantAudio ? audioConstraints(opts.rawAudio, opts.audioDeviceId) : false
  const video = wantVideo ? videoConstraints(opts.videoDeviceId) : false
  try {
    return { stream: await getUserMedia({ audio, video }), problem: null }
  } catch (err) {
    const name = (err as { name?: string })?.name
    if (name === 'NotAllowedError' || name === 'SecurityError' || !(audio && video)) {
      return { stream: null, problem: describeMediaError(err), errorName: name }
    }
    // One of the two devices may exist: try them one at a time.
    for (const [c, missing] of [
      [{ audio }, 'camera'],
      [{ video }, 'microphone'],
    ] as const) {
      try {
        const stream = await getUserMedia(c)
        return { stream, problem: missing === 'camera' ? t('media.noCamera') : t('media.noMicrophone') }
      } catch {
        /* try the next */
      }
    }
    return { stream: null, problem: describeMediaError(err), errorName: name }
  }
}

function defaultGetUserMedia(): GetUserMedia | null {
  if (typeof navigator === 'undefined' || !navigator.mediaDevices?.getUserMedia) return null
  return (c) => navigator.mediaDevices.getUserMedia(c)
}

export interface Devices {
  audioInputs: MediaDeviceInfo[]
  videoInputs: MediaDeviceInfo[]
  /** Empty where the page cannot choose the output (no setSinkId: Firefox before 116, Safari). */
  audioOutputs: MediaDeviceInfo[]
}

export function canChooseOutput(): boolean {
  return typeof HTMLMediaElement !== 'undefined' && 'setSinkId' in HTMLMediaElement.prototype
}

export async function listDevices(): Promise<Devices> {
  if (!navigator.mediaDevices?.enumerateDevices) return { audioInputs: [], videoInputs: [], audioOutputs: [] }
  const all = await navigator.mediaDevices.enumerateDevices()
  // Before permission is granted, browsers list devices without ids or labels.
  return {
    audioInputs: all.filter((d) => d.kind === 'audioinput'),
    videoInputs: all.filter((d) => d.kind === 'videoinput'),
    audioOutputs: canChooseOutput() ? all.filter((d) => d.kind === 'audiooutput') : [],
  }
}

// ---- audio levels ---------------------------------------------------------------------

let sharedContext: AudioContext | null = null

/** One AudioContext for the page (meters, recording mix). */
export function audioContext(): AudioContext | null {
  if (typeof AudioContext === 'undefined') return null
  if (!sharedContext || sharedContext.state === 'closed') sharedContext = new AudioContext()
  if (sharedContext.state === 'suspended') void sharedContext.resume().catch(() => undefined)
  return sharedContext
}

/** Root mean square of byte time-domain samples (128 = silence), 0..1. */
export function rmsLevel(samples: Uint8Array): number {
  if (samples.length === 0) return 0
  let sum = 0
  for (const v of samples) {
    const x = (v - 128) / 128
    sum += x * x
  }
  return Math.sqrt(sum / samples.length)
}

export const SPEAKING_THRESHOLD = 0.02

/** Measures the level of a stream's audio every `intervalMs`; returns a stop function. */
export function watchAudioLevel(
  stream: MediaStream,
  onLevel: (level: number) => void,
  intervalMs = 150,
): () => void {
  const ctx = audioContext()
  if (!ctx || stream.getAudioTracks().length === 0) return () => undefined
  const source = ctx.createMediaStreamSource(stream)
  const analyser = ctx.createAnalyser()
  analyser.fftSize = 512
  source.connect(analyser)
  const buf = new Uint8Array(analyser.fftSize)
  const timer = setInterval(() => {
    analyser.getByteTimeDomainData(buf)
    onLevel(rmsLevel(buf))
  }, intervalMs)
  return () => {
    clearInterval(timer)
    source.disconnect()
    analyser.disconnect()
  }
}
