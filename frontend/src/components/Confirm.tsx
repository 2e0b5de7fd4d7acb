// A modal confirmation on <dialog>: focus trap, Esc and backdrop handling come from the browser.

import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";

export interface ConfirmRequest {
  title: string;
  body?: ComponentChildren;
  confirmLabel: string;
  danger?: boolean;
  /** Runs on confirm; a thrown error is shown in the dialog, which stays open. */
  action: () => Promise<void>;
}

export function useConfirm(): [ComponentChildren, (req: ConfirmRequest) => void] {
  const [req, setReq] = useState<ConfirmRequest | null>(null);
  const dialog = req ? <ConfirmDialog req={req} onClose={() => setReq(null)} /> : null;
  return [dialog, setReq];
}

function ConfirmDialog({ req, onClose }: { req: ConfirmRequest; onClose: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    ref.current?.showModal();
  }, []);
  const confirm = async () => {
    setBusy(true);
    setError(null);
    try {
      await req.action();
      ref.current?.close();
      onClose();
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <dialog ref={ref} class="dialog" onClose={onClose} aria-labelledby="dialog-title">
      <h2 id="dialog-title">{req.title}</h2>
      {req.body ? <div class="dialog-body">{req.body}</div> : null}
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
      <div class="dialog-actions">
        <button type="button" class="btn" onClick={() => ref.current?.close()} disabled={busy}>
          Back
        </button>
        <button type="button" class={req.danger ? "btn btn-danger" : "btn btn-primary"} onClick={confirm} disabled={busy} data-testid="confirm">
          {busy ? "Working…" : req.confirmLabel}
        </button>
      </div>
    </dialog>
  );
}
