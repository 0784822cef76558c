"""Sections of benchmarks/RESULTS.md owned by one script each, between
"<!-- NAME:begin -->" and "<!-- NAME:end -->" (benchmarks/report.py keeps them when it rewrites
the rest)."""
import os
import re


def marked(name, body):
    """body wrapped in the markers of section `name`."""
    return f"<!-- {name}:begin -->\n{body.rstrip()}\n<!-- {name}:end -->\n"


def put(path, section):
    """Replaces the section of the same name in `path`, or puts it before '## Plots' (else at
    the end). `section` starts with its begin marker and ends with its end marker."""
    m = re.match(r"<!-- ([a-z0-9-]+):begin -->", section)
    if not m:
        raise ValueError("a RESULTS.md section starts with its '<!-- NAME:begin -->' marker")
    begin, end = m.group(0), f"<!-- {m.group(1)}:end -->"
    text = open(path).read() if os.path.exists(path) else "# photon benchmark results\n\n"
    if begin in text and end in text:
        i, j = text.index(begin), text.index(end) + len(end)
        text = text[:i] + section.rstrip("\n") + text[j:]
    elif "\n## Plots" in text:
        i = text.index("\n## Plots")
        text = text[:i + 1] + section.rstrip("\n") + "\n\n" + text[i + 1:]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    with open(path, "w") as f:
        f.write(text)
