#!/usr/bin/env python3
"""Lists the non-test Rust functions longer than a limit (80 lines by default), from the
`fn` line to its closing brace, and exits 1 if there is one that is not allowed below.

The code is formatted by rustfmt, so a function starts on a line that holds `fn NAME` and
ends on the first later line that holds only `}` at the same indentation. Test code is
skipped: files under a `tests/` folder, `#[cfg(test)]` modules and `#[test]` functions.

Usage: python3 scripts/long-functions.py [--limit N] [--all]   (--all lists every function
over the limit, allowed ones too)
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Functions allowed over the limit, each with its reason.
ALLOWED = {
    # A single `match` over the pickle opcodes: one arm per opcode reads best in one place.
    ("m2m-burn-plugin/src/import/pickle.rs", "run"),
}
FN = re.compile(r"^(\s*)(?:pub(?:\([^)]*\))? )?(?:const )?(?:async )?(?:unsafe )?(?:extern \"C\" )?fn (\w+)")


def functions(path):
    """(name, first line, length) of every non-test function of `path`."""
    lines = path.read_text().splitlines()
    skip_until = None  # the closing line of a test module or test function being skipped
    pending_test = False
    out = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped in ("#[cfg(test)]", "#[test]"):
            pending_test = True
            i += 1
            continue
        m = FN.match(line)
        opens_block = m or re.match(r"^(\s*)(?:pub(?:\([^)]*\))? )?mod \w+ \{$", line)
        if opens_block:
            indent = re.match(r"^(\s*)", line).group(1)
            end = i
            if not line.rstrip().endswith(";"):
                end = next((j for j in range(i, len(lines)) if lines[j] == indent + "}"), i)
            if pending_test:
                i = end + 1
                pending_test = False
                continue
            if m:
                out.append((m.group(2), i + 1, end - i + 1))
        elif stripped and not stripped.startswith("#["):
            pending_test = False
        i += 1
    return out


def main():
    limit = 80
    if "--limit" in sys.argv:
        limit = int(sys.argv[sys.argv.index("--limit") + 1])
    show_all = "--all" in sys.argv
    failed = False
    for path in sorted(ROOT.glob("**/*.rs")):
        rel = path.relative_to(ROOT).as_posix()
        if "/tests/" in f"/{rel}" or rel.startswith("target/") or "/target/" in rel:
            continue
        for name, first, length in functions(path):
            if length <= limit:
                continue
            allowed = (rel, name) in ALLOWED
            if allowed and not show_all:
                continue
            failed |= not allowed
            note = " (allowed)" if allowed else ""
            print(f"{rel}:{first}: fn {name}: {length} lines{note}")
    if failed:
        print(f"long-functions.py: functions over {limit} lines (see above); split them into named steps", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
