"""The built UI stays within its weight budget: JS + CSS under 200 KB gzipped."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

BUDGET = 200 * 1024


def test_bundle_under_200kb_gzipped(built_frontend: Path) -> None:
    assets = [p for p in (built_frontend / "assets").iterdir() if p.suffix in {".js", ".css"}]
    assert any(p.suffix == ".js" for p in assets) and any(p.suffix == ".css" for p in assets)
    sizes = {p.name: len(gzip.compress(p.read_bytes(), compresslevel=9)) for p in assets}
    total = sum(sizes.values())
    assert total < BUDGET, f"JS+CSS is {total / 1024:.1f} KB gzipped (budget 200 KB): {sizes}"
    # index.html must load the built assets with relative URLs, so any mount path works.
    html = (built_frontend / "index.html").read_text()
    assert "./assets/" in html and "/src/main.tsx" not in html


def test_the_readme_states_the_measured_size(built_frontend: Path) -> None:
    """The README's bundle size is what `npm run size` measured and wrote, not a typed number."""
    assets = [p for p in (built_frontend / "assets").iterdir() if p.suffix in {".js", ".css"}]
    total = sum(len(gzip.compress(p.read_bytes(), compresslevel=9)) for p in assets)
    readme = (built_frontend.parents[1] / "README.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- npm run size -->(\d+) KB<!-- /npm run size -->", readme)
    assert found, "README.md lost its <!-- npm run size --> marker"
    # Math.round in size.mjs: halves up. Node's zlib and Python's gzip differ by some bytes, so
    # a size near a half rounds either way: within 0.6 KB of this count.
    assert abs(int(found.group(1)) - total / 1024) <= 0.6, (
        f"README says {found.group(1)} KB, the build is {total / 1024:.1f} KB: "
        "run `cd frontend && npm run build && npm run size`"
    )


def test_fonts_for_non_latin_scripts_are_not_bundled(built_frontend: Path) -> None:
    """Kannada/Devanagari/CJK come from system Noto fonts; shipping font files would blow the budget."""
    fonts = [
        p for p in built_frontend.rglob("*") if p.suffix in {".woff", ".woff2", ".ttf", ".otf"}
    ]
    assert fonts == []
    css = "".join(p.read_text() for p in (built_frontend / "assets").glob("*.css"))
    for family in ("Noto Sans Kannada", "Noto Sans Devanagari", "Noto Sans CJK SC"):
        assert family in css, family
