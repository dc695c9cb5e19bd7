// Local recording: a MediaRecorder over a canvas that composites every tile's video in a grid,
// plus a WebAudio mix of every audio track (local and remote). Stopping gives a file to
// download; nothing leaves the browser. The WebM gets its duration written into it
// (fix-webm-duration: MediaRecorder leaves it out, so players cannot seek), pictures are drawn
// as they are (never mirrored: the mirror is only for one's own preview) and a tile without
// video is drawn as its name's initials, as the meeting shows it.
import fixWebmDuration from 'fix-webm-duration'
import { useCallback, useEffect, useRef, useState } from 'react'
import { t } from '../i18n'
import { audioContext } from '../services/media'

export interface RecordingSource {
  label: string
  video: HTMLVideoElement | null
  stream: MediaStream | null
  /** Whether the tile shows a picture (camera or screen on); else initials are drawn. */
  showsVideo?: boolean
}

export interface LocalRecordingFile {
  url: string
  name: string
  size: number
}

export function initialsOf(name: string): string {
  return (
    name
      .split(/\s+/)
      .filter(Boolean)
      .slice(0, 2)
      .map((w) => [...w][0]?.toUpperCase() ?? '')
      .join('') || '?'
  )
}

export const RECORDING_WIDTH = 1280
export const RECORDING_HEIGHT = 720
const FPS = 25
const PLACEHOLDER = '#2f3a4d' // the avatar colour of a tile without video (styles.css)

/** Grid layout: columns/rows for n tiles on a 16:9 canvas. */
export function gridFor(n: number): { cols: number; rows: number } {
  if (n <= 1) return { cols: 1, rows: 1 }
  const cols = Math.ceil(Math.sqrt(n))
  return { cols, rows: Math.ceil(n / cols) }
}

export function pickMimeType(isSupported: (t: string) => boolean): string {
  for (const t of ['video/webm;codecs=vp8,opus', 'video/webm;codecs=vp9,opus', 'video/webm', 'video/mp4']) {
    if (isSupported(t)) return t
  }
  return ''
}

