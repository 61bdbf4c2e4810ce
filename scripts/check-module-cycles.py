#!/usr/bin/env python3
"""Checks that the modules of each crate form layers: no import cycle between modules.

    scripts/check-module-cycles.py [CRATE_SRC_DIR ...]   (default: vcci-store and vcci-server)

A module is a file (`a/b.rs`, or `a/mod.rs` for `a`). Module M depends on module N when M's
code names a path into N: `crate::n::...`, `super::...`, or a `crate::X` re-exported at the
crate root from N. A module's dependencies on its own ancestors and descendants are not
counted (a folder's `mod.rs` declares its children and they use what it defines). Every other
dependency is lifted to the two sibling modules that contain M and N (for `write::sqlite` ->
`model::orgs`, that is `write` -> `model`), and each set of siblings must have no cycle:
neither top-level modules of a crate nor the files of one folder may import each other both
ways. Prints the dependencies of the top-level modules and any cycle; exits 1 on a cycle.
"""
import os
import re
import sys

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def modules(src):
    """Module path (tuple) -> file, for every .rs file under src."""
    out = {}
    for root, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(root, f), src)[:-3].split(os.sep)
            if rel[-1] in ("mod", "lib", "main"):
                rel = rel[:-1]
            out[tuple(rel)] = os.path.join(root, f)
    return out


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r'"(\\.|[^"\\])*"', '""', text)  # strings (may hold '::' or '//')
    return re.sub(r"//[^\n]*", "", text)


def parse_tree(text, i):
    """Paths of a use-tree starting at text[i]: 'a::b', '{a, b::{c, d}}', '*'. Returns
    (list of segment lists, end index)."""
    paths = []
    m = re.compile(r"\s*(" + IDENT + r"|\*|\{)").match(text, i)
    if not m:
        return [[]], i
    tok, i = m.group(1), m.end()
    if tok == "{":
        while True:
            sub, i = parse_tree(text, i)
            paths.extend(sub)
            m = re.compile(r"\s*(,|\})").match(text, i)
            if not m:
                return paths, i
            i = m.end()
            if m.group(1) == "}":
                return paths, i
            if re.compile(r"\s*\}").match(text, i):
                return paths, re.compile(r"\s*\}").match(text, i).end()
    if tok == "*":
        return [["*"]], i
    m = re.compile(r"\s*::").match(text, i)
    if m:
        rest, i = parse_tree(text, m.end())
        return [[tok] + r for r in rest], i
    return [[tok]], i


def root_reexports(mods, src):
    """Names re-exported at the crate root -> the module path they come from."""
    out = {}
    text = strip_comments(open(mods[()]).read())
    for m in re.finditer(r"pub\s+use\s+", text):
        for p in parse_tree(text, m.end())[0]:
            if len(p) >= 2:
                head = [s for s in p[:-1] if s not in ("crate", "self")]
                out[p[-1].split(" as ")[0]] = tuple(head)
    return out


def resolve(mods, base, segs):
    """The longest known module path among base + segs' prefixes."""
    best = None
    for k in range(len(segs) + 1):
        cand = tuple(base) + tuple(segs[:k])
        if cand in mods:
            best = cand
    return best


def dependencies(mods, src):
    roots = root_reexports(mods, src)
    deps = {m: set() for m in mods}
    for mod, path in mods.items():
        text = strip_comments(open(path).read())
        for m in re.finditer(r"\b(crate|super)::", text):
            kind = m.group(1)
            base = []
            i = m.end()
            if kind == "super":
                # A file's own module is `mod`; `super` of a mod.rs or a leaf is its parent.
                base = list(mod[:-1])
                while text.startswith("super::", i):
                    base = base[:-1]
                    i += len("super::")
            for segs in parse_tree(text, i)[0]:
                segs = [s for s in segs if s not in ("self", "*")]
                target = resolve(mods, base, segs)
                if target == () and not base and segs and segs[0] in roots:
                    target = roots[segs[0]]
                if target is None or target == ():
                    continue
                deps[mod].add(target)
    return deps


def related(a, b):
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def sibling_edges(deps):
    """Edges between sibling modules: parent -> {(child_a, child_b)}."""
    edges = {}
    for m, ns in deps.items():
        for n in ns:
            if related(m, n):
                continue
            k = 0
            while m[k] == n[k]:
                k += 1
            edges.setdefault(m[:k], set()).add((m[: k + 1], n[: k + 1]))
    return edges


def find_cycle(edges):
    graph = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
    state, stack = {}, []

    def visit(v):
        state[v] = 1
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if state.get(w) == 1:
                return stack[stack.index(w):] + [w]
            if not state.get(w):
                c = visit(w)
                if c:
                    return c
        stack.pop()
        state[v] = 2
        return None

    for v in sorted(graph):
        if not state.get(v):
            c = visit(v)
            if c:
                return c
    return None


def check(src):
    mods = modules(src)
    deps = dependencies(mods, src)
    edges = sibling_edges(deps)
    name = lambda m: "::".join(m) or "crate"
    top = sorted(edges.get((), ()))
    print(f"{src}: {len(mods)} modules; top-level dependencies:")
    for a in sorted({a for a, _ in top}):
        print(f"  {name(a)} -> {', '.join(name(b) for x, b in top if x == a)}")
    bad = False
    for parent, es in sorted(edges.items()):
        c = find_cycle(es)
        if c:
            bad = True
            print(f"CYCLE in {name(parent)}: {' -> '.join(name(m) for m in c)}")
            for a, b in zip(c, c[1:]):
                why = sorted(
                    f"{name(m)} uses {name(n)}"
                    for m, ns in deps.items()
                    for n in ns
                    if m[: len(a)] == a and n[: len(b)] == b
                )
                print("    " + "; ".join(why[:5]))
    return not bad


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    dirs = sys.argv[1:] or [
        os.path.join(here, "..", "crates", c, "src") for c in ("vcci-store", "vcci-server")
    ]
    ok = all([check(os.path.normpath(d)) for d in dirs])
    print("no module cycles" if ok else "module cycles found")
    sys.exit(0 if ok else 1)
