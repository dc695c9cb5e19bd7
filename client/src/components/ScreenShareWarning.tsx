/**
 * Shown when the shared surface is the entire screen (displaySurface 'monitor'): the meeting
 * window is then part of what is shared and shows itself again and again ("infinite mirror").
 */
export function ScreenShareWarning({ onDismiss, onStop }: { onDismiss: () => void; onStop: () => void }) {
  return (
    <div className="screen-warning" role="alert" data-testid="screen-share-warning">
      <strong>You are sharing your entire screen.</strong> Everyone sees this meeting window inside
      your share, which repeats like a mirror. Share a single window or tab instead, or minimise
      this window.
      <div className="screen-warning-actions">
        <button type="button" onClick={onStop}>
          Stop sharing
        </button>
        <button type="button" onClick={onDismiss}>
          Keep sharing
        </button>
      </div>
    </div>
  )
}
