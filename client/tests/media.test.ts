import { describe, expect, it } from 'vitest'
import { audioConstraints, describeMediaError, openLocalMedia, rmsLevel } from '../src/services/media'
import { gridFor, pickMimeType } from '../src/hooks/useRecorder'
import { gridColumns } from '../src/state/layout'

const fakeStream = (label: string) => ({ label }) as unknown as MediaStream
const err = (name: string) => Object.assign(new Error(name), { name })

describe('openLocalMedia', () => {
  it('returns the stream when both devices open', async () => {
    const calls: MediaStreamConstraints[] = []
    const r = await openLocalMedia({ rawAudio: false }, async (c) => {
      calls.push(c)
      return fakeStream('both')
    })
    expect(r).toEqual({ stream: fakeStream('both'), problem: null })
    expect(calls).toHaveLength(1)
  })

  it('permission denied: no stream, a clear message, no retries', async () => {
    let n = 0
    const r = await openLocalMedia({ rawAudio: false }, async () => {
      n++
      throw err('NotAllowedError')
    })
    expect(r.stream).toBeNull()
    expect(r.problem).toMatch(/permission was denied/)
    expect(n).toBe(1)
  })

  it('no camera: falls back to the microphone alone', async () => {
    const r = await openLocalMedia({ rawAudio: false }, async (c) => {
      if (c.video) throw err('NotFoundError')
      return fakeStream('audio')
    })
    expect(r.stream).toEqual(fakeStream('audio'))
    expect(r.problem).toMatch(/No camera/)
  })

  it('no device at all: receive-only with a message', async () => {
    const r = await openLocalMedia({ rawAudio: false }, async () => {
      throw err('NotFoundError')
    })
    expect(r.stream).toBeNull()
    expect(r.problem).toMatch(/No camera or microphone was found/)
  })

  it('without getUserMedia (insecure page)', async () => {
    const r = await openLocalMedia({ rawAudio: false }, null)
    expect(r.stream).toBeNull()
    expect(r.problem).toMatch(/HTTPS/)
  })

  it('raw_audio disables audio processing and devices are exact', () => {
    expect(audioConstraints(true, 'mic1')).toEqual({
      deviceId: { exact: 'mic1' },
      echoCancellation: false,
      noiseSuppression: false,
      autoGainControl: false,
    })
    expect(audioConstraints(false)).toEqual({})
  })

  it('describes unknown errors', () => {
    expect(describeMediaError(err('Weird'))).toMatch(/Weird/)
    expect(describeMediaError(err('NotReadableError'))).toMatch(/in use/)
  })
})

describe('levels and layout', () => {
  it('rms of silence is 0 and of a full-scale square wave is ~1', () => {
    expect(rmsLevel(new Uint8Array(64).fill(128))).toBe(0)
    const sq = new Uint8Array(64).map((_, i) => (i % 2 ? 0 : 255))
    expect(rmsLevel(sq)).toBeGreaterThan(0.99)
    expect(rmsLevel(new Uint8Array())).toBe(0)
  })
  it('recording grid', () => {
    expect(gridFor(1)).toEqual({ cols: 1, rows: 1 })
    expect(gridFor(2)).toEqual({ cols: 2, rows: 1 })
    expect(gridFor(3)).toEqual({ cols: 2, rows: 2 })
    expect(gridFor(5)).toEqual({ cols: 3, rows: 2 })
  })
  it('picks a supported recording type', () => {
    expect(pickMimeType((t) => t === 'video/webm')).toBe('video/webm')
    expect(pickMimeType(() => false)).toBe('')
  })
  it('room grid columns', () => {
    expect([1, 2, 3, 4, 5, 9, 10].map(gridColumns)).toEqual([1, 2, 2, 2, 3, 3, 4])
  })
})
