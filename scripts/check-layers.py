#!/usr/bin/env python3
"""Fails on an upward import or an import cycle between the modules of the SDK and the CLI.

The SDK (`sdk/src`) is cut into layers (ARCHITECTURE.md); a module may use only modules of a
lower layer. Modules on one layer are independent of each other. Inside a folder module the
files must not form a cycle either. `foresight-export` (`model-export/src`) has no declared
layers: its modules must only be free of cycles.

Reads `crate::…`, `super::…` and `use …` paths outside comments and `#[cfg(test)]` modules;
that is enough here because the crates name other modules only through such paths.
Run: scripts/check-layers.py  (exit 1 with one line per problem).
"""
import os
import re
import sys

# Lowest first. A module may use only modules on earlier lines.
SDK_LAYERS = [
    ["error", "json"],
    ["platform"],
    ["privacy"],
    ["contract"],
    ["capture"],
    ["store"],
    ["features"],
    ["infer"],
    ["import", "recommend", "intent"],
    ["experiment", "sync"],
    ["client"],
    ["web"],
]


def strip(src):
    """The source without comments, string literals' contents or test modules."""
    src = re.split(r"#\[cfg\(test\)\]\s*mod\s+tests", src)[0]
    src = re.sub(r"/\*.*?\*/", "", src, flags=re.S)
    src = re.sub(r"//[^\n]*", "", src)
    return re.sub(r'"(?:\\.|[^"\\])*"', '""', src)


def module_files(root):
    """{module path as a tuple: source} for every .rs file under root."""
    files = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            if not name.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, name), root).split(os.sep)
            if rel == ["lib.rs"] or rel == ["main.rs"]:
                continue
            stem = rel[-1][:-3]
            path = tuple(rel[:-1]) if stem == "mod" else tuple(rel[:-1]) + (stem,)
            with open(os.path.join(dirpath, name), encoding="utf-8") as f:
                files[path] = strip(f.read())
    return files


def references(path, src, known):
    """Module paths (tuples) this file names, resolved against the known modules."""
    out = set()
    for m in re.finditer(r"\b(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)+)", src):
        head, rest = m.group(1), [p for p in m.group(2).split("::") if p]
        if head == "crate":
            base = []
        else:
            base = list(path[:-1])
            while rest and rest[0] == "super":
                rest = rest[1:]
                base = base[:-1]
        target = tuple(base + rest)
        # The longest prefix that is a module.
        while target and target not in known:
            target = target[:-1]
        if target and target != path:
            out.add(target)
    return out


def cycles(edges):
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in list(edges):
        if v not in index:
            visit(v)
    return found


def check(root, layers):
    problems = []
    files = module_files(root)
    known = set(files)
    refs = {p: references(p, s, known) for p, s in files.items()}
    rank = {m: i for i, row in enumerate(layers or []) for m in row}
    top_edges = {}
    for p, targets in refs.items():
        for t in targets:
            a, b = p[0], t[0]
            if a != b:
                top_edges.setdefault(a, set()).add(b)
                if layers is not None:
                    if a not in rank or b not in rank:
                        missing = a if a not in rank else b
                        problems.append(f"{root}: module `{missing}` has no layer in scripts/check-layers.py")
                    elif rank[b] >= rank[a]:
                        where = "/".join(p)
                        how = "upward" if rank[b] > rank[a] else "sideways (same layer)"
                        problems.append(f"{root}/{where}: {how} import of `{'::'.join(t)}` ({a} may use only layers below it)")
            else:
                # Within one folder: the files' own graph.
                top_edges.setdefault(("inner",) + p, set()).add(("inner",) + t)
    for comp in cycles({k: v for k, v in top_edges.items() if isinstance(k, str)}):
        problems.append(f"{root}: import cycle between modules {', '.join(comp)}")
    inner = {k: {t for t in v if isinstance(t, tuple)} for k, v in top_edges.items() if isinstance(k, tuple)}
    for comp in cycles(inner):
        problems.append(f"{root}: import cycle between files {', '.join('/'.join(c[1:]) for c in comp)}")
    return sorted(set(problems))


def main():
    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    problems = check(os.path.join(top, "sdk", "src"), SDK_LAYERS)
    problems += check(os.path.join(top, "model-export", "src"), None)
    for p in problems:
        print(p.replace(top + os.sep, ""))
    if problems:
        return 1
    print("layers: every import points down; no cycles (sdk/src, model-export/src)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
