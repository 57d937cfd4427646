#!/usr/bin/env python3
"""Generates charts/fine-grained-monitor-operator/README.md from the chart's values.yaml.

Every value gets a row: its dotted path, its default (as one line of YAML flow style) and
its description, taken from the `# -- ` comment right above it (continued by the `# ` lines
that follow). A map whose children carry their own `# -- ` comments is listed child by
child; any other map or list is one value whose default is shown whole.

    python3 tools/chart-readme.py           # rewrite the chart README (`make chart-readme`)
    python3 tools/chart-readme.py --check   # exit 1 when the README differs from values.yaml
    python3 tools/chart-readme.py --stdout  # print it

Standard library only. It reads the YAML subset values.yaml uses (block maps, block lists of
scalars or maps, plain or double-quoted scalars, `[]`, `{}` and one-line flow collections,
whole-line comments) and refuses anything else (anchors, tags, multi-line scalars, tabs,
comments after a value), naming the line, rather than guess.
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "fine-grained-monitor-operator"
VALUES = CHART / "values.yaml"
README = CHART / "README.md"
REGENERATE = "`make chart-readme` (or `python3 tools/chart-readme.py`)"

KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_][A-Za-z0-9_./-]*):(?: +(?P<value>.*))?$")
ITEM = re.compile(r"^(?P<indent> *)- +(?P<rest>.*)$")
COMMENT = re.compile(r"^ *#(?: (?P<text>.*))?$")


class ValuesError(Exception):
    pass


class Node:
    """A key of a map: its description (or None) and its value (a scalar's text, a list or
    a dict of Nodes)."""

    def __init__(self, key, description, value, line):
        self.key = key
        self.description = description
        self.value = value
        self.line = line


def check_scalar(text, line):
    """A scalar as written: plain, double-quoted, or a one-line flow collection."""
    text = text.rstrip()
    if not text:
        raise ValuesError(f"values.yaml:{line}: empty scalar")
    if text[0] in "|>&*!%@`'":
        raise ValuesError(f"values.yaml:{line}: unsupported YAML ({text!r})")
    if " #" in text and not (text.startswith('"') and text.endswith('"')):
        raise ValuesError(f"values.yaml:{line}: comment after a value ({text!r})")
    if text.startswith('"') and not (len(text) >= 2 and text.endswith('"')):
        raise ValuesError(f"values.yaml:{line}: unterminated string ({text!r})")
    if text[0] in "[{":
        closing = {"[": "]", "{": "}"}[text[0]]
        if not text.endswith(closing):
            raise ValuesError(f"values.yaml:{line}: multi-line flow collection ({text!r})")
    return text


def tokens(source):
    """(line number, indent, kind, payload) for each meaningful line; comments are kept as
    descriptions of the key that follows them directly."""
    out = []
    comment = None
    for number, raw in enumerate(source.splitlines(), start=1):
        if "\t" in raw:
            raise ValuesError(f"values.yaml:{number}: tab character")
        if raw.strip() in ("---", "..."):
            raise ValuesError(f"values.yaml:{number}: document markers are not supported")
        if not raw.strip():
            comment = None
            continue
        m = COMMENT.match(raw)
        if m:
            text = (m.group("text") or "").strip()
            if text.startswith("-- ") or text == "--":
                comment = [text[3:].strip()]
            elif comment is not None:
                comment.append(text)
            continue
        description = " ".join(t for t in comment if t) if comment else None
        comment = None
        m = ITEM.match(raw)
        if m:
            out.append((number, len(m.group("indent")), "item", m.group("rest"), description))
            continue
        m = KEY.match(raw)
        if m:
            out.append(
                (number, len(m.group("indent")), "key", (m.group("key"), m.group("value")), description)
            )
            continue
        raise ValuesError(f"values.yaml:{number}: unsupported line {raw!r}")
    return out


class Parser:
    def __init__(self, toks):
        self.toks = toks
        self.i = 0

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else None

    def parse_map(self, indent, first=None):
        """Keys at exactly `indent`; `first` is a key already taken from a list item."""
        out = {}
        pending = [first] if first else []
        while True:
            if pending:
                number, key, value, description = pending.pop()
            else:
                tok = self.peek()
                if tok is None or tok[1] < indent or tok[2] != "key":
                    break
                if tok[1] > indent:
                    raise ValuesError(f"values.yaml:{tok[0]}: unexpected indentation")
                number, _, _, (key, value), description = tok
                self.i += 1
            if key in out:
                raise ValuesError(f"values.yaml:{number}: duplicate key {key}")
            if value is not None and value.strip():
                node_value = check_scalar(value, number)
            else:
                node_value = self.parse_block(indent, number)
            out[key] = Node(key, description, node_value, number)
        return out

    def parse_block(self, parent_indent, number):
        """The block value of a key at `parent_indent`: a deeper map, or a list (YAML lets
        its dashes sit at the key's own indentation)."""
        tok = self.peek()
        if tok is None:
            raise ValuesError(f"values.yaml:{number}: key without a value")
        if tok[2] == "item" and tok[1] >= parent_indent:
            return self.parse_list(tok[1])
        if tok[2] == "key" and tok[1] > parent_indent:
            return self.parse_map(tok[1])
        raise ValuesError(f"values.yaml:{number}: key without a value")

    def parse_list(self, indent):
        out = []
        while True:
            tok = self.peek()
            if tok is None or tok[1] != indent or tok[2] != "item":
                break
            number, _, _, rest, description = tok
            if description:
                raise ValuesError(f"values.yaml:{number}: `# --` comments on list items are not supported")
            self.i += 1
            m = KEY.match(" " * (indent + 2) + rest)
            if m and not rest.startswith('"'):
                first = (number, m.group("key"), m.group("value"), None)
                out.append(self.parse_map(indent + 2, first))
            else:
                out.append(check_scalar(rest, number))
        return out


def parse(source):
    toks = tokens(source)
    parser = Parser(toks)
    tree = parser.parse_map(0)
    tok = parser.peek()
    if tok is not None:
        raise ValuesError(f"values.yaml:{tok[0]}: unexpected line")
    return tree


def flow(value):
    """A value as one line of YAML flow style."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    return "{" + ", ".join(f"{k}: {flow(n.value)}" for k, n in value.items()) + "}"


def documented_below(value):
    return isinstance(value, dict) and any(
        n.description is not None or documented_below(n.value) for n in value.values()
    )


def rows(tree, prefix=""):
    """(path, default or None, description) in file order."""
    out = []
    for key, node in tree.items():
        path = prefix + key
        if documented_below(node.value):
            if node.description:
                out.append((path, None, node.description))
            missing = [
                k for k, n in node.value.items() if n.description is None and not documented_below(n.value)
            ]
            if missing:
                raise ValuesError(
                    f"values.yaml:{node.line}: {path} documents some keys but not "
                    + ", ".join(f"{path}.{k}" for k in missing)
                    + " (give each a `# -- ` comment)"
                )
            out.extend(rows(node.value, path + "."))
        else:
            if not node.description:
                raise ValuesError(
                    f"values.yaml:{node.line}: {path} has no description (a `# -- ` comment right above it)"
                )
            out.append((path, flow(node.value), node.description))
    return out


def header_comment(source):
    """The file's opening comment block, without its first line (`Default values for ...`)."""
    lines = []
    for raw in source.splitlines():
        m = COMMENT.match(raw)
        if not m:
            break
        lines.append((m.group("text") or "").strip())
    paragraphs, current = [], []
    for text in lines[1:]:
        if text:
            current.append(text)
        elif current:
            paragraphs.append(" ".join(current))
            current = []
    if current:
        paragraphs.append(" ".join(current))
    return paragraphs


def cell(text):
    return text.replace("|", "\\|")


def code(text):
    ticks = "``" if "`" in text else "`"
    pad = " " if ticks == "``" else ""
    return f"{ticks}{pad}{cell(text)}{pad}{ticks}"


def render(source):
    table = rows(parse(source))
    out = [
        "# fine-grained-monitor-operator chart",
        "",
        "<!-- Generated from values.yaml by tools/chart-readme.py: edit values.yaml, then run",
        "     `make chart-readme`. A test fails while this file is stale. -->",
        "",
        "[Back to the project README](../../README.md#install-with-helm)",
        "",
    ]
    for paragraph in header_comment(source):
        out += [paragraph, ""]
    out += [
        "```sh",
        "helm install fine-grained-monitor-operator charts/fine-grained-monitor-operator \\",
        "  --namespace fine-grained-monitor --create-namespace",
        "```",
        "",
        "## Values",
        "",
        "Every value of [values.yaml](values.yaml) (checked by",
        "[values.schema.json](values.schema.json)), with its default as YAML. Set them with",
        "`--set key=value` or `--values file.yaml`; examples in [ci/](ci/).",
        "",
        "| value | default | description |",
        "|---|---|---|",
    ]
    for path, default, description in table:
        shown = code(default) if default is not None else "(see below)"
        out.append(f"| {code(path)} | {shown} | {cell(description)} |")
    out.append("")
    return "\n".join(out)


def main(argv):
    mode = argv[1] if len(argv) > 1 else "--write"
    if mode not in ("--write", "--check", "--stdout") or len(argv) > 2:
        print(f"usage: {argv[0]} [--check | --stdout]", file=sys.stderr)
        return 2
    try:
        text = render(VALUES.read_text())
    except ValuesError as e:
        print(f"chart-readme: {e}", file=sys.stderr)
        return 1
    if mode == "--stdout":
        sys.stdout.write(text)
        return 0
    if mode == "--check":
        current = README.read_text() if README.exists() else ""
        if current != text:
            print(
                f"{README.relative_to(ROOT)} is stale (it differs from what values.yaml gives): "
                f"run {REGENERATE} and commit the result",
                file=sys.stderr,
            )
            return 1
        return 0
    README.write_text(text)
    print(f"wrote {README.relative_to(ROOT)} ({len(table_lines(text))} values)")
    return 0


def table_lines(text):
    return [l for l in text.splitlines() if l.startswith("| `")]


if __name__ == "__main__":
    sys.exit(main(sys.argv))
