import { describe, expect, it } from 'vitest'
import {
  formatDuration,
  formatSize,
  needsPolling,
  recordingStatus,
  recordingThumbnailUrl,
  recordingTitle,
  statusLabel,
  stoppedText,
  type RecordingMeta,
} from '../src/pages/Recordings'

const base: RecordingMeta = { id: 'r-20260301T120000Z-abc', room: 'xkcd-pqrs-tuvw' }

describe('the recordings page', () => {
  it('takes the status from the server, else from the older state', () => {
    expect(recordingStatus({ ...base, status: 'finishing', state: 'recording' })).toBe('finishing')
    expect(recordingStatus({ ...base, state: 'recording' })).toBe('recording')
    expect(recordingStatus({ ...base, state: 'error' })).toBe('failed')
    expect(recordingStatus({ ...base, state: 'stopped' })).toBe('ready')
    expect(recordingStatus({ ...base, state: 'interrupted' })).toBe('ready')
  })

  it('says how far finishing is, when the server knows', () => {
    expect(statusLabel({ ...base, status: 'finishing', progress: 0.426 })).toBe('Finishing… 42%')
    expect(statusLabel({ ...base, status: 'finishing', progress: 1.2 })).toBe('Finishing… 100%')
    expect(statusLabel({ ...base, status: 'finishing', progress: null })).toBe('Finishing…')
    expect(statusLabel({ ...base, status: 'ready' })).toBe('Ready')
    expect(statusLabel({ ...base, status: 'recording' })).toBe('Recording…')
    expect(statusLabel({ ...base, status: 'failed' })).toBe('Failed')
  })

  it('titles by the display name, else the room id', () => {
    expect(recordingTitle({ ...base, roomName: 'Weekly design review' })).toBe('Weekly design review')
    expect(recordingTitle({ ...base, roomName: null })).toBe('xkcd-pqrs-tuvw')
    expect(recordingTitle({ id: 'only-id' })).toBe('only-id')
  })

  it('names who stopped it, never by a user id', () => {
    expect(stoppedText({ ...base, stoppedByName: 'Ada', stop_reason: 'stopped by u-vhwq6do76iwq' })).toBe('Stopped by Ada')
    expect(stoppedText({ ...base, stop_reason: 'stopped by u-vhwq6do76iwq' })).toBe('Stopped')
    expect(stoppedText({ ...base, stop_reason: 'stopped by the administrator' })).toBe('Stopped by the administrator')
    expect(stoppedText({ ...base, stop_reason: 'room closed' })).toBe('Room closed')
    expect(stoppedText({ ...base, stop_reason: 'stopped' })).toBeNull()
  })

  it('polls only while something records or is being finished', () => {
    expect(needsPolling([{ ...base, status: 'ready' }])).toBe(false)
    expect(needsPolling([{ ...base, status: 'ready' }, { ...base, id: 'b', status: 'finishing' }])).toBe(true)
    expect(needsPolling([{ ...base, state: 'recording' }])).toBe(true)
    expect(needsPolling([])).toBe(false)
  })

  it('formats durations, sizes and the thumbnail address', () => {
    expect(formatDuration(5.4)).toBe('0:05')
    expect(formatDuration(3725)).toBe('1:02:05')
    expect(formatDuration(null)).toBe('')
    expect(formatSize(2048)).toBe('2 KB')
    expect(formatSize(5 * 1024 * 1024)).toBe('5.0 MB')
    expect(recordingThumbnailUrl('a b', 't/k')).toBe('/api/recordings/a%20b/thumbnail?token=t%2Fk')
  })
})
