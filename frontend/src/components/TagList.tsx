// A run's tags as chips; clicking one filters the runs list by it (when a handler is given).

export function TagList({ tags, onPick }: { tags: string[] | undefined; onPick?: (tag: string) => void }) {
  if (!tags?.length) return null;
  return (
    <span class="tags" data-testid="tags">
      {tags.map((t) =>
        onPick ? (
          <button key={t} type="button" class="tag" onClick={() => onPick(t)} title={`Only runs tagged ${t}`}>
            {t}
          </button>
        ) : (
          <span key={t} class="tag">
            {t}
          </span>
        ),
      )}
    </span>
  );
}
