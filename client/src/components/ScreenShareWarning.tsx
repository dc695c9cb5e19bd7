import { useTranslation } from 'react-i18next'

/**
 * Shown when the shared surface is the entire screen (displaySurface 'monitor'): the meeting
 * window is then part of what is shared and shows itself again and again ("infinite mirror").
 */
export function ScreenShareWarning({ onDismiss, onStop }: { onDismiss: () => void; onStop: () => void }) {
  const { t } = useTranslation()
  return (
    <div className="screen-warning" role="alert" data-testid="screen-share-warning">
      <strong>{t('screenWarning.title')}</strong> {t('screenWarning.text')}
      <div className="screen-warning-actions">
        <button type="button" onClick={onStop}>
          {t('screenWarning.stop')}
        </button>
        <button type="button" onClick={onDismiss}>
          {t('screenWarning.keep')}
        </button>
      </div>
    </div>
  )
}
