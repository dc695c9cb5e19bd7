// The recordings of a room: GET /api/recordings with the room's token (from the room's link,
// `/recordings?token=...`), each by the meeting's name, who started it and who took part, with
// a thumbnail; playable inline and downloadable once ready (`?token=` in the URLs, as a
// <video>, an <img> or a plain link cannot send an Authorization header). While one is being
// finished after Stop ("Finishing… N%") the list is polled.
import { useEffect, useRef, useState } from 'react'
import { useTranslation } from 'react-i18next'
import { t } from '../i18n'
import { navigate } from '../router'
import './recordings.css'

/** A recording's metadata as GET /api/recordings lists it (docs/protocol.md#recording-routes). */
export interface RecordingMeta {
  id: string
  room?: string
  /** The meeting's display name; null: unnamed (show the room id). */
  roomName?: string | null
  state?: string
  /** recording | finishing | ready | failed (absent from older servers: see `state`). */
  status?: RecordingStatus
  /** While finishing: 0..1 of the recording written to the file, if the server knows it. */
  progress?: number | null
  start?: string | number | null
  end?: string | number | null
  duration?: number | null
  size?: number | null
  layout?: string | null
  container?: string | null
  error?: string | null
  stop_reason?: string | null
  startedBy?: string | null
  startedByName?: string | null
  stoppedBy?: string | null
  stoppedByName?: string | null
  participantNames?: string[]
  /** The thumbnail's file name once made (GET /api/recordings/{id}/thumbnail). */
  thumbnail?: string | null
}

export type RecordingStatus = 'recording' | 'finishing' | 'ready' | 'failed'

/** How often the list is fetched again while a recording runs or is being finished. */
export const POLL_MS = 1000

function withToken(base: string, token: string | null): string {
  return token ? `${base}?token=${encodeURIComponent(token)}` : base
}

export function recordingFileUrl(id: string, token: string | null): string {
  return withToken(`/api/recordings/${encodeURIComponent(id)}/file`, token)
}

export function recordingThumbnailUrl(id: string, token: string | null): string {
  return withToken(`/api/recordings/${encodeURIComponent(id)}/thumbnail`, token)
}

/** The recording's status; from `state` for a server that does not send one. */
export function recordingStatus(r: RecordingMeta): RecordingStatus {
  if (r.status === 'recording' || r.status === 'finishing' || r.status === 'ready' || r.status === 'failed') return r.status
  if (r.state === 'recording') return 'recording'
  if (r.state === 'error') return 'failed'
  return 'ready'
}

/** "Finishing… 42%" while finishing (without a figure when the server has none). */
export function statusLabel(r: RecordingMeta): string {
  switch (recordingStatus(r)) {
    case 'recording':
      return t('recordings.recording')
    case 'finishing': {
      const p = r.progress
      return typeof p === 'number' && Number.isFinite(p)
        ? t('recordings.finishingPct', { pct: Math.floor(Math.min(1, Math.max(0, p)) * 100) })
        : t('recordings.finishing')
    }
    case 'failed':
      return t('recordings.failed')
    default:
      return t('recordings.ready')
  }
}

/** The meeting's display name, else its room id, else the recording id. */
export function recordingTitle(r: RecordingMeta): string {
  return r.roomName?.trim() || r.room || r.id
}

/** The server's stop reasons the catalogue has (sfu/server/recording_events.py, sfu/recording). */
const STOP_REASONS: Record<string, 'admin' | 'roomClosed' | 'interrupted'> = {
  'stopped by the administrator': 'admin',
  'room closed': 'roomClosed',
  interrupted: 'interrupted',
}

/** Who stopped it, by name: never a user id (`stop_reason` names one: "stopped by u-…"). */
export function stoppedText(r: RecordingMeta): string | null {
  if (r.stoppedByName) return t('recordings.stoppedBy', { name: r.stoppedByName })
  const reason = r.stop_reason
  if (!reason || reason === 'stopped') return null
  const known = Object.hasOwn(STOP_REASONS, reason) ? STOP_REASONS[reason] : undefined
  if (known) return t(`recordings.reason.${known}`)
  if (reason.startsWith('stopped by ')) return t('recordings.stopped')
  // Another reason from the server: its own (English) words.
  return reason.charAt(0).toUpperCase() + reason.slice(1)
}

