"""recipes/tasks/manpages_de.py, the unseen task of `make demo-payoff`, on a real .deb built here:
man pages rendered by groff, passages labelled by section, whole pages in one split, and no test
page's text in the pretraining corpus."""

import gzip
import json
import shutil
import subprocess

import pytest

from recipes.tasks import manpages_de

pytestmark = pytest.mark.skipif(
    not (shutil.which("groff") and shutil.which("dpkg-deb")),
    reason="needs groff and dpkg-deb (Debian: groff-base, dpkg)",
)
WORDS = "der Prozess liest die Datei und schreibt das Ergebnis in den Speicher".split()


def page_source(name: str, section: str, header: str) -> str:
    body = " ".join(f"{name}{i} {WORDS[i % len(WORDS)]}" for i in range(60))
    return (
        f'.TH {name.upper()} {section} 2024-01-01 "Linux" "{header}"\n'
        f".SH BEZEICHNUNG\n{name} \\- tut etwas\n.SH BESCHREIBUNG\n{body}\n.PP\n{body}\n"
        ".SH ÜBERSETZUNG\nDie deutsche Übersetzung dieser Handbuchseite wurde von jemandem "
        "erstellt, und zwar mit sehr vielen Worten, damit dieser Absatz lang genug wäre.\n"
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("deb")
    tree = root / "pkg"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN/control").write_text(
        "Package: manpages-de\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@t>\n"
        "Description: test pages\n"
    )
    for section in manpages_de.SECTIONS:
        folder = tree / f"usr/share/man/de/man{section}"
        folder.mkdir(parents=True)
        for k in range(6):
            name = f"seite{section}x{k}"
            source = page_source(name, section, "KOPFZEILE")
            (folder / f"{name}.{section}.gz").write_bytes(gzip.compress(source.encode()))
        (folder / f"alias.{section}.gz").write_bytes(gzip.compress(b".so man1/seite1x0.1\n"))
        (folder / f"link.{section}.gz").symlink_to(f"seite{section}x0.{section}.gz")
    debs = root / "debs"
    debs.mkdir()
    subprocess.run(["dpkg-deb", "--build", str(tree), str(debs / "manpages-de_1.0_all.deb")],
                   check=True, capture_output=True)  # fmt: skip
    out = root / "out"
    counts = manpages_de.main(["--debs", str(debs), "--out_dir", str(out)])
    read = {s: [json.loads(line) for line in open(out / f"{s}.jsonl")] for s in ("train", "test")}
    return out, counts, read


def test_whole_pages_split_and_the_corpus_holds_no_test_page(built):
    out, counts, rows = built
    assert rows["train"] and rows["test"]
    train_pages = {r["page"] for r in rows["train"]}
    test_pages = {r["page"] for r in rows["test"]}
    assert not train_pages & test_pages  # a page's passages are all on one side
    corpus = (out / "corpus.txt").read_text().splitlines()
    assert corpus == [r["text"] for r in rows["train"]]
    assert not {r["text"] for r in rows["test"]} & set(corpus)
    assert {s: sum(c.values()) for s, c in counts.items()} == {s: len(r) for s, r in rows.items()}


def test_labels_are_sections_and_headers_boilerplate_aliases_are_dropped(built):
    _, _, rows = built
    everything = rows["train"] + rows["test"]
    for row in everything:
        section = row["page"].split(".")[1]
        assert row["label"] == manpages_de.SECTIONS[section]
        assert row["page"].startswith("seite")  # no alias (.so) or symlinked page
        assert len(row["text"].split()) >= 40 and "\n" not in row["text"]
        # the header names the section; the translators' boilerplate ends every page
        assert "KOPFZEILE" not in row["text"] and f"({section})" not in row["text"]
        assert "Übersetzung" not in row["text"]
    assert {r["label"] for r in everything} == set(manpages_de.SECTIONS.values())
    assert len({r["page"] for r in everything}) == 6 * len(manpages_de.SECTIONS)


def test_no_debs_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        manpages_de.main(["--debs", str(tmp_path), "--out_dir", str(tmp_path / "out")])
    assert exit_.value.code == 2
    assert "put manpages-de*.deb in" in capsys.readouterr().err
