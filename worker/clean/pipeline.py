"""A clean job's files, streamed through its steps into a hidden directory renamed at the end.

Memory stays flat with the corpus: files are read ``CHUNK_BYTES`` at a time and each batch goes
through every step and out to its file before the next is read. What grows is the dedup state
(one hash per document for exact dedup, one per band for near dedup, 8 bytes of location).

Nothing half-written is ever visible: the output is built in ``<root>/.<name>.partial-<key>``
(dot directories are not offered by the pickers, nor found by a scan of the root) and renamed to
``<root>/<name>`` when every file is done. ``<key>`` is a digest of the parameters and of the
input files' sizes and times, so a job given the same work again (after a cancel, a crash or a
lost worker) resumes after the last file its checkpoint recorded; other work starts afresh.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import pickle
import resource
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from cpt_contract.clean import LINEAGE_FILE
from cpt_contract.jobs import CleanParams
from worker.clean import langid
from worker.clean.steps import Counts, Doc, Locations, Step, Tally, make_step
from worker.data.documents import SUFFIXES, ReadStats, find_files, iter_document_batches
from worker.data.encoding import Encoder
from worker.data.errors import DataError

FLAG = "sources"
#: A checkpoint is written after a file when this long has passed since the last one.
CHECKPOINT_SECONDS = 5.0
PROGRESS_SECONDS = 1.0
STATE = "state.pickle"


def plan_files(sources: list[str]) -> list[tuple[Path, str]]:
    """Each input file and its name in reports (``<source dir name>/<relative>``, or the file's
    own name for a file source; a repeated source name gets ``-2``, ``-3``...). In the new dataset
    it is ``output_name(rel)``: one flat directory, as the pickers and a scan expect."""
    out: list[tuple[Path, str]] = []
    used: set[str] = set()
    for raw in sources:
        root = Path(raw)
        if root.is_file():
            if root.suffix not in SUFFIXES:
                raise DataError(f"{FLAG}: {root} is not a .txt or .jsonl file")
            pairs = [(root, root.name)]
        else:
            pairs = [(p, f"{root.name}/{p.relative_to(root)}") for p in find_files(root, FLAG)]
        top = pairs[0][1].split("/")[0]
        label, n = top, 1
        while label in used:
            n += 1
            stem, dot, ext = top.partition(".")
            label = f"{stem}-{n}{dot}{ext}"
        used.add(label)
        out += [(p, label + rel[len(top) :]) for p, rel in pairs]
    return out


def output_name(rel: str, txt_documents: str = "line") -> str:
    """Flat, and JSONL for a .txt file cut other than by line: its documents hold line breaks,
    which a .txt file of one document per line cannot."""
    name = rel.replace("/", "__")
    if name.endswith(".txt") and txt_documents != "line":
        name = name[: -len(".txt")] + ".jsonl"
    return name


def work_key(params: CleanParams, files: list[tuple[Path, str]]) -> str:
    h = hashlib.sha256(params.model_dump_json(exclude={"name", "output_root"}).encode())
    for path, rel in files:
        st = path.stat()
        h.update(f"{path}\0{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


class Progress:
    """One line at most every second: bytes done of the total, documents, rate and ETA."""

    def __init__(self, total_bytes: int, say: Callable[[str], None]) -> None:
        self.total, self.say = max(total_bytes, 1), say
        self.started = time.monotonic()
        self.last = 0.0
        self.base = 0  # bytes already done when this process started (a resume)

    def update(
        self, done: int, documents: int, file_no: int, files: int, force: bool = False
    ) -> None:
        now = time.monotonic()
        if not force and now - self.last < PROGRESS_SECONDS:
            return
        self.last = now
        elapsed = now - self.started
        rate = (done - self.base) / elapsed if elapsed > 0 else 0.0
        eta = f"{(self.total - done) / rate:.0f} s" if rate > 0 else "unknown"
        docs_rate = documents / elapsed if elapsed > 0 else 0.0
        self.say(
            f"progress: {100 * done / self.total:.1f} % ({done:,} of {self.total:,} bytes), "
            f"file {file_no} of {files}, {documents:,} documents, "
            f"{docs_rate:,.0f} documents/s, ETA {eta}"
        )


class Cleaner:
    def __init__(
        self,
        params: CleanParams,
        encoder: Encoder | None = None,
        say: Callable[[str], None] = lambda line: print(line, flush=True),
    ) -> None:
        self.params, self.encoder, self.say = params, encoder, say
        self.steps: list[Step] = [make_step(s, params.examples) for s in params.steps]
        self.locations = Locations()
        self.input, self.output = Tally(), Tally()
        self.done = 0  # files finished
        self.ordinal = 0
        self.file_rows: list[dict[str, Any]] = []
        self.seconds = 0.0

    # --- documents --------------------------------------------------------------------------

    def _docs(self, texts: list[str], file: int, first_line: int) -> list[Doc]:
        tokens = self._count(texts)
        docs = []
        for i, text in enumerate(texts):
            lang, conf = langid.detect(text)
            docs.append(Doc(text, lang, conf, tokens[i], file, first_line + i, self.ordinal))
            self.ordinal += 1
        return docs

    def _count(self, texts: list[str]) -> list[int]:
        if self.encoder is None or not texts:
            return [0] * len(texts)
        return [int(n) for n in self.encoder.encode(texts)[1]]

    def process(self, docs: list[Doc], files: list[str]) -> list[Doc]:
        for doc in docs:
            self.locations.add(doc)
            self.input.add(doc)
        for step in self.steps:
            started = time.perf_counter()
            docs = step.apply(docs, self.locations, files)
            stale = [d for d in docs if d.tokens < 0]
            if stale:
                for d, n in zip(stale, self._count([d.text for d in stale]), strict=True):
                    d.tokens = n
            step.finish_batch(docs)
            step.seconds += time.perf_counter() - started
        for doc in docs:
            self.output.add(doc)
        return docs

    # --- files ------------------------------------------------------------------------------

    def _clean_file(
        self,
        path: Path,
        rel: str,
        target: Path,
        index: int,
        rels: list[str],
        progress: Progress,
        done_bytes: int,
        n_files: int,
    ) -> int:
        out_path = target / output_name(rel, self.params.txt_documents)
        with contextlib.suppress(FileNotFoundError):
            out_path.unlink()  # a file the previous attempt had begun
        stats = ReadStats()
        fh: IO[str] | None = None
        kept = read = 0
        jsonl = out_path.suffix == ".jsonl"
        try:
            mode = self.params.txt_documents
            # A line is a document without its break; a paragraph or a file keeps its breaks.
            breaks = mode != "line"
            for texts in iter_document_batches(path, breaks, FLAG, stats, txt_documents=mode):
                docs = self.process(self._docs(texts, index, read + 1), rels)
                read += len(texts)
                if docs and fh is None:
                    fh = out_path.open("w", encoding="utf-8")
                for doc in docs:
                    line = json.dumps({"text": doc.text}, ensure_ascii=False) if jsonl else doc.text
                    fh.write(line + "\n")  # type: ignore[union-attr]
                kept += len(docs)
                progress.update(done_bytes + stats.bytes, self.ordinal, index + 1, n_files)
        finally:
            if fh is not None:
                fh.close()
        self.file_rows.append(
            {
                "path": str(path),
                "name": rel,
                "output": output_name(rel, self.params.txt_documents) if kept else None,
                "documents": read,
                "kept": kept,
            }
        )
        return stats.bytes

    def run(self, output_root: Path, name: str) -> dict[str, Any]:
        files = plan_files(self.params.sources)
        rels = [rel for _, rel in files]
        key = work_key(self.params, files)
        final = output_root / name
        if final.exists():
            raise DataError(f"name: {final} exists; pick another name")
        output_root.mkdir(parents=True, exist_ok=True)
        partial = output_root / f".{name}.partial-{key}"
        for stale in output_root.glob(f".{name}.partial-*"):
            if stale != partial:
                shutil.rmtree(stale, ignore_errors=True)
        partial.mkdir(exist_ok=True)
        lock = (partial / "lock").open("w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DataError(f"name: another clean job is writing {final}") from None
        with lock:
            return self._run(files, rels, partial, final)

    def _run(
        self, files: list[tuple[Path, str]], rels: list[str], partial: Path, final: Path
    ) -> dict[str, Any]:
        target = partial / "data"
        target.mkdir(exist_ok=True)
        resumed = self._load(partial / STATE)
        sizes = [p.stat().st_size for p, _ in files]
        progress = Progress(sum(sizes), self.say)
        done_bytes = sum(sizes[: self.done])
        progress.base = done_bytes
        if resumed:
            self.say(f"resuming after file {self.done} of {len(files)} (checkpoint)")
        started = time.perf_counter()
        last_checkpoint = time.monotonic()
        for index in range(self.done, len(files)):
            path, rel = files[index]
            done_bytes += self._clean_file(
                path, rel, target, index, rels, progress, done_bytes, len(files)
            )
            self.done = index + 1
            self.seconds += time.perf_counter() - started
            started = time.perf_counter()
            if time.monotonic() - last_checkpoint >= CHECKPOINT_SECONDS:
                self._save(partial / STATE)
                last_checkpoint = time.monotonic()
        progress.update(done_bytes, self.ordinal, len(files), len(files), force=True)
        if self.output.total.documents == 0:
            worst = max(
                self.steps, key=lambda s: s.before.total.documents - s.after.total.documents
            )
            raise DataError(
                f"steps: every document was removed ({worst.params.step} removed "
                f"{worst.before.total.documents - worst.after.total.documents:,}); "
                "loosen its thresholds"
            )
        result = self.report(str(final), resumed)
        (target / LINEAGE_FILE).write_text(json.dumps(result, indent=1, ensure_ascii=False))
        if final.exists():
            raise DataError(f"name: {final} appeared while cleaning; pick another name")
        os.rename(target, final)
        shutil.rmtree(partial, ignore_errors=True)
        return result

    # --- checkpoints ------------------------------------------------------------------------

    _STATE_FIELDS = (
        "steps",
        "locations",
        "input",
        "output",
        "done",
        "ordinal",
        "file_rows",
        "seconds",
    )

    def _save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as fh:
            pickle.dump({k: getattr(self, k) for k in self._STATE_FIELDS}, fh, protocol=5)
        os.replace(tmp, path)

    def _load(self, path: Path) -> bool:
        if not path.is_file():
            return False
        try:
            with path.open("rb") as fh:
                state = pickle.load(fh)  # our own file, in our own hidden directory
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError):
            return False
        for k in self._STATE_FIELDS:
            setattr(self, k, state[k])
        return True

    # --- report -----------------------------------------------------------------------------

    def report(self, output: str, resumed: bool) -> dict[str, Any]:
        def tally(t: Tally) -> dict[str, Any]:
            return {
                "total": vars(t.total).copy(),
                "languages": {k: vars(v).copy() for k, v in sorted(t.languages.items())},
            }

        index_entries = sum(
            len(getattr(s, "seen", ())) + len(getattr(s, "index", ())) for s in self.steps
        )
        langs = sorted(set(self.input.languages) | set(self.output.languages))
        docs = self.input.total.documents
        return {
            "output": output,
            "name": self.params.name,
            "sources": list(self.params.sources),
            "params": self.params.model_dump(mode="json"),
            "tokenizer": self.params.tokenizer,
            "before": vars(self.input.total).copy(),
            "after": vars(self.output.total).copy(),
            "by_language": {
                lang: {
                    "before": vars(self.input.languages.get(lang, Counts())).copy(),
                    "after": vars(self.output.languages.get(lang, Counts())).copy(),
                }
                for lang in langs
            },
            "steps": [s.report() for s in self.steps],
            "files": self.file_rows,
            "seconds": round(self.seconds, 3),
            "documents_per_second": round(docs / self.seconds) if self.seconds > 0 else None,
            "index_entries": index_entries,
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "resumed": resumed,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "detector": "py3langid " + _version("py3langid"),
        }


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"
