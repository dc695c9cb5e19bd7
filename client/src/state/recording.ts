// The server recording's UI state (SFU rooms) as a pure reducer: is the room being recorded,
// since when and by whom, the room's download token, and whether a start/stop is in flight.
// The toasts a change deserves come from recordingToast() so they are testable too.
import { t } from '../i18n'
import type { RecordingStateEvent } from '../services/protocol'

export interface RecordingUiState {
  recording: boolean
  recordingId: string | null
  startedBy: string | null
  startedAt: number | null
  layout: string | null
  /** The reason the last recording ended, if it did. */
  lastReason: string | null
  lastError: boolean
  /** The room's recording token from the join answer (SFU rooms). */
  token: string | null
  /** A recording-start or recording-stop request awaits its answer. */
  pending: boolean
}

export const initialRecordingState: RecordingUiState = {
  recording: false,
  recordingId: null,
  startedBy: null,
  startedAt: null,
  layout: null,
  lastReason: null,
  lastError: false,
  token: null,
  pending: false,
}

export type RecordingAction =
  | { type: 'joined'; recording?: RecordingStateEvent | null; token?: string | null }
  | { type: 'state'; state: RecordingStateEvent }
  | { type: 'pending'; pending: boolean }
  | { type: 'reset' }

function apply(s: RecordingUiState, e: RecordingStateEvent | null | undefined): RecordingUiState {
  if (!e || typeof e !== 'object') return s
  if (e.recording) {
    return {
      ...s,
      recording: true,
      recordingId: e.recordingId ?? null,
      startedBy: e.startedBy ?? null,
      startedAt: typeof e.startedAt === 'number' ? e.startedAt : null,
      layout: e.layout ?? null,
    }
  }
  // An end event for an older recording than the one running now changes nothing.
  if (s.recording && e.recordingId && s.recordingId && e.recordingId !== s.recordingId) return s
  return {
    ...s,
    recording: false,
    recordingId: e.recordingId ?? s.recordingId,
    startedBy: null,
    startedAt: null,
    layout: null,
    lastReason: e.reason ?? null,
    lastError: !!e.error,
  }
}

export function recordingReducer(s: RecordingUiState, a: RecordingAction): RecordingUiState {
  switch (a.type) {
    case 'joined': {
      const next = a.recording ? apply({ ...s, lastReason: null, lastError: false }, a.recording) : { ...s, recording: false }
      return { ...next, token: a.token ?? s.token, pending: false }
    }
    case 'state':
      return apply(s, a.state)
    case 'pending':
      return s.pending === a.pending ? s : { ...s, pending: a.pending }
    case 'reset':
      return initialRecordingState
  }
}

/**
 * The toast for a `recording-state` event given the state before it, or null (a repeat of
 * what we already show). `nameOf` turns a user id into a display name.
 */
export function recordingToast(
  before: RecordingUiState,
  e: RecordingStateEvent,
  nameOf: (userId: string) => string | null,
): { kind: 'info' | 'error'; message: string } | null {
  if (!e || typeof e !== 'object') return null
  if (e.recording) {
    if (before.recording && before.recordingId === (e.recordingId ?? null)) return null
    const who = e.startedBy ? nameOf(e.startedBy) : null
    return { kind: 'info', message: who ? t('recording.startedBy', { who }) : t('recording.started') }
  }
  if (!before.recording) return null
  if (before.recordingId && e.recordingId && before.recordingId !== e.recordingId) return null
  if (e.error) return { kind: 'error', message: e.reason ? t('recording.failedBecause', { reason: e.reason }) : t('recording.failed') }
  return { kind: 'info', message: e.reason ? t('recording.stoppedBecause', { reason: e.reason }) : t('recording.stopped') }
}
