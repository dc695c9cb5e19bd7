// Local recording: a MediaRecorder over a canvas that composites every tile's video in a grid,
// plus a WebAudio mix of every audio track (local and remote). Stopping gives a file to
// download; nothing leaves the browser.
import { useCallback, useEffect, useRef, useState } from 'react'
import { audioContext } from '../services/media'

export interface RecordingSource {
  label: string
  video: HTMLVideoElement | null
  stream: MediaStream | null
  mirrored?: boolean
}

export const RECORDING_WIDTH = 1280
export const RECORDING_HEIGHT = 720
const FPS = 25

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
  const [download, setDownload] = useState<{ url: string; name: string; size: number } | null>(null)
  const [error, setError] = useState<string | null>(null)
  const cleanup = useRef<(() => void) | null>(null)
  const sourcesRef = useRef(getSources)
  sourcesRef.current = getSources

  const start = useCallback(() => {
    if (recording) return
    if (typeof MediaRecorder === 'undefined') {
      setError('Recording is not supported by this browser')
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
        if (v && v.readyState >= 2 && v.videoWidth > 0) {
          const scale = Math.min(w / v.videoWidth, h / v.videoHeight)
          const dw = v.videoWidth * scale
          const dh = v.videoHeight * scale
          g.save()
          if (s.mirrored) {
            g.translate(x + w, 0)
            g.scale(-1, 1)
            g.drawImage(v, (w - dw) / 2, y + (h - dh) / 2, dw, dh)
          } else {
            g.drawImage(v, x + (w - dw) / 2, y + (h - dh) / 2, dw, dh)
          }
          g.restore()
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
      setError(`Could not start recording: ${(err as Error).message}`)
      return
    }
    const chunks: Blob[] = []
    recorder.ondataavailable = (e) => {
      if (e.data.size > 0) chunks.push(e.data)
    }
    recorder.onstop = () => {
      clearInterval(timer)
      for (const node of mixed.values()) node.disconnect()
      video.forEach((t) => t.stop())
      const type = recorder.mimeType || mimeType || 'video/webm'
      const blob = new Blob(chunks, { type })
      const ext = type.includes('mp4') ? 'mp4' : 'webm'
      const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)
      setDownload((old) => {
        if (old) URL.revokeObjectURL(old.url)
        return { url: URL.createObjectURL(blob), name: `meeting-${stamp}.${ext}`, size: blob.size }
      })
      setRecording(false)
    }
    recorder.start(1000)
    setRecording(true)
    cleanup.current = () => {
      if (recorder.state !== 'inactive') recorder.stop()
    }
  }, [recording])

  const stop = useCallback(() => {
    cleanup.current?.()
    cleanup.current = null
  }, [])

  useEffect(() => () => cleanup.current?.(), [])

  return { recording, start, stop, download, error }
}
