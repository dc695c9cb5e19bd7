import { describe, expect, it } from 'vitest'
import { raiseForSimulcast, reducedBy, simulcastEncodings, SIMULCAST_CAPTURE } from '../src/services/simulcast'

const server = [
  { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: 'f', scaleResolutionDownBy: 1, maxBitrate: 1_500_000 },
]

describe('simulcastEncodings', () => {
  it.each([
    [720, ['q', 'h', 'f']],
    [540, ['q', 'h', 'f']],
    [480, ['h', 'f']],
    [360, ['h', 'f']],
    [270, ['h', 'f']],
    [240, null],
    [undefined, null],
  ])('a %s-line camera gets %j', (height, rids) => {
    const got = simulcastEncodings(server, height as number | undefined)
    expect(got ? got.map((e) => e.rid) : null).toEqual(rids)
  })

  it('keeps the full picture on top and copies the objects', () => {
    const got = simulcastEncodings(server, 480)!
    expect(got[got.length - 1].scaleResolutionDownBy).toBe(1)
    expect(got[0]).not.toBe(server[1])
  })

  it('is off when the server sends no list or one layer', () => {
    expect(simulcastEncodings(undefined, 720)).toBeUndefined()
    expect(simulcastEncodings(server.slice(2), 720)).toBeUndefined()
  })
})

describe('reducedBy (sfu-layer)', () => {
  const layers = ['h', 'f']
  it.each([
    ['the top layer, whole', { layer: 'f', layers, reason: 'best', frameRate: 'full' }, undefined],
    ['a smaller layer for bandwidth', { layer: 'h', layers, reason: 'bandwidth', frameRate: 'full' }, 'picture'],
    ['the top layer at a lower frame rate', { layer: 'f', layers, reason: 'bandwidth', frameRate: 'reduced' }, 'frameRate'],
    ['a smaller layer at a lower frame rate', { layer: 'h', layers, reason: 'bandwidth', frameRate: 'reduced' }, 'picture'],
    ['a small tile: the viewer chose it', { layer: 'h', layers, reason: 'tile', frameRate: 'full' }, undefined],
    ['an old server without frameRate', { layer: 'h', layers, reason: 'bandwidth' }, 'picture'],
  ] as const)('%s', (_name, event, want) => {
    expect(reducedBy(event)).toBe(want)
  })
})

describe('raiseForSimulcast', () => {
  const three: RTCRtpEncodingParameters[] = [{ rid: 'q' }, { rid: 'h' }, { rid: 'f' }]
  function camera(height: number, refuse = false) {
    const applied: MediaTrackConstraints[] = []
    const track = {
      kind: 'video',
      getSettings: () => ({ height }),
      getConstraints: () => ({ deviceId: { exact: 'cam1' }, frameRate: { ideal: 24 } }),
      applyConstraints: (c: MediaTrackConstraints) => {
        applied.push(c)
        return refuse ? Promise.reject(new Error('OverconstrainedError')) : Promise.resolve()
      },
    } as unknown as MediaStreamTrack
    return { track, applied }
  }

  it('asks a 480-line camera for 720 lines, keeping its device and frame rate', async () => {
    const { track, applied } = camera(480)
    await raiseForSimulcast(track, three)
    expect(applied).toEqual([{ deviceId: { exact: 'cam1' }, frameRate: { ideal: 24 }, ...SIMULCAST_CAPTURE }])
  })

  it('leaves a camera alone without simulcast or when it is big enough', async () => {
    for (const [height, layers] of [
      [480, undefined],
      [480, [{ rid: 'f' }]],
      [720, three],
    ] as const) {
      const { track, applied } = camera(height)
      await raiseForSimulcast(track, layers as RTCRtpEncodingParameters[] | undefined)
      expect(applied).toEqual([])
    }
  })

  it('never throws when the camera refuses', async () => {
    const { track } = camera(480, true)
    await expect(raiseForSimulcast(track, three)).resolves.toBeUndefined()
  })
})