/** Whether the list changes by itself: something records or is being finished. */
export function needsPolling(list: RecordingMeta[]): boolean {
  return list.some((r) => {
    const s = recordingStatus(r)
    return s === 'recording' || s === 'finishing'
  })
}

function formatWhen(v: string | number | null | undefined): string {
  if (v === null || v === undefined || v === '') return ''
  const d = typeof v === 'number' ? new Date(v > 1e12 ? v : v * 1000) : new Date(v)
  return Number.isNaN(d.getTime()) ? String(v) : d.toLocaleString()
}

export function formatDuration(s: number | null | undefined): string {
  if (typeof s !== 'number' || !Number.isFinite(s)) return ''
  const total = Math.round(s)
  const h = Math.floor(total / 3600)
  const m = Math.floor((total % 3600) / 60)
  const sec = String(total % 60).padStart(2, '0')
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`
}

export function formatSize(n: number | null | undefined): string {
  if (typeof n !== 'number' || !Number.isFinite(n)) return ''
  if (n < 1024 * 1024) return `${Math.max(1, Math.round(n / 1024))} KB`
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MB`
  return `${(n / 1024 / 1024 / 1024).toFixed(2)} GB`
}

// The server answers every error as {error: CODE, message}; 401 means no token, or one that
// names nobody (a stale link: its room is gone and it granted no recording).
export function recordingsError(status: number, token: string | null, body: { error?: string; message?: string } | null): string {
  if (status === 401) {
    return token ? t('recordings.linkInvalid') : t('recordings.linkNeeded')
  }
  return body?.message ?? body?.error ?? `HTTP ${status}`
}

type Load = { status: 'loading' } | { status: 'error'; message: string } | { status: 'ok'; list: RecordingMeta[] }

export function Recordings({ token }: { token: string | null }) {
  const { t } = useTranslation()
  const [load, setLoad] = useState<Load>({ status: 'loading' })
  const [playing, setPlaying] = useState<string | null>(null)
  const [reloadKey, setReloadKey] = useState(0)
  const [tick, setTick] = useState(0) // a poll: fetch again without "Loading…"
  const polledTick = useRef(0)

  useEffect(() => {
    setLoad({ status: 'loading' })
  }, [token, reloadKey])

  useEffect(() => {
    let cancelled = false
    // A poll that fails keeps the list shown (and tries again); a load or Refresh says why.
    const poll = tick !== polledTick.current
    polledTick.current = tick
    const failed = (message: string) => setLoad((prev) => (poll && prev.status === 'ok' ? { ...prev } : { status: 'error', message }))
    fetch('/api/recordings', { headers: token ? { Authorization: `Bearer ${token}` } : {} })
      .then(async (r) => {
        const body = (await r.json().catch(() => null)) as { recordings?: RecordingMeta[]; error?: string; message?: string } | null
        if (cancelled) return
        if (!r.ok) {
          failed(recordingsError(r.status, token, body))
          return
        }
        setLoad({ status: 'ok', list: Array.isArray(body?.recordings) ? body.recordings : [] })
      })
      .catch(() => {
        if (!cancelled) failed(t('recordings.unreachable'))
      })
    return () => {
      cancelled = true
    }
  }, [token, reloadKey, tick])

  // Poll while a recording runs or is being finished, so "Finishing…" turns into Play by itself.
  const polling = load.status === 'ok' && needsPolling(load.list)
  useEffect(() => {
    if (!polling) return
    const timer = window.setTimeout(() => setTick((t) => t + 1), POLL_MS)
    return () => window.clearTimeout(timer)
  }, [polling, load])

  return (
    <main className="page recordings-page" data-testid="recordings-page">
      <header className="recordings-head">
        <h1>{t('recordings.title')}</h1>
        <button type="button" className="small-btn" onClick={() => setReloadKey((k) => k + 1)} data-testid="recordings-refresh">
          {t('recordings.refresh')}
        </button>
        <button type="button" className="small-btn" onClick={() => navigate('/')}>
          {t('recordings.startPage')}
        </button>
      </header>
      {load.status === 'loading' && <p role="status">{t('recordings.loading')}</p>}
      {load.status === 'error' && (
        <p className="notice notice-error" role="alert" data-testid="recordings-error">
          {load.message}
        </p>
      )}
      {load.status === 'ok' && load.list.length === 0 && <p data-testid="recordings-empty">{t('recordings.empty')}</p>}
      {load.status === 'ok' && load.list.length > 0 && (
        <ul className="recordings-list" data-testid="recordings-list">
          {load.list.map((r) => (
            <RecordingItem key={r.id} r={r} token={token} playing={playing === r.id} onPlay={(on) => setPlaying(on ? r.id : null)} />
          ))}
        </ul>
      )}
    </main>
  )
}