export function useRecorder(getSources: () => RecordingSource[]) {
  const [recording, setRecording] = useState(false)
  const [download, setDownload] = useState<LocalRecordingFile | null>(null)
  const [error, setError] = useState<string | null>(null)
  const cleanup = useRef<(() => Promise<LocalRecordingFile | null>) | null>(null)
  const sourcesRef = useRef(getSources)
  sourcesRef.current = getSources

  const start = useCallback(() => {
    if (recording) return
    if (typeof MediaRecorder === 'undefined') {
      setError(t('recording.localUnsupported'))
      return
    }
    setError(null)
    const canvas = document.createElement('canvas')
    canvas.width = RECORDING_WIDTH
    canvas.height = RECORDING_HEIGHT
    const g = canvas.getContext('2d')!
    const ctx = audioContext()
    const dest = ctx?.createMediaStreamDestination() ?? null
    const mixed = new Map<string, MediaStreamAudioSourceNode>()

    const draw = () => {
      const sources = sourcesRef.current()
      g.fillStyle = '#111'
      g.fillRect(0, 0, RECORDING_WIDTH, RECORDING_HEIGHT)
      const { cols, rows } = gridFor(sources.length)
      const w = RECORDING_WIDTH / cols
      const h = RECORDING_HEIGHT / rows
      sources.forEach((s, i) => {
        const x = (i % cols) * w
        const y = Math.floor(i / cols) * h
        const v = s.video
        if (s.showsVideo !== false && v && v.readyState >= 2 && v.videoWidth > 0) {
          const scale = Math.min(w / v.videoWidth, h / v.videoHeight)
          const dw = v.videoWidth * scale
          const dh = v.videoHeight * scale
          g.drawImage(v, x + (w - dw) / 2, y + (h - dh) / 2, dw, dh)
        } else {
          // No picture: the tile's placeholder, its initials on the avatar colour.
          g.fillStyle = PLACEHOLDER
          g.fillRect(x + 4, y + 4, w - 8, h - 8)
          g.fillStyle = '#fff'
          g.font = `600 ${Math.round(Math.min(w, h) / 5)}px sans-serif`
          g.textAlign = 'center'
          g.textBaseline = 'middle'
          g.fillText(initialsOf(s.label), x + w / 2, y + h / 2)
          g.textAlign = 'start'
          g.textBaseline = 'alphabetic'
        }
        g.fillStyle = 'rgba(0,0,0,0.5)'
        g.fillRect(x + 8, y + h - 36, Math.min(w - 16, 12 + s.label.length * 11), 28)
        g.fillStyle = '#fff'
        g.font = '18px sans-serif'
        g.fillText(s.label, x + 14, y + h - 16)
      })
      // Mix in audio tracks that appeared since the last frame (late joiners).
      if (ctx && dest) {
        const seen = new Set<string>()
        for (const s of sources) {
          for (const t of s.stream?.getAudioTracks() ?? []) {
            seen.add(t.id)
            if (!mixed.has(t.id) && t.readyState === 'live') {
              const node = ctx.createMediaStreamSource(new MediaStream([t]))
              node.connect(dest)
              mixed.set(t.id, node)
            }
          }
        }
        for (const [id, node] of mixed) {
          if (!seen.has(id)) {
            node.disconnect()
            mixed.delete(id)
          }
        }
      }
    }
    draw()
    const timer = setInterval(draw, 1000 / FPS)
    const video = canvas.captureStream(FPS).getVideoTracks()
    const audio = dest?.stream.getAudioTracks() ?? []
    const mimeType = pickMimeType((t) => MediaRecorder.isTypeSupported(t))
    let recorder: MediaRecorder
    try {
      recorder = new MediaRecorder(new MediaStream([...video, ...audio]), mimeType ? { mimeType } : undefined)
    } catch (err) {
      clearInterval(timer)
      setError(t('recording.localCouldNotStart', { reason: (err as Error).message }))
      return
    }
    const chunks: Blob[] = []
    recorder.ondataavailable = (e) => {
      if (e.data.size > 0) chunks.push(e.data)
    }
    const startedAt = performance.now()
    let finished: (file: LocalRecordingFile | null) => void = () => undefined
    const done = new Promise<LocalRecordingFile | null>((resolve) => (finished = resolve))
    recorder.onstop = async () => {
      clearInterval(timer)
      for (const node of mixed.values()) node.disconnect()
      video.forEach((t) => t.stop())
      const type = recorder.mimeType || mimeType || 'video/webm'
      let blob = new Blob(chunks, { type })
      if (type.includes('webm')) {
        // Seekable: the duration MediaRecorder cannot know in advance goes into the header.
        blob = await fixWebmDuration(blob, performance.now() - startedAt, { logger: false }).catch(() => blob)
      }
      const ext = type.includes('mp4') ? 'mp4' : 'webm'
      const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)
      const file = { url: URL.createObjectURL(blob), name: `meeting-${stamp}.${ext}`, size: blob.size }
      setDownload((old) => {
        if (old) URL.revokeObjectURL(old.url)
        return file
      })
      setRecording(false)
      finished(file)
    }
    recorder.start(1000)
    setRecording(true)
    cleanup.current = () => {
      if (recorder.state !== 'inactive') recorder.stop()
      else finished(null)
      return done
    }
  }, [recording])

  /** Stops; resolves to the finished file (null when nothing was recording). */
  const stop = useCallback((): Promise<LocalRecordingFile | null> => {
    const finish = cleanup.current
    cleanup.current = null
    return finish ? finish() : Promise.resolve(null)
  }, [])

  useEffect(
    () => () => {
      void cleanup.current?.()
    },
    [],
  )

  return { recording, start, stop, download, error }
}
