#!/usr/bin/env python3
"""Generates overlay.json: what kube-apiserver's OpenAPI schemas say that k8s-openapi's lack.

k8s-openapi's `schemars` schemas carry the Kubernetes definition names, types and
descriptions, but not what kube's openapi-gen derives from the Go types' comment tags:

  * `+patchStrategy`, `+patchMergeKey`     -> x-kubernetes-patch-strategy / -merge-key
  * `+listType`, `+listMapKey`, `+mapType` -> x-kubernetes-list-type / -list-map-keys / -map-type
  * `+structType` on a type                -> x-kubernetes-map-type on the definition
  * `+enum` string types                   -> `enum` and the "Possible enum values" paragraph
  * `metadata` without `omitempty`         -> `metadata` is required (`metadataRequired`)
  * the `...List` kinds, which k8s-openapi has no schema for (description, items, metadata)
  * the query parameters of each verb: kube-apiserver's installer turns the fields of
    metav1.ListOptions, CreateOptions, ... into parameters, described by their SwaggerDoc

This script reads those from the Go types of kubernetes/api, kubernetes/apimachinery and
kubernetes/apiextensions-apiserver at the release rkube serves (v0.33.0 = Kubernetes 1.33),
following kube-openapi's generator (pkg/generators: extension.go, enum.go, openapi.go's
generateDescription), and writes one JSON object:

  {"definitions": {NAME: {"x-...": ..., "properties": {FIELD: {"x-...": ..., "enum": [...],
                                                               "enumDescription": "..."}}}},
   "lists": {NAME: {"description": ..., "items": ..., "metadata": ...}},
   "parameters": {"ListOptions": [{"name": ..., "type": ..., "description": ...}], ...}}

Usage: gen-overlay.py [--check] [--api GIT_DIR] [--apimachinery GIT_DIR]
                      [--apiextensions GIT_DIR] [--ref v0.33.0]
Git directories default to the mirrors under /work/.mirror. Only the standard library is used.
"""

import argparse
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "overlay.json")

# Go packages (import path -> directory in its repository) whose types rkube serves.
API_GROUPS = [
    "core/v1", "apps/v1", "autoscaling/v1", "autoscaling/v2", "batch/v1", "networking/v1",
    "discovery/v1", "coordination/v1", "events/v1", "policy/v1", "rbac/v1", "storage/v1", "scheduling/v1",
    "authentication/v1", "authorization/v1",
]


def packages(args):
    pkgs = [(args.api, f"k8s.io/api/{g}", g) for g in API_GROUPS]
    pkgs.append((args.apimachinery, "k8s.io/apimachinery/pkg/apis/meta/v1", "pkg/apis/meta/v1"))
    pkgs.append((args.apimachinery, "k8s.io/apimachinery/pkg/runtime", "pkg/runtime"))
    pkgs.append((args.apiextensions, "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1",
                 "pkg/apis/apiextensions/v1"))
    return pkgs


def git(git_dir, *argv):
    return subprocess.run(["git", "--git-dir", git_dir, *argv], check=True,
                          capture_output=True, text=True).stdout


def go_files(git_dir, ref, directory):
    names = git(git_dir, "ls-tree", "--name-only", f"{ref}:{directory}").split()
    for name in sorted(names):
        if (name.endswith(".go") and not name.endswith("_test.go")
                and not name.startswith("zz_generated") and not name.endswith(".pb.go")
                and "fuzz" not in name):
            yield git(git_dir, "show", f"{ref}:{directory}/{name}")


def definition_prefix(import_path):
    """k8s.io/api/core/v1 -> io.k8s.api.core.v1 (kube-openapi's reverse-domain naming)."""
    host, _, rest = import_path.partition("/")
    return ".".join(reversed(host.split("."))) + "." + rest.replace("/", ".")


def comment_tags(lines):
    """gengo.ExtractCommentTags("+", lines): +key=value lines, values accumulated."""
    tags = {}
    for line in lines:
        line = line.strip()
        if not line.startswith("+"):
            continue
        key, _, value = line[1:].partition("=")
        tags.setdefault(key.strip(), []).append(value.strip())
    return tags


