import { useEffect } from 'react'
import { useTranslation } from 'react-i18next'
import type { Toast as ToastItem } from '../state/room'

const LIFETIME_MS = 5000

function ToastView({ toast, onDismiss }: { toast: ToastItem; onDismiss: (id: number) => void }) {
  const { t } = useTranslation()
  useEffect(() => {
    const timer = setTimeout(() => onDismiss(toast.id), toast.kind === 'error' ? LIFETIME_MS * 2 : LIFETIME_MS)
    return () => clearTimeout(timer)
  }, [toast.id, toast.kind, onDismiss])
  return (
    <div className={`toast toast-${toast.kind}`} role={toast.kind === 'error' ? 'alert' : 'status'} data-testid="toast">
      <span>{toast.message}</span>
      <button type="button" className="icon-btn" aria-label={t('common.dismiss')} onClick={() => onDismiss(toast.id)}>
        ✕
      </button>
    </div>
  )
}

export function Toasts({ toasts, onDismiss }: { toasts: ToastItem[]; onDismiss: (id: number) => void }) {
  return (
    <div className="toasts" aria-live="polite">
      {toasts.map((t) => (
        <ToastView key={t.id} toast={t} onDismiss={onDismiss} />
      ))}
    </div>
  )
}
