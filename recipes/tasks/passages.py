"""Passages for classification tasks: consecutive paragraphs joined until each has enough words."""


def join_paragraphs(
    paragraphs: list[str], min_words: int, separator: str = "\n\n", keep_tail: bool = True
) -> list[str]:
    """Consecutive `paragraphs` joined with `separator` until a passage has at least
    `min_words` words. The short tail left at the end joins the passage before it
    (`keep_tail`), or is dropped."""
    out, current = [], []
    for paragraph in paragraphs:
        current.append(paragraph)
        if sum(len(p.split()) for p in current) >= min_words:
            out.append(separator.join(current))
            current = []
    if current and keep_tail:
        if out:
            out[-1] += separator + separator.join(current)
        else:
            out.append(separator.join(current))
    return out
