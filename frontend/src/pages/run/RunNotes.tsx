// Tags and a free-text note on the run page, saved with PATCH /api/runs/{id}. What is shown after
// a save is what the server answered, so a refused tag never looks stored.

import { useEffect, useState } from "preact/hooks";
import { api, ApiError } from "../../api/client";
import type { Run } from "../../api/types";

export function RunNotes({ run, onSaved }: { run: Run; onSaved: (run: Run) => void }) {
  const [tagText, setTagText] = useState("");
  const [note, setNote] = useState(run.note ?? "");
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState(false);
  // A change made elsewhere (another tab, the CLI) arrives with the run; keep unsaved typing.
  const [base, setBase] = useState(run.note ?? "");
  useEffect(() => {
    if (note === base) setNote(run.note ?? "");
    setBase(run.note ?? "");
  }, [run.note]);

  const save = async (body: { tags?: string[]; note?: string }) => {
    setError(null);
    setSaved(false);
    try {
      const updated = await api<Run>(`/runs/${run.id}`, { method: "PATCH", json: body });
      onSaved(updated);
      setSaved(true);
      return true;
    } catch (err) {
      setError(err instanceof ApiError && err.validation.length ? err.validation.map((v) => v.msg).join("; ") : String(err));
      return false;
    }
  };
  const addTags = async () => {
    const fresh = tagText.split(/[,\s]+/).filter(Boolean);
    if (!fresh.length) return;
    if (await save({ tags: [...(run.tags ?? []), ...fresh] })) setTagText("");
  };
  return (
    <section class="card run-notes" aria-labelledby="notes-h" data-testid="run-notes">
      <div class="section-head">
        <h2 id="notes-h">Tags &amp; note</h2>
        {saved ? (
          <span class="muted small" role="status">
            saved
          </span>
        ) : null}
      </div>
      <div class="tag-editor">
        {(run.tags ?? []).map((t) => (
          <span key={t} class="tag">
            {t}
            <button type="button" class="tag-remove" aria-label={`Remove tag ${t}`} onClick={() => save({ tags: run.tags.filter((x) => x !== t) })}>
              ×
            </button>
          </span>
        ))}
        <form
          class="tag-add"
          onSubmit={(e) => {
            e.preventDefault();
            addTags();
          }}
        >
          <input value={tagText} placeholder="add tags, e.g. kannada lora-r8" aria-label="New tags" onInput={(e) => setTagText((e.target as HTMLInputElement).value)} />
          <button type="submit" class="btn btn-small">
            Add
          </button>
        </form>
      </div>
      <label class="field">
        <span class="sr-only">Note</span>
        <textarea rows={3} value={note} placeholder="What is this run for, what did it show?" aria-label="Note" onInput={(e) => setNote((e.target as HTMLTextAreaElement).value)} />
      </label>
      <div class="row">
        <button type="button" class="btn btn-small" disabled={note === (run.note ?? "")} onClick={() => save({ note })}>
          Save note
        </button>
        {error ? (
          <span class="error small" role="alert">
            {error}
          </span>
        ) : null}
      </div>
    </section>
  );
}