function RecordingItem({ r, token, playing, onPlay }: { r: RecordingMeta; token: string | null; playing: boolean; onPlay: (on: boolean) => void }) {
  const { t } = useTranslation()
  const status = recordingStatus(r)
  const ready = status === 'ready'
  const url = recordingFileUrl(r.id, token)
  const title = recordingTitle(r)
  const names = Array.isArray(r.participantNames) ? r.participantNames.filter((n) => typeof n === 'string') : []
  const stopped = stoppedText(r)
  const [thumbFailed, setThumbFailed] = useState(false)
  const showThumb = ready && !!r.thumbnail && !thumbFailed
  return (
    <li className="recording-item" data-testid="recording-item" data-recording-id={r.id} data-state={r.state ?? ''} data-status={status}>
      <div className="recording-row">
        <div className="recording-thumb" aria-hidden={!showThumb}>
          {showThumb ? (
            <img
              src={recordingThumbnailUrl(r.id, token)}
              alt={t('recordings.thumbnail', { title })}
              loading="lazy"
              onError={() => setThumbFailed(true)}
              data-testid="recording-thumbnail"
            />
          ) : (
            <span className="recording-thumb-none">{status === 'finishing' ? '…' : ''}</span>
          )}
        </div>
        <div className="recording-info">
          <h2 className="recording-title" data-testid="recording-title">
            {title}
          </h2>
          {r.roomName && r.room && (
            <p className="recording-room muted" data-testid="recording-room">
              {t('common.roomId', { id: r.room })}
            </p>
          )}
          <p className="recording-facts">
            <span>{formatWhen(r.start)}</span>
            {formatDuration(r.duration) && <span data-testid="recording-duration">{formatDuration(r.duration)}</span>}
            {ready && formatSize(r.size) && <span data-testid="recording-size">{formatSize(r.size)}</span>}
            <span className={`badge rec-state rec-state-${status}`} data-testid="recording-status">
              {statusLabel(r)}
            </span>
          </p>
          {status === 'finishing' && typeof r.progress === 'number' && (
            <progress className="recording-progress" max={1} value={r.progress} aria-label={t('recordings.finishingOf', { title })} data-testid="recording-progress" />
          )}
          {r.startedByName && <p className="recording-people" data-testid="recording-started-by">{t('recordings.startedBy', { name: r.startedByName })}</p>}
          {stopped && <p className="recording-people" data-testid="recording-stopped-by">{stopped}</p>}
          {names.length > 0 && (
            <p className="recording-people" data-testid="recording-participants">
              {t('recordings.with', { names: names.join(', ') })}
            </p>
          )}
          {status === 'failed' && r.error && <p className="recording-people">{r.error}</p>}
        </div>
      </div>
      {ready && (
        <div className="recording-actions">
          <button type="button" className="small-btn" onClick={() => onPlay(!playing)} data-testid="recording-play">
            {playing ? t('recordings.hide') : t('recordings.play')}
          </button>
          <a className="download" href={url} download data-testid="recording-file-link">
            {t('recordings.download')}
          </a>
        </div>
      )}
      {ready && playing && <video className="recording-video" src={url} controls autoPlay playsInline data-testid="recording-video" />}
    </li>
  )
}
