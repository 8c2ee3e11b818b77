"""The course's one-page VAE formula sheet (lesson 13): in a notebook, as HTML, as PDF, all offline.

    from vae_core.interview.sheet import show_formula_sheet, export_formula_sheet
    show_formula_sheet()                              # in JupyterLab: Markdown, math by its bundled MathJax
    export_formula_sheet(Path("formula_sheet.html"))  # + formula_sheet_files/mathjax/ beside it
    export_formula_sheet(Path("formula_sheet.pdf"))   # one A4 page, printed by headless Chromium

The sheet itself is ``formula_sheet.md`` next to this file. nbconvert's HTML takes MathJax from a CDN,
which neither CI nor many laptops can reach, so the export copies the MathJax 2.7 of the pinned
``jupyter-server-mathjax`` package into ``<name>_files/mathjax/`` and points the page there with a
relative URL: the HTML keeps rendering offline as long as it moves together with that folder.
``vae-course formula-sheet`` is the command-line front end.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

__all__ = ["ChromiumNotFound", "formula_sheet_markdown", "show_formula_sheet", "export_formula_sheet", "find_chromium"]

SHEET = Path(__file__).with_name("formula_sheet.md")
SUFFIXES = (".html", ".pdf")
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# MathJax 2.7 as jupyter-server-mathjax ships it: the TeX input and HTML-CSS output with STIX-Web fonts.
# Its other folders are not needed offline (SVG output ships fonts but no jax; English needs no localization).
MATHJAX_CONFIG = "TeX-AMS-MML_HTMLorMML-full,Safe"
_SKIP = {"localization", "SVG", "__pycache__"}

# Read before MathJax starts: the only web font shipped is STIX-Web, never fall back to a CDN or to
# image fonts; long displays break lines inside a column; TeX errors show as errors (tests look for them).
_MATHJAX_SETUP = """<script type="text/x-mathjax-config">
MathJax.Hub.Config({
  "HTML-CSS": {availableFonts: [], preferredFont: null, webFont: "STIX-Web", imageFont: null,
               linebreaks: {automatic: true}, scale: 92},
  TeX: {noErrors: {disabled: true}, noUndefined: {disabled: true}},
  menuSettings: {zoom: "None"}
});
</script>
"""

# One A4 page (it fits Letter's height too): two columns, 8.3 pt text, no notebook chrome.
_PAGE_STYLE = """<style id="vae-formula-sheet">
@page { size: A4; margin: 7mm 8mm; }
html, body { background: white; }
body.jp-Notebook { padding: 0 !important; margin: 0 auto; max-width: 194mm; }
.jp-Cell { padding: 0 !important; }
.jp-InputPrompt, .jp-Collapser { display: none !important; }
.jp-RenderedMarkdown { column-count: 2; column-gap: 6mm; column-rule: 0.3pt solid #bbb;
                       font-size: 8.3pt; line-height: 1.22; padding: 0 !important;
                       overflow: visible !important; }  /* lab's `overflow: auto` printed a scrollbar */
