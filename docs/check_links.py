"""Check every link and image inside the built website (``make docs`` runs it after Sphinx).

Sphinx's ``linkcheck`` needs the internet; this checks, offline, that every ``href`` and ``src`` of every page of
``docs/_build/html`` that points inside the site names a file that exists, and that a ``#fragment`` names an ``id`` on
that page. Links to other sites are not followed. Usage: ``python docs/check_links.py docs/_build/html``.
"""

import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit


class Links(HTMLParser):
    """The ``href``/``src`` values and the ``id`` values of one page."""

    def __init__(self):
        super().__init__()
        self.links, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("name"):
            self.ids.add(attrs["name"])
        for key in ("href", "src"):
            if attrs.get(key) and not (tag == "link" and attrs.get("rel") in ("preconnect", "dns-prefetch")):
                self.links.append(attrs[key])


def parse(page):
    parser = Links()
    parser.feed(page.read_text(encoding="utf-8", errors="replace"))
    return parser


def broken_links(site):
    """List of ``"page: link (why)"`` for every internal link of ``site`` that does not resolve."""
    site = Path(site).resolve()
    pages = sorted(p for p in site.rglob("*.html") if p.relative_to(site).parts[0] not in ("_static", "_sources"))
    if not pages:
        return [f"{site}: no HTML page (was the site built?)"]
    ids, links, problems = {}, {}, []
    for page in pages:
        parser = parse(page)
        ids[page], links[page] = parser.ids, parser.links
    for page in pages:
        for link in links[page]:
            parts = urlsplit(link)
            if parts.scheme or link.startswith(("//", "mailto:", "javascript:", "data:")):
                continue
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if target.is_dir():
                target = target / "index.html"
            where = f"{page.relative_to(site)}: {link}"
            if not target.is_relative_to(site):
                problems.append(f"{where} (outside the site)")
            elif not target.exists():
                problems.append(f"{where} (no such file)")
            elif parts.fragment and target.suffix == ".html":
                known = ids.get(target) if target in ids else parse(target).ids
                if unquote(parts.fragment) not in known:
                    problems.append(f"{where} (no id {parts.fragment!r} on that page)")
    return problems


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    site = Path(argv[0] if argv else "docs/_build/html")
    problems = broken_links(site)
    for line in problems:
        print(line)
    n_pages = len([p for p in site.rglob("*.html") if p.relative_to(site).parts[0] not in ("_static", "_sources")])
    print(f"{len(problems)} broken internal link(s) in {n_pages} pages of {site}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