def description(lines):
    """kube-openapi's generateDescription."""
    buf = []

    def del_prev():
        if buf:
            buf[-1] = buf[-1][:-1]

    for line in lines:
        if line == "---":
            break
        line = line.rstrip(" ")
        leading = line.lstrip(" ")
        if not line:
            del_prev()
            buf.append("\n\n")
        elif leading.startswith("TODO") or leading.startswith("+"):
            pass
        else:
            if line.startswith(" ") or line.startswith("\t"):
                del_prev()
                line = "\n" + line + "\n"
            else:
                line += " "
            buf.append(line)
    return "".join(buf).strip()


def comment_text(raw):
    """The text of a `//` comment line, as go/ast gives it (one leading space dropped)."""
    text = raw.strip()[2:]
    return text[1:] if text.startswith(" ") else text


MEMBER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)?\s*([^`]*?)\s*(`[^`]*`)?\s*(//.*)?$")


class Package:
    def __init__(self, import_path):
        self.path = import_path
        self.structs = {}   # name -> (type comment lines, [member])
        self.enums = {}     # name -> type comment lines
        self.consts = []    # (type name, value, comment lines, const name)
        self.imports = {}   # alias -> import path


def parse(pkg, source):
    lines = source.split("\n")
    comments = []
    i = 0
    in_import = in_const = False
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        i += 1
        if stripped.startswith("//"):
            comments.append(comment_text(stripped))
            continue
        if stripped.startswith("/*"):
            i = skip_block_comment(lines, i - 1)
            comments = []
            continue
        if stripped == "import (":
            in_import = True
        elif in_import:
            if stripped == ")":
                in_import = False
            else:
                m = re.match(r'^(\w+)?\s*"([^"]+)"', stripped)
                if m:
                    alias = m.group(1) or m.group(2).rsplit("/", 1)[-1]
                    pkg.imports[alias] = m.group(2)
        elif stripped.startswith("import "):
            m = re.match(r'^import\s+(\w+)?\s*"([^"]+)"', stripped)
            if m:
                pkg.imports[m.group(1) or m.group(2).rsplit("/", 1)[-1]] = m.group(2)
        elif stripped == "const (":
            in_const = True
        elif in_const:
            if stripped == ")":
                in_const = False
            else:
                m = re.match(r'^(\w+)\s+(\w+)\s*=\s*"((?:[^"\\]|\\.)*)"', stripped)
                if m:
                    pkg.consts.append((m.group(2), m.group(3), comments, m.group(1)))
        elif stripped.startswith("const "):
            m = re.match(r'^const\s+(\w+)\s+(\w+)\s*=\s*"((?:[^"\\]|\\.)*)"', stripped)
            if m:
                pkg.consts.append((m.group(2), m.group(3), comments, m.group(1)))
        else:
            m = re.match(r"^type\s+(\w+)\s+struct\s*{\s*$", stripped)
            if m:
                members, i = parse_struct(lines, i)
                pkg.structs[m.group(1)] = (comments, members)
            else:
                m = re.match(r"^type\s+(\w+)\s+string\s*$", stripped)
                if m and "enum" in comment_tags(comments):
                    pkg.enums[m.group(1)] = comments
        comments = []


def skip_block_comment(lines, i):
    """The index of the line after the `/* ... */` comment starting at line i."""
    while "*/" not in lines[i]:
        i += 1
    return i + 1


def parse_struct(lines, i):
    members = []
    comments = []
    depth = 1
    while i < len(lines):
        stripped = lines[i].strip()
        i += 1
        if stripped.startswith("//"):
            comments.append(comment_text(stripped))
            continue
        if stripped.startswith("/*"):
            i = skip_block_comment(lines, i - 1)
            continue
        if stripped.startswith("}"):
            depth -= 1
            if depth == 0:
                return members, i
            continue
        if stripped.endswith("{"):
            depth += 1  # an anonymous struct: not in the API types rkube serves
            comments = []
            continue
        if not stripped:
            comments = []
            continue
        if depth == 1:
            m = re.match(r"^(\w+)\s+([^`\s]+)\s*(`[^`]*`)?", stripped)
            if m:
                name, typ, tag = m.group(1), m.group(2), m.group(3) or ""
            else:
                m = re.match(r"^([\w.*]+)\s*(`[^`]*`)?", stripped)
                if m is None:
                    raise ValueError(f"cannot parse struct member: {stripped!r}")
                name, typ, tag = None, m.group(1), m.group(2) or ""
            members.append({"name": name, "type": typ, "tag": tag.strip("`"), "comments": comments})
        comments = []
    raise ValueError("unterminated struct")


def json_name(member):
    m = re.search(r'json:"([^"]*)"', member["tag"])
    if not m:
        return None if member["name"] is None else member["name"]
    name = m.group(1).split(",")[0]
    if name == "-":
        return None
    return name


def is_inline(member):
    m = re.search(r'json:"([^"]*)"', member["tag"])
    if member["name"] is None:
        return not m or ",inline" in m.group(1) or m.group(1).split(",")[0] == ""
    return bool(m) and ",inline" in m.group(1)


def resolve(pkgs, pkg, typ):
    """(package, type name) of a Go type expression, pointers/slices/maps stripped by the caller."""
    if "." in typ:
        alias, name = typ.split(".", 1)
        return pkgs.get(pkg.imports.get(alias)), name
    return pkg, typ


def enum_values(pkgs, enum_pkg, enum_name):
    values = {}
    for p in pkgs.values():
        for typ, value, comments, const_name in p.consts:
            owner, name = resolve(pkgs, p, typ)
            if owner is enum_pkg and name == enum_name:
                comment = " ".join(comments)
                old = values.get(value)
                if old is None or len(old[0]) < len(comment) or (
                        len(old[0]) == len(comment) and old[0] > comment):
                    values[value] = (comment, const_name)
    return values


def enum_of(pkgs, pkg, typ):
    typ = typ.lstrip("*")
    owner, name = resolve(pkgs, pkg, typ)
    if owner is None or name not in owner.enums:
        return None
    values = enum_values(pkgs, owner, name)
    if not values:
        return None
    lines = []
    for value, (comment, const_name) in values.items():
        comment = comment.strip()
        comment = comment[len(const_name):] if comment.startswith(const_name) else comment
        comment = re.sub(r"\s+", " ", comment.strip())
        lines.append(f" - `{json.dumps(value)}` {comment}")
    return sorted(values), ["", "Possible enum values:"] + sorted(lines)


def member_overlay(pkgs, pkg, member):
    out = {}
    tags = comment_tags(member["comments"])
    for tag, xname, always_list in [
        ("listMapKey", "x-kubernetes-list-map-keys", True),
        ("listType", "x-kubernetes-list-type", False),
        ("mapType", "x-kubernetes-map-type", False),
        ("patchMergeKey", "x-kubernetes-patch-merge-key", False),
        ("patchStrategy", "x-kubernetes-patch-strategy", False),
        ("structType", "x-kubernetes-map-type", False),
    ]:
        values = tags.get(tag)
        if values:
            out[xname] = values if always_list or len(values) > 1 else values[0]
    typ = member["type"]
    enum = enum_of(pkgs, pkg, typ)
    if enum:
        values, lines = enum
        out["enum"] = values
        # The paragraph kube appends to the field's description (k8s-openapi drops it).
        out["enumDescription"] = description(["X"] + lines)[1:]
    elif typ.startswith("[]"):
        enum = enum_of(pkgs, pkg, typ[2:])
        if enum:
            out["itemsEnum"] = enum[0]
    elif typ.startswith("map["):
        enum = enum_of(pkgs, pkg, typ[typ.index("]") + 1:])
        if enum:
            out["valuesEnum"] = enum[0]
    return out


def struct_properties(pkgs, pkg, name, seen=()):
    """JSON field -> overlay of a struct, inline members flattened as encoding/json does."""
    _, members = pkg.structs[name]
    props = {}
    for member in members:
        if is_inline(member):
            owner, inner = resolve(pkgs, pkg, member["type"].lstrip("*"))
            if owner is not None and inner in owner.structs and (owner.path, inner) not in seen:
                props.update(struct_properties(pkgs, owner, inner, seen + ((owner.path, inner),)))
            continue
        field = json_name(member)
        if field is None:
            continue
        overlay = member_overlay(pkgs, pkg, member)
        if overlay:
            props[field] = overlay
    return props


# The Go types of query parameters (the installer's typeToJSON).
PARAM_TYPES = {"bool": "boolean", "int64": "integer", "int32": "integer", "int": "integer"}


def swagger_docs(git_dir, ref):
    """map_<Type> of types_swagger_doc_generated.go: the descriptions the installer uses."""
    source = git(git_dir, "show", f"{ref}:pkg/apis/meta/v1/types_swagger_doc_generated.go")
    docs = {}
    for m in re.finditer(r"var map_(\w+) = map\[string\]string\{\n(.*?)\n\}", source, re.S):
        entries = {}
        for line in m.group(2).split("\n"):
            e = re.match(r'\s*"([^"]*)":\s*("(?:[^"\\]|\\.)*"),?$', line)
            if e:
                entries[e.group(1)] = json.loads(e.group(2))
        docs[m.group(1)] = entries
    return docs


def query_parameters(pkgs, docs):
    """The installer's AddObjectParams: scalar fields with a JSON name, in field order."""
    meta = pkgs["k8s.io/apimachinery/pkg/apis/meta/v1"]
    out = {}
    for options in ["ListOptions", "CreateOptions", "UpdateOptions", "PatchOptions",
                    "DeleteOptions"]:
        params = []
        for member in meta.structs[options][1]:
            name = json_name(member)
            typ = member["type"].lstrip("*")
            if is_inline(member) or name is None or typ in meta.structs:
                continue
            params.append({"name": name, "type": PARAM_TYPES.get(typ, "string"),
                           "description": docs[options].get(name, "")})
        out[options] = params
    return out


def build(args):
    pkgs = {}
    for git_dir, import_path, directory in packages(args):
        pkg = Package(import_path)
        for source in go_files(git_dir, args.ref, directory):
            parse(pkg, source)
        pkgs[import_path] = pkg
    definitions = {}
    lists = {}
    for pkg in pkgs.values():
        prefix = definition_prefix(pkg.path)
        for name, (comments, members) in sorted(pkg.structs.items()):
            entry = {}
            struct_type = comment_tags(comments).get("structType")
            if struct_type:
                entry["x-kubernetes-map-type"] = struct_type[0]
            meta = [m for m in members if json_name(m) == "metadata"]
            if meta and "omitempty" not in meta[0]["tag"]:
                # k8s-openapi makes every kind's metadata required; kube only these.
                entry["metadataRequired"] = True
            props = struct_properties(pkgs, pkg, name)
            if props:
                entry["properties"] = props
            if entry:
                definitions[f"{prefix}.{name}"] = entry
            if name.endswith("List"):
                by_field = {json_name(m): m for m in members if not is_inline(m)}
                items = by_field.get("items")
                meta = by_field.get("metadata")
                if items is not None and items["type"].startswith("[]"):
                    lists[f"{prefix}.{name}"] = {
                        "description": description(comments),
                        "items": description(items["comments"]),
                        "metadata": description(meta["comments"]) if meta else "",
                    }
    parameters = query_parameters(pkgs, swagger_docs(args.apimachinery, args.ref))
    return {"definitions": definitions, "lists": lists, "parameters": parameters}


def main():
    mirror = "/work/.mirror"
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--api", default=f"{mirror}/kubernetes+api/repo")
    parser.add_argument("--apimachinery", default=f"{mirror}/kubernetes+apimachinery/repo")
    parser.add_argument("--apiextensions",
                        default=f"{mirror}/kubernetes+apiextensions-apiserver/repo")
    parser.add_argument("--ref", default="v0.33.0")
    args = parser.parse_args()
    text = json.dumps(build(args), indent=1, sort_keys=True) + "\n"
    if args.check:
        with open(OUT) as f:
            if f.read() != text:
                print(f"{OUT} is stale", file=sys.stderr)
                sys.exit(1)
        return
    with open(OUT, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