.jp-RenderedMarkdown h1 { column-span: all; font-size: 14pt; margin: 0 0 1mm 0; }
.jp-RenderedMarkdown p { margin: 0.4mm 0 0 0; }
.jp-RenderedMarkdown p:has(> strong:first-child) { margin-top: 1.6mm; break-after: avoid; }
.jp-RenderedMarkdown h1 + p { column-span: all; margin-bottom: 1.2mm; color: #333; }
.jp-RenderedMarkdown .MathJax_Display { margin: 0.4mm 0 !important; break-inside: avoid; }
.jp-RenderedMarkdown .anchor-link { display: none; }
</style>
"""


class ChromiumNotFound(RuntimeError):
    """No headless Chromium on PATH to print the PDF with."""


def formula_sheet_markdown() -> str:
    """The sheet as Markdown with LaTeX math (``$...$`` inline, ``$$...$$`` displays)."""
    return SHEET.read_text(encoding="utf-8")


def show_formula_sheet():
    """Display the sheet in a notebook; JupyterLab typesets the math with its bundled MathJax."""
    from IPython.display import Markdown, display

    display(Markdown(formula_sheet_markdown()))


def find_chromium() -> str | None:
    """The first of chromium, chromium-browser, google-chrome on PATH, or None."""
    return next((p for p in map(shutil.which, BROWSERS) if p), None)


def _mathjax_source() -> Path:
    import jupyter_server_mathjax

    src = Path(jupyter_server_mathjax.__file__).parent / "static"
    if not (src / "MathJax.js").is_file():
        raise FileNotFoundError(f"jupyter-server-mathjax has no MathJax.js under {src}; "
                                "reinstall it: pip install jupyter-server-mathjax==0.2.6")
    return src


def _assets_dir(html: Path) -> Path:
    return html.with_name(f"{html.stem}_files")


def _render_html(mathjax_url: str) -> str:
    """nbconvert's lab template on a one-cell notebook, MathJax from ``mathjax_url``, sized to one page."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell(formula_sheet_markdown()))
    nb.metadata["title"] = "VAE formula sheet"
    exporter = HTMLExporter(template_name="lab", mathjax_url=mathjax_url, exclude_input_prompt=True,
                            exclude_output_prompt=True, anchor_link_text="")
    html, _ = exporter.from_notebook_node(nb)
    tag = f'<script src="{mathjax_url}"'
    if html.count(tag) != 1:
        raise RuntimeError(f"nbconvert's template no longer loads MathJax as {tag}...>; the sheet cannot point it "
                           "at the local copy")
    html = html.replace(tag, _MATHJAX_SETUP + tag, 1)
    # require.js (from a CDN) serves widgets only; the sheet has none, and offline it would only stall the page.
    html = html.replace(f'<script src="{exporter.require_js_url}"></script>', "", 1)
    return html.replace("</head>", _PAGE_STYLE + "</head>", 1)


def _write_html(html_path: Path) -> Path:
    """The HTML and ``<stem>_files/mathjax/`` beside it (the folder is replaced if present)."""
    assets = _assets_dir(html_path)
    mathjax = assets / "mathjax"
    if mathjax.exists():
        shutil.rmtree(mathjax)
    mathjax.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(_mathjax_source(), mathjax, ignore=lambda _d, names: [n for n in names if n in _SKIP])
    url = f"{quote(assets.name)}/mathjax/MathJax.js?config={MATHJAX_CONFIG}"  # relative: moves with the page
    tmp = html_path.with_name(f".{html_path.name}.tmp")
    tmp.write_text(_render_html(url), encoding="utf-8")
    os.replace(tmp, html_path)
    return html_path


def _print_pdf(html: Path, pdf: Path, browser: str, budget_ms: int = 15000) -> None:
    with tempfile.TemporaryDirectory(prefix="vae-sheet-chromium-") as profile:
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", f"--user-data-dir={profile}",
               "--allow-file-access-from-files", f"--virtual-time-budget={budget_ms}",
               "--no-pdf-header-footer", "--print-to-pdf-no-header", f"--print-to-pdf={pdf}", html.as_uri()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0 or not pdf.is_file() or pdf.stat().st_size == 0:
        raise RuntimeError(f"{browser} did not print the PDF (exit {proc.returncode}): {proc.stderr.strip()[-800:]}")


def export_formula_sheet(out: Path, force: bool = False) -> Path:
    """Write the sheet to ``out``: ``.html`` (offline, with ``<stem>_files/``) or ``.pdf`` (one page).

    Refuses to replace an existing ``out`` (or its ``<stem>_files/`` folder, for HTML) unless ``force``.
    A ``.pdf`` needs headless Chromium on PATH (``ChromiumNotFound`` says what to install otherwise).
    Returns ``out``.
    """
    out = Path(out).expanduser()
    suffix = out.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"the formula sheet is written as .html or .pdf, got {out.name!r} "
                         f"(suffix {out.suffix or 'none'!r})")
    if out.is_dir():
        raise ValueError(f"{out} is a folder; give a file name ending in {suffix}")
    if not out.parent.is_dir():
        raise ValueError(f"no folder {out.parent} to write {out.name} into")
    taken = [p for p in ([out, _assets_dir(out)] if suffix == ".html" else [out]) if p.exists()]
    if taken and not force:
        raise FileExistsError(f"{' and '.join(map(str, taken))} already exist(s); nothing was written. "
                              "Choose another --out, or --force to replace it")
    if suffix == ".html":
        return _write_html(out)
    browser = find_chromium()
    if browser is None:
        raise ChromiumNotFound(
            "printing the PDF needs headless Chromium on PATH (chromium, chromium-browser or google-chrome), "
            "found none: install it (Debian/Ubuntu: `sudo apt-get install chromium`), or write the HTML with "
            "`vae-course formula-sheet --out formula_sheet.html`, open it in a browser and print it to PDF")
    with tempfile.TemporaryDirectory(prefix="vae-sheet-") as tmp:
        html = _write_html(Path(tmp) / "formula_sheet.html")
        pdf = Path(tmp) / "formula_sheet.pdf"
        _print_pdf(html, pdf, browser)
        shutil.move(str(pdf), str(out.with_name(f".{out.name}.tmp")))
    os.replace(out.with_name(f".{out.name}.tmp"), out)
    return out
