"""An unseen corpus and task in another language, for the pretraining pay-off: Debian's German
manual pages (manpages-de, manpages-de-dev), and which manual section a passage comes from.

    apt-get download manpages-de manpages-de-dev   # groff renders them (Debian: groff-base)
    python -m recipes.tasks.manpages_de --debs . --out_dir data/manpages-de

Five labels, the sections: 1 user commands (befehle), 2 system calls (systemaufrufe), 3 library
functions (bibliothek), 5 file formats (dateiformate), 8 administration (verwaltung). A passage is
consecutive paragraphs of one rendered page, at least 40 words, on one line. Pages are split
80/20 by a hash of their file name: test.jsonl holds the passages of one page in five, and
corpus.txt (pretraining text, one passage per line) and train.jsonl only the others, so no test
page is seen by either stage. Each row names its `page` (`group_column: page` holds validation
out by whole pages too). The page header ("LS(1) Dienstprogramme für Benutzer") names the section,
so it is dropped, and so is the translators' boilerplate at the end of every page.
"""

import argparse
import gzip
import hashlib
import json
import re
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

from recipes.errors import UserError, exit_on_user_error
from recipes.tasks.passages import join_paragraphs

SECTIONS = {"1": "befehle", "2": "systemaufrufe", "3": "bibliothek", "5": "dateiformate", "8": "verwaltung"}  # fmt: skip
BOILERPLATE = re.compile(r"^(ÜBERSETZUNG|KOLOPHON|COLOPHON)\s*$")


def render(page: Path) -> list[str]:
    """A page's text lines, without the header and footer lines that name its section."""
    source = gzip.decompress(page.read_bytes())
    if source.startswith(b".so "):  # an alias of another page
        return []
    text = subprocess.run(
        ["groff", "-k", "-Tutf8", "-mandoc", "-P-cbou"], input=source, capture_output=True
    ).stdout.decode("utf-8", "replace")
    lines = text.splitlines()
    body = [i for i, line in enumerate(lines) if line.strip()]
    return lines[body[0] + 1 : body[-1]] if len(body) > 2 else []


def passages(lines: list[str], min_words: int = 40) -> list[str]:
    """A rendered page's paragraphs, up to the translators' boilerplate, joined on one line
    into passages of at least `min_words` words (a short tail is dropped)."""
    paragraphs, current = [], []
    for line in lines + [""]:
        if BOILERPLATE.match(line.strip()):
            break
        if line.strip():
            current.append(line.strip())
        elif current:
            paragraphs.append(re.sub(r"\s+", " ", " ".join(current)))
            current = []
    return join_paragraphs(paragraphs, min_words, separator=" ", keep_tail=False)


@exit_on_user_error
def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--debs",
        type=Path,
        required=True,
        help="Folder with the two .deb files (manpages-de*.deb, manpages-de-dev*.deb).",
    )
    parser.add_argument(
        "--out_dir",
        type=Path,
        default=Path("data/manpages-de"),
        help="Where corpus.txt, train.jsonl and test.jsonl go (default: data/manpages-de).",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        for deb in sorted(args.debs.glob("manpages-de*.deb")):
            subprocess.run(["dpkg-deb", "-x", str(deb), tmp], check=True)
        root = Path(tmp) / "usr/share/man/de"
        rows = {"train": [], "test": []}
        for number, label in SECTIONS.items():
            for page in sorted((root / f"man{number}").glob("*.gz")):
                if page.is_symlink():
                    continue
                digest = int(hashlib.md5(page.name.encode()).hexdigest(), 16)
                split = "test" if digest % 5 == 0 else "train"
                for text in passages(render(page)):
                    rows[split].append({"text": text, "label": label, "page": page.name})
    if not rows["train"]:
        raise UserError(f"no pages found: put manpages-de*.deb in {args.debs}")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for split, split_rows in rows.items():
        with open(args.out_dir / f"{split}.jsonl", "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in split_rows)
    corpus = "".join(row["text"] + "\n" for row in rows["train"])
    (args.out_dir / "corpus.txt").write_text(corpus, encoding="utf-8")
    counts = {split: dict(Counter(r["label"] for r in split_rows)) for split, split_rows in rows.items()}  # fmt: skip
    for split, per_label in counts.items():
        print(f"{split}: {sum(per_label.values()):,} passages {per_label}")
    print(f"corpus.txt: {len(corpus.encode()):,} bytes, one passage per line -> {args.out_dir}/")
    return counts


if __name__ == "__main__":
    main()
