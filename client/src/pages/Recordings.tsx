// The recordings of a room: GET /api/recordings with the room's token (from the room's link,
// `/recordings?token=...`), each playable inline and downloadable (`?token=` in the URL, as a
// <video> or a plain link cannot send an Authorization header).
import { useEffect, useState } from 'react'
import { navigate } from '../router'

export interface RecordingMeta {
  id: string
  room?: string
  state?: string
  start?: string | number | null
  end?: string | number | null
  duration?: number | null
  size?: number | null
  layout?: string | null
  container?: string | null
  error?: string | null
  stop_reason?: string | null
}

export function recordingFileUrl(id: string, token: string | null): string {
  const base = `/api/recordings/${encodeURIComponent(id)}/file`
  return token ? `${base}?token=${encodeURIComponent(token)}` : base
}

function formatWhen(v: string | number | null | undefined): string {
  if (v === null || v === undefined || v === '') return ''
  const d = typeof v === 'number' ? new Date(v > 1e12 ? v : v * 1000) : new Date(v)
  return Number.isNaN(d.getTime()) ? String(v) : d.toLocaleString()
}

function formatDuration(s: number | null | undefined): string {
  if (typeof s !== 'number' || !Number.isFinite(s)) return ''
  const total = Math.round(s)
  const m = Math.floor(total / 60)
  return `${m}:${String(total % 60).padStart(2, '0')}`
}

function formatSize(n: number | null | undefined): string {
  if (typeof n !== 'number') return ''
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`
  return `${(n / 1024 / 1024).toFixed(1)} MB`
}

// The server answers every error as {error: CODE, message}; 401 means no token, or one that
// names nobody (a stale link: its room is gone and it granted no recording).
export function recordingsError(status: number, token: string | null, body: { error?: string; message?: string } | null): string {
  if (status === 401) {
    return token ? 'This recording link is no longer valid.' : 'A recording link with a token is needed to see recordings.'
  }
  return body?.message ?? body?.error ?? `HTTP ${status}`
}

type Load = { status: 'loading' } | { status: 'error'; message: string } | { status: 'ok'; list: RecordingMeta[] }

export function Recordings({ token }: { token: string | null }) {
  const [load, setLoad] = useState<Load>({ status: 'loading' })
  const [playing, setPlaying] = useState<string | null>(null)
  const [reloadKey, setReloadKey] = useState(0)

  useEffect(() => {
    let cancelled = false
    setLoad({ status: 'loading' })
    fetch('/api/recordings', { headers: token ? { Authorization: `Bearer ${token}` } : {} })
      .then(async (r) => {
        const body = (await r.json().catch(() => null)) as { recordings?: RecordingMeta[]; error?: string; message?: string } | null
        if (cancelled) return
        if (!r.ok) {
          setLoad({ status: 'error', message: recordingsError(r.status, token, body) })
          return
        }
        setLoad({ status: 'ok', list: Array.isArray(body?.recordings) ? body.recordings : [] })
      })
      .catch(() => {
        if (!cancelled) setLoad({ status: 'error', message: 'Could not reach the server.' })
      })
    return () => {
      cancelled = true
    }
  }, [token, reloadKey])

  return (
    <main className="page recordings-page" data-testid="recordings-page">
      <header className="recordings-head">
        <h1>Recordings</h1>
        <button type="button" className="small-btn" onClick={() => setReloadKey((k) => k + 1)} data-testid="recordings-refresh">
          Refresh
        </button>
        <button type="button" className="small-btn" onClick={() => navigate('/')}>
          Start page
        </button>
      </header>
      {load.status === 'loading' && <p role="status">Loading…</p>}
      {load.status === 'error' && (
        <p className="notice notice-error" role="alert" data-testid="recordings-error">
          {load.message}
        </p>
      )}
      {load.status === 'ok' && load.list.length === 0 && <p data-testid="recordings-empty">No recordings yet.</p>}
      {load.status === 'ok' && load.list.length > 0 && (
        <ul className="recordings-list" data-testid="recordings-list">
          {load.list.map((r) => {
            const url = recordingFileUrl(r.id, token)
            const done = r.state !== 'recording'
            return (
              <li key={r.id} className="recording-item" data-testid="recording-item" data-recording-id={r.id} data-state={r.state ?? ''}>
                <div className="recording-meta">
                  <strong>{r.room ?? r.id}</strong> <span>{formatWhen(r.start)}</span>{' '}
                  <span>{formatDuration(r.duration)}</span> <span>{formatSize(r.size)}</span>{' '}
                  <span className={`badge rec-state rec-state-${r.state ?? 'unknown'}`}>{r.state ?? ''}</span>
                  {r.stop_reason && <span className="rec-reason"> {r.stop_reason}</span>}
                </div>
                <div className="recording-actions">
                  <button type="button" className="small-btn" disabled={!done} onClick={() => setPlaying(playing === r.id ? null : r.id)} data-testid="recording-play">
                    {playing === r.id ? 'Hide' : 'Play'}
                  </button>
                  <a className="download" href={url} download data-testid="recording-file-link">
                    Download
                  </a>
                </div>
                {playing === r.id && (
                  <video className="recording-video" src={url} controls autoPlay playsInline data-testid="recording-video" />
                )}
              </li>
            )
          })}
        </ul>
      )}
    </main>
  )
}
